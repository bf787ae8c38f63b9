//! Strict JSON reading with field paths in every error.
//!
//! Model files are parsed in two steps. [`parse_strict`] turns the text into a
//! [`serde_json::Value`], rejecting syntax errors (with line and column) and duplicate object
//! keys, which `serde_json` would otherwise resolve silently. A [`Reader`] then walks the value
//! and converts each field, so that every error names the JSON path of the offending field
//! (`factors[2].weights[1]`) rather than a position in the text.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::error::{Error, Result};

/// A JSON value whose objects had no duplicate keys.
struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = StrictValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::Number(v.into())))
    }

    fn visit_u64<E>(self, v: u64) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::Number(v.into())))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<StrictValue, E> {
        Number::from_f64(v)
            .map(|n| StrictValue(Value::Number(n)))
            .ok_or_else(|| E::custom(format!("number {v} is not finite")))
    }

    fn visit_str<E>(self, v: &str) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::String(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::String(v)))
    }

    fn visit_unit<E>(self) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::Null))
    }

    fn visit_none<E>(self) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::Null))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StrictValue, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(StrictValue(Value::Array(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StrictValue, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(format!("duplicate key `{key}`")));
            }
            let StrictValue(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(StrictValue(Value::Object(out)))
    }
}

/// Parse JSON text, rejecting duplicate object keys. Errors name the line and column.
pub(crate) fn parse_strict(text: &str, file: &Path) -> Result<Value> {
    serde_json::from_str::<StrictValue>(text)
        .map(|v| v.0)
        .map_err(|e| {
            // serde_json appends " at line L column C"; report the position as the "field".
            let message = e.to_string();
            let message = message
                .rsplit_once(" at line ")
                .map_or(message.as_str(), |(m, _)| m)
                .to_owned();
            Error::Model {
                file: file.to_path_buf(),
                field: format!("line {}, column {}", e.line(), e.column()),
                message: format!("invalid JSON: {message}"),
            }
        })
}

/// A short description of a JSON value's type, for error messages.
pub(crate) fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) if s.chars().count() <= 40 => format!("the string {s:?}"),
        Value::String(_) => "a string".into(),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// `path.key`, or `key` at the root.
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// `path[i]`.
pub(crate) fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// Walks a parsed model file and converts fields, naming the file and field in every error.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reader<'a> {
    file: &'a Path,
}

impl<'a> Reader<'a> {
    /// A reader for values from `file`.
    pub(crate) fn new(file: &'a Path) -> Self {
        Reader { file }
    }

    /// An [`Error::Model`] for `path`.
    pub(crate) fn err(&self, path: &str, message: impl Into<String>) -> Error {
        Error::Model {
            file: self.file.to_path_buf(),
            field: if path.is_empty() {
                "(top level)".into()
            } else {
                path.to_owned()
            },
            message: message.into(),
        }
    }

    fn expected(&self, path: &str, what: &str, v: &Value) -> Error {
        self.err(path, format!("expected {what}, found {}", describe(v)))
    }

    /// The value as an object whose keys are all in `allowed`.
    pub(crate) fn object(
        &self,
        v: &'a Value,
        path: &str,
        allowed: &[&str],
    ) -> Result<&'a Map<String, Value>> {
        let Value::Object(map) = v else {
            return Err(self.expected(path, "an object", v));
        };
        if let Some(key) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
            let allowed: BTreeSet<&str> = allowed.iter().copied().collect();
            let allowed: Vec<String> = allowed.iter().map(|a| format!("`{a}`")).collect();
            return Err(self.err(
                &join(path, key),
                format!("unknown field; expected one of {}", allowed.join(", ")),
            ));
        }
        Ok(map)
    }

    /// The value as an object with any keys.
    pub(crate) fn map(&self, v: &'a Value, path: &str) -> Result<&'a Map<String, Value>> {
        match v {
            Value::Object(map) => Ok(map),
            _ => Err(self.expected(path, "an object", v)),
        }
    }

    /// A required field of an object.
    pub(crate) fn required(
        &self,
        map: &'a Map<String, Value>,
        path: &str,
        key: &str,
    ) -> Result<&'a Value> {
        map.get(key)
            .ok_or_else(|| self.err(&join(path, key), "required field is missing"))
    }

    /// The value as a list.
    pub(crate) fn list(&self, v: &'a Value, path: &str) -> Result<&'a [Value]> {
        match v {
            Value::Array(items) => Ok(items),
            _ => Err(self.expected(path, "a list", v)),
        }
    }

    /// The value as a string.
    pub(crate) fn string(&self, v: &'a Value, path: &str) -> Result<&'a str> {
        match v {
            Value::String(s) => Ok(s),
            _ => Err(self.expected(path, "a string", v)),
        }
    }

    /// The value as a boolean.
    pub(crate) fn boolean(&self, v: &Value, path: &str) -> Result<bool> {
        match v {
            Value::Bool(b) => Ok(*b),
            _ => Err(self.expected(path, "true or false", v)),
        }
    }

    /// The value as a non-negative integer.
    pub(crate) fn usize(&self, v: &Value, path: &str, what: &str) -> Result<usize> {
        v.as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| self.expected(path, what, v))
    }

    /// The value as an integer.
    pub(crate) fn i64(&self, v: &Value, path: &str, what: &str) -> Result<i64> {
        v.as_i64().ok_or_else(|| self.expected(path, what, v))
    }

    /// The value as a finite number.
    pub(crate) fn f64(&self, v: &Value, path: &str) -> Result<f64> {
        match v.as_f64() {
            Some(x) if x.is_finite() => Ok(x),
            Some(x) => Err(self.err(path, format!("{x} is not a finite number"))),
            None => Err(self.expected(path, "a number", v)),
        }
    }

    /// A list of node ids (non-negative integers; range is checked later).
    pub(crate) fn ids(&self, v: &Value, path: &str) -> Result<Vec<usize>> {
        self.list(v, path)?
            .iter()
            .enumerate()
            .map(|(i, x)| self.usize(x, &index(path, i), "a node id (a non-negative integer)"))
            .collect()
    }

    /// A list of lists of node ids.
    pub(crate) fn id_lists(&self, v: &Value, path: &str) -> Result<Vec<Vec<usize>>> {
        self.list(v, path)?
            .iter()
            .enumerate()
            .map(|(i, x)| self.ids(x, &index(path, i)))
            .collect()
    }

    /// A list of numbers.
    pub(crate) fn numbers(&self, v: &Value, path: &str) -> Result<Vec<f64>> {
        self.list(v, path)?
            .iter()
            .enumerate()
            .map(|(i, x)| self.f64(x, &index(path, i)))
            .collect()
    }

    /// A tensor: nested lists (rectangular), or `{"shape": [...], "data": [...]}` with the
    /// data flat in row-major order. Returns `(shape, data)`.
    pub(crate) fn tensor(&self, v: &Value, path: &str) -> Result<(Vec<usize>, Vec<f64>)> {
        match v {
            Value::Object(_) => {
                let map = self.object(v, path, &["shape", "data"])?;
                let shape_path = join(path, "shape");
                let shape = self
                    .list(self.required(map, path, "shape")?, &shape_path)?
                    .iter()
                    .enumerate()
                    .map(|(i, x)| {
                        self.usize(
                            x,
                            &index(&shape_path, i),
                            "an axis length (a non-negative integer)",
                        )
                    })
                    .collect::<Result<Vec<_>>>()?;
                let data_path = join(path, "data");
                let data = self.numbers(self.required(map, path, "data")?, &data_path)?;
                let size = shape
                    .iter()
                    .try_fold(1usize, |acc, &n| acc.checked_mul(n))
                    .ok_or_else(|| self.err(&shape_path, "the shape's size overflows"))?;
                if data.len() != size {
                    return Err(self.err(
                        &data_path,
                        format!(
                            "has {} entries but shape {shape:?} needs {size}",
                            data.len()
                        ),
                    ));
                }
                Ok((shape, data))
            }
            Value::Array(_) => {
                // The shape follows the first element at every depth; every other element
                // must match it.
                let mut shape = Vec::new();
                let mut cursor = v;
                while let Value::Array(items) = cursor {
                    shape.push(items.len());
                    match items.first() {
                        Some(first) => cursor = first,
                        None => break,
                    }
                }
                let mut data = Vec::new();
                self.flatten(v, path, &shape, &mut data)?;
                Ok((shape, data))
            }
            _ => Err(self.expected(
                path,
                "a tensor (nested lists of numbers, or {\"shape\": [...], \"data\": [...]})",
                v,
            )),
        }
    }

    fn flatten(&self, v: &Value, path: &str, shape: &[usize], out: &mut Vec<f64>) -> Result<()> {
        match shape.split_first() {
            None => {
                out.push(self.f64(v, path)?);
                Ok(())
            }
            Some((&n, rest)) => {
                let items = match v {
                    Value::Array(items) => items,
                    _ => {
                        return Err(self.err(
                            path,
                            format!(
                                "expected a list of {n} (the tensor is not rectangular), found {}",
                                describe(v)
                            ),
                        ));
                    }
                };
                if items.len() != n {
                    return Err(self.err(
                        path,
                        format!(
                            "has {} entries but the first list at this depth has {n}; nested lists must be rectangular",
                            items.len()
                        ),
                    ));
                }
                for (i, item) in items.iter().enumerate() {
                    self.flatten(item, &index(path, i), rest, out)?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader() -> Reader<'static> {
        Reader::new(Path::new("m.json"))
    }

    #[test]
    fn duplicate_keys_and_syntax_errors_name_the_position() {
        let err = parse_strict("{\"a\": 1,\n \"a\": 2}", Path::new("m.json")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("duplicate key `a`"), "{msg}");
        assert!(msg.contains("line 2"), "{msg}");
        let err = parse_strict("{\"a\": [1, 2,]}", Path::new("m.json")).unwrap_err();
        assert!(
            err.to_string().starts_with("m.json: line 1, column "),
            "{err}"
        );
    }

    #[test]
    fn tensors_from_lists_and_objects() {
        let r = reader();
        let v: Value = serde_json::from_str("[[1, 2, 3], [4, 5, 6]]").unwrap();
        assert_eq!(
            r.tensor(&v, "w").unwrap(),
            (vec![2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
        );
        let v: Value = serde_json::from_str(r#"{"shape": [3, 0], "data": []}"#).unwrap();
        assert_eq!(r.tensor(&v, "w").unwrap(), (vec![3, 0], vec![]));
        let v: Value = serde_json::from_str("[[1, 2], [3]]").unwrap();
        let err = r.tensor(&v, "w").unwrap_err().to_string();
        assert!(err.contains("w[1]"), "{err}");
        let v: Value = serde_json::from_str(r#"[[1, "x"]]"#).unwrap();
        let err = r.tensor(&v, "w").unwrap_err().to_string();
        assert!(err.contains("w[0][1]") && err.contains("\"x\""), "{err}");
        let v: Value = serde_json::from_str(r#"{"shape": [2], "data": [1]}"#).unwrap();
        assert!(r.tensor(&v, "w").is_err());
    }

    #[test]
    fn unknown_fields_are_named() {
        let v: Value = serde_json::from_str(r#"{"wieghts": 1}"#).unwrap();
        let err = reader()
            .object(&v, "factors[0]", &["weights"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("factors[0].wieghts: unknown field"), "{err}");
    }
}
