//! `pickleguard packs [NAME...]`: every policy pack with its entries, reasons and risk notes,
//! straight from the policy the hook enforces.

use std::process::ExitCode;

use pickleguard_policy::packs::{Pack, PACKS};

/// The marker pack reasons carry for entries whose libraries do not range-check state.
const RISK: &str = "RISK";

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
        let risky = pack
            .entries
            .iter()
            .filter(|e| e.reason.contains(RISK))
            .count();
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
            let flag = if entry.reason.contains(RISK) {
                "!"
            } else {
                " "
            };
            println!("  {flag} {}  {}", entry.global(), entry.reason);
        }
        println!();
    }
    if !brief {
        println!("Entries marked ! carry a risk note: read it before enabling the pack.");
        println!("Enable a pack with `packs = [\"NAME\"]` in the config, PICKLEGUARD_PACKS=NAME or --pack NAME.");
    }
    ExitCode::SUCCESS
}
