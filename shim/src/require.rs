//! Does the configuration require protection? The shim must know before the core is loaded,
//! since the core is what may be missing. It reads the one top-level key it needs,
//! `require = true`, from the same config file the core reads, with a scan that can only ever
//! make the shim stricter: the core parses the whole file properly.
//!
//! The file is read like the core reads it: a regular file, at most 1 MiB, and in
//! secure-execution mode only `/etc/pickleguard/pickleguard.toml`, owned by root and writable
//! by no one else. `PICKLEGUARD_REQUIRE` (never read in secure-execution mode) overrides it.

use core::ffi::CStr;

use crate::sys;
use crate::text::Text;

/// The config file read when `PICKLEGUARD_CONFIG` is unset.
const DEFAULT_CONFIG: &CStr = c"/etc/pickleguard/pickleguard.toml";
/// The largest config file read (the core's limit too).
const MAX_CONFIG_BYTES: u64 = 1 << 20;
/// Longer lines cannot be a `require` setting and are skipped.
const MAX_LINE: usize = 256;

/// Whether a Python process that cannot be protected must not run.
pub fn required(secure: bool) -> bool {
    if !secure {
        if let Some(value) = sys::env(c"PICKLEGUARD_REQUIRE") {
            return is_yes(value.to_bytes());
        }
    }
    let path = match sys::env(c"PICKLEGUARD_CONFIG") {
        Some(explicit) if !secure => explicit,
        _ => DEFAULT_CONFIG,
    };
    config_requires(path, secure)
}

/// `1`, `true`, `yes` or `on`, any case.
pub fn is_yes(value: &[u8]) -> bool {
    [&b"1"[..], b"true", b"yes", b"on"]
        .iter()
        .any(|yes| value.trim_ascii().eq_ignore_ascii_case(yes))
}

/// Whether the file at `path` sets `require` to true at the top level.
fn config_requires(path: &CStr, secure: bool) -> bool {
    let Some(facts) = sys::file_facts(path) else {
        return false;
    };
    // `stat` before `open`: opening a FIFO would wait for a writer.
    if !facts.regular || facts.size > MAX_CONFIG_BYTES {
        return false;
    }
    let Some(file) = sys::File::open(path) else {
        return false;
    };
    let Some(facts) = file.facts() else {
        return false;
    };
    if !facts.regular || (secure && (facts.uid != 0 || facts.mode & 0o022 != 0)) {
        return false;
    }
    let mut scan = Scan::default();
    let mut chunk = [0u8; 4096];
    let mut offset = 0u64;
    while offset < MAX_CONFIG_BYTES {
        let Some(read) = file.read_at(&mut chunk, offset) else {
            break;
        };
        if read == 0 {
            break;
        }
        for &byte in chunk.iter().take(read) {
            if scan.byte(byte) {
                return scan.require;
            }
        }
        offset = offset.saturating_add(read as u64);
    }
    scan.end_line();
    scan.require
}

/// Line-by-line state of the scan.
struct Scan {
    line: Text<MAX_LINE>,
    overlong: bool,
    require: bool,
}

impl Default for Scan {
    fn default() -> Self {
        Scan {
            line: Text::new(),
            overlong: false,
            require: false,
        }
    }
}

impl Scan {
    /// Takes one byte; true once the top-level keys are over (a `[table]` header).
    fn byte(&mut self, byte: u8) -> bool {
        if byte == b'\n' {
            return self.end_line();
        }
        if !self.line.push(&[byte]) {
            self.overlong = true;
        }
        false
    }

    fn end_line(&mut self) -> bool {
        let mut done = false;
        if !self.overlong {
            let line = self.line.as_bytes();
            let content = line
                .split(|&b| b == b'#')
                .next()
                .unwrap_or_default()
                .trim_ascii();
            if content.starts_with(b"[") && !content.starts_with(b"[[") {
                done = true;
            } else if let Some(value) = setting(content, b"require") {
                self.require = is_true(value);
            }
        }
        self.line = Text::new();
        self.overlong = false;
        done
    }
}

/// The value of `key = value`, if `content` is that key.
fn setting<'a>(content: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let equals = content.iter().position(|&b| b == b'=')?;
    let (name, value) = content.split_at(equals);
    (name.trim_ascii() == key).then(|| value.get(1..).unwrap_or_default().trim_ascii())
}

/// `true`, or a quoted yes-word, as the core's `flag` accepts.
fn is_true(value: &[u8]) -> bool {
    if value == b"true" {
        return true;
    }
    match value {
        [b'"', inner @ .., b'"'] | [b'\'', inner @ .., b'\''] => is_yes(inner),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(text: &str) -> bool {
        let mut scan = Scan::default();
        for &byte in text.as_bytes() {
            if scan.byte(byte) {
                return scan.require;
            }
        }
        scan.end_line();
        scan.require
    }

    #[test]
    fn finds_a_top_level_require() {
        assert!(scan("require = true\n"));
        assert!(scan("mode = \"warn\"\n  require=true # always\n"));
        assert!(scan("require = \"yes\"\r\n"));
        assert!(scan("require = true"), "no final newline");
        assert!(!scan(""));
        assert!(!scan("require = false\n"));
        assert!(!scan("required = true\n"));
        assert!(!scan("# require = true\n"));
    }

    #[test]
    fn stops_at_the_first_table() {
        assert!(!scan("[log]\nrequire = true\n"));
        assert!(scan("require = true\n[log]\nlevel = \"warn\"\n"));
    }

    #[test]
    fn overlong_lines_are_skipped_whole() {
        let long = format!("x = \"{}\"require = true\n", "a".repeat(2 * MAX_LINE));
        assert!(!scan(&long));
        assert!(scan(&format!("{long}require = true\n")));
    }

    #[test]
    fn yes_words() {
        for yes in ["1", "true", "YES", " on "] {
            assert!(is_yes(yes.as_bytes()), "{yes}");
        }
        for no in ["0", "", "false", "y"] {
            assert!(!is_yes(no.as_bytes()), "{no}");
        }
    }
}
