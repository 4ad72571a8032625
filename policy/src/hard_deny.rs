//! Globals that no configuration, pack or `allow()` call can ever allow.
//!
//! Everything outside the allowlist is refused anyway; this set is the backstop for operators who
//! allow too much. It names the modules and callables that run code, import modules, spawn
//! processes, touch files or the network, or hand out attribute-access primitives.

/// Modules refused with every submodule (`os` covers `os.path`).
pub const MODULES: &[(&str, &str)] = &[
    ("_ctypes", "calls arbitrary C functions"),
    ("_io", "opens files"),
    ("_operator", "hands out attrgetter/methodcaller primitives"),
    ("_pickle", "unpickles nested payloads"),
    ("_posixsubprocess", "spawns processes"),
    ("_socket", "opens network connections"),
    ("_thread", "starts threads running arbitrary callables"),
    ("asyncio", "spawns processes and opens connections"),
    ("bdb", "runs code under a debugger"),
    ("cProfile", "runs code strings"),
    ("code", "runs code strings"),
    ("codecs", "opens files"),
    ("codeop", "compiles code"),
    ("ctypes", "calls arbitrary C functions"),
    ("dill", "unpickles nested payloads and rebuilds functions"),
    ("doctest", "runs code strings"),
    ("ensurepip", "installs packages"),
    ("functools", "hands out partial/reduce call primitives"),
    ("gc", "exposes every live object"),
    ("glob", "reads the file system"),
    ("http", "opens network connections"),
    ("idlelib", "runs code"),
    ("imp", "imports modules"),
    ("importlib", "imports modules"),
    ("inspect", "exposes frames and code"),
    ("io", "opens files"),
    ("marshal", "loads code objects"),
    ("multiprocessing.util", "runs registered finalizers"),
    ("nt", "runs commands and touches files"),
    ("operator", "hands out attrgetter/methodcaller primitives"),
    ("os", "runs commands and touches files"),
    ("pdb", "runs code under a debugger"),
    ("pickle", "unpickles nested payloads"),
    ("pip", "installs packages"),
    ("pkgutil", "imports modules"),
    ("posix", "runs commands and touches files"),
    ("profile", "runs code strings"),
    ("pty", "spawns processes"),
    ("pydoc", "spawns a pager process"),
    ("runpy", "runs modules and files"),
    ("setuptools", "runs build code"),
    ("shelve", "opens files and unpickles them"),
    ("shutil", "touches files and runs commands"),
    ("signal", "changes process signal handling"),
    ("site", "runs .pth code"),
    ("smtplib", "opens network connections"),
    ("socket", "opens network connections"),
    ("subprocess", "spawns processes"),
    ("sys", "exposes and changes interpreter state"),
    ("tempfile", "touches files"),
    ("threading", "starts threads running arbitrary callables"),
    ("timeit", "runs code strings"),
    ("torch.fx", "generates and runs code"),
    ("torch.hub", "downloads and runs code"),
    ("torch.jit", "loads and runs compiled programs"),
    ("torch.package", "imports code from archives"),
    (
        "torch.utils.cpp_extension",
        "compiles and loads native code",
    ),
    ("trace", "runs code strings"),
    ("types", "builds functions and code objects"),
    ("urllib", "opens network connections"),
    ("webbrowser", "spawns processes"),
    ("xmlrpc", "opens network connections"),
    ("zipimport", "imports modules"),
    ("numpy.distutils", "runs build code"),
    (
        "sklearn.utils._joblib",
        "re-exports joblib's loaders and Parallel",
    ),
    ("numpy.f2py", "compiles and runs code"),
    ("numpy.testing", "runs code strings (runstring)"),
];

/// Single callables refused in an otherwise ordinary module.
pub const NAMES: &[(&str, &str, &str)] = &[
    ("builtins", "__build_class__", "builds classes from code"),
    ("builtins", "__import__", "imports modules"),
    ("builtins", "__loader__", "imports modules"),
    ("builtins", "breakpoint", "starts a debugger"),
    ("builtins", "compile", "compiles code"),
    ("builtins", "delattr", "changes arbitrary attributes"),
    ("builtins", "eval", "runs code strings"),
    ("builtins", "exec", "runs code strings"),
    ("builtins", "exit", "ends the process"),
    ("builtins", "getattr", "reaches any attribute of any object"),
    ("builtins", "globals", "exposes module globals"),
    ("builtins", "help", "spawns a pager process"),
    ("builtins", "input", "reads the terminal"),
    ("builtins", "locals", "exposes frame locals"),
    ("builtins", "open", "opens files"),
    ("builtins", "quit", "ends the process"),
    ("builtins", "setattr", "changes arbitrary attributes"),
    ("builtins", "type", "builds classes"),
    ("builtins", "vars", "exposes object namespaces"),
    (
        "dateutil.tz._tzfile",
        "tzfile",
        "opens a path named in the pickle",
    ),
    (
        "dateutil.tz.tz",
        "tzfile",
        "opens a path named in the pickle",
    ),
    ("joblib", "dump", "writes files"),
    ("joblib", "load", "opens files and unpickles them"),
    (
        "joblib.numpy_pickle",
        "load",
        "opens files and unpickles them",
    ),
    (
        "joblib.numpy_pickle_compat",
        "NDArrayWrapper",
        "reads a file named in the pickle",
    ),
    (
        "joblib.numpy_pickle_compat",
        "ZNDArrayWrapper",
        "reads a file named in the pickle",
    ),
    ("numpy", "load", "opens files and unpickles them"),
    ("numpy", "fromfile", "opens files"),
    ("numpy", "memmap", "opens files"),
    ("numpy", "save", "writes files"),
    ("numpy", "loadtxt", "opens files"),
    ("pandas", "read_pickle", "opens files and unpickles them"),
    (
        "pandas.io.pickle",
        "read_pickle",
        "opens files and unpickles them",
    ),
    ("torch", "load", "opens files and unpickles them"),
    ("torch", "save", "writes files"),
    ("torch", "compile", "generates and runs code"),
    ("torch", "from_file", "opens files"),
    (
        "torch._utils",
        "_import_dotted_name",
        "imports modules by name",
    ),
    (
        "torch.serialization",
        "_legacy_load",
        "opens files and unpickles them",
    ),
    ("torch.serialization", "_load", "unpickles nested payloads"),
    (
        "torch.serialization",
        "load",
        "opens files and unpickles them",
    ),
    ("torch.serialization", "save", "writes files"),
    (
        "torch.storage",
        "_load_from_bytes",
        "unpickles nested payloads with weights_only=False",
    ),
];

/// Exact pairs in a denied module that are plain data and may be allowed.
pub const EXEMPT: &[(&str, &str)] = &[
    ("types", "SimpleNamespace"),
    ("dill._dill", "_create_array"),
];

/// Why `(module, name)` can never be allowed, or `None` if it can.
///
/// Checks the module and its parent packages, the first part of `name`, and every part of a
/// dotted `name`: an attribute walk may not pass through a dunder or a denied module.
pub fn check(module: &str, name: &str) -> Option<&'static str> {
    let exempt = EXEMPT.contains(&(module, name));
    if let Some(reason) = module_reason(module).filter(|_| !exempt) {
        return Some(reason);
    }
    let head = name.split('.').next().unwrap_or(name);
    if let Some(&(_, _, reason)) = NAMES.iter().find(|(m, n, _)| *m == module && *n == head) {
        return Some(reason);
    }
    for (index, part) in name.split('.').enumerate() {
        if index > 0 && is_dunder(part) {
            return Some("walks into interpreter internals through a dotted name");
        }
        if module_reason(part).is_some() {
            return Some("reaches a denied module through an attribute");
        }
    }
    None
}

fn module_reason(module: &str) -> Option<&'static str> {
    MODULES.iter().find_map(|&(denied, reason)| {
        let covers = module == denied
            || (module.starts_with(denied) && module.as_bytes().get(denied.len()) == Some(&b'.'));
        covers.then_some(reason)
    })
}

fn is_dunder(part: &str) -> bool {
    part.len() > 4 && part.starts_with("__") && part.ends_with("__")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denies_modules_and_their_submodules_only() {
        assert!(check("os", "system").is_some());
        assert!(check("os.path", "join").is_some());
        assert!(
            check("osmosis", "x").is_none(),
            "a prefix is not a submodule"
        );
        assert!(check("subprocess", "Popen").is_some());
        assert!(check("torch.serialization", "load").is_some());
        assert!(check("torch.serialization", "_get_layout").is_none());
        assert!(check("torch", "Size").is_none());
    }

    #[test]
    fn denies_builtins_callables_and_their_attributes() {
        for name in ["eval", "exec", "compile", "__import__", "getattr", "open"] {
            assert!(check("builtins", name).is_some(), "{name}");
        }
        assert!(check("builtins", "eval.__call__").is_some());
        assert!(check("builtins", "set").is_none());
    }

    #[test]
    fn exemptions_are_exact() {
        assert!(check("types", "SimpleNamespace").is_none());
        assert!(check("types", "FunctionType").is_some());
        assert!(check("types", "SimpleNamespace.__init__").is_some());
    }

    #[test]
    fn denies_attribute_walks() {
        assert!(check("collections", "OrderedDict.__init__.__globals__").is_some());
        assert!(check("posixpath", "os.system").is_some());
        assert!(check("posixpath", "os").is_some());
        assert!(check("mymodel", "Outer.Inner").is_none());
    }

    #[test]
    fn names_are_listed_once() {
        let names: Vec<_> = NAMES.iter().map(|(m, n, _)| (*m, *n)).collect();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len(), "duplicate hard-deny name");
    }
}
