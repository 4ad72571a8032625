//! `pickleguard scan --format sarif`: SARIF 2.1.0 for code-scanning dashboards. One rule per
//! verdict word of the shared vocabulary, one result per refused global or unreadable file,
//! and every scanned file listed as an artifact with its SHA-256.

use pickleguard_policy::{Global, Outcome};
use pickleguard_scan::Verdict;
use serde_json::{json, Value};

use crate::scan::{describe, error_chain, Scanned, Status};

/// The schema the document declares.
const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// The rules, in `ruleIndex` order: (id, level, short description, help).
const RULES: [(&str, &str, &str, &str); 5] = [
    (
        "hard-denied",
        "error",
        "A pickle resolves a global that can run code or touch the system",
        "Do not load this file. No configuration can allow a hard-denied global.",
    ),
    (
        "unresolved",
        "error",
        "A pickle resolves a global whose name cannot be known without running it",
        "Do not trust this file: the global it loads cannot be judged statically.",
    ),
    (
        "not-allowlisted",
        "warning",
        "A pickle resolves a global that is not on the allowlist",
        "If you trust the file and the class, add the global to the allowlist (pickleguard allowlist --merge FILE).",
    ),
    (
        "concern",
        "error",
        "The file carries code its loader runs, or its readers disagree, or it cannot be scanned",
        "Do not trust this file: what a loader runs or reads is not what its globals show.",
    ),
    (
        "scan-error",
        "error",
        "The file could not be read or scanned to its end",
        "Its verdict is incomplete: findings before the damage are reported.",
    ),
];

fn rule_index(id: &str) -> usize {
    RULES.iter().position(|rule| rule.0 == id).unwrap_or(0)
}

/// A URI reference for a path: relative paths stay relative (to the scan's working
/// directory, `%SRCROOT%`), absolute ones become `file://` URIs; everything outside the
/// unreserved set and `/` is percent-encoded.
pub fn uri(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    if path.starts_with('/') {
        out.push_str("file://");
    }
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn location(path: &str, member: Option<&str>, offset: Option<u64>) -> Value {
    let mut physical = json!({ "artifactLocation": artifact_location(path) });
    if let (None, Some(offset)) = (member, offset) {
        physical["region"] = json!({ "byteOffset": offset, "byteLength": 1 });
    }
    let mut location = json!({ "physicalLocation": physical });
    if let Some(member) = member {
        location["logicalLocations"] = json!([{ "fullyQualifiedName": member, "kind": "member" }]);
    }
    location
}

fn artifact_location(path: &str) -> Value {
    if path.starts_with('/') {
        json!({ "uri": uri(path) })
    } else {
        json!({ "uri": uri(path), "uriBaseId": "%SRCROOT%" })
    }
}

fn result(rule: &str, text: String, location: Value, fingerprint: String) -> Value {
    json!({
        "ruleId": rule,
        "ruleIndex": rule_index(rule),
        "level": RULES[rule_index(rule)].1,
        "message": { "text": text },
        "locations": [location],
        "partialFingerprints": { "pickleguardFinding/v1": fingerprint },
    })
}

/// The whole SARIF log for a scan.
pub fn document(files: &[Scanned]) -> Value {
    let mut results = Vec::new();
    let mut artifacts = Vec::new();
    for file in files {
        if matches!(file.status, Status::Skipped) {
            continue;
        }
        let path = file.report.path.as_str();
        let mut artifact = json!({ "location": artifact_location(path) });
        if let Some(hash) = &file.sha256 {
            artifact["hashes"] = json!({ "sha-256": hash });
        }
        artifacts.push(artifact);
        for stream in &file.report.streams {
            let member = stream.member.as_deref();
            for finding in stream.globals.iter().filter(|g| g.is_finding()) {
                let rule = match finding.decision {
                    Verdict::NotAllowed => Outcome::NotAllowlisted,
                    Verdict::Unresolved { .. } => Outcome::Unresolved,
                    _ => Outcome::HardDenied,
                };
                let name = match (&finding.module, &finding.name) {
                    (Some(module), Some(name)) => {
                        Global::new(module.as_str(), name.as_str()).to_string()
                    }
                    _ => "?".into(),
                };
                let inside = member.map(|m| format!(" in `{m}`")).unwrap_or_default();
                results.push(result(
                    rule.as_str(),
                    format!("{}{inside}", describe(finding)),
                    location(path, member, Some(finding.offset)),
                    format!(
                        "{}|{}|{}|{}",
                        file.sha256.as_deref().unwrap_or(path),
                        member.unwrap_or(""),
                        name,
                        finding.offset
                    ),
                ));
            }
            if let Some(error) = &stream.error {
                results.push(result(
                    "scan-error",
                    error_chain(error),
                    location(path, member, None),
                    format!("{path}|{}|error", member.unwrap_or("")),
                ));
            }
        }
        for concern in &file.report.concerns {
            let member = concern.member.as_deref();
            results.push(result(
                "concern",
                format!("{}: {}", concern.kind, concern.detail),
                location(path, member, concern.offset),
                format!("{}|{}|{}", path, member.unwrap_or(""), concern.kind),
            ));
        }
        if let Some(error) = &file.report.error {
            results.push(result(
                "scan-error",
                error_chain(error),
                location(path, None, None),
                format!("{path}||error"),
            ));
        }
    }
    let rules: Vec<Value> = RULES
        .iter()
        .map(|(id, level, short, help)| {
            json!({
                "id": id,
                "name": id,
                "shortDescription": { "text": short },
                "help": { "text": help },
                "defaultConfiguration": { "level": level },
            })
        })
        .collect();
    json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "pickleguard",
                "version": env!("CARGO_PKG_VERSION"),
                "semanticVersion": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "originalUriBaseIds": { "%SRCROOT%": { "description": { "text": "the directory the scan ran in" } } },
            "artifacts": artifacts,
            "results": results,
            "columnKind": "unicodeCodePoints",
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_are_encoded() {
        assert_eq!(uri("models/a b.pkl"), "models/a%20b.pkl");
        assert_eq!(uri("/srv/m\"x.pkl"), "file:///srv/m%22x.pkl");
    }
}
