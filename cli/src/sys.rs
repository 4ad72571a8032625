//! The one system call the command makes itself.

/// Restores the default SIGPIPE action, so `pickleguard learn ... | head` ends quietly like
/// any Unix tool instead of failing on a closed pipe.
pub fn default_sigpipe() {
    // SAFETY: called first thing in main, before any thread starts; SIG_DFL is a valid action
    // for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
