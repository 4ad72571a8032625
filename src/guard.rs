//! The policy, mode and switches in force in this process.
//!
//! The hook and the `pickleguard` module both run with the GIL held, and no lock here is held
//! while calling into Python, so a thread that forks (which also needs the GIL) can never
//! leave one locked in the child.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{OnceLock, RwLock, RwLockReadGuard};

use pickleguard_policy::{Decision, Global, Mode, Policy, Settings, Source};

use crate::record::Recorder;
use crate::Error;

/// The guard's state, set once by the install function.
pub struct Guard {
    mode: AtomicU8,
    policy: RwLock<Policy>,
    /// Python code may not weaken the policy.
    pub locked: bool,
    /// multiprocessing's own pickles skip the allowlist.
    pub trust_ipc: bool,
    /// Learning mode's record file.
    pub recorder: Option<Recorder>,
}

static GUARD: OnceLock<Guard> = OnceLock::new();

/// Creates the guard. Returns `None` if it already exists.
pub fn install(settings: Settings, recorder: Option<Recorder>) -> Option<&'static Guard> {
    let mut created = false;
    let guard = GUARD.get_or_init(|| {
        created = true;
        Guard {
            mode: AtomicU8::new(mode_code(settings.mode)),
            policy: RwLock::new(settings.policy),
            locked: settings.lock,
            trust_ipc: settings.trust_ipc,
            recorder,
        }
    });
    created.then_some(guard)
}

/// The guard, once installed.
pub fn get() -> Result<&'static Guard, Error> {
    GUARD.get().ok_or(Error::NotInstalled)
}

impl Guard {
    /// The mode in force.
    pub fn mode(&self) -> Mode {
        match self.mode.load(Ordering::Relaxed) {
            0 => Mode::Enforce,
            1 => Mode::Warn,
            _ => Mode::Off,
        }
    }

    /// Switches mode.
    pub fn set_mode(&self, mode: Mode) {
        self.mode.store(mode_code(mode), Ordering::Relaxed);
    }

    /// Decides on a pair; see [`Policy::decide`].
    pub fn decide(&self, module: &str, name: &str) -> Decision {
        self.read().decide(module, name)
    }

    /// The importable spellings of a pair that the policy does not allow yet.
    pub fn missing(&self, module: &str, name: &str) -> Vec<Global> {
        self.read().missing(module, name)
    }

    /// Every allowed global.
    pub fn allowed(&self) -> Vec<String> {
        self.read().allowed()
    }

    /// Allows all of `globals`, or none of them if one is hard-denied.
    pub fn allow_all(&self, globals: &[Global], source: Source) -> Result<(), Error> {
        let mut policy = self
            .policy
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut updated = policy.clone();
        for global in globals {
            updated.allow(global, source, None)?;
        }
        *policy = updated;
        Ok(())
    }

    fn read(&self) -> RwLockReadGuard<'_, Policy> {
        // A poisoned lock still holds a consistent policy: `allow_all` swaps it in whole.
        self.policy
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn mode_code(mode: Mode) -> u8 {
    match mode {
        Mode::Enforce => 0,
        Mode::Warn => 1,
        Mode::Off => 2,
    }
}
