//! `libpickleguard_core.so`: pickleguard's runtime core.
//!
//! The preload shim `dlopen`s this library into CPython processes only, before
//! `Py_Initialize`, and calls [`pickleguard_install`]. That registers a C audit hook, which
//! checks every `pickle.find_class` event against the policy, and the `pickleguard` module.
//! Built with pyo3's `abi3-py38` and not linked to libpython: its Python symbols bind to
//! whichever CPython >= 3.8 the process runs, with a shared or a static libpython.
//!
//! Modules: [`ffi`] and [`raw_allocator`] hold the unsafe CPython calls, [`hook`] is the audit
//! hook, [`guard`] the process-wide state, [`refusal`] the exception and messages, [`caller`]
//! finds the program's frame, [`lifetime`] re-registers the hook for every later
//! `Py_Initialize`, [`module`] is `import pickleguard`, [`pickle_module`] is the `_pickle` that
//! carries pickleguard's unpickler, and [`pure_python`] guards `pickle._Unpickler`.

// See `.cargo/config.toml`: with pyo3's process-wide reference pool, a `Py<T>` dropped in the
// audit hook could be released later from another interpreter, and crash both.
#[cfg(not(all(pyo3_disable_reference_pool, pyo3_leak_on_drop_without_reference_pool)))]
compile_error!("build the core with `--cfg pyo3_disable_reference_pool --cfg pyo3_leak_on_drop_without_reference_pool` (.cargo/config.toml sets them; a RUSTFLAGS variable replaces that list, so add them to it)");

mod caller;
mod error;
mod events;
mod ffi;
mod guard;
mod hook;
mod import_watch;
mod lifetime;
mod logging;
mod module;
mod pickle_module;
mod pure_python;
mod raw_allocator;
mod record;
mod refusal;
mod resolve;
mod torch_guard;
mod trust;
mod unpickler;

use std::ffi::{c_char, c_int, CStr};
use std::panic::catch_unwind;
use std::sync::atomic::{AtomicBool, Ordering};

use pickleguard_policy::settings::vars;

/// The core's version, kept in the file so `pickleguard doctor` can read which core lies
/// beside a shim without loading it.
#[used]
static VERSION_MARK: &str = concat!("pickleguard-core-version=", env!("CARGO_PKG_VERSION"), ";");
use pickleguard_policy::{Mode, Problem, Settings};

pub use error::Error;

/// Installs the guard. Called by the shim's constructor, before `Py_Initialize`.
///
/// Returns 0 when the process is protected (or already was). Otherwise it has printed one line
/// to stderr saying why this process is not protected, and returns [`INSTALL_FAILED_REQUIRED`]
/// if the configuration requires protection (the shim then ends the process), 1 or 2 if not.
#[no_mangle]
pub extern "C" fn pickleguard_install() -> c_int {
    let status = match catch_unwind(install) {
        Ok(Ok(())) => return 0,
        Ok(Err(err)) => {
            ffi::stderr_line(&format!(
                "pickleguard: {err}; this process is NOT protected against unsafe pickles"
            ));
            1
        }
        Err(_) => {
            ffi::stderr_line("pickleguard: internal error while installing; this process is NOT protected against unsafe pickles");
            2
        }
    };
    if REQUIRED.load(Ordering::Relaxed) {
        INSTALL_FAILED_REQUIRED
    } else {
        status
    }
}

/// [`pickleguard_install`]'s status when the process is not protected and `require` is set.
const INSTALL_FAILED_REQUIRED: c_int = 3;

/// Whether the configuration read by [`install`] requires protection.
static REQUIRED: AtomicBool = AtomicBool::new(false);

/// The settings in force: in secure-execution mode (setuid, setgid, file capabilities) the
/// environment belongs to a less privileged caller, so only root's `/etc` configuration counts.
fn effective_settings() -> Settings {
    let settings = if ffi::secure_execution() {
        Settings::for_secure_execution()
    } else {
        Settings::from_process()
    };
    REQUIRED.store(settings.require, Ordering::Relaxed);
    settings
}

/// This core's version, NUL-terminated, for the shim's handshake.
const VERSION: &CStr =
    match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(version) => version,
        Err(_) => panic!("the package version contains a NUL byte"),
    };

/// The core's version (`0.1.0`), a static string. The shim refuses a core whose version is not
/// its own, since the two are one program split in two files.
#[no_mangle]
pub extern "C" fn pickleguard_core_version() -> *const c_char {
    VERSION.as_ptr()
}

fn install() -> Result<(), Error> {
    let settings = effective_settings();
    if ffi::interpreter_initialized() {
        return Err(Error::AlreadyInitialized);
    }
    if let Err(why) = logging::init(&settings.log) {
        events::config_error(&Problem::new(vars::LOG_FILE.into(), why));
    }
    for problem in &settings.problems {
        events::config_error(problem);
    }
    let recorder = settings.record.as_deref().and_then(|path| {
        record::Recorder::open(path)
            .map_err(|err| {
                events::config_error(&Problem::new(
                    format!("{}={}", vars::RECORD, path.display()),
                    format!("cannot open the record file: {err}; nothing is recorded"),
                ));
            })
            .ok()
    });
    let mode = settings.mode;
    if guard::install(settings, recorder).is_none() {
        return Ok(());
    }
    // SAFETY: the interpreter is not initialised yet (checked above), and the shim calls this
    // from its constructor, on the thread that will run Python.
    if !unsafe { raw_allocator::add_audit_hook_recording_entry(hook::audit_hook) } {
        return Err(Error::HookRefused);
    }
    lifetime::hook_registered();
    // SAFETY: as above, before Py_Initialize.
    if !unsafe { ffi::append_inittab(c"pickleguard", ffi::module_init()) } {
        ffi::stderr_line(&format!("pickleguard: {}", Error::ModuleNotRegistered));
    }
    // Mode `off` at start-up leaves the stock `_pickle` untouched.
    // SAFETY: as above, before Py_Initialize.
    if mode != Mode::Off && !unsafe { pickle_module::register() } {
        ffi::stderr_line(&format!("pickleguard: {}", Error::PickleNotRegistered));
    }
    if mode == Mode::Off {
        events::unprotected(mode, "mode `off`: pickles in this process are not checked");
    }
    Ok(())
}
