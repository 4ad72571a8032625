//! Fixed-capacity byte strings on the stack: paths the shim builds and the one line it may
//! print. Nothing allocates and nothing can panic: text that does not fit is cut (lines) or
//! refused (paths).

use core::ffi::CStr;

/// Up to `N - 1` bytes, always followed by a NUL terminator.
pub struct Text<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> Text<N> {
    /// An empty text.
    pub const fn new() -> Self {
        Text {
            bytes: [0; N],
            len: 0,
        }
    }

    /// Appends all of `part`, or nothing and `false` if it does not fit with a terminator.
    pub fn push(&mut self, part: &[u8]) -> bool {
        let Some(end) = self.len.checked_add(part.len()) else {
            return false;
        };
        if end >= N {
            return false;
        }
        self.push_cut(part);
        true
    }

    /// Appends as much of `part` as fits before the terminator.
    pub fn push_cut(&mut self, part: &[u8]) {
        let room = self
            .bytes
            .iter_mut()
            .skip(self.len)
            .take(N.saturating_sub(1));
        let mut added = 0usize;
        for (slot, byte) in room.zip(part) {
            *slot = *byte;
            added = added.saturating_add(1);
        }
        self.len = self.len.saturating_add(added).min(N.saturating_sub(1));
        self.terminate();
    }

    /// Keeps the byte after the text a NUL.
    fn terminate(&mut self) {
        if let Some(slot) = self.bytes.get_mut(self.len) {
            *slot = 0;
        }
    }

    /// Drops everything after the last `/` (keeping it); `false` if there is none.
    pub fn truncate_after_last_slash(&mut self) -> bool {
        match self.as_bytes().iter().rposition(|&b| b == b'/') {
            Some(slash) => {
                self.len = slash.saturating_add(1);
                self.terminate();
                true
            }
            None => false,
        }
    }

    /// The bytes so far.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }

    /// The text as a C string; `None` if it holds a NUL byte itself.
    pub fn as_c_str(&self) -> Option<&CStr> {
        CStr::from_bytes_with_nul(self.bytes.get(..=self.len)?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_keeps_room_for_the_terminator() {
        let mut text = Text::<8>::new();
        assert!(text.push(b"abc"));
        assert!(text.push(b"defg"));
        assert!(!text.push(b"h"), "8 bytes leave room for 7 and the NUL");
        assert_eq!(text.as_bytes(), b"abcdefg");
        assert_eq!(text.as_c_str().unwrap().to_bytes(), b"abcdefg");
    }

    #[test]
    fn push_cut_truncates() {
        let mut text = Text::<6>::new();
        text.push_cut(b"abc");
        text.push_cut(b"defgh");
        assert_eq!(text.as_bytes(), b"abcde");
        assert_eq!(text.as_c_str().unwrap().to_bytes(), b"abcde");
    }

    #[test]
    fn directory_of_a_path() {
        let mut text = Text::<64>::new();
        assert!(text.push(b"/usr/lib/pickleguard/libpickleguard.so"));
        assert!(text.truncate_after_last_slash());
        assert!(text.push(b"libpickleguard_core.so"));
        assert_eq!(
            text.as_c_str().unwrap().to_bytes(),
            b"/usr/lib/pickleguard/libpickleguard_core.so"
        );
        let mut bare = Text::<8>::new();
        assert!(bare.push(b"lib.so"));
        assert!(!bare.truncate_after_last_slash());
    }

    #[test]
    fn an_inner_nul_is_not_a_c_string() {
        let mut text = Text::<8>::new();
        assert!(text.push(b"a\0b"));
        assert!(text.as_c_str().is_none());
    }
}
