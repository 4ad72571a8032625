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
//!
//! The hook is registered again for every later lifetime of the interpreter (see
//! [`crate::lifetime`]), so each registration records its own entry and allocator, and an
//! allocator of ours still in force from an earlier lifetime is looked through, never wrapped.

use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

use crate::ffi::{self, MemAllocator};

/// An allocator copy kept for the life of the process.
struct Saved(MemAllocator);

// SAFETY: the function pointers and context of a CPython allocator are process-global and
// thread-safe (the raw domain is used without the GIL); the copy is never mutated.
unsafe impl Send for Saved {}
// SAFETY: see above.
unsafe impl Sync for Saved {}

/// The raw allocator in force when the hook was last registered (leaked: one small block per
/// interpreter lifetime, and the allocators of ours point into it for the rest of the process).
static AT_REGISTRATION: AtomicPtr<Saved> = AtomicPtr::new(ptr::null_mut());
/// The block `PySys_AddAuditHook` allocated for the hook entry of the last registration.
static ENTRY: AtomicPtr<c_void> = AtomicPtr::new(ptr::null_mut());

/// Registers `hook` and remembers the block CPython allocated for it.
///
/// # Safety
/// Same as [`ffi::add_audit_hook`]: before `Py_Initialize`, on the initialising thread.
pub unsafe fn add_audit_hook_recording_entry(hook: ffi::AuditHook) -> bool {
    let in_force = ffi::raw_allocator();
    let original = saved(not_ours(in_force));
    ENTRY.store(ptr::null_mut(), Ordering::Release);
    AT_REGISTRATION.store(ptr::from_ref(original).cast_mut(), Ordering::Release);
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
    unsafe { ffi::set_raw_allocator(in_force) };
    added
}

/// A copy of `allocator` at a stable address, for the rest of the process.
fn saved(allocator: MemAllocator) -> &'static Saved {
    Box::leak(Box::new(Saved(allocator)))
}

/// The allocator under any of this module's wrappers, which may still be in force from an
/// earlier lifetime of the interpreter.
fn not_ours(mut allocator: MemAllocator) -> MemAllocator {
    let ours: [*const (); 2] = [
        free_entry_with_its_allocator as *const (),
        forward_free as *const (),
    ];
    while allocator
        .free
        .is_some_and(|free| ours.contains(&(free as *const ())))
    {
        // SAFETY: this module installs its functions only with a `context` pointer.
        allocator = *unsafe { inner(allocator.ctx) };
    }
    allocator
}

fn registration() -> Option<&'static Saved> {
    let original = AT_REGISTRATION.load(Ordering::Acquire);
    // SAFETY: non-null values come from `saved`, which leaks them for the whole process.
    (!original.is_null()).then(|| unsafe { &*original })
}

/// Called on `cpython._PySys_ClearAuditHooks`, just before CPython frees the hook list.
///
/// # Safety
/// The caller must hold the GIL, in the audit hook for that event.
pub unsafe fn before_hook_list_freed() {
    let entry = ENTRY.load(Ordering::Acquire);
    let (Some(original), false) = (registration(), entry.is_null()) else {
        return;
    };
    let in_force = ffi::raw_allocator();
    let current = not_ours(in_force);
    if same_allocator(&current, &original.0) {
        // The allocator in force frees the entry correctly, directly or through a wrapper of
        // ours from an earlier lifetime, which checks the current ENTRY itself.
        return;
    }
    let current = saved(current);
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
    match registration() {
        Some(original) if !block.is_null() && block == entry => {
            ENTRY.store(ptr::null_mut(), Ordering::Release);
            // SAFETY: the entry was allocated by `original`, so it is freed by it.
            unsafe { forward_free(context(original), block) }
        }
        // SAFETY: installed only with a `context` pointer.
        _ => unsafe { forward_free(ctx, block) },
    }
}
