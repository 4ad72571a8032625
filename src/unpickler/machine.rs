//! The machine: runs one pickle's opcodes with real objects, as `_pickle.c`'s `load` does.
//!
//! The stack is one vector with the marks kept apart as indices into it, and `fence` is the
//! index of the last mark: no opcode takes items from below it ("unexpected MARK found").
//! Nothing recurses on the input: nesting lives in `stack` and `marks`, so a deeply nested
//! pickle cannot overflow the C stack.

use std::ffi::CString;

use pyo3::exceptions::{PyOverflowError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyBytes, PyDict, PyFloat, PyFrozenSet, PyList, PySet, PyString, PyTuple, PyType,
};

use super::class::Unpickler;
use super::errors::{self, unpickling};
use super::input::Input;
use super::memo::Memo;
use super::opcodes::*;
use super::provenance::{Provenance, Step};
use super::{globals, raw};

/// The options of one load.
pub struct Options {
    /// Map Python 2 names for protocols 0-2.
    pub fix_imports: bool,
    /// How Python 2 `str`s decode (`bytes` keeps them as `bytes`).
    pub encoding: CString,
    /// The error handler for that decoding.
    pub errors: CString,
    /// The `encoding` is `bytes`.
    pub strings_as_bytes: bool,
    /// An iterator over out-of-band buffers.
    pub buffers: Option<Py<PyAny>>,
}

impl Options {
    /// Checks and stores the keyword arguments shared by `Unpickler`, `load` and `loads`.
    pub fn new(
        fix_imports: bool,
        encoding: &str,
        errors: &str,
        buffers: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Options> {
        let text =
            |value: &str| CString::new(value).map_err(|_| errors::value("embedded null character"));
        let buffers = match buffers {
            Some(buffers) if !buffers.is_none() => Some(buffers.try_iter()?.into_any().unbind()),
            _ => None,
        };
        Ok(Options {
            fix_imports,
            encoding: text(encoding)?,
            errors: text(errors)?,
            strings_as_bytes: encoding == "bytes",
            buffers,
        })
    }
}

/// The object that runs the load, when there is one: its methods may be overridden.
pub struct Owner<'a, 'py> {
    /// The `Unpickler` (or subclass instance).
    pub object: &'a Bound<'py, Unpickler>,
    /// Its class overrides `find_class`.
    pub custom_find_class: bool,
}

/// One pickle being run.
pub struct Machine<'a, 'py> {
    py: Python<'py>,
    input: &'a mut Input,
    memo: &'a mut Memo,
    options: &'a Options,
    owner: Option<Owner<'a, 'py>>,
    stack: Vec<Bound<'py, PyAny>>,
    marks: Vec<usize>,
    fence: usize,
    proto: u8,
    persistent_load: Option<Bound<'py, PyAny>>,
    provenance: Provenance<'py>,
}

impl<'a, 'py> Machine<'a, 'py> {
    /// A machine reading `input`, storing into `memo`.
    pub fn new(
        py: Python<'py>,
        input: &'a mut Input,
        memo: &'a mut Memo,
        options: &'a Options,
        owner: Option<Owner<'a, 'py>>,
    ) -> Self {
        Machine {
            py,
            input,
            memo,
            options,
            owner,
            stack: Vec::with_capacity(16),
            marks: Vec::new(),
            fence: 0,
            proto: 0,
            persistent_load: None,
            provenance: Provenance::new(py),
        }
    }

    #[inline(always)]
    fn push(&mut self, object: Bound<'py, PyAny>) {
        self.stack.push(object);
    }

    #[inline(always)]
    fn pop(&mut self) -> PyResult<Bound<'py, PyAny>> {
        if self.stack.len() <= self.fence {
            return Err(self.underflow());
        }
        match self.stack.pop() {
            Some(object) => Ok(object),
            None => Err(self.underflow()),
        }
    }

    #[inline(always)]
    fn top(&self) -> PyResult<&Bound<'py, PyAny>> {
        if self.stack.len() <= self.fence {
            return Err(self.underflow());
        }
        self.stack.last().ok_or_else(|| self.underflow())
    }

    #[cold]
    fn underflow(&self) -> PyErr {
        errors::underflow(self.py, !self.marks.is_empty())
    }

    /// Pops the last mark; returns where it was.
    #[inline(always)]
    fn pop_mark(&mut self) -> PyResult<usize> {
        let Some(mark) = self.marks.pop() else {
            return Err(unpickling(self.py, "could not find MARK"));
        };
        self.fence = self.marks.last().copied().unwrap_or(0);
        Ok(mark)
    }

    /// The items from `start` on, as a tuple.
    #[inline(always)]
    fn pop_tuple(&mut self, start: usize) -> PyResult<Bound<'py, PyTuple>> {
        if start < self.fence || start > self.stack.len() {
            return Err(self.underflow());
        }
        raw::tuple_from(self.py, self.stack.drain(start..))
    }

    /// Runs to STOP and returns the object on top of the stack.
    pub fn run(&mut self) -> PyResult<Bound<'py, PyAny>> {
        let py = self.py;
        loop {
            let Some(opcode) = self.input.opcode(py)? else {
                return Err(errors::ran_out());
            };
            match opcode {
                // The opcodes of typical data first.
                BININT1 => {
                    let [byte] = self.input.array::<1>(py)?;
                    self.push_int(i64::from(byte));
                }
                BININT2 => {
                    let bytes = self.input.array::<2>(py)?;
                    self.push_int(i64::from(u16::from_le_bytes(bytes)));
                }
                BININT => {
                    let bytes = self.input.array::<4>(py)?;
                    self.push_int(i64::from(i32::from_le_bytes(bytes)));
                }
                BINFLOAT => {
                    let bytes = self.input.array::<8>(py)?;
                    self.push(PyFloat::new(py, f64::from_be_bytes(bytes)).into_any());
                }
                SHORT_BINUNICODE => {
                    let [n] = self.input.array::<1>(py)?;
                    self.unicode(usize::from(n))?;
                }
                BINUNICODE => {
                    let n = u32::from_le_bytes(self.input.array::<4>(py)?);
                    self.unicode(n as usize)?;
                }
                BINUNICODE8 => {
                    let n = self.size8()?;
                    self.unicode(n)?;
                }
                MEMOIZE => {
                    let object = self.top()?.clone().unbind();
                    self.memo.put(self.memo.len(), object);
                }
                BINPUT => {
                    let [index] = self.input.array::<1>(py)?;
                    self.put(usize::from(index))?;
                }
                LONG_BINPUT => {
                    let index = u32::from_le_bytes(self.input.array::<4>(py)?);
                    self.put(index as usize)?;
                }
                BINGET => {
                    let [index] = self.input.array::<1>(py)?;
                    self.get(usize::from(index))?;
                }
                LONG_BINGET => {
                    let index = u32::from_le_bytes(self.input.array::<4>(py)?);
                    self.get(index as usize)?;
                }
                MARK => {
                    self.fence = self.stack.len();
                    self.marks.push(self.fence);
                }
                EMPTY_LIST => self.push(PyList::empty(py).into_any()),
                EMPTY_DICT => self.push(PyDict::new(py).into_any()),
                EMPTY_TUPLE => self.push(PyTuple::empty(py).into_any()),
                EMPTY_SET => self.push(PySet::empty(py)?.into_any()),
                APPEND => {
                    let len = self.stack.len();
                    if len < 1 || len - 1 <= self.fence {
                        return Err(self.underflow());
                    }
                    self.append_from(len - 1)?;
                }
                APPENDS => {
                    let mark = self.pop_mark()?;
                    self.append_from(mark)?;
                }
                SETITEM => {
                    let len = self.stack.len();
                    if len < 2 {
                        return Err(self.underflow());
                    }
                    self.set_items_from(len - 2)?;
                }
                SETITEMS => {
                    let mark = self.pop_mark()?;
                    self.set_items_from(mark)?;
                }
                ADDITEMS => {
                    let mark = self.pop_mark()?;
                    self.add_items_from(mark)?;
                }
                TUPLE1 | TUPLE2 | TUPLE3 => {
                    let n = usize::from(opcode - TUPLE1 + 1);
                    if self.stack.len() < n {
                        return Err(self.underflow());
                    }
                    let tuple = self.pop_tuple(self.stack.len() - n)?;
                    self.push(tuple.into_any());
                }
                TUPLE => {
                    let mark = self.pop_mark()?;
                    let tuple = self.pop_tuple(mark)?;
                    self.push(tuple.into_any());
                }
                LIST => {
                    let mark = self.pop_mark()?;
                    let items = self.pop_tuple(mark)?;
                    let list = PyList::new(py, items.iter())?;
                    self.push(list.into_any());
                }
                DICT => {
                    let mark = self.pop_mark()?;
                    self.dict_from(mark)?;
                }
                FROZENSET => {
                    let mark = self.pop_mark()?;
                    let items = self.pop_tuple(mark)?;
                    self.push(PyFrozenSet::new(py, items.iter())?.into_any());
                }
                NONE => self.push(py.None().into_bound(py)),
                NEWTRUE => self.push(PyBool::new(py, true).to_owned().into_any()),
                NEWFALSE => self.push(PyBool::new(py, false).to_owned().into_any()),
                SHORT_BINBYTES => {
                    let [n] = self.input.array::<1>(py)?;
                    let bytes = self.input.read_bytes(py, usize::from(n))?;
                    self.push(bytes);
                }
                BINBYTES => {
                    let n = u32::from_le_bytes(self.input.array::<4>(py)?);
                    let bytes = self.input.read_bytes(py, n as usize)?;
                    self.push(bytes);
                }
                BINBYTES8 => {
                    let n = self.size8()?;
                    let bytes = self.input.read_bytes(py, n)?;
                    self.push(bytes);
                }
                BYTEARRAY8 => {
                    let n = self.size8()?;
                    let bytes = self.input.read_bytearray(py, n)?;
                    self.push(bytes);
                }
                SHORT_BINSTRING => {
                    let [n] = self.input.array::<1>(py)?;
                    self.python2_string(usize::from(n))?;
                }
                BINSTRING => {
                    let n = i32::from_le_bytes(self.input.array::<4>(py)?);
                    let Ok(n) = usize::try_from(n) else {
                        return Err(unpickling(py, "BINSTRING pickle has negative byte count"));
                    };
                    self.python2_string(n)?;
                }
                LONG1 => {
                    let [n] = self.input.array::<1>(py)?;
                    self.long(usize::from(n))?;
                }
                LONG4 => {
                    let n = i32::from_le_bytes(self.input.array::<4>(py)?);
                    let Ok(n) = usize::try_from(n) else {
                        return Err(unpickling(py, "LONG pickle has negative byte count"));
                    };
                    self.long(n)?;
                }
                STACK_GLOBAL => {
                    let name = self.pop();
                    let module = self.pop();
                    let (Ok(module), Ok(name)) = (module, name) else {
                        return Err(unpickling(py, "STACK_GLOBAL requires str"));
                    };
                    if !module.is_exact_instance_of::<PyString>()
                        || !name.is_exact_instance_of::<PyString>()
                    {
                        return Err(unpickling(py, "STACK_GLOBAL requires str"));
                    }
                    let object = self.find_class(&module, &name)?;
                    self.push(object);
                }
                GLOBAL => {
                    let module = self.name_line(raw::utf8_strict)?;
                    let name = self.name_line(raw::utf8_strict)?;
                    let object = self.find_class(&module, &name)?;
                    self.push(object);
                }
                REDUCE => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let Ok(args) = args.cast_into::<PyTuple>() else {
                        return Err(PyTypeError::new_err("argument list must be a tuple"));
                    };
                    self.provenance.before(Step::apply(
                        &callable,
                        &args,
                        None,
                        super::Apply::Reduce,
                    ))?;
                    let object = callable.call1(&args)?;
                    self.provenance.after(&object);
                    self.push(object);
                }
                NEWOBJ => self.new_object(false)?,
                NEWOBJ_EX => self.new_object(true)?,
                BUILD => self.build()?,
                PROTO => {
                    let [proto] = self.input.array::<1>(py)?;
                    if proto > HIGHEST_PROTOCOL {
                        return Err(errors::value(format!(
                            "unsupported pickle protocol: {proto}"
                        )));
                    }
                    self.proto = proto;
                    if let Some(owner) = &self.owner {
                        // Only for `find_class`'s Python 2 mapping; a borrow held elsewhere
                        // (never during the machine's own calls) leaves the previous value.
                        if let Ok(mut owner) = owner.object.try_borrow_mut() {
                            owner.set_proto(proto);
                        }
                    }
                }
                FRAME => {
                    let n = self.size8_named("FRAME length")?;
                    self.input.frame(py, n)?;
                }
                STOP => {
                    self.input.finish(py)?;
                    return self.pop();
                }
                POP => {
                    let len = self.stack.len();
                    if self.marks.last() == Some(&len) {
                        self.pop_mark()?;
                    } else if len <= self.fence {
                        return Err(self.underflow());
                    } else {
                        self.stack.pop();
                    }
                }
                POP_MARK => {
                    let mark = self.pop_mark()?;
                    self.stack.truncate(mark);
                }
                DUP => {
                    let top = self.top()?.clone();
                    self.push(top);
                }
                INT => self.text_int()?,
                LONG => self.text_long()?,
                FLOAT => self.text_float()?,
                STRING => self.text_string()?,
                UNICODE => {
                    let text = self.line_text(raw::raw_unicode_escape)?;
                    self.push(text);
                }
                GET => {
                    let index = self.line_index(false)?;
                    self.get_signed(index)?;
                }
                PUT => {
                    let index = self.line_index(true)?;
                    let Ok(index) = usize::try_from(index) else {
                        return Err(errors::value("negative PUT argument"));
                    };
                    self.put(index)?;
                }
                PERSID => {
                    let line = self.input.readline(py)?;
                    let pid = match raw::ascii(py, &line[..line.len() - 1]) {
                        Ok(pid) => pid,
                        Err(err)
                            if err.is_instance_of::<pyo3::exceptions::PyUnicodeDecodeError>(py) =>
                        {
                            return Err(unpickling(
                                py,
                                "persistent IDs in protocol 0 must be ASCII strings",
                            ))
                        }
                        Err(err) => return Err(err),
                    };
                    let object = self.persistent_load(pid)?;
                    self.push(object);
                }
                BINPERSID => {
                    let pid = self.pop()?;
                    let object = self.persistent_load(pid)?;
                    self.push(object);
                }
                INST => self.inst()?,
                OBJ => self.obj()?,
                EXT1 => {
                    let [code] = self.input.array::<1>(py)?;
                    self.extension(i64::from(code))?;
                }
                EXT2 => {
                    let code = u16::from_le_bytes(self.input.array::<2>(py)?);
                    self.extension(i64::from(code))?;
                }
                EXT4 => {
                    let code = i32::from_le_bytes(self.input.array::<4>(py)?);
                    self.extension(i64::from(code))?;
                }
                NEXT_BUFFER => {
                    let Some(buffers) = &self.options.buffers else {
                        return Err(unpickling(
                            py,
                            "pickle stream refers to out-of-band data but no *buffers* argument was given",
                        ));
                    };
                    let buffers = buffers.bind(py).clone();
                    match buffers.cast::<pyo3::types::PyIterator>()?.clone().next() {
                        Some(buffer) => self.push(buffer?),
                        None => return Err(unpickling(py, "not enough out-of-band buffers")),
                    }
                }
                READONLY_BUFFER => {
                    let object = self.top()?.clone();
                    let view = py
                        .import("builtins")?
                        .getattr("memoryview")?
                        .call1((&object,))?;
                    if !view.getattr("readonly")?.is_truthy()? {
                        let readonly = view.call_method0("toreadonly")?;
                        if let Some(slot) = self.stack.last_mut() {
                            *slot = readonly;
                        }
                    }
                }
                other => return Err(errors::bad_opcode(py, other)),
            }
        }
    }

    #[inline(always)]
    fn push_int(&mut self, value: i64) {
        let object = value.into_pyobject(self.py).map(Bound::into_any);
        // Creating a small int cannot fail short of memory exhaustion, which CPython reports
        // itself; keep the machine going with the error surfaced on the next opcode instead.
        match object {
            Ok(object) => self.push(object),
            Err(never) => match never {},
        }
    }

    /// An 8-byte size, which must fit in memory.
    fn size8(&mut self) -> PyResult<usize> {
        self.size8_named("byte count")
    }

    fn size8_named(&mut self, what: &str) -> PyResult<usize> {
        let n = u64::from_le_bytes(self.input.array::<8>(self.py)?);
        match usize::try_from(n) {
            Ok(n) if n <= isize::MAX as usize => Ok(n),
            _ => Err(PyOverflowError::new_err(format!(
                "{what} exceeds system's maximum of {} bytes",
                isize::MAX
            ))),
        }
    }

    fn unicode(&mut self, n: usize) -> PyResult<()> {
        let py = self.py;
        let data = self.input.read(py, n)?;
        let text = raw::utf8_surrogatepass(py, data)?;
        self.push(text);
        Ok(())
    }

    /// A Python 2 `str` of `n` bytes, decoded with the load's encoding.
    fn python2_string(&mut self, n: usize) -> PyResult<()> {
        let py = self.py;
        let object = if self.options.strings_as_bytes {
            self.input.read_bytes(py, n)?
        } else {
            let data = self.input.read(py, n)?;
            raw::decode(py, data, &self.options.encoding, &self.options.errors)?
        };
        self.push(object);
        Ok(())
    }

    fn long(&mut self, n: usize) -> PyResult<()> {
        let py = self.py;
        let data = self.input.read(py, n)?;
        let object = if n == 0 {
            0i64.into_pyobject(py)?.into_any()
        } else if n <= 8 {
            let mut bytes = if data[n - 1] & 0x80 != 0 {
                [0xffu8; 8]
            } else {
                [0u8; 8]
            };
            bytes[..n].copy_from_slice(data);
            i64::from_le_bytes(bytes).into_pyobject(py)?.into_any()
        } else {
            let bytes = PyBytes::new(py, data);
            let int = py.import("builtins")?.getattr("int")?;
            let kwargs = PyDict::new(py);
            kwargs.set_item("signed", true)?;
            int.call_method("from_bytes", (bytes, "little"), Some(&kwargs))?
        };
        self.push(object);
        Ok(())
    }

    /// The next line without its `\n`, decoded by `decode`.
    fn line_text(
        &mut self,
        decode: fn(Python<'py>, &[u8]) -> PyResult<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = self.py;
        let line = self.input.readline(py)?;
        decode(py, &line[..line.len() - 1])
    }

    /// The next line as text, for the protocol 0 number opcodes (at least one character).
    /// `_pickle` parses these as C strings, so the text ends at a NUL byte; a trailing `L`
    /// (LONG) is dropped first when `drop_l`. Like CPython's int parsing, text that is not
    /// UTF-8 raises UnicodeDecodeError when `strict`, and is read with replacement characters
    /// (to fail as a number) otherwise.
    fn number_line(&mut self, strict: bool, drop_l: bool) -> PyResult<String> {
        self.number_line_for(strict, drop_l, false)
    }

    /// [`Self::number_line`]; with `needs_top`, an empty stack (PUT) is reported before the
    /// text is parsed, as `_pickle` does.
    fn number_line_for(&mut self, strict: bool, drop_l: bool, needs_top: bool) -> PyResult<String> {
        let py = self.py;
        let line = self.input.readline(py)?;
        if line.len() < 2 {
            return Err(errors::truncated(py));
        }
        if needs_top && self.stack.len() <= self.fence {
            return Err(errors::underflow(py, !self.marks.is_empty()));
        }
        let mut body = &line[..line.len() - 1];
        if drop_l && body.last() == Some(&b'L') {
            body = &body[..body.len() - 1];
        }
        if let Some(nul) = body.iter().position(|&b| b == 0) {
            body = &body[..nul];
        }
        match std::str::from_utf8(body) {
            Ok(text) => Ok(text.to_string()),
            Err(_) if strict => Err(raw::utf8_strict(py, body)
                .err()
                .unwrap_or_else(|| errors::value("invalid number"))),
            Err(_) => Ok(String::from_utf8_lossy(body).into_owned()),
        }
    }

    /// A memo index written as decimal text (GET, and PUT with `needs_top`).
    fn line_index(&mut self, needs_top: bool) -> PyResult<i64> {
        let text = self.number_line_for(true, false, needs_top)?;
        match text.trim().parse::<i64>() {
            Ok(index) => Ok(index),
            Err(_) => python_int(self.py, &text, 10)?.extract::<i64>(),
        }
    }

    fn text_int(&mut self) -> PyResult<()> {
        let py = self.py;
        let text = self.number_line(false, false)?;
        let object = match text.as_str() {
            "00" => PyBool::new(py, false).to_owned().into_any(),
            "01" => PyBool::new(py, true).to_owned().into_any(),
            // `_pickle` parses with strtol, which reads an empty C string (a line that starts
            // with NUL) as 0.
            "" => 0i64.into_pyobject(py)?.into_any(),
            _ => match text.parse::<i64>() {
                Ok(value) => value.into_pyobject(py)?.into_any(),
                Err(_) => python_int(py, &text, 0)
                    .map_err(|_| errors::value("could not convert string to int"))?,
            },
        };
        self.push(object);
        Ok(())
    }

    fn text_long(&mut self) -> PyResult<()> {
        let text = self.number_line(true, true)?;
        let object = python_int(self.py, &text, 0)?;
        self.push(object);
        Ok(())
    }

    fn text_float(&mut self) -> PyResult<()> {
        let text = self.number_line(false, false)?;
        let value: f64 = text
            .parse()
            .map_err(|_| errors::value("could not convert string to float"))?;
        if value.is_infinite() && !text.to_ascii_lowercase().contains("inf") {
            return Err(PyOverflowError::new_err(format!(
                "value too large to convert to float: '{text}'"
            )));
        }
        self.push(PyFloat::new(self.py, value).into_any());
        Ok(())
    }

    /// STRING: a quoted, backslash-escaped Python 2 `str`.
    fn text_string(&mut self) -> PyResult<()> {
        let py = self.py;
        let line = self.input.readline(py)?;
        let body = &line[..line.len() - 1];
        let n = body.len();
        if n < 2 || body[0] != body[n - 1] || (body[0] != b'\'' && body[0] != b'"') {
            return Err(unpickling(py, "the STRING opcode argument must be quoted"));
        }
        let quoted = PyBytes::new(py, &body[1..n - 1]);
        let decoded = py
            .import("codecs")?
            .call_method1("escape_decode", (quoted,))?
            .get_item(0)?;
        let object = if self.options.strings_as_bytes {
            decoded
        } else {
            let bytes = decoded.cast::<PyBytes>()?;
            raw::decode(
                py,
                bytes.as_bytes(),
                &self.options.encoding,
                &self.options.errors,
            )?
        };
        self.push(object);
        Ok(())
    }

    #[inline(always)]
    fn put(&mut self, index: usize) -> PyResult<()> {
        let object = self.top()?.clone().unbind();
        self.memo.put(index, object);
        Ok(())
    }

    #[inline(always)]
    fn get(&mut self, index: usize) -> PyResult<()> {
        match self.memo.get(self.py, index) {
            Some(object) => {
                self.push(object);
                Ok(())
            }
            None => Err(self.memo_missing(index as i64)),
        }
    }

    fn get_signed(&mut self, index: i64) -> PyResult<()> {
        match usize::try_from(index) {
            Ok(index) => self.get(index),
            Err(_) => Err(self.memo_missing(index)),
        }
    }

    #[cold]
    fn memo_missing(&self, index: i64) -> PyErr {
        if self.py.version_info() < (3, 9) {
            // CPython 3.8 raised the bare KeyError.
            return pyo3::exceptions::PyKeyError::new_err(index);
        }
        unpickling(self.py, format!("Memo value not found at index {index}"))
    }

    /// APPEND/APPENDS: the items from `start` on go into the list below them.
    fn append_from(&mut self, start: usize) -> PyResult<()> {
        let len = self.stack.len();
        if start > len || start <= self.fence {
            return Err(self.underflow());
        }
        if start == len {
            return Ok(());
        }
        let target = self.stack[start - 1].clone();
        if let Ok(list) = target.cast_exact::<PyList>() {
            return raw::extend_list(list, self.stack.drain(start..));
        }
        if let Some(extend) = target.getattr_opt("extend")? {
            let items = PyList::new(self.py, self.stack.drain(start..))?;
            extend.call1((items,))?;
            return Ok(());
        }
        let append = target.getattr("append")?;
        let items: Vec<_> = self.stack.drain(start..).collect();
        for item in items {
            append.call1((item,))?;
        }
        Ok(())
    }

    /// SETITEM/SETITEMS: the pairs from `start` on go into the mapping below them.
    fn set_items_from(&mut self, start: usize) -> PyResult<()> {
        let len = self.stack.len();
        if start > len || start <= self.fence {
            return Err(self.underflow());
        }
        if start == len {
            return Ok(());
        }
        if (len - start) % 2 != 0 {
            return Err(unpickling(self.py, "odd number of items for SETITEMS"));
        }
        let target = self.stack[start - 1].clone();
        let pairs = self.stack[start..].chunks_exact(2);
        let result = match target.cast_exact::<PyDict>() {
            Ok(dict) => pairs
                .into_iter()
                .try_for_each(|pair| dict.set_item(&pair[0], &pair[1])),
            Err(_) => pairs
                .into_iter()
                .try_for_each(|pair| target.set_item(&pair[0], &pair[1])),
        };
        // As `_pickle`, the pairs leave the stack whether or not they all went in.
        self.stack.truncate(start);
        result
    }

    /// ADDITEMS: the items from `start` on go into the set below them.
    fn add_items_from(&mut self, start: usize) -> PyResult<()> {
        let len = self.stack.len();
        if start > len || start <= self.fence {
            return Err(self.underflow());
        }
        if start == len {
            return Ok(());
        }
        let target = self.stack[start - 1].clone();
        let items: Vec<_> = self.stack.drain(start..).collect();
        if let Ok(set) = target.cast::<PySet>() {
            for item in items {
                set.add(item)?;
            }
        } else {
            let add = target.getattr("add")?;
            for item in items {
                add.call1((item,))?;
            }
        }
        Ok(())
    }

    /// DICT: the pairs from `start` on, as a new dict.
    fn dict_from(&mut self, start: usize) -> PyResult<()> {
        if start < self.fence || start > self.stack.len() {
            return Err(self.underflow());
        }
        if (self.stack.len() - start) % 2 != 0 {
            return Err(unpickling(self.py, "odd number of items for DICT"));
        }
        let dict = PyDict::new(self.py);
        for pair in self.stack[start..].chunks_exact(2) {
            dict.set_item(&pair[0], &pair[1])?;
        }
        self.stack.truncate(start);
        self.push(dict.into_any());
        Ok(())
    }

    fn find_class(
        &mut self,
        module: &Bound<'py, PyAny>,
        name: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let object = match &self.owner {
            Some(owner) if owner.custom_find_class => owner
                .object
                .call_method1(pyo3::intern!(self.py, "find_class"), (module, name))?,
            _ => globals::find_class(module, name, self.proto, self.options.fix_imports)?,
        };
        self.provenance.resolved(module, name, &object);
        Ok(object)
    }

    fn persistent_load(&mut self, pid: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        if self.persistent_load.is_none() {
            let Some(owner) = &self.owner else {
                return Err(unpickling(
                    self.py,
                    "A load persistent id instruction was encountered, but no persistent_load function was specified.",
                ));
            };
            self.persistent_load = Some(owner.object.getattr("persistent_load")?);
        }
        match &self.persistent_load {
            Some(function) => function.call1((pid,)),
            None => Err(unpickling(self.py, "no persistent_load function")),
        }
    }

    /// NEWOBJ / NEWOBJ_EX: `cls.__new__(cls, *args, **kwargs)`.
    fn new_object(&mut self, with_kwargs: bool) -> PyResult<()> {
        let py = self.py;
        let opcode = if with_kwargs { "NEWOBJ_EX" } else { "NEWOBJ" };
        let kwargs = if with_kwargs { Some(self.pop()?) } else { None };
        let args = self.pop()?;
        let class = self.pop()?;
        if !class.is_instance_of::<PyType>() {
            return Err(unpickling(
                py,
                format!(
                    "{opcode} class argument must be a type, not {}",
                    class.get_type().name()?
                ),
            ));
        }
        let Ok(args) = args.cast_into::<PyTuple>() else {
            return Err(unpickling(
                py,
                format!("{opcode} args argument must be a tuple"),
            ));
        };
        let kwargs = match kwargs {
            Some(kwargs) => match kwargs.cast_into::<PyDict>() {
                Ok(kwargs) => Some(kwargs),
                Err(_) => {
                    return Err(unpickling(
                        py,
                        format!("{opcode} kwargs argument must be a dict"),
                    ))
                }
            },
            None => None,
        };
        let apply = if with_kwargs {
            super::Apply::NewObjEx
        } else {
            super::Apply::NewObj
        };
        self.provenance
            .before(Step::apply(&class, &args, kwargs.as_ref(), apply))?;
        let mut full = Vec::with_capacity(args.len() + 1);
        full.push(class.clone());
        full.extend(args.iter());
        let full = PyTuple::new(py, full)?;
        let object = class
            .getattr(pyo3::intern!(py, "__new__"))?
            .call(full, kwargs.as_ref())?;
        self.provenance.after(&object);
        self.push(object);
        Ok(())
    }

    /// BUILD: `inst.__setstate__(state)`, or the default update of `__dict__` and slots.
    fn build(&mut self) -> PyResult<()> {
        let py = self.py;
        if self.stack.len() < 2 || self.stack.len() - 2 < self.fence {
            return Err(self.underflow());
        }
        let state = self.pop()?;
        let instance = self.top()?.clone();
        self.provenance.before(Step::build(&instance, &state))?;
        if let Some(setstate) = instance.getattr_opt(pyo3::intern!(py, "__setstate__"))? {
            setstate.call1((&state,))?;
            self.provenance.built(&instance, &state);
            return Ok(());
        }
        let (dict_state, slot_state) = match state.cast::<PyTuple>() {
            Ok(pair) if pair.len() == 2 => (pair.get_item(0)?, Some(pair.get_item(1)?)),
            _ => (state.clone(), None),
        };
        if !dict_state.is_none() {
            let Ok(dict_state) = dict_state.cast::<PyDict>() else {
                return Err(unpickling(py, "state is not a dictionary"));
            };
            let dict = instance.getattr(pyo3::intern!(py, "__dict__"))?;
            for (key, value) in dict_state.iter() {
                let key = if key.is_exact_instance_of::<PyString>() {
                    raw::intern(key)
                } else {
                    key
                };
                dict.set_item(key, value)?;
            }
        }
        if let Some(slot_state) = slot_state {
            if !slot_state.is_none() {
                let Ok(slot_state) = slot_state.cast::<PyDict>() else {
                    return Err(unpickling(py, "slot state is not a dictionary"));
                };
                for (key, value) in slot_state.iter() {
                    instance.setattr(key.cast_into::<PyString>()?, value)?;
                }
            }
        }
        self.provenance.built(&instance, &state);
        Ok(())
    }

    /// INST: protocol 0 `cls(*args)`, the class named by two lines.
    fn inst(&mut self) -> PyResult<()> {
        let mark = self.pop_mark()?;
        let module = self.name_line(raw::ascii)?;
        let name = self.name_line(raw::ascii)?;
        let class = self.find_class(&module, &name)?;
        let args = self.pop_tuple(mark)?;
        let object = self.instantiate(&class, &args)?;
        self.push(object);
        Ok(())
    }

    /// A module or class name line of GLOBAL or INST: not empty.
    fn name_line(
        &mut self,
        decode: fn(Python<'py>, &[u8]) -> PyResult<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = self.py;
        let line = self.input.readline(py)?;
        if line.len() < 2 {
            return Err(errors::truncated(py));
        }
        decode(py, &line[..line.len() - 1])
    }

    /// OBJ: protocol 1 `cls(*args)`, the class first after the mark.
    fn obj(&mut self) -> PyResult<()> {
        let mark = self.pop_mark()?;
        if self.stack.len() < mark + 1 {
            return Err(self.underflow());
        }
        let args = self.pop_tuple(mark + 1)?;
        let class = self.pop()?;
        let object = self.instantiate(&class, &args)?;
        self.push(object);
        Ok(())
    }

    fn instantiate(
        &mut self,
        class: &Bound<'py, PyAny>,
        args: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = self.py;
        self.provenance
            .before(Step::apply(class, args, None, super::Apply::Instantiate))?;
        let object = if args.is_empty()
            && class.is_instance_of::<PyType>()
            && class
                .getattr_opt(pyo3::intern!(py, "__getinitargs__"))?
                .is_none()
        {
            class.call_method1(pyo3::intern!(py, "__new__"), (class,))?
        } else {
            class.call1(args)?
        };
        self.provenance.after(&object);
        Ok(object)
    }

    /// EXT1/2/4: a global registered with `copyreg.add_extension`.
    fn extension(&mut self, code: i64) -> PyResult<()> {
        let py = self.py;
        if code <= 0 {
            return Err(unpickling(py, "EXT specifies code <= 0"));
        }
        let copyreg = py.import("copyreg")?;
        let cache = copyreg.getattr("_extension_cache")?;
        let cache = cache.cast::<PyDict>()?;
        let registry = copyreg.getattr("_inverted_registry")?;
        let registry = registry.cast::<PyDict>()?;
        let pair = registry.get_item(code)?;
        let bad_pair = || {
            errors::value(format!(
                "_inverted_registry[{code}] isn't a 2-tuple of strings"
            ))
        };
        if let Some(object) = cache.get_item(code)? {
            if let Some(pair) = pair.as_ref().and_then(|p| p.cast::<PyTuple>().ok()) {
                if pair.len() == 2 {
                    self.provenance
                        .resolved(&pair.get_item(0)?, &pair.get_item(1)?, &object);
                }
            }
            self.push(object);
            return Ok(());
        }
        let Some(pair) = pair else {
            return Err(errors::value(format!("unregistered extension code {code}")));
        };
        let Ok(pair) = pair.cast::<PyTuple>() else {
            return Err(bad_pair());
        };
        if pair.len() != 2 {
            return Err(bad_pair());
        }
        let (module, name) = (pair.get_item(0)?, pair.get_item(1)?);
        if !module.is_instance_of::<PyString>() || !name.is_instance_of::<PyString>() {
            return Err(bad_pair());
        }
        let object = self.find_class(&module, &name)?;
        cache.set_item(code, &object)?;
        self.push(object);
        Ok(())
    }
}

/// `int(text, base)`, for the rare text numbers Rust does not parse.
fn python_int<'py>(py: Python<'py>, text: &str, base: u32) -> PyResult<Bound<'py, PyAny>> {
    py.import("builtins")?.getattr("int")?.call1((text, base))
}
