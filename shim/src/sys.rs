//! Every libc call the shim makes, declared here by hand: the shim is built with no crate
//! dependencies (see `build.rs`), so it links libc and nothing else. Nothing here allocates or
//! panics: the constructor runs in every process the preload reaches, before `main`.
//!
//! The constants are glibc's values on Linux for every architecture the shim is built for
//! (x86, x86_64, arm, aarch64, riscv64, s390x, powerpc64, loongarch64).

use core::ffi::{c_char, c_int, c_long, c_uint, c_ulong, c_void, CStr};

/// `RTLD_NOW` from `<dlfcn.h>`.
const RTLD_NOW: c_int = 2;
/// `RTLD_LOCAL` from `<dlfcn.h>`.
const RTLD_LOCAL: c_int = 0;
/// `AT_SECURE` from `<elf.h>`: non-zero in setuid, setgid and file-capability processes.
const AT_SECURE: c_ulong = 23;
/// `O_RDONLY | O_CLOEXEC`.
const O_RDONLY_CLOEXEC: c_int = 0o2_000_000;
/// `O_NONBLOCK`: opening a FIFO must not wait for a writer.
const O_NONBLOCK: c_int = 0o4_000;
/// `AT_FDCWD`: a relative path starts at the working directory.
const AT_FDCWD: c_int = -100;
/// `AT_EMPTY_PATH`: `statx` on the descriptor itself.
const AT_EMPTY_PATH: c_int = 0x1000;
/// `STATX_TYPE | STATX_MODE | STATX_UID | STATX_SIZE`.
const STATX_WANTED: c_uint = 0x1 | 0x2 | 0x8 | 0x200;
/// `S_IFMT` and `S_IFREG`.
const S_IFMT: u16 = 0o170_000;
const S_IFREG: u16 = 0o100_000;
/// `PATH_MAX`.
pub const PATH_MAX: usize = 4096;
/// `SYS_statx`, for a glibc older than 2.28 (no `statx` function; the wheel's glibc 2.17).
#[cfg(target_arch = "x86_64")]
const SYS_STATX: c_long = 332;
#[cfg(any(target_arch = "x86", target_arch = "powerpc64"))]
const SYS_STATX: c_long = 383;
#[cfg(target_arch = "arm")]
const SYS_STATX: c_long = 397;
#[cfg(target_arch = "s390x")]
const SYS_STATX: c_long = 379;
#[cfg(any(
    target_arch = "aarch64",
    target_arch = "riscv64",
    target_arch = "loongarch64"
))]
const SYS_STATX: c_long = 291;

/// glibc's `statx` function.
type StatxFunction = unsafe extern "C" fn(c_int, *const c_char, c_int, c_uint, *mut Statx) -> c_int;

/// `Dl_info` from `<dlfcn.h>`.
#[repr(C)]
struct DlInfo {
    dli_fname: *const c_char,
    dli_fbase: *mut c_void,
    dli_sname: *const c_char,
    dli_saddr: *mut c_void,
}

/// `struct statx_timestamp` from `<linux/stat.h>`.
#[repr(C)]
struct StatxTimestamp {
    tv_sec: i64,
    tv_nsec: u32,
    reserved: i32,
}

/// `struct statx` from `<linux/stat.h>`: one layout on every architecture.
#[repr(C)]
struct Statx {
    stx_mask: u32,
    stx_blksize: u32,
    stx_attributes: u64,
    stx_nlink: u32,
    stx_uid: u32,
    stx_gid: u32,
    stx_mode: u16,
    spare0: u16,
    stx_ino: u64,
    stx_size: u64,
    stx_blocks: u64,
    stx_attributes_mask: u64,
    stx_atime: StatxTimestamp,
    stx_btime: StatxTimestamp,
    stx_ctime: StatxTimestamp,
    stx_mtime: StatxTimestamp,
    stx_rdev_major: u32,
    stx_rdev_minor: u32,
    stx_dev_major: u32,
    stx_dev_minor: u32,
    spare: [u64; 14],
}

extern "C" {
    fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
    fn dladdr(address: *const c_void, info: *mut DlInfo) -> c_int;
    fn dlerror() -> *mut c_char;
    fn sched_yield() -> c_int;
    fn getenv(name: *const c_char) -> *mut c_char;
    fn getauxval(kind: c_ulong) -> c_ulong;
    fn realpath(path: *const c_char, resolved: *mut c_char) -> *mut c_char;
    fn open(path: *const c_char, flags: c_int, ...) -> c_int;
    fn close(fd: c_int) -> c_int;
    fn pread64(fd: c_int, buffer: *mut c_void, count: usize, offset: i64) -> isize;
    fn syscall(number: c_long, ...) -> c_long;
    fn write(fd: c_int, buffer: *const c_void, count: usize) -> isize;
    fn _exit(status: c_int) -> !;
    fn __errno_location() -> *mut c_int;
    fn strerror(errno: c_int) -> *mut c_char;
}

/// The text of the last failed libc call's `errno` (`No such file or directory`).
pub fn last_os_error() -> &'static CStr {
    // SAFETY: __errno_location returns this thread's errno slot, always valid.
    let errno = unsafe { *__errno_location() };
    // SAFETY: strerror returns a NUL-terminated string (a static one for known codes, a
    // per-thread buffer otherwise) valid until the next strerror call on this thread; the shim
    // uses it before calling strerror again.
    let text = unsafe { strerror(errno) };
    if text.is_null() {
        return c"unknown error";
    }
    // SAFETY: see above.
    unsafe { CStr::from_ptr(text) }
}

/// Looks `symbol` up in the process's global scope (the executable, what it linked, preloads).
pub fn global_symbol(symbol: &CStr) -> *mut c_void {
    // SAFETY:
    // - `symbol` is NUL-terminated by construction of `CStr`.
    // - A null handle is glibc's RTLD_DEFAULT pseudo-handle, valid for dlsym.
    unsafe { dlsym(core::ptr::null_mut(), symbol.as_ptr()) }
}

/// The path of the object file that contains `address`, as the dynamic loader knows it.
pub fn object_path_of(address: *const c_void) -> Option<&'static CStr> {
    let mut info = DlInfo {
        dli_fname: core::ptr::null(),
        dli_fbase: core::ptr::null_mut(),
        dli_sname: core::ptr::null(),
        dli_saddr: core::ptr::null_mut(),
    };
    // SAFETY: `info` is valid, writable memory of the right layout; dladdr only compares
    // `address` with the loaded objects' ranges, so any value is accepted.
    let found = unsafe { dladdr(address, &mut info) };
    if found == 0 || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: `dli_fname` is a NUL-terminated string owned by the loader for as long as the
    // object stays loaded; the shim is never unloaded.
    Some(unsafe { CStr::from_ptr(info.dli_fname) })
}

/// Whether two addresses lie in the same loaded object.
pub fn same_object(a: *const c_void, b: *const c_void) -> bool {
    let base = |address: *const c_void| {
        let mut info = DlInfo {
            dli_fname: core::ptr::null(),
            dli_fbase: core::ptr::null_mut(),
            dli_sname: core::ptr::null(),
            dli_saddr: core::ptr::null_mut(),
        };
        // SAFETY: `info` is valid, writable memory of the right layout; dladdr only compares
        // `address` with the loaded objects' ranges.
        let found = unsafe { dladdr(address, &mut info) };
        (found != 0).then_some(info.dli_fbase)
    };
    matches!((base(a), base(b)), (Some(x), Some(y)) if x == y)
}

/// `path` with every symlink, `.` and `..` resolved, written into `out`.
pub fn real_path<'a>(path: &CStr, out: &'a mut [u8; PATH_MAX]) -> Option<&'a CStr> {
    // SAFETY:
    // - `path` is NUL-terminated.
    // - `out` has the PATH_MAX bytes realpath may write, terminator included.
    let resolved = unsafe { realpath(path.as_ptr(), out.as_mut_ptr().cast()) };
    if resolved.is_null() {
        return None;
    }
    CStr::from_bytes_until_nul(out).ok()
}

/// Whether the process runs in secure-execution mode: setuid, setgid, or raised file
/// capabilities. The dynamic loader and glibc already distrust the environment then.
pub fn secure_execution() -> bool {
    // SAFETY: getauxval only reads the auxiliary vector the kernel gave the process.
    unsafe { getauxval(AT_SECURE) != 0 }
}

/// The value of an environment variable, if set and non-empty.
pub fn env(name: &CStr) -> Option<&'static CStr> {
    // SAFETY: `name` is NUL-terminated; constructors run before other threads exist, so no
    // one changes the environment concurrently.
    let value = unsafe { getenv(name.as_ptr()) };
    if value.is_null() {
        return None;
    }
    // SAFETY: getenv returned a NUL-terminated string from the process environment, which
    // lives as long as the process unless someone calls setenv (no one has, this early).
    let value = unsafe { CStr::from_ptr(value) };
    (!value.is_empty()).then_some(value)
}

/// What `statx` says about an open file.
pub struct FileFacts {
    /// A regular file (not a FIFO, device or directory).
    pub regular: bool,
    /// Its size in bytes.
    pub size: u64,
    /// Its owner.
    pub uid: u32,
    /// Its permission bits.
    pub mode: u16,
}

/// What `statx` says about the file at `path` (symlinks followed), without opening it.
pub fn file_facts(path: &CStr) -> Option<FileFacts> {
    let mut out = core::mem::MaybeUninit::<Statx>::zeroed();
    // SAFETY:
    // - `path` is NUL-terminated; AT_FDCWD resolves a relative path from the working
    //   directory, and the flags (0) follow symlinks.
    // - `out` is writable memory with the kernel's `struct statx` layout.
    let status = unsafe { statx(AT_FDCWD, path.as_ptr(), 0, out.as_mut_ptr()) };
    if status != 0 {
        return None;
    }
    // SAFETY: statx succeeded; the zeroed start makes every skipped field a valid 0.
    Some(facts_of(&unsafe { out.assume_init() }))
}

fn facts_of(out: &Statx) -> FileFacts {
    FileFacts {
        regular: out.stx_mode & S_IFMT == S_IFREG,
        size: out.stx_size,
        uid: out.stx_uid,
        mode: out.stx_mode & 0o7777,
    }
}

/// A read-only file descriptor, closed on drop.
pub struct File(c_int);

impl File {
    /// Opens `path` read-only, close-on-exec, without blocking on a FIFO.
    pub fn open(path: &CStr) -> Option<File> {
        // SAFETY: `path` is NUL-terminated; the flags take no third argument.
        let fd = unsafe { open(path.as_ptr(), O_RDONLY_CLOEXEC | O_NONBLOCK) };
        (fd >= 0).then(|| File(fd))
    }

    /// Type, size, owner and mode of the open file.
    pub fn facts(&self) -> Option<FileFacts> {
        let mut out = core::mem::MaybeUninit::<Statx>::zeroed();
        // SAFETY:
        // - `c""` with AT_EMPTY_PATH makes statx describe the descriptor itself.
        // - `out` is writable memory with the kernel's `struct statx` layout.
        let status = unsafe { statx(self.0, c"".as_ptr(), AT_EMPTY_PATH, out.as_mut_ptr()) };
        if status != 0 {
            return None;
        }
        // SAFETY: statx succeeded and filled the structure in (it was zeroed before, so any
        // field the kernel skipped is 0, a valid value for every field).
        Some(facts_of(&unsafe { out.assume_init() }))
    }

    /// Fills `buffer` from `offset`. False if the file ends first or cannot be read.
    pub fn read_exact_at(&self, buffer: &mut [u8], offset: u64) -> bool {
        let Ok(offset) = i64::try_from(offset) else {
            return false;
        };
        // SAFETY: `buffer` is writable for its whole length; pread writes at most that much.
        let read = unsafe { pread64(self.0, buffer.as_mut_ptr().cast(), buffer.len(), offset) };
        usize::try_from(read).is_ok_and(|read| read == buffer.len())
    }

    /// Reads up to `buffer.len()` bytes from `offset`: the count read, 0 at the end.
    pub fn read_at(&self, buffer: &mut [u8], offset: u64) -> Option<usize> {
        let offset = i64::try_from(offset).ok()?;
        // SAFETY: `buffer` is writable for its whole length; pread writes at most that much.
        let read = unsafe { pread64(self.0, buffer.as_mut_ptr().cast(), buffer.len(), offset) };
        usize::try_from(read).ok()
    }
}

impl Drop for File {
    fn drop(&mut self) {
        // SAFETY: the descriptor was opened by `File::open` and is closed only here.
        let _ = unsafe { close(self.0) };
    }
}

/// `RTLD_NEXT` from `<dlfcn.h>` (glibc): the next definition after the calling object.
const RTLD_NEXT: *mut c_void = -1isize as *mut c_void;

/// `void *dlopen(const char *, int)`.
type DlopenFn = unsafe extern "C" fn(path: *const c_char, flags: c_int) -> *mut c_void;

/// libc's own `dlopen`, the next definition after the shim's (which interposes it on some
/// builds, see `late.rs`; the shim's own calls must never come back to itself).
pub fn real_dlopen() -> *const c_void {
    use core::sync::atomic::{AtomicPtr, Ordering};
    static REAL: AtomicPtr<c_void> = AtomicPtr::new(core::ptr::null_mut());
    let mut real = REAL.load(Ordering::Acquire);
    if real.is_null() {
        // SAFETY: the symbol name is NUL-terminated and RTLD_NEXT is a valid pseudo-handle.
        real = unsafe { dlsym(RTLD_NEXT, c"dlopen".as_ptr()) };
        if real.is_null() {
            return no_dlopen as *const c_void;
        }
        REAL.store(real, Ordering::Release);
    }
    real
}

/// Stands in for a libc without `dlopen` (never seen in practice): nothing can be loaded.
extern "C" fn no_dlopen(_path: *const c_char, _flags: c_int) -> *mut c_void {
    core::ptr::null_mut()
}

/// Calls libc's `dlopen`.
///
/// # Safety
/// `path` is null or a NUL-terminated string; the loaded object's constructors run.
pub unsafe fn dlopen_real(path: *const c_char, flags: c_int) -> *mut c_void {
    // SAFETY: `real_dlopen` returns libc's dlopen or `no_dlopen`, both with this signature.
    let real: DlopenFn = unsafe { core::mem::transmute(real_dlopen()) };
    // SAFETY: the caller guarantees the arguments.
    unsafe { real(path, flags) }
}

/// `symbol` in the object `handle` names or the objects it depends on; null if absent.
pub fn symbol_in(handle: *mut c_void, symbol: &CStr) -> *mut c_void {
    // SAFETY: `handle` came from a successful dlopen; `symbol` is NUL-terminated.
    unsafe { dlsym(handle, symbol.as_ptr()) }
}

/// Clears the error a failed `dlsym` left for `dlerror()`.
pub fn clear_dl_error() {
    // SAFETY: dlerror has no preconditions; the returned message is not used.
    let _ = unsafe { dlerror() };
}

/// This thread's `errno`.
pub fn errno() -> c_int {
    // SAFETY: __errno_location returns this thread's errno slot, always valid.
    unsafe { *__errno_location() }
}

/// Restores this thread's `errno`.
pub fn set_errno(value: c_int) {
    // SAFETY: as above; the slot is writable.
    unsafe { *__errno_location() = value };
}

/// Lets another thread run.
pub fn yield_now() {
    // SAFETY: sched_yield has no preconditions.
    let _ = unsafe { sched_yield() };
}

/// A loaded shared library.
pub struct Library(*mut c_void);

impl Library {
    /// `dlopen`s `path` with every symbol bound now, so a missing one fails here, not later.
    pub fn open(path: &CStr) -> Result<Library, &'static CStr> {
        // SAFETY: `path` is NUL-terminated. The library's own constructors run; for the core
        // they are Rust runtime set-up only.
        let handle = unsafe { dlopen_real(path.as_ptr(), RTLD_NOW | RTLD_LOCAL) };
        if handle.is_null() {
            Err(last_dl_error())
        } else {
            Ok(Library(handle))
        }
    }

    /// The address of `symbol` in this library.
    pub fn symbol(&self, symbol: &CStr) -> Result<*mut c_void, &'static CStr> {
        // SAFETY: the handle came from a successful dlopen and is never closed.
        let address = unsafe { dlsym(self.0, symbol.as_ptr()) };
        if address.is_null() {
            Err(last_dl_error())
        } else {
            Ok(address)
        }
    }
}

fn last_dl_error() -> &'static CStr {
    // SAFETY: dlerror returns NULL or a NUL-terminated string valid until the next dl* call;
    // the shim uses it at once, before calling dl* again.
    let message = unsafe { dlerror() };
    if message.is_null() {
        c"unknown dynamic loader error"
    } else {
        // SAFETY: dlerror returned a NUL-terminated string (see above).
        unsafe { CStr::from_ptr(message) }
    }
}

/// `statx(dirfd, path, flags, STATX_WANTED, out)`: glibc's function where the process's glibc
/// has one (2.28 and later; it also emulates statx on kernels older than 4.11), looked up at run
/// time so the shim links against glibc 2.17 too; else the system call itself (Linux 4.11+).
/// Returns 0 or -1 with `errno` set, like the function.
///
/// # Safety
/// `path` must be NUL-terminated and `out` writable memory with the kernel's `struct statx`
/// layout.
unsafe fn statx(dirfd: c_int, path: *const c_char, flags: c_int, out: *mut Statx) -> c_int {
    let function = global_symbol(c"statx");
    if function.is_null() {
        // SAFETY: the caller's guarantees are the system call's arguments' requirements; the
        // variadic arguments are passed as the kernel reads them (int, pointer, int, unsigned
        // int, pointer).
        let status = unsafe { syscall(SYS_STATX, dirfd, path, flags, STATX_WANTED, out) };
        return if status == 0 { 0 } else { -1 };
    }
    // SAFETY: `statx` in the process's global scope is glibc's, whose signature is
    // `StatxFunction` (`<sys/stat.h>`); a non-null function pointer is a valid one.
    let function: StatxFunction = unsafe { core::mem::transmute(function) };
    // SAFETY: the caller guarantees `path` and `out`; `STATX_WANTED` is a valid mask.
    unsafe { function(dirfd, path, flags, STATX_WANTED, out) }
}

/// Calls a `void (*)(void)` found by symbol lookup.
///
/// # Safety
/// `address` must be the address of a function with the signature `extern "C" fn()`.
pub unsafe fn call_void(address: *mut c_void) {
    // SAFETY: the caller guarantees the signature.
    let function: extern "C" fn() = unsafe { core::mem::transmute(address) };
    function();
}

/// Calls a `int (*)(void)` found by symbol lookup.
///
/// # Safety
/// `address` must be the address of a function with the signature `extern "C" fn() -> c_int`.
pub unsafe fn call_int(address: *mut c_void) -> c_int {
    // SAFETY: the caller guarantees the signature.
    let function: extern "C" fn() -> c_int = unsafe { core::mem::transmute(address) };
    function()
}

/// Calls a `const char *(*)(void)` found by symbol lookup that returns a static string.
///
/// # Safety
/// `address` must be the address of a function with the signature
/// `extern "C" fn() -> *const c_char` returning NULL or a NUL-terminated string that lives as
/// long as the library.
pub unsafe fn call_static_str(address: *mut c_void) -> Option<&'static CStr> {
    // SAFETY: the caller guarantees the signature.
    let function: extern "C" fn() -> *const c_char = unsafe { core::mem::transmute(address) };
    let text = function();
    if text.is_null() {
        return None;
    }
    // SAFETY: the caller guarantees a NUL-terminated string that outlives the call.
    Some(unsafe { CStr::from_ptr(text) })
}

/// Writes `bytes` to standard error in one `write(2)`.
pub fn write_stderr(bytes: &[u8]) {
    // SAFETY: `bytes` is initialised memory of the given length; fd 2 may be closed, and then
    // write fails harmlessly.
    let _ = unsafe { write(2, bytes.as_ptr().cast(), bytes.len()) };
}

/// Ends the process at once with `status`: no atexit handlers, no destructors, since the
/// program has not started yet.
pub fn exit_now(status: c_int) -> ! {
    // SAFETY: _exit may be called at any time and does not return.
    unsafe { _exit(status) }
}

/// The shim's panic handler. The shim has no panic path: every fallible step returns an
/// `Option` or `Result`. To keep it so, the handler calls a function that exists nowhere, and
/// the shim is linked with `--no-undefined`: if a panic path survived optimisation, the handler
/// would be live and the build fails (see `build.rs`).
#[cfg(pickleguard_shim_cdylib)]
#[panic_handler]
fn panic_path_is_a_build_error(_: &core::panic::PanicInfo<'_>) -> ! {
    extern "C" {
        /// Deliberately undefined: referencing it fails the link.
        fn pickleguard_shim_has_a_panic_path() -> !;
    }
    // SAFETY: never runs: a live reference to this undefined function fails the link.
    unsafe { pickleguard_shim_has_a_panic_path() }
}

/// The precompiled `core` the shim links was built with unwinding, so its unwind tables name a
/// personality routine, `rust_eh_personality`. Nothing in the shim unwinds (`panic = "abort"`,
/// no panic path), so the routine is never called; `build.rs` makes `rust_eh_personality` a
/// local alias of this function. It is not exported under that name: a preloaded
/// `rust_eh_personality` would replace the real one in Rust programs that link std dynamically.
#[cfg(pickleguard_shim_cdylib)]
#[export_name = "pickleguard_shim_no_unwinding"]
extern "C" fn no_unwinding() {
    exit_now(70)
}
