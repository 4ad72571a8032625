//! Turns the pack files (`packs/*.toml`, the data reviewers read) into the static tables the
//! policy uses: one `Pack` per file and one sorted rule table for [`reconstruct::plan`].
//!
//! A malformed pack file, an unknown opcode, an entry listed twice or a global whose rules differ
//! between two packs fails the build, so a bad pack can never reach a process. Check names are
//! emitted as paths to `reconstruct::checks` statics: an unknown check fails to compile.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use toml::de::{DeTable, DeValue};

/// The pack files, in the order `packs::PACKS` lists them (`ml`, the default, first).
const PACK_FILES: &[&str] = &[
    "ml",
    "stdlib-data",
    "sklearn",
    "pandas",
    "transformers-args",
    "dill",
];

/// The opcode names an entry's `apply` may list, and the `Apply` variant each means.
const OPCODES: &[(&str, &str)] = &[
    ("reduce", "Reduce"),
    ("newobj", "NewObj"),
    ("newobj_ex", "NewObjEx"),
    ("build", "Build"),
    ("instantiate", "Instantiate"),
];

struct Entry {
    module: String,
    name: String,
    reason: String,
    apply: Vec<String>,
    checks: Vec<String>,
}

struct Pack {
    file: &'static str,
    name: String,
    summary: String,
    requires: Vec<String>,
    entries: Vec<Entry>,
}

fn main() {
    let dir =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR")).join("packs");
    println!("cargo:rerun-if-changed=packs");
    let mut packs = Vec::new();
    for file in PACK_FILES {
        let path = dir.join(format!("{file}.toml"));
        println!("cargo:rerun-if-changed={}", path.display());
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|err| fail(&format!("{}: {err}", path.display())));
        packs.push(
            parse(file, &text).unwrap_or_else(|err| fail(&format!("packs/{file}.toml: {err}"))),
        );
    }
    if let Err(err) = validate(&packs) {
        fail(&err);
    }
    let out = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("packs.rs");
    std::fs::write(&out, generate(&packs)).expect("write packs.rs");
}

fn fail(message: &str) -> ! {
    eprintln!("error: bad policy pack: {message}");
    std::process::exit(1);
}

fn parse(file: &'static str, text: &str) -> Result<Pack, String> {
    let table = DeTable::parse(text).map_err(|err| err.to_string())?;
    let table = table.get_ref();
    let mut pack = Pack {
        file,
        name: String::new(),
        summary: String::new(),
        requires: Vec::new(),
        entries: Vec::new(),
    };
    for (key, value) in table.iter() {
        let value = value.get_ref();
        match key.get_ref().as_ref() {
            "name" => pack.name = string(value, "name")?,
            "summary" => pack.summary = string(value, "summary")?,
            "requires" => pack.requires = strings(value, "requires")?,
            "entry" => {
                let DeValue::Array(items) = value else {
                    return Err("`entry` must be an array of tables ([[entry]])".into());
                };
                for item in items.iter() {
                    pack.entries.push(entry(item.get_ref())?);
                }
            }
            other => return Err(format!("unknown key `{other}`")),
        }
    }
    if pack.name != file {
        return Err(format!("`name` must be the file's name, `{file}`"));
    }
    if pack.summary.is_empty() || pack.summary.contains('\n') {
        return Err("`summary` must be one non-empty line".into());
    }
    Ok(pack)
}

fn entry(value: &DeValue<'_>) -> Result<Entry, String> {
    let DeValue::Table(table) = value else {
        return Err("an entry must be a table".into());
    };
    let mut entry = Entry {
        module: String::new(),
        name: String::new(),
        reason: String::new(),
        apply: Vec::new(),
        checks: Vec::new(),
    };
    let mut has_apply = false;
    for (key, value) in table.iter() {
        let value = value.get_ref();
        match key.get_ref().as_ref() {
            "module" => entry.module = string(value, "module")?,
            "name" => entry.name = string(value, "name")?,
            "reason" => entry.reason = string(value, "reason")?,
            "apply" => {
                has_apply = true;
                entry.apply = strings(value, "apply")?;
            }
            "checks" => entry.checks = strings(value, "checks")?,
            other => return Err(format!("unknown entry key `{other}`")),
        }
    }
    let id = format!("{}:{}", entry.module, entry.name);
    if entry.module.is_empty() || entry.name.is_empty() {
        return Err(format!("entry `{id}` needs a module and a name"));
    }
    if entry.reason.trim().is_empty() || entry.reason.contains('\n') {
        return Err(format!("entry `{id}`: `reason` must be one non-empty line"));
    }
    if !has_apply {
        return Err(format!(
            "entry `{id}`: say which opcodes may apply it (`apply = []` for a global that is only referenced)"
        ));
    }
    for op in &entry.apply {
        if !OPCODES.iter().any(|(name, _)| name == op) {
            return Err(format!("entry `{id}`: unknown opcode `{op}` in `apply`"));
        }
    }
    if entry.apply.is_empty() && !entry.checks.is_empty() {
        return Err(format!(
            "entry `{id}`: checks on a global no opcode may apply never run"
        ));
    }
    Ok(entry)
}

fn string(value: &DeValue<'_>, key: &str) -> Result<String, String> {
    match value {
        DeValue::String(text) => Ok(text.to_string()),
        _ => Err(format!("`{key}` must be a string")),
    }
}

fn strings(value: &DeValue<'_>, key: &str) -> Result<Vec<String>, String> {
    let DeValue::Array(items) = value else {
        return Err(format!("`{key}` must be an array of strings"));
    };
    items
        .iter()
        .map(|item| string(item.get_ref(), key))
        .collect()
}

fn validate(packs: &[Pack]) -> Result<(), String> {
    let mut rules: BTreeMap<(&str, &str), (&str, &Entry)> = BTreeMap::new();
    for pack in packs {
        for required in &pack.requires {
            if !packs.iter().any(|p| &p.name == required) {
                return Err(format!(
                    "pack `{}` requires unknown pack `{required}`",
                    pack.name
                ));
            }
        }
        let mut seen = BTreeMap::new();
        for entry in &pack.entries {
            let key = (entry.module.as_str(), entry.name.as_str());
            if seen.insert(key, ()).is_some() {
                return Err(format!(
                    "pack `{}` lists `{}:{}` twice",
                    pack.name, key.0, key.1
                ));
            }
            if let Some((other, earlier)) = rules.get(&key) {
                if earlier.apply != entry.apply || earlier.checks != entry.checks {
                    return Err(format!(
                        "`{}:{}` has different opcodes or checks in packs `{other}` and `{}`",
                        key.0, key.1, pack.name
                    ));
                }
            } else {
                rules.insert(key, (pack.file, entry));
            }
        }
    }
    Ok(())
}

fn ident(name: &str) -> String {
    name.to_uppercase().replace('-', "_")
}

fn apply_list(apply: &[String]) -> String {
    let variants: Vec<String> = apply
        .iter()
        .map(|op| {
            let (_, variant) = OPCODES
                .iter()
                .find(|(name, _)| name == op)
                .expect("validated");
            format!("Apply::{variant}")
        })
        .collect();
    format!("&[{}]", variants.join(", "))
}

fn generate(packs: &[Pack]) -> String {
    let mut out =
        String::from("// @generated by policy/build.rs from policy/packs/*.toml: edit those.\n\n");
    let mut rules: BTreeMap<(&str, &str), &Entry> = BTreeMap::new();
    for pack in packs {
        let konst = ident(&pack.name);
        let mut entries: Vec<&Entry> = pack.entries.iter().collect();
        entries.sort_by(|a, b| (&a.module, &a.name).cmp(&(&b.module, &b.name)));
        writeln!(
            out,
            "/// The entries of pack `{}`, sorted by `(module, name)`.",
            pack.name
        )
        .unwrap();
        writeln!(out, "pub const {konst}: &[Entry] = &[").unwrap();
        for entry in &entries {
            rules.entry((&entry.module, &entry.name)).or_insert(entry);
            writeln!(
                out,
                "    Entry {{ module: {:?}, name: {:?}, reason: {:?}, apply: {}, checks: &{:?} }},",
                entry.module,
                entry.name,
                entry.reason,
                apply_list(&entry.apply),
                entry.checks
            )
            .unwrap();
        }
        writeln!(out, "];\n").unwrap();
        writeln!(out, "/// Pack `{}`: {}", pack.name, pack.summary).unwrap();
        writeln!(
            out,
            "pub static {konst}_PACK: Pack = Pack {{ name: {:?}, summary: {:?}, entries: {konst}, requires: &{:?} }};\n",
            pack.name, pack.summary, pack.requires
        )
        .unwrap();
    }
    writeln!(out, "/// Every pack, `ml` first.").unwrap();
    let list: Vec<String> = packs
        .iter()
        .map(|p| format!("&{}_PACK", ident(&p.name)))
        .collect();
    writeln!(
        out,
        "pub static PACKS: &[&Pack] = &[{}];\n",
        list.join(", ")
    )
    .unwrap();
    writeln!(
        out,
        "/// The reconstruction rules of every global in any pack, sorted by `(module, name)`."
    )
    .unwrap();
    writeln!(out, "pub(crate) static RULES: &[Rule] = &[").unwrap();
    for ((module, name), entry) in &rules {
        let checks: Vec<String> = entry
            .checks
            .iter()
            .map(|check| format!("&checks::{}", ident(check)))
            .collect();
        writeln!(
            out,
            "    Rule {{ module: {module:?}, name: {name:?}, apply: {}, checks: &[{}] }},",
            apply_list(&entry.apply),
            checks.join(", ")
        )
        .unwrap();
    }
    writeln!(out, "];\n").unwrap();
    // `(hash, index into RULES)` sorted by hash: the lookup compares integers, then the names
    // of one candidate.
    let mut hashes: Vec<(u64, usize)> = rules
        .keys()
        .enumerate()
        .map(|(index, (module, name))| (rule_hash(module, name), index))
        .collect();
    hashes.sort();
    for pair in hashes.windows(2) {
        if pair[0].0 == pair[1].0 {
            fail("two rules share a hash: change `rule_hash` in build.rs and rules.rs");
        }
    }
    writeln!(
        out,
        "/// `(rule_hash(module, name), index into RULES)`, sorted by hash."
    )
    .unwrap();
    writeln!(out, "pub(crate) static RULE_HASHES: &[(u64, u16)] = &[").unwrap();
    for (hash, index) in hashes {
        writeln!(out, "    ({hash:#018x}, {index}),").unwrap();
    }
    writeln!(out, "];").unwrap();
    out
}

/// FNV-1a over `module`, a 0xff byte (never in UTF-8), and `name`; `reconstruct::rules` hashes
/// the same way at run time (a test checks that they agree).
fn rule_hash(module: &str, name: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in module
        .as_bytes()
        .iter()
        .chain(&[0xff])
        .chain(name.as_bytes())
    {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}
