//! The policy, mode and switches in force in this process.
//!
//! The hook and the `pickleguard` module both run with the GIL held, and no lock here is held
//! while calling into Python, so a thread that forks (which also needs the GIL) can never
//! leave one locked in the child.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock, RwLock, RwLockReadGuard};

use pickleguard_policy::settings::CodeFormat;
use pickleguard_policy::{Decision, Global, Mode, Policy, Settings, Source};
use rustc_hash::FxHashMap;

use crate::record::Recorder;
use crate::Error;

/// Most decisions a process keeps before starting the cache afresh: real programs resolve a
/// few dozen distinct globals; a hostile stream of distinct names cannot grow it without bound.
const CACHE_LIMIT: usize = 4096;

/// Decisions already made, by module then name, so a lookup needs no allocation.
#[derive(Default)]
struct DecisionCache {
    by_module: FxHashMap<String, FxHashMap<String, Decision>>,
    len: usize,
}

/// The policy and the decisions made under it, locked together so a change of policy and the
/// end of its cached decisions are one step (and locks are always taken in one order).
struct PolicyState {
    policy: Policy,
    decisions: Mutex<DecisionCache>,
}

/// The guard's state, set once by the install function.
pub struct Guard {
    mode: AtomicU8,
    state: RwLock<PolicyState>,
    /// Python code may not weaken the policy.
    pub locked: bool,
    /// multiprocessing's own pickles skip the allowlist.
    pub trust_ipc: bool,
    /// Learning mode's record file.
    pub recorder: Option<Recorder>,
    /// Code-bearing archive formats allowed to load.
    pub allow_code: Vec<CodeFormat>,
}

static GUARD: OnceLock<Guard> = OnceLock::new();

/// Creates the guard. Returns `None` if it already exists.
pub fn install(settings: Settings, recorder: Option<Recorder>) -> Option<&'static Guard> {
    let mut created = false;
    let guard = GUARD.get_or_init(|| {
        created = true;
        Guard {
            mode: AtomicU8::new(mode_code(settings.mode)),
            state: RwLock::new(PolicyState {
                policy: settings.policy,
                decisions: Mutex::new(DecisionCache::default()),
            }),
            locked: settings.lock,
            trust_ipc: settings.trust_ipc,
            recorder,
            allow_code: settings.allow_code,
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

    /// Decides on a pair; see [`Policy::decide`]. A repeated pair costs one lookup.
    pub fn decide(&self, module: &str, name: &str) -> Decision {
        let state = self.read();
        let mut cache = state
            .decisions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(&known) = cache
            .by_module
            .get(module)
            .and_then(|names| names.get(name))
        {
            return known;
        }
        let decision = state.policy.decide(module, name);
        if cache.len >= CACHE_LIMIT {
            *cache = DecisionCache::default();
        }
        cache
            .by_module
            .entry(module.to_string())
            .or_default()
            .insert(name.to_string(), decision);
        cache.len += 1;
        decision
    }

    /// The importable spellings of a pair that the policy does not allow yet.
    pub fn missing(&self, module: &str, name: &str) -> Vec<Global> {
        self.read().policy.missing(module, name)
    }

    /// The names of the packs in force, `ml` first.
    pub fn pack_names(&self) -> Vec<&'static str> {
        self.read().policy.packs().map(|pack| pack.name).collect()
    }

    /// Every allowed global.
    pub fn allowed(&self) -> Vec<String> {
        self.read().policy.allowed()
    }

    /// Allows all of `globals`, or none of them if one is hard-denied.
    pub fn allow_all(&self, globals: &[Global], source: Source) -> Result<(), Error> {
        let mut state = self
            .state
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut updated = state.policy.clone();
        for global in globals {
            updated.allow(global, source, None)?;
        }
        *state = PolicyState {
            policy: updated,
            decisions: Mutex::new(DecisionCache::default()),
        };
        Ok(())
    }

    fn read(&self) -> RwLockReadGuard<'_, PolicyState> {
        // A poisoned lock still holds a consistent state: `allow_all` swaps it in whole, and
        // the cache holds only copies of decisions.
        self.state
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
