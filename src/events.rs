//! Every event the core logs, with the fields JSON lines carry. Library code logs only through
//! these functions, so the event names and fields stay in one place.

use pickleguard_policy::{Decision, Event, Global, Mode, Outcome, Problem};
use tracing::{debug, error, info, warn};

/// `allowed`, `not-allowlisted` or `hard-denied`, spelled by the shared vocabulary.
pub fn decision_name(decision: Decision) -> &'static str {
    Outcome::of(decision).as_str()
}

/// What decided: the pack or entry that allowed it, `hard-deny`, or `none`.
pub fn policy_source(decision: Decision) -> String {
    match decision {
        Decision::Allowed(source) => source.to_string(),
        Decision::NotAllowed => "none".into(),
        Decision::HardDenied(_) => "hard-deny".into(),
    }
}

/// Emits one event about a global with the fields every such event carries.
macro_rules! global_event {
    ($level:ident, $event:expr, $global:expr, $decision:expr, $mode:expr, $source:expr, $caller:expr, $($message:tt)+) => {
        $level!(
            event = $event.as_str(),
            module = $global.module.as_str(),
            name = $global.name.as_str(),
            decision = decision_name($decision),
            mode = %$mode,
            policy_source = $source,
            caller = $caller.unwrap_or(""),
            $($message)+
        )
    };
}

/// One refused global.
pub fn blocked(global: &Global, decision: Decision, mode: Mode, caller: Option<&str>) {
    let why = match decision {
        Decision::HardDenied(reason) => format!("hard-denied: {reason}"),
        _ => "not in the allowlist".into(),
    };
    let source = policy_source(decision);
    global_event!(
        warn,
        Event::Blocked,
        global,
        decision,
        mode,
        source.as_str(),
        caller,
        "blocked `{global}` ({why}){}",
        at(caller)
    );
}

/// One global that `warn` mode let through.
pub fn warned(global: &Global, decision: Decision, caller: Option<&str>) {
    let source = policy_source(decision);
    global_event!(warn, Event::Warned, global, decision, Mode::Warn, source.as_str(), caller,
        "warn mode: allowed `{global}`, which enforce mode would refuse: it is not in the allowlist{}",
        at(caller));
}

/// One global written to the record file.
pub fn recorded(global: &Global, decision: Decision, mode: Mode, caller: Option<&str>) {
    let source = policy_source(decision);
    global_event!(
        info,
        Event::Recorded,
        global,
        decision,
        mode,
        source.as_str(),
        caller,
        "recorded `{global}` ({}){}",
        decision_name(decision),
        at(caller)
    );
}

/// A global resolved by multiprocessing's own channel, which skips the allowlist.
pub fn trusted_ipc(global: &Global, decision: Decision, mode: Mode, caller: Option<&str>) {
    global_event!(
        debug,
        Event::TrustedIpc,
        global,
        decision,
        mode,
        Outcome::TrustedIpc.as_str(),
        caller,
        "trusted multiprocessing IPC: allowed `{global}`{}",
        at(caller)
    );
}

/// A configuration problem; protection stays on.
pub fn config_error(problem: &Problem) {
    error!(
        event = "config_error",
        caller = problem.origin.as_str(),
        "{problem}"
    );
}

/// This process is not (or no longer) checking pickles.
pub fn unprotected(mode: Mode, message: &str) {
    warn!(event = "unprotected", mode = %mode, "{message}");
}

/// Python code tried to weaken a locked policy.
pub fn locked(action: &str, caller: Option<&str>) {
    error!(
        event = "locked",
        mode = "enforce",
        caller = caller.unwrap_or(""),
        "refused {action}: the policy is locked (PICKLEGUARD_LOCK){}",
        at(caller)
    );
}

/// The mode was changed from Python.
pub fn mode_changed(mode: Mode, caller: Option<&str>) {
    info!(event = "mode_changed", mode = %mode, caller = caller.unwrap_or(""), "mode set to `{mode}` from Python{}", at(caller));
}

fn at(caller: Option<&str>) -> String {
    caller.map(|c| format!(" at {c}")).unwrap_or_default()
}

/// A reconstruction step (REDUCE, NEWOBJ, BUILD, ...) that failed its global's rules: refused
/// in every mode; `mode` is logged for context.
pub fn reconstruction(
    global: &Global,
    apply: &str,
    check: &str,
    detail: &str,
    mode: Mode,
    caller: Option<&str>,
) {
    // Refused in every mode (see `refusal::refuse_reconstruction`).
    let verdict = "blocked";
    warn!(
        event = "reconstruction",
        module = global.module.as_str(),
        name = global.name.as_str(),
        apply = apply,
        check = check,
        mode = %mode,
        caller = caller.unwrap_or(""),
        "{verdict} {apply} of `{global}`: it fails the `{check}` check ({detail}){}",
        at(caller)
    );
}

/// The import watch could not act on a module: its channel is not trusted, or its code
/// archives are not gated.
pub fn watch_failed(message: &str) {
    error!(
        event = "watch_failed",
        "pickleguard could not watch an import ({message}); multiprocessing trust or the code-archive gate may be missing for it"
    );
}

/// A code-bearing archive was refused (`blocked`), or let through in `warn` mode (`warned`).
pub fn code_archive(
    format: &str,
    global: &Global,
    refused: bool,
    mode: Mode,
    caller: Option<&str>,
) {
    if refused {
        warn!(
            event = "blocked",
            module = global.module.as_str(),
            name = global.name.as_str(),
            decision = "contains-code",
            mode = %mode,
            policy_source = "allow_code",
            caller = caller.unwrap_or(""),
            "blocked a {format} archive: it contains code{}",
            at(caller)
        );
    } else {
        warn!(
            event = "warned",
            module = global.module.as_str(),
            name = global.name.as_str(),
            decision = "contains-code",
            mode = %mode,
            policy_source = "allow_code",
            caller = caller.unwrap_or(""),
            "warn mode: loading a {format} archive, which contains code that runs as it loads{}",
            at(caller)
        );
    }
}
