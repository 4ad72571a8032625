//! A cursor over borrowed bytes: every read is bounds-checked against what is left, and payloads
//! come back as sub-slices, never copies.

/// Not enough bytes left: how many were wanted.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Short {
    pub needed: u64,
    pub left: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8], pos: usize) -> Self {
        Reader {
            data,
            pos: pos.min(data.len()),
        }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn left(&self) -> u64 {
        (self.data.len() - self.pos) as u64
    }

    pub fn at_end(&self) -> bool {
        self.pos == self.data.len()
    }

    pub fn rest(&self) -> &'a [u8] {
        &self.data[self.pos..]
    }

    /// The next `len` bytes. `len` comes from the file, so it is compared as a u64 before any
    /// conversion: a length of 2^63 fails here instead of overflowing.
    pub fn take(&mut self, len: u64) -> Result<&'a [u8], Short> {
        if len > self.left() {
            return Err(Short {
                needed: len,
                left: self.left(),
            });
        }
        let start = self.pos;
        self.pos += len as usize;
        Ok(&self.data[start..self.pos])
    }

    pub fn u8(&mut self) -> Result<u8, Short> {
        Ok(self.take(1)?[0])
    }

    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], Short> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N as u64)?);
        Ok(out)
    }

    pub fn u16(&mut self) -> Result<u16, Short> {
        self.array().map(u16::from_le_bytes)
    }

    pub fn u32(&mut self) -> Result<u32, Short> {
        self.array().map(u32::from_le_bytes)
    }

    pub fn i32(&mut self) -> Result<i32, Short> {
        self.array().map(i32::from_le_bytes)
    }

    pub fn u64(&mut self) -> Result<u64, Short> {
        self.array().map(u64::from_le_bytes)
    }

    /// A line without its `\n`, as CPython's unpickler reads one: a line must end in `\n`.
    pub fn line(&mut self) -> Result<&'a [u8], Short> {
        let rest = self.rest();
        match rest.iter().position(|&b| b == b'\n') {
            Some(end) => {
                self.pos += end + 1;
                Ok(&rest[..end])
            }
            // The newline is what is missing.
            None => Err(Short {
                needed: rest.len() as u64 + 1,
                left: rest.len() as u64,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_bounded() {
        let mut r = Reader::new(b"\x01\x02\x03abc\nrest", 0);
        assert_eq!(r.u16().unwrap(), 0x0201);
        assert_eq!(r.u8().unwrap(), 3);
        assert_eq!(r.line().unwrap(), b"abc");
        assert!(r.take(u64::MAX).is_err());
        assert!(r.take(5).is_err());
        assert_eq!(r.take(4).unwrap(), b"rest");
        assert!(r.at_end());
        assert!(r.line().is_err());
        assert!(r.u64().is_err());
    }
}
