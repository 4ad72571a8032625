//! Globals that no configuration, pack or `allow()` call can ever allow, in any mode.
//!
//! Everything outside the allowlist is refused anyway in `enforce` mode; this set is the
//! backstop for operators who allow too much, for `warn` mode (which lets every other global
//! run) and for the checks the scanner makes. It names the modules and callables that run
//! code, import modules, spawn processes, touch files or the network, or hand out
//! attribute-access primitives, under every spelling CPython can import: C twins (`_pyio`,
//! `_functools`, `posix`), Python 2 names (see `py2`), and attribute walks through a dotted
//! name (`torch:_utils._import_dotted_name`, `builtins:__dict__.get`). The lists were checked
//! against the published gadget lists of picklescan, modelscan and fickling.
//!
//! The runtime also judges what a name *resolves to* (the core's `resolve` module); this
//! module is the spelling-level half that the scanner shares.

/// Modules refused with every submodule (`os` covers `os.path`).
pub const MODULES: &[(&str, &str)] = &[
    ("_aix_support", "runs commands"),
    ("_bootlocale", "imports modules"),
    ("_cffi_backend", "calls arbitrary C functions"),
    ("_ctypes", "calls arbitrary C functions"),
    ("_frozen_importlib", "imports modules"),
    (
        "_frozen_importlib_external",
        "imports modules and reads files",
    ),
    ("_functools", "hands out partial/reduce call primitives"),
    ("_imp", "imports modules"),
    ("_interpreters", "runs code in a new interpreter"),
    ("_io", "opens files"),
    ("_lsprof", "runs code under a profiler"),
    (
        "_multiprocessing",
        "shares memory and semaphores between processes",
    ),
    ("_operator", "hands out attrgetter/methodcaller primitives"),
    ("_osx_support", "runs commands"),
    ("_pickle", "unpickles nested payloads"),
    ("_posixshmem", "opens shared memory"),
    ("_posixsubprocess", "spawns processes"),
    ("_pyio", "opens files"),
    ("_signal", "changes process signal handling"),
    ("_sitebuiltins", "reads files and the terminal"),
    ("_socket", "opens network connections"),
    ("_sqlite3", "opens database files"),
    ("_ssl", "opens network connections"),
    ("_thread", "starts threads running arbitrary callables"),
    ("_tkinter", "runs Tcl code"),
    ("_winapi", "spawns processes"),
    ("_xxsubinterpreters", "runs code in a new interpreter"),
    ("aiohttp", "opens network connections"),
    ("asyncio", "spawns processes and opens connections"),
    ("atexit", "runs callables at exit"),
    ("bdb", "runs code under a debugger"),
    ("cProfile", "runs code strings"),
    ("cffi", "calls arbitrary C functions"),
    (
        "cloudpickle",
        "unpickles nested payloads and rebuilds functions",
    ),
    ("code", "runs code strings"),
    ("codecs", "opens files"),
    ("codeop", "compiles code"),
    ("compileall", "compiles and writes files"),
    ("concurrent", "runs callables in threads and processes"),
    ("ctypes", "calls arbitrary C functions"),
    ("dill", "unpickles nested payloads and rebuilds functions"),
    ("distutils", "runs build code and writes files"),
    ("doctest", "runs code strings"),
    ("ensurepip", "installs packages"),
    ("fcntl", "controls file descriptors"),
    ("fileinput", "opens files"),
    ("ftplib", "opens network connections"),
    ("functools", "hands out partial/reduce call primitives"),
    ("gc", "exposes every live object"),
    ("glob", "reads the file system"),
    ("http", "opens network connections"),
    ("httplib", "opens network connections"),
    ("httpx", "opens network connections"),
    ("idlelib", "runs code"),
    ("imaplib", "spawns processes and opens connections"),
    ("imp", "imports modules"),
    ("importlib", "imports modules"),
    ("inspect", "exposes frames and code"),
    ("io", "opens files"),
    ("lib2to3", "runs parser-generator code"),
    ("linecache", "reads files"),
    (
        "logging.config",
        "listens on a socket and runs configuration",
    ),
    ("logging.handlers", "opens files, sockets and processes"),
    ("mailcap", "runs commands"),
    ("marshal", "loads code objects"),
    ("mmap", "maps files into memory"),
    (
        "multiprocessing",
        "spawns processes and unpickles their messages",
    ),
    ("nntplib", "opens network connections"),
    ("nt", "runs commands and touches files"),
    ("numpy.distutils", "runs build code"),
    ("numpy.f2py", "compiles and runs code"),
    ("numpy.testing", "runs code strings (runstring)"),
    ("operator", "hands out attrgetter/methodcaller primitives"),
    ("os", "runs commands and touches files"),
    ("pathlib", "touches files"),
    ("pdb", "runs code under a debugger"),
    ("pexpect", "spawns processes"),
    ("pickle", "unpickles nested payloads"),
    ("pickleguard", "changes the guard itself"),
    ("pip", "installs packages"),
    ("pipes", "runs commands"),
    ("pkgutil", "imports modules"),
    ("platform", "runs commands"),
    ("poplib", "opens network connections"),
    ("posix", "runs commands and touches files"),
    ("profile", "runs code strings"),
    ("pty", "spawns processes"),
    ("py_compile", "compiles and writes files"),
    ("pydoc", "spawns a pager process and imports modules"),
    ("requests", "opens network connections"),
    ("resource", "changes process limits"),
    ("rlcompleter", "evaluates expressions"),
    ("runpy", "runs modules and files"),
    ("select", "waits on file descriptors"),
    ("selectors", "waits on file descriptors"),
    ("setuptools", "runs build code"),
    ("shelve", "opens files and unpickles them"),
    ("shutil", "touches files and runs commands"),
    ("signal", "changes process signal handling"),
    ("site", "runs .pth code"),
    ("smtplib", "opens network connections"),
    ("socket", "opens network connections"),
    ("socketserver", "listens on sockets"),
    ("sqlite3", "opens database files"),
    ("ssl", "opens network connections"),
    ("subprocess", "spawns processes"),
    ("sys", "exposes and changes interpreter state"),
    ("syslog", "writes the system log"),
    ("tarfile", "extracts and writes files"),
    ("telnetlib", "opens network connections"),
    ("tempfile", "touches files"),
    ("test.support", "runs interpreters and patches objects"),
    ("threading", "starts threads running arbitrary callables"),
    ("timeit", "runs code strings"),
    ("torch._dynamo", "generates and runs code"),
    ("torch._inductor", "compiles and runs code"),
    ("torch.fx", "generates and runs code"),
    ("torch.hub", "downloads and runs code"),
    ("torch.jit", "loads and runs compiled programs"),
    ("torch.package", "imports code from archives"),
    ("torch.utils._config_module", "unpickles nested payloads"),
    ("torch.utils.bottleneck", "runs code under a profiler"),
    ("torch.utils.collect_env", "runs commands"),
    (
        "torch.utils.cpp_extension",
        "compiles and loads native code",
    ),
    (
        "torch.utils.data.datapipes.utils.decoder",
        "unpickles nested payloads",
    ),
    ("trace", "runs code strings"),
    ("tty", "changes terminal modes"),
    ("types", "builds functions and code objects"),
    ("unittest", "runs code and patches objects"),
    ("urllib", "opens network connections"),
    ("urllib2", "opens network connections"),
    ("venv", "creates environments and runs pip"),
    ("webbrowser", "spawns processes"),
    ("xmlrpc", "opens network connections"),
    ("zipfile", "extracts and writes files"),
    ("zipimport", "imports modules"),
    ("huggingface_hub", "downloads files"),
    ("numexpr", "evaluates expression strings"),
    ("numpy.ctypeslib", "loads native libraries"),
    ("sympy.parsing", "evaluates expression strings"),
    (
        "transformers.dynamic_module_utils",
        "downloads and imports code",
    ),
    (
        "sklearn.utils._joblib",
        "re-exports joblib's loaders and Parallel",
    ),
];

/// Single callables refused in an otherwise ordinary module.
pub const NAMES: &[(&str, &str, &str)] = &[
    ("builtins", "__build_class__", "builds classes from code"),
    ("builtins", "__import__", "imports modules"),
    ("builtins", "__loader__", "imports modules"),
    ("builtins", "breakpoint", "starts a debugger"),
    ("builtins", "compile", "compiles code"),
    ("builtins", "copyright", "reads files and the terminal"),
    ("builtins", "credits", "reads files and the terminal"),
    ("builtins", "delattr", "changes arbitrary attributes"),
    ("builtins", "eval", "runs code strings"),
    ("builtins", "exec", "runs code strings"),
    ("builtins", "exit", "ends the process"),
    ("builtins", "getattr", "reaches any attribute of any object"),
    ("builtins", "globals", "exposes module globals"),
    ("builtins", "help", "spawns a pager process"),
    ("builtins", "input", "reads the terminal"),
    ("builtins", "license", "reads files and the terminal"),
    ("builtins", "locals", "exposes frame locals"),
    ("builtins", "open", "opens files"),
    ("builtins", "quit", "ends the process"),
    ("builtins", "setattr", "changes arbitrary attributes"),
    ("builtins", "type", "builds classes"),
    ("builtins", "vars", "exposes object namespaces"),
    (
        "copyreg",
        "add_extension",
        "changes how later pickles resolve EXT codes",
    ),
    (
        "copyreg",
        "clear_extension_cache",
        "changes how later pickles resolve EXT codes",
    ),
    ("copyreg", "constructor", "registers reduction functions"),
    ("copyreg", "pickle", "registers reduction functions"),
    (
        "copyreg",
        "remove_extension",
        "changes how later pickles resolve EXT codes",
    ),
    ("dataclasses", "dataclass", "generates and runs code"),
    ("dataclasses", "make_dataclass", "generates and runs code"),
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
    ("logging", "FileHandler", "opens files"),
    ("numpy", "fromfile", "opens files"),
    ("numpy", "fromregex", "opens files"),
    ("numpy", "genfromtxt", "opens files and URLs"),
    ("numpy", "load", "opens files and unpickles them"),
    ("numpy", "loadtxt", "opens files"),
    ("numpy", "memmap", "opens files"),
    ("numpy", "save", "writes files"),
    ("numpy", "savetxt", "writes files"),
    ("numpy", "savez", "writes files"),
    ("numpy", "savez_compressed", "writes files"),
    (
        "numpy.lib._npyio_impl",
        "load",
        "opens files and unpickles them",
    ),
    ("numpy.lib.npyio", "load", "opens files and unpickles them"),
    ("pandas", "eval", "evaluates expression strings"),
    ("pandas", "read_csv", "opens files and URLs"),
    ("pandas", "read_excel", "opens files and URLs"),
    ("pandas", "read_html", "opens files and URLs"),
    ("pandas", "read_json", "opens files and URLs"),
    ("pandas", "read_parquet", "opens files and URLs"),
    ("pandas", "read_pickle", "opens files and unpickles them"),
    ("pandas", "read_sql", "opens database connections"),
    ("pandas", "read_table", "opens files and URLs"),
    ("pandas", "read_xml", "opens files and URLs"),
    (
        "pandas.core.computation.eval",
        "eval",
        "evaluates expression strings",
    ),
    (
        "pandas.io.pickle",
        "read_pickle",
        "opens files and unpickles them",
    ),
    ("sympy", "sympify", "evaluates expression strings"),
    (
        "sympy.core.sympify",
        "sympify",
        "evaluates expression strings",
    ),
    ("torch", "compile", "generates and runs code"),
    ("torch", "from_file", "opens files"),
    ("torch", "load", "opens files and unpickles them"),
    ("torch", "save", "writes files"),
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
    ("typing", "_eval_type", "evaluates annotation strings"),
    ("typing", "get_type_hints", "evaluates annotation strings"),
    ("uuid", "_arp_getnode", "runs commands"),
    ("uuid", "_find_mac", "runs commands"),
    ("uuid", "_find_mac_near_keyword", "runs commands"),
    ("uuid", "_find_mac_under_heading", "runs commands"),
    ("uuid", "_get_command_stdout", "runs commands"),
    ("uuid", "_ifconfig_getnode", "runs commands"),
    ("uuid", "_ip_getnode", "runs commands"),
    ("uuid", "_lanscan_getnode", "runs commands"),
    ("uuid", "_netstat_getnode", "runs commands"),
    ("uuid", "_popen", "runs commands"),
    ("yaml", "full_load", "builds arbitrary objects from YAML"),
    (
        "yaml",
        "full_load_all",
        "builds arbitrary objects from YAML",
    ),
    ("yaml", "load", "builds arbitrary objects from YAML"),
    ("yaml", "load_all", "builds arbitrary objects from YAML"),
    ("yaml", "unsafe_load", "builds arbitrary objects from YAML"),
    (
        "yaml",
        "unsafe_load_all",
        "builds arbitrary objects from YAML",
    ),
];

/// Exact pairs in a denied module that are plain data and may be allowed.
pub const EXEMPT: &[(&str, &str)] = &[
    ("dill._dill", "_create_array"),
    ("pathlib", "Path"),
    ("pathlib", "PosixPath"),
    ("pathlib", "PurePath"),
    ("pathlib", "PurePosixPath"),
    ("pathlib", "PureWindowsPath"),
    ("pathlib", "WindowsPath"),
    // Python 3.13 defines the path classes in `pathlib._local`, and pickles name them there.
    ("pathlib._local", "Path"),
    ("pathlib._local", "PosixPath"),
    ("pathlib._local", "PurePath"),
    ("pathlib._local", "PurePosixPath"),
    ("pathlib._local", "PureWindowsPath"),
    ("pathlib._local", "WindowsPath"),
    ("pickleguard", "UnsafeFileError"),
    ("types", "SimpleNamespace"),
];

/// Why `(module, name)` can never be allowed, or `None` if it can.
///
/// Judges the spelling, walking it the way `find_class` does: the module and its parent
/// packages; then each part of a dotted `name` in turn, as an attribute of what came before
/// (`torch:_utils._import_dotted_name` reaches `torch._utils._import_dotted_name`); a dunder
/// part anywhere; and a part that names a denied module (`posixpath:os.system`). Exact
/// [`EXEMPT`] pairs pass.
pub fn check(module: &str, name: &str) -> Option<&'static str> {
    if EXEMPT.contains(&(module, name)) {
        return None;
    }
    if let Some(reason) = module_reason(module) {
        return Some(reason);
    }
    let mut path = module.to_string();
    for part in name.split('.') {
        if is_dunder(part) {
            return Some("walks into interpreter internals through a dunder name");
        }
        if let Some(&(_, _, reason)) = NAMES.iter().find(|(m, n, _)| *m == path && *n == part) {
            return Some(reason);
        }
        path.push('.');
        path.push_str(part);
        if let Some(reason) = module_reason(&path) {
            return Some(reason);
        }
        if module_reason(part).is_some() {
            return Some("reaches a denied module through an attribute");
        }
    }
    None
}

/// Why a module can never be imported from, with every submodule, or `None`.
pub fn module_reason(module: &str) -> Option<&'static str> {
    MODULES.iter().find_map(|&(denied, reason)| {
        let covers = module == denied
            || (module.starts_with(denied) && module.as_bytes().get(denied.len()) == Some(&b'.'));
        covers.then_some(reason)
    })
}

/// The spellings CPython may import for the raw names a pickle asks for: the raw pair and,
/// at protocols 0-2, its Python 2 mapping. What the runtime resolves to judge a global.
pub fn spellings<'a>(module: &'a str, name: &'a str) -> Vec<(&'a str, &'a str)> {
    let mut all = vec![(module, name)];
    if let Some(mapped) = crate::py2::map(module, name) {
        all.push(mapped);
    }
    all
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
        assert!(check("pathlib", "PosixPath").is_none());
        assert!(check("pathlib", "PosixPath.touch").is_some());
        assert!(check("pathlib._local", "PosixPath").is_none());
        assert!(check("pathlib._local", "PosixPath.write_text").is_some());
        assert!(check("pickleguard", "UnsafeFileError").is_none());
    }

    #[test]
    fn denies_attribute_walks() {
        assert!(check("collections", "OrderedDict.__init__.__globals__").is_some());
        assert!(check("posixpath", "os.system").is_some());
        assert!(check("posixpath", "os").is_some());
        assert!(check("mymodel", "Outer.Inner").is_none());
    }

    /// HD-1..HD-7: the seven warn-mode bypasses of issue 12, each denied by its spelling.
    /// They pass because the walk joins the module with each name part and because the C
    /// twins and gadget modules are listed; dropping either would let them through.
    #[test]
    fn issue_12_warn_mode_payloads_are_hard_denied() {
        for (module, name) in [
            ("builtins", "__dict__.get"),
            ("torch", "_utils._import_dotted_name"),
            ("_functools", "partial"),
            ("pickleguard", "deactivate_safe_ml_environment"),
            ("imaplib", "IMAP4_stream"),
            ("_pyio", "open"),
            ("torch.utils.collect_env", "run"),
            ("torch", "utils.collect_env.run"),
            ("torch.utils", "collect_env.run"),
        ] {
            assert!(check(module, name).is_some(), "{module}:{name}");
        }
    }

    #[test]
    fn a_dunder_part_is_denied_anywhere() {
        assert!(check("collections", "__dict__").is_some());
        assert!(check("mymodel", "Net.__reduce__").is_some());
        assert!(check("mymodel", "__builtins__.eval").is_some());
        // Not dunders: a leading double underscore alone (numpy's bit-generator ctors).
        assert!(check("numpy.random._pickle", "__bit_generator_ctor").is_none());
    }

    #[test]
    fn c_twins_and_aliases_are_denied() {
        for (module, name) in [
            ("posix", "system"),
            ("nt", "system"),
            ("_io", "open"),
            ("_pyio", "FileIO"),
            ("_functools", "reduce"),
            ("_operator", "attrgetter"),
            ("_pickle", "loads"),
            ("_posixsubprocess", "fork_exec"),
            ("_thread", "start_new_thread"),
            ("numpy.lib.npyio", "load"),
        ] {
            assert!(check(module, name).is_some(), "{module}.{name}");
        }
        // Python 2 numpy pickles need `_codecs.encode`; only the C twin's file-free
        // function is left allowed.
        assert!(check("_codecs", "encode").is_none());
    }

    #[test]
    fn published_gadgets_are_denied() {
        for (module, name) in [
            ("code", "InteractiveInterpreter.runcode"),
            ("cProfile", "run"),
            ("timeit", "timeit"),
            ("trace", "Trace.run"),
            ("doctest", "debug_script"),
            ("idlelib.run", "Executive.runcode"),
            ("ensurepip", "_run_pip"),
            ("venv", "create"),
            ("distutils.file_util", "write_file"),
            ("setuptools", "setup"),
            ("pip", "main"),
            ("asyncio.subprocess", "create_subprocess_shell"),
            ("ctypes", "CDLL"),
            ("cffi", "FFI"),
            ("webbrowser", "open"),
            ("smtplib", "SMTP"),
            ("ftplib", "FTP"),
            ("http.client", "HTTPSConnection"),
            ("urllib.request", "urlopen"),
            ("socket", "create_connection"),
            ("shutil", "rmtree"),
            ("tempfile", "mkstemp"),
            ("zipimport", "zipimporter"),
            ("mailcap", "findmatch"),
            ("pydoc", "pipepager"),
            ("pty", "spawn"),
            ("torch._inductor.codecache", "compile_file"),
            ("torch.utils.bottleneck.__main__", "run_cprofile"),
            ("numpy.testing._private.utils", "runstring"),
            ("ssl", "get_server_certificate"),
            ("requests.api", "get"),
            ("uuid", "_get_command_stdout"),
            ("multiprocessing.util", "Finalize"),
        ] {
            assert!(check(module, name).is_some(), "{module}.{name}");
        }
    }

    #[test]
    fn spellings_include_the_python2_mapping() {
        assert_eq!(
            spellings("__builtin__", "eval"),
            vec![("__builtin__", "eval"), ("builtins", "eval")]
        );
        assert_eq!(spellings("mymodel", "Net"), vec![("mymodel", "Net")]);
    }

    #[test]
    fn names_are_listed_once() {
        let names: Vec<_> = NAMES.iter().map(|(m, n, _)| (*m, *n)).collect();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len(), "duplicate hard-deny name");
        let mut modules: Vec<_> = MODULES.iter().map(|(m, _)| *m).collect();
        modules.sort();
        let before = modules.len();
        modules.dedup();
        assert_eq!(before, modules.len(), "duplicate hard-deny module");
    }
}
