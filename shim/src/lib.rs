//! `libpickleguard.so`, the library users put in `LD_PRELOAD` or `/etc/ld.so.preload`.
//!
//! It needs libc and nothing else, and it references no Python symbol, so it loads into every
//! process (sh, bash, coreutils, compilers, setuid programs, distroless images) unchanged. It is
//! `no_std` and built with `panic = "abort"` by `build.rs`, and it has no panic path at all (the
//! link fails if one appears): it never unwinds and never needs `libgcc_s`.
//!
//! Its constructor asks the dynamic loader whether the process has a CPython runtime with audit
//! hooks (`PySys_AddAuditHook`). Only then does it check and `dlopen` the pyo3 core that lies
//! next to the shim's real path (or at `PICKLEGUARD_CORE`), check the core's version, and call
//! the core's install function, still before `Py_Initialize`. Anywhere else it returns at once
//! and prints nothing. A Python process it cannot protect gets one stderr line saying so, or,
//! with `PICKLEGUARD_REQUIRE=1`, exits before any Python code runs.
//!
//! In secure-execution mode (setuid, setgid, file capabilities: `AT_SECURE`) no environment
//! variable is read: the core is only ever the one beside the shim, owned by root and writable
//! by no one else.
// Unit tests run under the std test harness; the library itself is `no_std`.
#![cfg_attr(not(test), no_std)]
// The library has no panic path (build.rs fails the link otherwise); tests may panic.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod elf;
#[cfg(pickleguard_shim_late_dlopen)]
// In the rlib that `cargo clippy` checks, the interposer is not exported, so nothing calls it.
#[cfg_attr(not(pickleguard_shim_cdylib), allow(dead_code))]
mod late;
mod require;
mod sys;
mod text;

use core::ffi::{c_int, c_void, CStr};
use core::sync::atomic::{AtomicBool, Ordering};

use text::Text;

/// File name of the core, looked for in the shim's own (real) directory.
const CORE_FILE: &[u8] = b"libpickleguard_core.so";
/// This shim's version; the core must report the same one.
const VERSION: &[u8] = env!("CARGO_PKG_VERSION").as_bytes();
/// The shim's version, kept in the file so `pickleguard doctor` can read which shim an
/// `LD_PRELOAD` entry is without loading it.
#[used]
static VERSION_MARK: &str = concat!("pickleguard-shim-version=", env!("CARGO_PKG_VERSION"), ";");
/// Exit status of a Python process that must be protected and cannot be (`EX_UNAVAILABLE`).
const EXIT_UNPROTECTED: c_int = 69;
/// `pickleguard_install`'s status when it failed and the configuration requires protection.
const CORE_FAILED_REQUIRED: c_int = 3;

/// The constructor, run by the dynamic loader when the shim is loaded, before `main`.
#[used]
#[link_section = ".init_array"]
static CONSTRUCTOR: extern "C" fn() = constructor;

extern "C" fn constructor() {
    // Every copy of the shim in the process funnels into the first one in the global scope,
    // so two installed copies still give one core and one policy. (For preloaded copies the
    // loader's symbol interposition already does this; the lookup also covers a copy loaded
    // later with RTLD_LOCAL.)
    let first = sys::global_symbol(c"pickleguard_shim_protect");
    // Which copy defines `first` is decided by the object its address lies in: comparing it
    // with `pickleguard_shim_protect as fn()` is not enough, since the compiler may call the
    // local function directly while the address it compares comes from the global lookup.
    if first.is_null() || sys::same_object(first, constructor as *const c_void) {
        pickleguard_shim_protect();
    } else {
        // The first copy also watches `dlopen` for a late libpython; this one's interposer
        // only passes calls on (it is reached through the first one's RTLD_NEXT lookup).
        #[cfg(pickleguard_shim_late_dlopen)]
        late::settled();
        // SAFETY: every version of the shim exports `pickleguard_shim_protect` as
        // `extern "C" fn()`.
        unsafe { sys::call_void(first) };
    }
}

/// Protects this process if it is a CPython one. Idempotent: only the first call does anything.
/// Exported so that a second copy of the shim can defer to the first (see `constructor`).
#[no_mangle]
pub extern "C" fn pickleguard_shim_protect() {
    static DONE: AtomicBool = AtomicBool::new(false);
    if DONE.swap(true, Ordering::AcqRel) {
        return;
    }
    if protect() {
        #[cfg(pickleguard_shim_late_dlopen)]
        late::settled();
    }
}

/// Loads the core if the process has a CPython now. Returns whether it has one (protected, or
/// reported as not protectable); if not, the `dlopen` interposer keeps watching (`late`).
fn protect() -> bool {
    let secure = sys::secure_execution();
    let mut path = Text::new();
    match load_core_if_python(secure, &mut path) {
        Ok(python) => python,
        Err(why) => {
            why.report();
            if matches!(why, Unprotected::CoreFailedRequired) || require::required(secure) {
                require_failed();
            }
            true
        }
    }
}

/// A libpython the host `dlopen`ed after `main` started (`late`): protect it now, before the
/// host can call `Py_Initialize`.
#[cfg(pickleguard_shim_late_dlopen)]
#[cfg_attr(not(pickleguard_shim_cdylib), allow(dead_code))]
fn protect_late_python() {
    if sys::global_symbol(c"PySys_AddAuditHook").is_null() {
        // The object has the symbol but keeps it out of the global scope, where the core
        // binds its Python symbols (extension modules need it there too).
        Unprotected::LocalLibpython.report();
        if require::required(sys::secure_execution()) {
            require_failed();
        }
        return;
    }
    protect();
}

/// Why a Python process is not protected.
enum Unprotected<'a> {
    /// A CPython older than 3.8: no audit hooks.
    NoAuditHooks,
    /// A libpython `dlopen`ed after start-up without `RTLD_GLOBAL`.
    #[cfg_attr(
        any(not(pickleguard_shim_late_dlopen), not(pickleguard_shim_cdylib)),
        allow(dead_code)
    )]
    LocalLibpython,
    /// The shim's own path could not be found, or the core's path is too long.
    NoCorePath,
    /// The core file cannot be opened (and the system's reason).
    CannotOpen(&'a [u8], &'a [u8]),
    /// The core file is not a regular file.
    NotRegular(&'a [u8]),
    /// In secure-execution mode, a core (or its directory) not owned by root or writable by
    /// others.
    Untrusted(&'a [u8]),
    /// The core file is damaged or for another machine.
    Damaged(&'a [u8], elf::Defect),
    /// `dlopen` failed.
    CannotLoad(&'a [u8], &'a [u8]),
    /// The library has no pickleguard entry point.
    NotACore(&'a [u8], &'a [u8]),
    /// The core is another version of pickleguard.
    VersionMismatch(&'a [u8], &'a [u8]),
    /// The core ran and reported (on stderr) that it could not protect the process.
    CoreFailed,
    /// As `CoreFailed`, and the configuration the core read requires protection.
    CoreFailedRequired,
}

impl Unprotected<'_> {
    /// Prints the one line (the core prints its own).
    fn report(&self) {
        // Room for two paths (the loader's message repeats the path) and the words around
        // them, so the line's end is never cut.
        let mut line = Text::<{ 3 * sys::PATH_MAX }>::new();
        line.push_cut(b"pickleguard: ");
        match *self {
            Unprotected::NoAuditHooks => {
                line.push_cut(b"this Python has no audit hooks (CPython < 3.8)")
            }
            Unprotected::LocalLibpython => line.push_cut(
                b"libpython was loaded with dlopen(RTLD_LOCAL) after start-up, so the core cannot bind to it",
            ),
            Unprotected::NoCorePath => {
                line.push_cut(
                    b"cannot find the core library (the shim's own path is unknown or too long)",
                );
            }
            Unprotected::CannotOpen(path, why) => {
                line.push_cut(b"cannot open the core library `");
                line.push_cut(path);
                line.push_cut(b"`: ");
                line.push_cut(why);
            }
            Unprotected::NotRegular(path) => {
                line.push_cut(b"the core library `");
                line.push_cut(path);
                line.push_cut(b"` is not a regular file");
            }
            Unprotected::Untrusted(path) => {
                line.push_cut(b"the core library `");
                line.push_cut(path);
                line.push_cut(b"` or its directory is not owned by root or is writable by others, and this is a setuid, setgid or capability process");
            }
            Unprotected::Damaged(path, defect) => {
                line.push_cut(b"the core library `");
                line.push_cut(path);
                line.push_cut(b"` is unusable: ");
                line.push_cut(defect.describe());
            }
            Unprotected::CannotLoad(path, why) => {
                line.push_cut(b"cannot load the core library `");
                line.push_cut(path);
                line.push_cut(b"`: ");
                line.push_cut(why);
            }
            Unprotected::NotACore(path, why) => {
                line.push_cut(b"`");
                line.push_cut(path);
                line.push_cut(b"` is not a pickleguard core: ");
                line.push_cut(why);
            }
            Unprotected::VersionMismatch(path, core_version) => {
                line.push_cut(b"the core library `");
                line.push_cut(path);
                line.push_cut(b"` is version `");
                line.push_cut(core_version);
                line.push_cut(b"` but this shim is `");
                line.push_cut(VERSION);
                line.push_cut(b"`; install both from the same build");
            }
            Unprotected::CoreFailed | Unprotected::CoreFailedRequired => return,
        }
        line.push_cut(b"; this process is NOT protected against unsafe pickles\n");
        sys::write_stderr(line.as_bytes());
    }
}

/// `Ok(false)` when the process has no CPython (yet), `Ok(true)` when it is protected.
fn load_core_if_python(
    secure: bool,
    path: &mut Text<{ sys::PATH_MAX }>,
) -> Result<bool, Unprotected<'_>> {
    if sys::global_symbol(c"PySys_AddAuditHook").is_null() {
        if sys::global_symbol(c"Py_GetVersion").is_null() {
            // Not a Python process: nothing to do, nothing to say.
            return Ok(false);
        }
        return Err(Unprotected::NoAuditHooks);
    }
    if !core_path(secure, path) {
        return Err(Unprotected::NoCorePath);
    }
    let path: &Text<{ sys::PATH_MAX }> = path;
    let path_bytes = path.as_bytes();
    let c_path = path.as_c_str().ok_or(Unprotected::NoCorePath)?;
    check_core_file(c_path, path_bytes, secure)?;
    let library = sys::Library::open(c_path)
        .map_err(|why| Unprotected::CannotLoad(path_bytes, why.to_bytes()))?;
    let version = library
        .symbol(c"pickleguard_core_version")
        .map_err(|why| Unprotected::NotACore(path_bytes, why.to_bytes()))?;
    // SAFETY: a pickleguard core defines `pickleguard_core_version` as
    // `extern "C" fn() -> *const c_char` returning a static NUL-terminated string.
    let core_version = unsafe { sys::call_static_str(version) }.map_or(&b""[..], CStr::to_bytes);
    if core_version != VERSION {
        return Err(Unprotected::VersionMismatch(path_bytes, core_version));
    }
    let install = library
        .symbol(c"pickleguard_install")
        .map_err(|why| Unprotected::NotACore(path_bytes, why.to_bytes()))?;
    // SAFETY: `pickleguard_install` is defined by the core as `extern "C" fn() -> c_int`.
    // It returns 0 when the process is protected; otherwise it has printed why not.
    match unsafe { sys::call_int(install) } {
        0 => Ok(true),
        CORE_FAILED_REQUIRED => Err(Unprotected::CoreFailedRequired),
        _ => Err(Unprotected::CoreFailed),
    }
}

/// Opens the core and checks it is a whole library for this machine (and, in secure-execution
/// mode, one only root could have put there).
fn check_core_file<'a>(c_path: &CStr, path: &'a [u8], secure: bool) -> Result<(), Unprotected<'a>> {
    let cannot_open = || Unprotected::CannotOpen(path, sys::last_os_error().to_bytes());
    let file = sys::File::open(c_path).ok_or_else(cannot_open)?;
    let facts = file.facts().ok_or_else(cannot_open)?;
    if !facts.regular {
        return Err(Unprotected::NotRegular(path));
    }
    if secure && !(trusted(&facts) && directory_trusted(path)) {
        return Err(Unprotected::Untrusted(path));
    }
    elf::check(&file, facts.size).map_err(|defect| Unprotected::Damaged(path, defect))
}

/// Owned by root and writable by no one else.
fn trusted(facts: &sys::FileFacts) -> bool {
    facts.uid == 0 && facts.mode & 0o022 == 0
}

/// Whether the directory holding `path` is [`trusted`]: if others could write to it, they could
/// swap the core between the check and the load.
fn directory_trusted(path: &[u8]) -> bool {
    let mut directory = Text::<{ sys::PATH_MAX }>::new();
    if !directory.push(path) || !directory.truncate_after_last_slash() {
        return false;
    }
    directory
        .as_c_str()
        .and_then(sys::file_facts)
        .is_some_and(|facts| trusted(&facts))
}

/// `PICKLEGUARD_CORE` (never in secure-execution mode), or `libpickleguard_core.so` in the
/// directory the shim really lives in (symlinks resolved). False if it cannot be built.
fn core_path(secure: bool, out: &mut Text<{ sys::PATH_MAX }>) -> bool {
    if !secure {
        if let Some(explicit) = sys::env(c"PICKLEGUARD_CORE") {
            return out.push(explicit.to_bytes());
        }
    }
    let Some(own) = sys::object_path_of(constructor as *const c_void) else {
        return false;
    };
    let mut resolved = [0u8; sys::PATH_MAX];
    let own = sys::real_path(own, &mut resolved).unwrap_or(own);
    out.push(own.to_bytes()) && out.truncate_after_last_slash() && out.push(CORE_FILE)
}

/// Ends a Python process that must be protected and is not, before any Python code runs.
fn require_failed() -> ! {
    sys::write_stderr(
        b"pickleguard: protection is required (PICKLEGUARD_REQUIRE or `require = true`) and this Python process cannot be protected; exiting with status 69\n",
    );
    sys::exit_now(EXIT_UNPROTECTED)
}
