//! A stream of pickles one after the other, as loaders read them: `pickle.load` in a loop,
//! torch's legacy format (exactly five), or a single pickle (`.npy` object arrays).

use pickleguard_policy::Policy;

use crate::machine::{run_pickle, Carry, Sink};
use crate::report::{ConcernKind, Finding};
use crate::{Limits, ScanError};

/// How many pickles a stream holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Count {
    /// One; anything after it is never read.
    One,
    /// As many as there are. Bytes after the last one that do not start another are an error,
    /// except for trailing whitespace or NULs.
    All,
    /// Exactly this many; what follows is data, not pickles.
    Exactly(u32),
}

/// The result of walking a stream.
pub(crate) struct Walk {
    pub globals: Vec<Finding>,
    /// Offset, kind and detail of each concern found in the stream.
    pub concerns: Vec<(u64, ConcernKind, String)>,
    pub error: Option<ScanError>,
    /// Whether the first pickle ran to its STOP.
    pub first_complete: bool,
    /// The stream as `_pickle` reads it from a file, where that differs (a read ran past the
    /// end of a FRAME): the bytes it drops taken out.
    pub file_reading: Option<Box<Walk>>,
}

pub(crate) fn walk(
    data: &[u8],
    start: usize,
    count: Count,
    joblib: bool,
    policy: &Policy,
    limits: Limits,
) -> Walk {
    let (mut first, dropped) = walk_once(data, start, count, joblib, policy, limits);
    // `_pickle` reading a file drops the rest of a frame when a read runs past its end, and
    // reads on from after the frame: that reading is walked too (once; straddles in it are
    // only reported).
    first.file_reading = dropped.and_then(|(from, to)| {
        // A frame may claim to end past the data.
        let to = to.min(data.len());
        let from = from.min(to);
        let mut view = Vec::with_capacity(data.len() - (to - from));
        view.extend_from_slice(&data[..from]);
        view.extend_from_slice(data.get(to..)?);
        Some(Box::new(
            walk_once(&view, start, count, joblib, policy, limits).0,
        ))
    });
    first
}

fn walk_once(
    data: &[u8],
    start: usize,
    count: Count,
    joblib: bool,
    policy: &Policy,
    limits: Limits,
) -> (Walk, Option<(usize, usize)>) {
    let mut sink = Sink::new(policy, limits);
    // One memo for the stream's pickles, as one `Unpickler` loading them in turn keeps it (a
    // fresh unpickler per pickle fails where a pickle reads an earlier one's memo, after
    // running what came before).
    let mut carry = Carry::default();
    let mut pos = start;
    let mut done = 0u32;
    let error = loop {
        let ended = run_pickle(data, pos, joblib, &mut carry, &mut sink);
        if let Some(error) = ended.error {
            break Some(error);
        }
        done += 1;
        pos = ended.end;
        match count {
            Count::One => break None,
            Count::Exactly(total) if done >= total => break None,
            Count::Exactly(_) => {}
            Count::All => {
                let rest = &data[pos..];
                if rest.iter().all(|b| b.is_ascii_whitespace() || *b == 0) {
                    break None;
                }
                if crate::opcodes::name(rest[0]).is_none() {
                    break Some(ScanError::TrailingData { offset: pos as u64 });
                }
            }
        }
    };
    if sink.needs_values {
        let jumps = std::mem::take(&mut sink.jumps);
        let pickles = done + u32::from(error.is_some());
        crate::reconstruction::check_stream(data, start, pickles, &jumps, &mut sink);
    }
    let walk = Walk {
        globals: sink.globals,
        concerns: sink.concerns,
        error,
        first_complete: done > 0,
        file_reading: None,
    };
    (walk, sink.dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the smoke fuzzer: a FRAME that claims to end past the data, then a nested FRAME
    /// straddling it, made the dropped range end past the data.
    #[test]
    fn a_frame_past_the_data_is_no_panic() {
        let mut data = b"\x80\x04\x95\xff\x00\x00\x00\x00\x00\x00\x00".to_vec();
        data.extend_from_slice(b"\x95\xff\xff\x00\x00\x00\x00\x00\x00N.");
        let w = walk(
            &data,
            0,
            Count::All,
            false,
            &Policy::new(),
            Limits::default(),
        );
        assert!(!w.concerns.is_empty());
    }

    #[test]
    fn concatenated_pickles_are_all_scanned() {
        let data = b"cos\nsystem\n.\x80\x02cposix\nsystem\n.\n";
        let walk = walk(
            data,
            0,
            Count::All,
            false,
            &Policy::new(),
            Limits::default(),
        );
        assert!(walk.error.is_none());
        assert_eq!(walk.globals.len(), 2);
        assert_eq!(walk.globals[1].offset, 14);
    }

    #[test]
    fn trailing_garbage_is_an_error_but_one_pickle_ignores_it() {
        let data = b"N.\xff\xff";
        let all = walk(
            data,
            0,
            Count::All,
            false,
            &Policy::new(),
            Limits::default(),
        );
        assert!(matches!(
            all.error,
            Some(ScanError::TrailingData { offset: 2 })
        ));
        let one = walk(
            data,
            0,
            Count::One,
            false,
            &Policy::new(),
            Limits::default(),
        );
        assert!(one.error.is_none());
    }

    #[test]
    fn exactly_stops_before_the_data() {
        let data = b"N.N.\xff\xff\xff";
        let two = walk(
            data,
            0,
            Count::Exactly(2),
            false,
            &Policy::new(),
            Limits::default(),
        );
        assert!(two.error.is_none());
        let three = walk(
            data,
            0,
            Count::Exactly(3),
            false,
            &Policy::new(),
            Limits::default(),
        );
        assert!(three.error.is_some());
    }
}
