//! The Python 2 spellings CPython maps at protocols 0-2.
//!
//! The `pickle.find_class` audit event reports the raw names from the stream, before `_pickle`
//! and `pickle._Unpickler` apply `_compat_pickle`'s mapping, so a decision has to consider both.

use crate::py2_names::{ALSO_PY3_MODULES, IMPORT_MAPPING, NAME_MAPPING};

/// The Python 3 pair that `find_class` imports for a Python 2 spelling, if the mapping applies.
pub(crate) fn map<'a>(module: &str, name: &'a str) -> Option<(&'static str, &'a str)> {
    if let Some(&(_, _, module3, name3)) = NAME_MAPPING
        .iter()
        .find(|(m, n, _, _)| *m == module && *n == name)
    {
        return Some((module3, name3));
    }
    IMPORT_MAPPING
        .iter()
        .find(|(m, _)| *m == module)
        .map(|&(_, module3)| (module3, name))
}

/// Whether the raw module of a mapped spelling can also be imported as it is, which happens at
/// protocol >= 3 or with `fix_imports=False`.
pub(crate) fn raw_also_importable(module: &str) -> bool {
    ALSO_PY3_MODULES.contains(&module)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_like_compat_pickle() {
        assert_eq!(map("__builtin__", "set"), Some(("builtins", "set")));
        assert_eq!(map("__builtin__", "xrange"), Some(("builtins", "range")));
        assert_eq!(
            map("copy_reg", "_reconstructor"),
            Some(("copyreg", "_reconstructor"))
        );
        assert_eq!(
            map("commands", "getoutput"),
            Some(("subprocess", "getoutput"))
        );
        assert_eq!(map("builtins", "set"), None);
        assert!(raw_also_importable("dbm"));
        assert!(!raw_also_importable("__builtin__"));
    }
}
