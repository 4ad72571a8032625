//! Keeps the audit-hook entry's memory paired with the allocator that made it.
//!
//! `PySys_AddAuditHook` allocates its list entry with `PyMem_RawMalloc`. Before
//! `Py_Initialize` that is plain `malloc`, but `PYTHONMALLOC=debug` and `-X dev` switch the raw
//! domain to the debug allocator during start-up, and at exit `_PySys_ClearAuditHooks` frees
//! the entry with it: CPython aborts with `_PyMem_DebugRawFree: bad ID`.
//!
//! So the install records which pointer the entry got, and the hook, on the
//! `cpython._PySys_ClearAuditHooks` event that CPython raises just before freeing the list,
//! wraps the raw allocator in force so that this one pointer goes back to the allocator that
//! made it. Every other call passes straight through, as CPython requires of a wrapper
//! installed after start-up.

use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::OnceLock;

use crate::ffi::{self, MemAllocator};

/// An allocator copy kept for the life of the process.
struct Saved(MemAllocator);

// SAFETY: the function pointers and context of a CPython allocator are process-global and
// thread-safe (the raw domain is used without the GIL); the copy is never mutated.
unsafe impl Send for Saved {}
// SAFETY: see above.
unsafe impl Sync for Saved {}

/// The raw allocator in force when the hook was registered.
static AT_REGISTRATION: OnceLock<Saved> = OnceLock::new();
/// The raw allocator in force when the hook list is about to be freed.
static AT_CLEAR: OnceLock<Saved> = OnceLock::new();
/// The block `PySys_AddAuditHook` allocated for the hook entry.
static ENTRY: AtomicPtr<c_void> = AtomicPtr::new(ptr::null_mut());

/// Registers `hook` and remembers the block CPython allocated for it.
///
/// # Safety
/// Same as [`ffi::add_audit_hook`]: before `Py_Initialize`, on the initialising thread.
pub unsafe fn add_audit_hook_recording_entry(hook: ffi::AuditHook) -> bool {
    let original = AT_REGISTRATION.get_or_init(|| Saved(ffi::raw_allocator()));
    let recording = MemAllocator {
        ctx: context(original),
        malloc: Some(record_malloc),
        calloc: Some(forward_calloc),
        realloc: Some(forward_realloc),
        free: Some(forward_free),
    };
    // SAFETY: before initialisation any complete allocator may be installed; `recording`
    // forwards every call to the allocator in force, so nothing allocated meanwhile mismatches.
    unsafe { ffi::set_raw_allocator(recording) };
    // SAFETY: the caller guarantees the pre-initialisation context.
    let added = unsafe { ffi::add_audit_hook(hook) };
    // SAFETY: puts back exactly the allocator that was in force.
    unsafe { ffi::set_raw_allocator(original.0) };
    added
}

/// Called on `cpython._PySys_ClearAuditHooks`, just before CPython frees the hook list.
///
/// # Safety
/// The caller must hold the GIL, in the audit hook for that event.
pub unsafe fn before_hook_list_freed() {
    let entry = ENTRY.load(Ordering::Acquire);
    let (Some(original), false) = (AT_REGISTRATION.get(), entry.is_null()) else {
        return;
    };
    let current = ffi::raw_allocator();
    if same_allocator(&current, &original.0) || AT_CLEAR.get().is_some() {
        return;
    }
    let current = AT_CLEAR.get_or_init(|| Saved(current));
    let wrapper = MemAllocator {
        ctx: context(current),
        malloc: Some(forward_malloc),
        calloc: Some(forward_calloc),
        realloc: Some(forward_realloc),
        free: Some(free_entry_with_its_allocator),
    };
    // SAFETY: `wrapper` wraps the allocator in force, as required after initialisation; it
    // differs only for ENTRY, which was allocated by `original`.
    unsafe { ffi::set_raw_allocator(wrapper) };
}

/// Compares by address: a different `free` (or context) is what makes the entry mismatch.
fn same_allocator(a: &MemAllocator, b: &MemAllocator) -> bool {
    let malloc = |x: &MemAllocator| x.malloc.map(|f| f as *const ());
    let free = |x: &MemAllocator| x.free.map(|f| f as *const ());
    a.ctx == b.ctx && malloc(a) == malloc(b) && free(a) == free(b)
}

fn context(saved: &'static Saved) -> *mut c_void {
    ptr::from_ref(saved).cast_mut().cast()
}

/// # Safety
/// `ctx` must be a pointer made by [`context`].
unsafe fn inner(ctx: *mut c_void) -> &'static MemAllocator {
    // SAFETY: the caller guarantees `ctx` points at a `Saved` in a static.
    unsafe { &(*ctx.cast::<Saved>()).0 }
}

unsafe extern "C" fn record_malloc(ctx: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: installed only with a `context` pointer.
    let block = unsafe { forward_malloc(ctx, size) };
    ENTRY.store(block, Ordering::Release);
    block
}

unsafe extern "C" fn forward_malloc(ctx: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: installed only with a `context` pointer.
    let a = unsafe { inner(ctx) };
    match a.malloc {
        // SAFETY: forwarding to the wrapped allocator with its own context.
        Some(malloc) => unsafe { malloc(a.ctx, size) },
        None => ptr::null_mut(),
    }
}

unsafe extern "C" fn forward_calloc(ctx: *mut c_void, nelem: usize, elsize: usize) -> *mut c_void {
    // SAFETY: installed only with a `context` pointer.
    let a = unsafe { inner(ctx) };
    match a.calloc {
        // SAFETY: forwarding to the wrapped allocator with its own context.
        Some(calloc) => unsafe { calloc(a.ctx, nelem, elsize) },
        None => ptr::null_mut(),
    }
}

unsafe extern "C" fn forward_realloc(
    ctx: *mut c_void,
    block: *mut c_void,
    size: usize,
) -> *mut c_void {
    // SAFETY: installed only with a `context` pointer.
    let a = unsafe { inner(ctx) };
    match a.realloc {
        // SAFETY: forwarding to the wrapped allocator with its own context.
        Some(realloc) => unsafe { realloc(a.ctx, block, size) },
        None => ptr::null_mut(),
    }
}

unsafe extern "C" fn forward_free(ctx: *mut c_void, block: *mut c_void) {
    // SAFETY: installed only with a `context` pointer.
    let a = unsafe { inner(ctx) };
    if let Some(free) = a.free {
        // SAFETY: forwarding to the wrapped allocator with its own context.
        unsafe { free(a.ctx, block) }
    }
}

unsafe extern "C" fn free_entry_with_its_allocator(ctx: *mut c_void, block: *mut c_void) {
    let entry = ENTRY.load(Ordering::Acquire);
    match AT_REGISTRATION.get() {
        Some(original) if !block.is_null() && block == entry => {
            ENTRY.store(ptr::null_mut(), Ordering::Release);
            // SAFETY: the entry was allocated by `original`, so it is freed by it.
            unsafe { forward_free(context(original), block) }
        }
        // SAFETY: installed only with a `context` pointer.
        _ => unsafe { forward_free(ctx, block) },
    }
}
