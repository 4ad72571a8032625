//! The unpickler's input: a `bytes`-like object read in place, or a file read the way
//! `_pickle` reads it, so that after `load()` the file is positioned exactly where CPython's
//! would leave it (several pickles in a row, as torch's legacy format writes them, load).
//!
//! Like `_pickle`, it keeps one buffer: the data itself for `loads`, or the last chunk a file
//! gave. A file with `peek` is read ahead by up to [`PREFETCH`] bytes without advancing it,
//! and the bytes the machine consumed are `read` (skipped) before the file is used again and
//! at STOP. A file without `peek` is asked for exactly what each opcode needs (a FRAME reads
//! the whole frame at once), so it never moves past the end of the pickle.

use pyo3::exceptions::{PyAttributeError, PyNotImplementedError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes};

use super::errors;
use super::raw::{BytesView, FreshBytes};

/// How much a file with `peek` is asked for at once (`_pickle`'s PREFETCH).
pub const PREFETCH: usize = 8192 * 16;

/// A file's methods, looked up once when the unpickler is created.
pub struct FileMethods {
    read: Py<PyAny>,
    readline: Py<PyAny>,
    readinto: Option<Py<PyAny>>,
    peek: Option<Py<PyAny>>,
}

impl FileMethods {
    /// Looks up `peek`, `readinto`, `read` and `readline`, in `_pickle`'s order.
    pub fn of(file: &Bound<'_, PyAny>) -> PyResult<FileMethods> {
        let peek = optional_attr(file, "peek")?;
        let readinto = optional_attr(file, "readinto")?;
        let read = optional_attr(file, "read")?;
        let readline = optional_attr(file, "readline")?;
        match (read, readline) {
            (Some(read), Some(readline)) => Ok(FileMethods {
                read,
                readline,
                readinto,
                peek,
            }),
            _ => Err(PyTypeError::new_err(
                "file must have 'read' and 'readline' attributes",
            )),
        }
    }

    /// For the garbage collector.
    pub fn objects(&self) -> impl Iterator<Item = &Py<PyAny>> {
        [Some(&self.read), Some(&self.readline)]
            .into_iter()
            .chain([self.readinto.as_ref(), self.peek.as_ref()])
            .flatten()
    }
}

fn optional_attr(object: &Bound<'_, PyAny>, name: &str) -> PyResult<Option<Py<PyAny>>> {
    match object.getattr(name) {
        Ok(value) => Ok(Some(value.unbind())),
        Err(err) if err.is_instance_of::<PyAttributeError>(object.py()) => Ok(None),
        Err(err) => Err(err),
    }
}

/// The input of one unpickler.
#[derive(Default)]
pub struct Input {
    buffer: BytesView,
    /// The next byte to read in `buffer`.
    pos: usize,
    /// Where the bytes that the file has not yet been advanced over start (`peek` only).
    prefetched: usize,
    file: Option<FileMethods>,
}

impl Input {
    /// Reads `data`, a `bytes`-like object, in place (others are copied once).
    pub fn from_data(data: &Bound<'_, PyAny>) -> PyResult<Input> {
        let mut input = Input::default();
        if data.is_instance_of::<pyo3::types::PyString>() {
            return Err(PyTypeError::new_err(format!(
                "a bytes-like object is required, not '{}'",
                data.get_type().name()?
            )));
        }
        input.set_buffer(data)?;
        Ok(input)
    }

    /// Reads `file` through its methods.
    pub fn from_file(file: FileMethods) -> Input {
        Input {
            file: Some(file),
            ..Input::default()
        }
    }

    /// The file's methods, for the garbage collector.
    pub fn file(&self) -> Option<&FileMethods> {
        self.file.as_ref()
    }

    #[inline(always)]
    fn data(&self) -> &[u8] {
        self.buffer.as_slice()
    }

    /// Makes `data` the buffer; returns its length.
    fn set_buffer(&mut self, data: &Bound<'_, PyAny>) -> PyResult<usize> {
        let bytes = match data.cast::<PyBytes>() {
            Ok(bytes) => bytes.clone(),
            Err(_) => {
                let view = data.py().import("builtins")?.getattr("memoryview")?;
                view.call1((data,))?
                    .call_method0("tobytes")?
                    .cast_into::<PyBytes>()?
            }
        };
        let view = BytesView::new(bytes);
        let len = view.as_slice().len();
        self.buffer = view;
        self.pos = 0;
        self.prefetched = len;
        Ok(len)
    }

    /// The next opcode byte, or `Ok(None)` at the end of the input.
    #[inline(always)]
    pub fn opcode(&mut self, py: Python<'_>) -> PyResult<Option<u8>> {
        if let Some(&byte) = self.data().get(self.pos) {
            self.pos += 1;
            return Ok(Some(byte));
        }
        if self.file.is_none() {
            return Ok(None);
        }
        match self.read_slow(py, 1) {
            Ok(bytes) => Ok(Some(bytes[0])),
            Err(err) if is_unpickling_error(py, &err) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// The next `n` bytes.
    #[inline(always)]
    pub fn read(&mut self, py: Python<'_>, n: usize) -> PyResult<&[u8]> {
        let start = self.pos;
        if n <= self.data().len() - start {
            self.pos = start + n;
            return Ok(&self.data()[start..start + n]);
        }
        self.read_slow(py, n)
    }

    /// The next `N` bytes as an array.
    #[inline(always)]
    pub fn array<const N: usize>(&mut self, py: Python<'_>) -> PyResult<[u8; N]> {
        let bytes = self.read(py, N)?;
        let mut array = [0u8; N];
        array.copy_from_slice(bytes);
        Ok(array)
    }

    #[inline(never)]
    fn read_slow(&mut self, py: Python<'_>, n: usize) -> PyResult<&[u8]> {
        if self.file.is_none() {
            return Err(errors::truncated(py));
        }
        if self.read_from_file(py, Some(n))? < n {
            return Err(errors::truncated(py));
        }
        self.pos = n;
        Ok(&self.data()[..n])
    }

    /// Refills the buffer from the file: `n` bytes, or a whole line for `None`. Returns how
    /// many bytes are available from the start of the new buffer.
    fn read_from_file(&mut self, py: Python<'_>, n: Option<usize>) -> PyResult<usize> {
        self.skip_consumed(py)?;
        let Some(file) = &self.file else {
            return Err(errors::truncated(py));
        };
        let data = match n {
            None => file.readline.bind(py).call0()?,
            Some(n) => {
                if let (Some(peek), true) = (&file.peek, n < PREFETCH) {
                    match peek.bind(py).call1((PREFETCH,)) {
                        Ok(data) => {
                            let len = self.set_buffer(&data)?;
                            self.prefetched = 0;
                            if n <= len {
                                return Ok(n);
                            }
                        }
                        Err(err) if err.is_instance_of::<PyNotImplementedError>(py) => {
                            if let Some(file) = &mut self.file {
                                file.peek = None;
                            }
                        }
                        Err(err) => return Err(err),
                    }
                }
                let Some(file) = &self.file else {
                    return Err(errors::truncated(py));
                };
                file.read.bind(py).call1((n,))?
            }
        };
        self.set_buffer(&data)
    }

    /// Advances a peeked file over the bytes consumed from its buffer.
    fn skip_consumed(&mut self, py: Python<'_>) -> PyResult<()> {
        if self.pos <= self.prefetched {
            return Ok(());
        }
        let consumed = self.pos - self.prefetched;
        if let Some(file) = &self.file {
            file.read.bind(py).call1((consumed,))?;
        }
        self.prefetched = self.pos;
        Ok(())
    }

    /// The next line, with its `\n`.
    pub fn readline(&mut self, py: Python<'_>) -> PyResult<&[u8]> {
        let start = self.pos;
        if let Some(end) = self.data()[start..].iter().position(|&b| b == b'\n') {
            self.pos = start + end + 1;
            return Ok(&self.data()[start..self.pos]);
        }
        if self.file.is_none() {
            return Err(errors::truncated(py));
        }
        let n = self.read_from_file(py, None)?;
        if n == 0 || self.data()[n - 1] != b'\n' {
            return Err(errors::truncated(py));
        }
        self.pos = n;
        Ok(&self.data()[..n])
    }

    /// Makes the next `n` bytes current as a FRAME: read now, consumed by the opcodes after.
    pub fn frame(&mut self, py: Python<'_>, n: usize) -> PyResult<()> {
        self.read(py, n)?;
        self.pos -= n;
        Ok(())
    }

    /// The next `n` bytes as a new `bytes` object (a file fills it in place with `readinto`).
    pub fn read_bytes<'py>(&mut self, py: Python<'py>, n: usize) -> PyResult<Bound<'py, PyAny>> {
        let start = self.pos;
        let available = self.data().len() - start;
        if n <= available {
            self.pos = start + n;
            return Ok(PyBytes::new(py, &self.data()[start..start + n]).into_any());
        }
        if self.file.is_none() {
            // In memory, the data is simply too short: no need to allocate `n` bytes first.
            return Err(errors::truncated(py));
        }
        let mut fresh = FreshBytes::new(py, n)?;
        fresh.write_at(0, &self.data()[start..]);
        self.pos = start + available;
        self.skip_consumed(py)?;
        let rest = n - available;
        let Some(file) = &self.file else {
            return Err(errors::truncated(py));
        };
        if let Some(readinto) = &file.readinto {
            let view = fresh.view_from(available)?;
            let got = readinto.bind(py).call1((view,))?;
            let got: isize = got.extract()?;
            if got < 0 {
                return Err(PyValueError::new_err("readinto() returned negative size"));
            }
            if (got as usize) < rest {
                return Err(errors::truncated(py));
            }
        } else {
            let data = file.read.bind(py).call1((rest,))?;
            let Ok(bytes) = data.cast::<PyBytes>() else {
                return Err(PyValueError::new_err(format!(
                    "read() returned non-bytes object ({})",
                    data.get_type().name()?
                )));
            };
            let bytes = bytes.as_bytes();
            if bytes.len() < rest {
                return Err(errors::truncated(py));
            }
            fresh.write_at(available, &bytes[..rest]);
        }
        Ok(fresh.finish())
    }

    /// The next `n` bytes as a new `bytearray`.
    pub fn read_bytearray<'py>(
        &mut self,
        py: Python<'py>,
        n: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        let bytes = self.read_bytes(py, n)?;
        let bytes = bytes.cast::<PyBytes>()?;
        Ok(PyByteArray::new(py, bytes.as_bytes()).into_any())
    }

    /// At STOP: advances a peeked file to just after the pickle.
    pub fn finish(&mut self, py: Python<'_>) -> PyResult<()> {
        self.skip_consumed(py)
    }
}

fn is_unpickling_error(py: Python<'_>, err: &PyErr) -> bool {
    errors::unpickling_error_type(py).is_ok_and(|class| err.is_instance(py, class))
}
