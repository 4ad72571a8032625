//! Replays what real numpy 1.x/2.x, torch, joblib/scikit-learn and pandas pickles do with the
//! globals they name (recorded by `policy/fixtures/record.py` into `fixtures/genuine-*.jsonl`):
//! every genuine application and BUILD must pass the rules.

use serde_json::Value as Json;

use super::{check_apply, check_build, plan, Apply, Plan, Value};
use crate::Global;

fn global(spec: &str) -> Global {
    let (module, name) = spec.split_once(':').expect("module:name");
    Global::new(module, name)
}

fn apply(name: &str) -> Apply {
    match name {
        "reduce" => Apply::Reduce,
        "newobj" => Apply::NewObj,
        "newobj_ex" => Apply::NewObjEx,
        "build" => Apply::Build,
        "instantiate" => Apply::Instantiate,
        other => panic!("opcode {other}"),
    }
}

/// The fixture's JSON form of a [`Value`] (see record.py).
pub(crate) fn value(json: &Json) -> Value {
    match json {
        Json::Null => Value::None,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => Value::Int(n.as_i64().expect("i64")),
        Json::String(s) => Value::Str(s.clone()),
        Json::Array(items) => Value::List(items.iter().map(value).collect()),
        Json::Object(map) => {
            if let Some(n) = map.get("bytes") {
                Value::Bytes(n.as_u64().expect("len") as usize)
            } else if let Some(n) = map.get("longstr") {
                Value::Str("x".repeat(n.as_u64().expect("len") as usize))
            } else if map.contains_key("bigint") {
                Value::BigInt
            } else if let Some(x) = map.get("float") {
                Value::Float(x.as_f64().expect("float"))
            } else if let Some(items) = map.get("tuple") {
                Value::Tuple(items.as_array().expect("items").iter().map(value).collect())
            } else if let Some(pairs) = map.get("dict") {
                Value::Dict(
                    pairs
                        .as_array()
                        .expect("pairs")
                        .iter()
                        .map(|p| (value(&p[0]), value(&p[1])))
                        .collect(),
                )
            } else if let Some(g) = map.get("global") {
                Value::Global(global(g.as_str().expect("global")))
            } else if let Some(by) = map.get("built") {
                Value::Built {
                    by: global(by.as_str().expect("global")),
                    apply: apply(map["apply"].as_str().expect("apply")),
                    args: Box::new(value(&map["args"])),
                    state: match &map["state"] {
                        Json::Null => None,
                        s => Some(Box::new(value(s))),
                    },
                }
            } else if let Some(t) = map.get("opaque") {
                Value::Opaque(t.as_str().expect("type").to_string())
            } else {
                panic!("unknown value {json}")
            }
        }
    }
}

/// Genuine pickles the rules refuse on purpose, by case prefix, with the checks that may refuse
/// them (ALLOWLIST.md says why): a consolidated DataFrame whose block placement is an integer
/// array, which pandas writes through without bounds checks and the rules cannot read.
const REFUSED_ON_PURPOSE: &[(&str, &[&str])] = &[(
    "pandas wide",
    &["pandas-block-placement", "pandas-block-manager"],
)];

fn on_purpose(case: &str, violation: &super::Violation) -> bool {
    REFUSED_ON_PURPOSE
        .iter()
        .any(|(prefix, checks)| case.starts_with(prefix) && checks.contains(&violation.check))
}

fn replay(text: &str) -> (usize, usize) {
    let (mut applied, mut built) = (0, 0);
    for line in text.lines() {
        let event: Json = serde_json::from_str(line).expect("json line");
        let case = event["case"].as_str().unwrap_or("?");
        if let Some(target) = event.get("build") {
            let target = value(target);
            let state = value(&event["state"]);
            if let Value::Built { by, .. } = &target {
                assert!(
                    !matches!(plan(by, Apply::Build), Plan::Refuse(_)),
                    "{case}: BUILD on {by} is planned as refused"
                );
            }
            if let Err(v) = check_build(&target, &state).or_else(|v| {
                if on_purpose(case, &v) {
                    Ok(())
                } else {
                    Err(v)
                }
            }) {
                panic!("{case}: genuine BUILD refused: {v:?}\n{line}");
            }
            built += 1;
        } else {
            let g = global(event["global"].as_str().expect("global"));
            let a = apply(event["apply"].as_str().expect("apply"));
            let args = value(&event["args"]);
            let kwargs = match &event["kwargs"] {
                Json::Null => None,
                k => Some(value(k)),
            };
            if let Plan::Refuse(v) = plan(&g, a) {
                panic!("{case}: genuine {a:?} of {g} is planned as refused: {v:?}");
            }
            if let Err(v) = check_apply(&g, a, &args, kwargs.as_ref()).or_else(|v| {
                if on_purpose(case, &v) {
                    Ok(())
                } else {
                    Err(v)
                }
            }) {
                panic!("{case}: genuine {a:?} of {g} refused: {v:?}\n{line}");
            }
            applied += 1;
        }
    }
    (applied, built)
}

#[test]
fn genuine_numpy1_states_pass() {
    let (applied, built) = replay(include_str!("../../fixtures/genuine-numpy1.jsonl"));
    assert!(applied > 100 && built > 100, "{applied} {built}");
}

#[test]
fn genuine_numpy2_torch_sklearn_pandas_states_pass() {
    let (applied, built) = replay(include_str!("../../fixtures/genuine-numpy2.jsonl"));
    assert!(applied > 200 && built > 200, "{applied} {built}");
}
