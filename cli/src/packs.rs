//! `pickleguard packs [NAME...]`: every policy pack with its entries, why each is allowed, the
//! opcodes that may apply it, the checks its arguments or state must pass, and a risk note for
//! every entry a pickle may apply with nothing checked, straight from the policy the hook
//! enforces.

use std::process::ExitCode;

use pickleguard_policy::packs::{Entry, Pack, PACKS};

/// The risk note of an entry, if it has one: a pickle may apply it (call it, or build onto what
/// it made) and no check looks at what it is given, or its reason names a risk itself.
fn risk(entry: &Entry) -> Option<&'static str> {
    if entry.reason.contains("RISK") {
        Some("its reason names a risk")
    } else if !entry.apply.is_empty() && entry.checks.is_empty() {
        Some("nothing checks the arguments or state a pickle gives it: its reason is the whole review")
    } else {
        None
    }
}

pub fn run(names: &[String], brief: bool) -> ExitCode {
    let chosen: Vec<&Pack> = if names.is_empty() {
        PACKS.to_vec()
    } else {
        PACKS
            .iter()
            .copied()
            .filter(|p| names.iter().any(|n| n == p.name))
            .collect()
    };
    for pack in chosen {
        let risky = pack.entries.iter().filter(|e| risk(e).is_some()).count();
        let requires = if pack.requires.is_empty() {
            String::new()
        } else {
            format!("; enables {}", pack.requires.join(", "))
        };
        println!(
            "{}: {} ({} entries, {risky} with a risk note{requires})",
            pack.name,
            pack.summary,
            pack.entries.len()
        );
        if brief {
            continue;
        }
        for entry in pack.entries {
            let flag = if risk(entry).is_some() { "!" } else { " " };
            println!("  {flag} {}  {}", entry.global(), entry.reason);
            let applied: Vec<&str> = entry.apply.iter().map(|a| a.as_str()).collect();
            let applied = if applied.is_empty() {
                "referenced only".to_string()
            } else {
                format!("applied by {}", applied.join(", "))
            };
            let checks = if entry.checks.is_empty() {
                "no checks".to_string()
            } else {
                format!("checks: {}", entry.checks.join(", "))
            };
            println!("      {applied}; {checks}");
            if let Some(note) = risk(entry) {
                println!("      risk: {note}");
            }
        }
        println!();
    }
    if !brief {
        println!("Entries marked ! carry a risk note: read it before enabling the pack.");
        println!("Enable a pack with `packs = [\"NAME\"]` in the config, PICKLEGUARD_PACKS=NAME or --pack NAME.");
    }
    ExitCode::SUCCESS
}
