//! The unpickler's unsafe CPython calls, each wrapped in a safe function: borrowing the data of
//! an input `bytes` object without copying it, decoding text straight from input bytes, and
//! filling a fresh `bytes` object in place (CPython's own trick for large BINBYTES).

use std::ffi::CStr;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// The data of a `bytes` object, kept alive by holding the object (or no data at all). `bytes`
/// is immutable, so the slice stays valid and unchanged for as long as this value lives.
pub struct BytesView {
    /// Keeps the data alive; never read.
    _owner: Option<Py<PyBytes>>,
    data: *const u8,
    len: usize,
}

// SAFETY: the pointer is into the immutable buffer of `_owner` (or a static empty slice), which
// this value keeps alive; reading immutable bytes is sound from any thread, and `Py` is `Send`.
unsafe impl Send for BytesView {}
// SAFETY: as for `Send`: shared access only ever reads immutable memory.
unsafe impl Sync for BytesView {}

impl Default for BytesView {
    /// No data.
    fn default() -> Self {
        let empty: &'static [u8] = &[];
        BytesView {
            _owner: None,
            data: empty.as_ptr(),
            len: 0,
        }
    }
}

impl BytesView {
    /// Borrows the buffer of `bytes`.
    pub fn new(bytes: Bound<'_, PyBytes>) -> BytesView {
        let slice = bytes.as_bytes();
        let (data, len) = (slice.as_ptr(), slice.len());
        BytesView {
            _owner: Some(bytes.unbind()),
            data,
            len,
        }
    }

    /// The bytes.
    #[inline(always)]
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY:
        // - `data`/`len` were taken from `_owner`'s buffer, which `_owner` keeps alive, or
        //   from a static empty slice.
        // - A `bytes` object's buffer never changes after creation (this is not one we fill).
        unsafe { std::slice::from_raw_parts(self.data, self.len) }
    }
}

/// Turns a new reference or null (with an exception set) into a result.
fn owned<'py>(py: Python<'py>, ptr: *mut ffi::PyObject) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: every caller passes the return value of a CPython function that returns a new
    // reference, or null with an exception set, which is what `from_owned_ptr_or_err` expects.
    unsafe { Bound::from_owned_ptr_or_err(py, ptr) }
}

fn len_of(data: &[u8]) -> ffi::Py_ssize_t {
    // Slices never exceed isize::MAX bytes.
    data.len() as ffi::Py_ssize_t
}

/// `data` decoded as UTF-8 with the `surrogatepass` error handler, as BINUNICODE requires.
#[inline]
pub fn utf8_surrogatepass<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY:
    // - The GIL is held (`py`); `data` is valid for `len` bytes for the whole call.
    // - The error handler name is a static NUL-terminated string.
    owned(py, unsafe {
        ffi::PyUnicode_DecodeUTF8(
            data.as_ptr().cast(),
            len_of(data),
            c"surrogatepass".as_ptr(),
        )
    })
}

/// `data` decoded as strict UTF-8 (GLOBAL's module and name lines).
pub fn utf8_strict<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: the GIL is held; `data` is valid for its length; a null handler means strict.
    owned(py, unsafe {
        ffi::PyUnicode_DecodeUTF8(data.as_ptr().cast(), len_of(data), std::ptr::null())
    })
}

/// `data` decoded as strict ASCII (INST's names and protocol 0 persistent ids).
pub fn ascii<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: the GIL is held; `data` is valid for its length; `strict` is a static C string.
    owned(py, unsafe {
        ffi::PyUnicode_DecodeASCII(data.as_ptr().cast(), len_of(data), c"strict".as_ptr())
    })
}

/// `data` decoded with the `raw-unicode-escape` codec (UNICODE).
pub fn raw_unicode_escape<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: the GIL is held; `data` is valid for its length; a null handler means strict.
    owned(py, unsafe {
        ffi::PyUnicode_DecodeRawUnicodeEscape(data.as_ptr().cast(), len_of(data), std::ptr::null())
    })
}

/// `data` decoded with a codec and error handler chosen by the caller (Python 2 `str`s).
pub fn decode<'py>(
    py: Python<'py>,
    data: &[u8],
    encoding: &CStr,
    errors: &CStr,
) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: the GIL is held; `data` is valid for its length; both names are NUL-terminated
    // strings that outlive the call.
    owned(py, unsafe {
        ffi::PyUnicode_Decode(
            data.as_ptr().cast(),
            len_of(data),
            encoding.as_ptr(),
            errors.as_ptr(),
        )
    })
}

/// Interns a `str` key the way CPython's BUILD does for instance dictionaries.
pub fn intern(key: Bound<'_, PyAny>) -> Bound<'_, PyAny> {
    let py = key.py();
    let mut ptr = key.into_ptr();
    // SAFETY:
    // - The GIL is held; `ptr` is an owned reference to an exact `str` (the caller checks).
    // - PyUnicode_InternInPlace replaces the reference it is given with an owned reference to
    //   the interned string, releasing the original when they differ.
    unsafe {
        ffi::PyUnicode_InternInPlace(&mut ptr);
        Bound::from_owned_ptr(py, ptr)
    }
}

/// A `bytes` object of `len` bytes being filled in, exactly once, before anyone else sees it.
pub struct FreshBytes<'py> {
    object: Bound<'py, PyAny>,
    data: *mut u8,
    len: usize,
}

impl<'py> FreshBytes<'py> {
    /// A new, not yet filled, `bytes` object.
    pub fn new(py: Python<'py>, len: usize) -> PyResult<FreshBytes<'py>> {
        let size = ffi::Py_ssize_t::try_from(len)
            .map_err(|_| pyo3::exceptions::PyOverflowError::new_err("byte count too large"))?;
        // SAFETY: the GIL is held; a null source asks CPython for an uninitialised buffer.
        let object = owned(py, unsafe {
            ffi::PyBytes_FromStringAndSize(std::ptr::null(), size)
        })?;
        // SAFETY: `object` is the `bytes` just created; its buffer holds `len` bytes.
        let data = unsafe { ffi::PyBytes_AsString(object.as_ptr()) }.cast::<u8>();
        Ok(FreshBytes { object, data, len })
    }

    /// Copies `chunk` in at `offset`. Panics (a bug) if it does not fit.
    pub fn write_at(&mut self, offset: usize, chunk: &[u8]) {
        assert!(offset <= self.len && chunk.len() <= self.len - offset);
        // SAFETY:
        // - The destination range lies inside the object's buffer (checked above).
        // - The object is new and unshared, so nothing reads it while it is written, and
        //   `chunk` (input data) cannot overlap it.
        unsafe {
            std::ptr::copy_nonoverlapping(chunk.as_ptr(), self.data.add(offset), chunk.len())
        };
    }

    /// A writable `memoryview` of the bytes from `offset` on, for a file's `readinto`.
    pub fn view_from(&self, offset: usize) -> PyResult<Bound<'py, PyAny>> {
        assert!(offset <= self.len);
        let py = self.object.py();
        // SAFETY:
        // - The range `[offset, len)` lies inside the object's buffer, which `self.object`
        //   keeps alive for the whole read (the view is dropped by the caller right after).
        // - PyBUF_WRITE (0x200) asks for a writable view, as `readinto` needs.
        owned(py, unsafe {
            ffi::PyMemoryView_FromMemory(
                self.data.add(offset).cast(),
                (self.len - offset) as ffi::Py_ssize_t,
                0x200,
            )
        })
    }

    /// The filled object.
    pub fn finish(self) -> Bound<'py, PyAny> {
        self.object
    }
}

/// Appends `items` to the end of `list` in one slice assignment, as `_pickle` does for
/// APPENDS: the items move into a new list (no reference count changes) that is then spliced
/// in, instead of one `append` call per item.
pub fn extend_list<'py>(
    list: &Bound<'py, pyo3::types::PyList>,
    items: impl ExactSizeIterator<Item = Bound<'py, PyAny>>,
) -> PyResult<()> {
    let py = list.py();
    let count = items.len();
    // SAFETY: the GIL is held; PyList_New returns a new reference or null with an exception.
    let slice = owned(py, unsafe { ffi::PyList_New(count as ffi::Py_ssize_t) })?;
    for (index, item) in items.enumerate().take(count) {
        // SAFETY:
        // - `slice` is a new list of `count` empty slots and `index < count`.
        // - PyList_SetItem steals the owned reference `into_ptr` hands over.
        unsafe { ffi::PyList_SetItem(slice.as_ptr(), index as ffi::Py_ssize_t, item.into_ptr()) };
    }
    let end = list.len() as ffi::Py_ssize_t;
    // SAFETY: the GIL is held; both are live lists; every slot of `slice` was filled above
    // (an ExactSizeIterator yields exactly `count` items).
    let status = unsafe { ffi::PyList_SetSlice(list.as_ptr(), end, end, slice.as_ptr()) };
    if status < 0 {
        return Err(PyErr::fetch(py));
    }
    Ok(())
}

/// A new tuple of `items`, moved in (no reference count changes).
#[inline]
pub fn tuple_from<'py>(
    py: Python<'py>,
    items: impl ExactSizeIterator<Item = Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, pyo3::types::PyTuple>> {
    let count = items.len();
    // SAFETY: the GIL is held; PyTuple_New returns a new reference or null with an exception.
    let tuple = owned(py, unsafe { ffi::PyTuple_New(count as ffi::Py_ssize_t) })?;
    for (index, item) in items.enumerate().take(count) {
        // SAFETY:
        // - `tuple` is new, unshared, with `count` empty slots, and `index < count`.
        // - PyTuple_SetItem steals the owned reference `into_ptr` hands over.
        unsafe { ffi::PyTuple_SetItem(tuple.as_ptr(), index as ffi::Py_ssize_t, item.into_ptr()) };
    }
    // SAFETY: `tuple` was created by PyTuple_New just above.
    Ok(unsafe { tuple.cast_into_unchecked() })
}
