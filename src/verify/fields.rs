//! Field-by-field differences of two JSON documents (manifests, configs,
//! indexes), named by path (`config.Env.PATH`, `history[3].created_by`), so
//! every field is compared, including ones kiln does not know.

use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// One differing field: its path and the value on each side (`null` when
/// the field is absent on that side).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FieldDiff {
    pub field: String,
    pub a: Value,
    pub b: Value,
}

/// Every differing leaf of `a` and `b`, keys in sorted order.
/// Objects compare key by key, same-length arrays item by item; `Env`
/// lists compare by variable name. Paths in `skip` (exact) are left out.
pub fn diff(a: &Value, b: &Value, skip: &[&str]) -> Vec<FieldDiff> {
    let mut out = Vec::new();
    walk("", a, b, skip, &mut out);
    out
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// `["K=V", ...]` as a map, when every item has that shape.
fn env_map(v: &Value) -> Option<BTreeMap<String, Value>> {
    let items = v.as_array()?;
    let mut m = BTreeMap::new();
    for i in items {
        let (k, val) = i.as_str()?.split_once('=')?;
        m.insert(k.to_string(), Value::String(val.to_string()));
    }
    Some(m)
}

fn walk(path: &str, a: &Value, b: &Value, skip: &[&str], out: &mut Vec<FieldDiff>) {
    if a == b || skip.contains(&path) {
        return;
    }
    if path.ends_with("Env") {
        if let (Some(ma), Some(mb)) = (env_map(a), env_map(b)) {
            if ma != mb {
                let (oa, ob) = (
                    Value::Object(ma.into_iter().collect()),
                    Value::Object(mb.into_iter().collect()),
                );
                return walk_objects(path, &oa, &ob, skip, out);
            }
            // Same variables in another order.
        }
    }
    match (a, b) {
        (Value::Object(_), Value::Object(_)) => walk_objects(path, a, b, skip, out),
        (Value::Array(xa), Value::Array(xb))
            if xa.len() == xb.len() && xa.iter().any(|x| x.is_object()) =>
        {
            for (i, (x, y)) in xa.iter().zip(xb).enumerate() {
                walk(&format!("{path}[{i}]"), x, y, skip, out);
            }
        }
        _ => out.push(FieldDiff {
            field: path.to_string(),
            a: a.clone(),
            b: b.clone(),
        }),
    }
}

fn walk_objects(path: &str, a: &Value, b: &Value, skip: &[&str], out: &mut Vec<FieldDiff>) {
    let empty = serde_json::Map::new();
    let (oa, ob) = (
        a.as_object().unwrap_or(&empty),
        b.as_object().unwrap_or(&empty),
    );
    for (k, va) in oa {
        walk(
            &join(path, k),
            va,
            ob.get(k).unwrap_or(&Value::Null),
            skip,
            out,
        );
    }
    for (k, vb) in ob {
        if !oa.contains_key(k) {
            walk(&join(path, k), &Value::Null, vb, skip, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_nested_fields_and_absent_ones() {
        let a = json!({"created": "1", "config": {"Labels": {"x": "1"}, "User": "a"}});
        let b = json!({"created": "2", "config": {"Labels": {"x": "2", "y": "3"}, "User": "a"}});
        let d = diff(&a, &b, &[]);
        let fields: Vec<&str> = d.iter().map(|f| f.field.as_str()).collect();
        // Keys in sorted order (serde_json's map).
        assert_eq!(fields, ["config.Labels.x", "config.Labels.y", "created"]);
        assert_eq!(d[1].a, Value::Null);
    }

    #[test]
    fn env_compares_by_variable() {
        let a = json!({"Env": ["A=1", "B=2"]});
        let b = json!({"Env": ["A=1", "B=3"]});
        let d = diff(&a, &b, &[]);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].field, "Env.B");
        assert_eq!((d[0].a.clone(), d[0].b.clone()), (json!("2"), json!("3")));
    }

    #[test]
    fn arrays_of_objects_compare_by_index_and_skips_apply() {
        let a = json!({"history": [{"created_by": "x"}, {"created_by": "y"}], "rootfs": {"diff_ids": ["1"]}});
        let b = json!({"history": [{"created_by": "x"}, {"created_by": "z"}], "rootfs": {"diff_ids": ["2"]}});
        let d = diff(&a, &b, &["rootfs.diff_ids"]);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].field, "history[1].created_by");
    }
}
