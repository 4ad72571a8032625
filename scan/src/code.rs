//! Archives that carry code their loader runs, whatever globals their pickles name:
//!
//! * TorchScript (`torch.jit.save`): `<root>/constants.pkl` and `<root>/code/**.py`. `torch.load`
//!   hands such an archive to `torch.jit.load`, which compiles and runs the code.
//! * torch.package (`PackageExporter`): `<root>/.data/extern_modules` and packaged `.py`
//!   modules. `PackageImporter` imports modules from the archive (running them), and its
//!   unpickler resolves globals itself, never through `pickle.find_class`, so the runtime
//!   guard never sees them. A packaged module can shadow a real one (`collections`).

use std::collections::BTreeSet;

use pickleguard_policy::Policy;

use crate::report::{Finding, Format};

/// dill's functions that rebuild code, functions, modules or arbitrary attributes.
const DILL_CODE: &[&str] = &[
    "_create_code",
    "_create_function",
    "_create_lambda",
    "_create_cell",
    "_import_module",
    "_get_attr",
    "_eval_repr",
    "_load_type",
    "_create_type",
];

/// A global that brings code in through a pickle itself: dill's code and function builders,
/// and anything read from `__main__`, the loading program's own namespace (dill pickles
/// interactive definitions by reference to it). Offset and detail of the first one.
pub(crate) fn in_pickle(finding: &Finding) -> Option<(u64, String)> {
    let (module, name) = (finding.module.as_deref()?, finding.name.as_deref()?);
    if module == "__main__" {
        return Some((
            finding.offset,
            format!(
                "names `__main__.{name}`: whatever the loading program defines under that name \
                 runs (dill pickles by reference to `__main__`)"
            ),
        ));
    }
    let dill = matches!(module, "dill" | "dill._dill" | "dill.dill");
    (dill && DILL_CODE.contains(&name)).then(|| {
        (
            finding.offset,
            format!("`{module}.{name}`: dill rebuilds code or modules from the stream"),
        )
    })
}

/// What [`classify`] found.
pub(crate) struct CodeArchive {
    pub format: Format,
    pub detail: String,
    /// Modules the archive packages (torch.package only), dotted.
    pub modules: Vec<String>,
}

/// Splits `name` at a directory `marker` that sits at the archive's root or one level below
/// (torch's writers put everything under `<archive name>/`): the root, then the rest.
fn under_root<'n>(name: &'n str, marker: &str) -> Option<(&'n str, &'n str)> {
    if let Some(rest) = name.strip_prefix(marker) {
        return Some(("", rest));
    }
    let slash = name.find('/')?;
    name[slash + 1..]
        .strip_prefix(marker)
        .map(|rest| (&name[..=slash], rest))
}

/// Recognises a code-bearing archive by its member names.
pub(crate) fn classify<'n>(names: impl Iterator<Item = &'n str> + Clone) -> Option<CodeArchive> {
    let package_root = names.clone().find_map(|name| {
        under_root(name, ".data/")
            .filter(|(_, rest)| *rest == "extern_modules")
            .map(|(root, _)| root)
    });
    if let Some(root) = package_root {
        let modules: Vec<String> = names
            .clone()
            .filter_map(|name| name.strip_prefix(root)?.strip_suffix(".py"))
            .filter(|path| !path.starts_with(".data/"))
            .map(|path| {
                let path = path.strip_suffix("/__init__").unwrap_or(path);
                path.replace('/', ".")
            })
            .collect();
        let shown: Vec<&str> = modules.iter().take(5).map(String::as_str).collect();
        let detail = format!(
            "a torch.package archive: PackageImporter imports the `{}` module(s) it carries \
             ({}), running their code, and resolves globals without pickle.find_class",
            modules.len(),
            if shown.is_empty() {
                "none yet".to_string()
            } else {
                shown.join(", ")
            }
        );
        return Some(CodeArchive {
            format: Format::TorchPackage,
            detail,
            modules,
        });
    }
    let mut code_files = 0usize;
    let mut constants = false;
    for name in names {
        match under_root(name, "code/") {
            Some((_, rest)) if rest.ends_with(".py") => code_files += 1,
            _ => {}
        }
        if under_root(name, "constants.pkl").is_some_and(|(_, rest)| rest.is_empty()) {
            constants = true;
        }
    }
    if constants || code_files > 0 {
        return Some(CodeArchive {
            format: Format::TorchScript,
            detail: format!(
                "a TorchScript archive: torch.load hands it to torch.jit.load, which compiles \
                 and runs the `{code_files}` source file(s) under `code/`"
            ),
            modules: Vec::new(),
        });
    }
    None
}

/// The packaged modules that stand in for a module a pickle in the archive names, or that the
/// policy allows anything from.
pub(crate) fn shadowed<'g>(
    packaged: &[String],
    named: impl Iterator<Item = &'g str>,
    policy: &Policy,
) -> BTreeSet<String> {
    let allowed: BTreeSet<String> = policy
        .packs()
        .flat_map(|pack| pack.entries.iter().map(|entry| entry.global().module))
        .chain(policy.extra().map(|(global, _)| global.module))
        .collect();
    let covers = |module: &str, package: &str| {
        module == package
            || module
                .strip_prefix(package)
                .is_some_and(|rest| rest.starts_with('.'))
    };
    let named: BTreeSet<&str> = named.collect();
    packaged
        .iter()
        .filter(|package| {
            named.iter().any(|m| covers(m, package)) || allowed.iter().any(|m| covers(m, package))
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_code_archives() {
        let package = [
            "pkg/.data/version",
            "pkg/.data/extern_modules",
            "pkg/collections/__init__.py",
            "pkg/models/net.py",
            "pkg/model/model.pkl",
        ];
        let found = classify(package.iter().copied()).unwrap();
        assert_eq!(found.format, Format::TorchPackage);
        assert_eq!(found.modules, ["collections", "models.net"]);
        let shadowed = shadowed(&found.modules, ["models.net"].into_iter(), &Policy::new());
        assert!(shadowed.contains("collections"), "{shadowed:?}");
        assert!(shadowed.contains("models.net"));

        let script = [
            "m/data.pkl",
            "m/constants.pkl",
            "m/code/__torch__/m.py",
            "m/version",
        ];
        assert_eq!(
            classify(script.iter().copied()).unwrap().format,
            Format::TorchScript
        );
        let plain = ["m/data.pkl", "m/data/0", "m/version", "m/byteorder"];
        assert!(classify(plain.iter().copied()).is_none());
        let deep = ["a/b/constants.pkl"];
        assert!(classify(deep.iter().copied()).is_none());
    }
}
