//! Is the core file a whole shared library for this machine? Checked with `pread` before
//! `dlopen`, because the loader maps a truncated file and the process dies of SIGBUS when it
//! touches a page past the end, with no message.
//!
//! Checked: the ELF magic, the word size and byte order of this build, a shared object for this
//! machine, and that every program header, every loadable segment and the section header
//! table lie inside the file.

use crate::sys::File;

/// Why a file is not a usable core.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Defect {
    /// Not an ELF file at all.
    NotElf,
    /// ELF, but for another word size, byte order or machine, or not a shared object.
    WrongKind,
    /// Parts the headers describe lie past the end of the file.
    Truncated,
    /// The headers are inconsistent (sizes that overflow, absurd counts).
    Malformed,
}

impl Defect {
    /// Lowercase words for the one-line message.
    pub fn describe(self) -> &'static [u8] {
        match self {
            Defect::NotElf => b"it is not an ELF shared library",
            Defect::WrongKind => {
                b"it is not a shared library for this machine (word size, byte order or architecture)"
            }
            Defect::Truncated => b"it is truncated (its headers describe data past its end)",
            Defect::Malformed => b"its ELF headers are inconsistent",
        }
    }
}

/// `ELFCLASS64` or `ELFCLASS32`, this build's word size.
const CLASS: u8 = if cfg!(target_pointer_width = "64") {
    2
} else {
    1
};
/// `ELFDATA2LSB` or `ELFDATA2MSB`, this build's byte order.
const DATA: u8 = if cfg!(target_endian = "little") { 1 } else { 2 };
/// `ET_DYN`.
const ET_DYN: u16 = 3;
/// `PT_LOAD`.
const PT_LOAD: u32 = 1;
/// More program headers than any real shared library has.
const MAX_PROGRAM_HEADERS: u64 = 512;

/// `e_machine` of this build, where known.
const MACHINE: Option<u16> = if cfg!(target_arch = "x86_64") {
    Some(62)
} else if cfg!(target_arch = "aarch64") {
    Some(183)
} else if cfg!(target_arch = "x86") {
    Some(3)
} else if cfg!(target_arch = "arm") {
    Some(40)
} else if cfg!(target_arch = "riscv64") {
    Some(243)
} else if cfg!(target_arch = "s390x") {
    Some(22)
} else if cfg!(target_arch = "powerpc64") {
    Some(21)
} else {
    None
};

/// Where the fields are, for this word size.
struct Layout {
    header_size: usize,
    phoff: (usize, usize),
    shoff: (usize, usize),
    phentsize_at: usize,
    phnum_at: usize,
    shentsize_at: usize,
    shnum_at: usize,
    program_header_size: u64,
    p_offset: (usize, usize),
    p_filesz: (usize, usize),
}

const LAYOUT: Layout = if CLASS == 2 {
    Layout {
        header_size: 64,
        phoff: (32, 8),
        shoff: (40, 8),
        phentsize_at: 54,
        phnum_at: 56,
        shentsize_at: 58,
        shnum_at: 60,
        program_header_size: 56,
        p_offset: (8, 8),
        p_filesz: (32, 8),
    }
} else {
    Layout {
        header_size: 52,
        phoff: (28, 4),
        shoff: (32, 4),
        phentsize_at: 42,
        phnum_at: 44,
        shentsize_at: 46,
        shnum_at: 48,
        program_header_size: 32,
        p_offset: (4, 4),
        p_filesz: (16, 4),
    }
};

/// Checks `file`, `size` bytes long.
pub fn check(file: &File, size: u64) -> Result<(), Defect> {
    let mut header = [0u8; 64];
    let header = header
        .get_mut(..LAYOUT.header_size)
        .ok_or(Defect::Malformed)?;
    if !file.read_exact_at(header, 0) {
        return Err(Defect::NotElf);
    }
    if header.get(..4) != Some(b"\x7fELF".as_slice()) {
        return Err(Defect::NotElf);
    }
    if header.get(4) != Some(&CLASS) || header.get(5) != Some(&DATA) {
        return Err(Defect::WrongKind);
    }
    if half(header, 16) != Some(ET_DYN) {
        return Err(Defect::WrongKind);
    }
    if let Some(machine) = MACHINE {
        if half(header, 18) != Some(machine) {
            return Err(Defect::WrongKind);
        }
    }
    let phoff = word(header, LAYOUT.phoff).ok_or(Defect::Malformed)?;
    let phentsize = half(header, LAYOUT.phentsize_at).ok_or(Defect::Malformed)?;
    let phnum = u64::from(half(header, LAYOUT.phnum_at).ok_or(Defect::Malformed)?);
    if u64::from(phentsize) != LAYOUT.program_header_size
        || phnum == 0
        || phnum > MAX_PROGRAM_HEADERS
    {
        return Err(Defect::Malformed);
    }
    within(size, phoff, phnum.checked_mul(LAYOUT.program_header_size))?;
    let shoff = word(header, LAYOUT.shoff).ok_or(Defect::Malformed)?;
    if shoff != 0 {
        let shentsize = u64::from(half(header, LAYOUT.shentsize_at).ok_or(Defect::Malformed)?);
        let shnum = u64::from(half(header, LAYOUT.shnum_at).ok_or(Defect::Malformed)?);
        within(size, shoff, shnum.checked_mul(shentsize))?;
    }
    for index in 0..phnum {
        let mut entry = [0u8; 56];
        let entry = entry
            .get_mut(..LAYOUT.program_header_size as usize)
            .ok_or(Defect::Malformed)?;
        let at = index
            .checked_mul(LAYOUT.program_header_size)
            .and_then(|offset| offset.checked_add(phoff))
            .ok_or(Defect::Malformed)?;
        if !file.read_exact_at(entry, at) {
            return Err(Defect::Truncated);
        }
        if word32(entry, 0) == Some(PT_LOAD) {
            let offset = word(entry, LAYOUT.p_offset).ok_or(Defect::Malformed)?;
            let filesz = word(entry, LAYOUT.p_filesz).ok_or(Defect::Malformed)?;
            within(size, offset, Some(filesz))?;
        }
    }
    Ok(())
}

/// `offset + length <= size`, or why not.
fn within(size: u64, offset: u64, length: Option<u64>) -> Result<(), Defect> {
    let end = length
        .and_then(|length| offset.checked_add(length))
        .ok_or(Defect::Malformed)?;
    if end > size {
        return Err(Defect::Truncated);
    }
    Ok(())
}

/// A 16-bit field at `at`, in this build's byte order.
fn half(bytes: &[u8], at: usize) -> Option<u16> {
    let raw: [u8; 2] = bytes.get(at..at.checked_add(2)?)?.try_into().ok()?;
    Some(u16::from_ne_bytes(raw))
}

/// A 32-bit field at `at`.
fn word32(bytes: &[u8], at: usize) -> Option<u32> {
    let raw: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_ne_bytes(raw))
}

/// An address-sized field: `(offset, width)` with width 4 or 8.
fn word(bytes: &[u8], (at, width): (usize, usize)) -> Option<u64> {
    if width == 4 {
        return word32(bytes, at).map(u64::from);
    }
    let raw: [u8; 8] = bytes.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_ne_bytes(raw))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    use std::path::{Path, PathBuf};

    fn check_bytes(name: &str, bytes: &[u8]) -> Result<(), Defect> {
        let dir = std::env::temp_dir().join(format!("pickleguard-shim-elf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        let result = check_path(&path);
        let _ = std::fs::remove_file(&path);
        result
    }

    fn check_path(path: &Path) -> Result<(), Defect> {
        let c_path = CString::new(path.as_os_str().as_bytes()).unwrap();
        let file = File::open(&c_path).unwrap();
        let size = file.facts().unwrap().size;
        check(&file, size)
    }

    /// A whole position-independent ELF of this machine: the test executable itself.
    fn sample() -> (PathBuf, Vec<u8>) {
        let path = std::env::current_exe().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        (path, bytes)
    }

    #[test]
    fn a_whole_library_passes() {
        let (path, _) = sample();
        assert_eq!(check_path(&path), Ok(()));
    }

    #[test]
    fn every_truncation_is_refused() {
        let (_, bytes) = sample();
        let cuts = [
            0,
            1,
            4,
            16,
            63,
            64,
            200,
            4096,
            bytes.len() / 2,
            bytes.len() - 1,
        ];
        for cut in cuts {
            let result = check_bytes(&format!("cut-{cut}"), &bytes[..cut]);
            assert!(
                result.is_err(),
                "a file cut at {cut} of {} passed",
                bytes.len()
            );
        }
    }

    #[test]
    fn foreign_and_forged_headers_are_refused() {
        let (_, bytes) = sample();
        assert_eq!(
            check_bytes("text", b"not an ELF file at all"),
            Err(Defect::NotElf)
        );

        let mut other_class = bytes.clone();
        other_class[4] = if CLASS == 2 { 1 } else { 2 };
        assert_eq!(check_bytes("class", &other_class), Err(Defect::WrongKind));

        let mut other_machine = bytes.clone();
        other_machine[18] ^= 0x55;
        assert_eq!(
            check_bytes("machine", &other_machine),
            Err(Defect::WrongKind)
        );

        let mut executable = bytes.clone();
        executable[16] = 2; // ET_EXEC
        assert_eq!(check_bytes("exec", &executable), Err(Defect::WrongKind));

        let mut many = bytes.clone();
        many[LAYOUT.phnum_at] = 0xff;
        many[LAYOUT.phnum_at + 1] = 0xff;
        assert_eq!(check_bytes("phnum", &many), Err(Defect::Malformed));

        let mut far = bytes.clone();
        let (at, width) = LAYOUT.phoff;
        far[at..at + width].fill(0xff);
        assert!(check_bytes("phoff", &far).is_err());

        let mut sections = bytes.clone();
        let (at, width) = LAYOUT.shoff;
        sections[at..at + width].fill(0x7f);
        assert!(check_bytes("shoff", &sections).is_err());
    }
}
