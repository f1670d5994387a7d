//! The expected shape of a profile's JSON, checked before serde reads it,
//! so that a wrong field is named by its path and what it should be
//! (serde, through the profile's flattened pass-through fields, can only
//! give a line and column).

use serde_json::Value;

/// What a JSON value should be. Fields not listed are not checked (they
/// pass through, or serde refuses them).
#[derive(Debug)]
pub enum Shape {
    Str,
    /// An unsigned integer up to `max`.
    Uint(u64),
    List(&'static Shape),
    /// An object's fields, each with whether it is required.
    Obj(&'static [(&'static str, Shape, bool)]),
}

/// A field that is not what it should be.
#[derive(Debug, PartialEq)]
pub struct Mismatch {
    pub field: String,
    pub expected: String,
}

const U32: Shape = Shape::Uint(u32::MAX as u64);
const U64: Shape = Shape::Uint(u64::MAX);

/// One condition on an argument.
pub const ARG: Shape = Shape::Obj(&[
    ("index", Shape::Uint(5), true),
    ("value", U64, true),
    ("valueTwo", U64, false),
    ("op", Shape::Str, true),
]);

/// One rule of `syscalls`.
pub const RULE: Shape = Shape::Obj(&[
    ("name", Shape::Str, false),
    ("names", Shape::List(&Shape::Str), false),
    ("action", Shape::Str, true),
    ("errnoRet", U32, false),
    ("args", Shape::List(&ARG), false),
    ("comment", Shape::Str, false),
]);

/// A whole profile (containers/common, and OCI's `linux.seccomp`, which
/// uses the same field names).
pub const PROFILE: Shape = Shape::Obj(&[
    ("defaultAction", Shape::Str, true),
    ("defaultErrnoRet", U32, false),
    ("architectures", Shape::List(&Shape::Str), false),
    ("flags", Shape::List(&Shape::Str), false),
    ("listenerPath", Shape::Str, false),
    ("listenerMetadata", Shape::Str, false),
    ("syscalls", Shape::List(&RULE), false),
]);

impl Shape {
    /// Checks `value`, returning the first field that does not fit.
    pub fn check(&self, value: &Value) -> Result<(), Mismatch> {
        self.check_at(value, "")
    }

    fn check_at(&self, value: &Value, at: &str) -> Result<(), Mismatch> {
        let mismatch = || Mismatch {
            field: if at.is_empty() { "(top level)".into() } else { at.into() },
            expected: self.describe(),
        };
        match (self, value) {
            (Shape::Str, Value::String(_)) => Ok(()),
            (Shape::Uint(max), Value::Number(n)) if n.as_u64().is_some_and(|n| n <= *max) => Ok(()),
            (Shape::List(item), Value::Array(items)) => {
                items.iter().enumerate().try_for_each(|(i, v)| item.check_at(v, &format!("{at}[{i}]")))
            }
            (Shape::Obj(fields), Value::Object(map)) => {
                for (name, shape, required) in fields.iter() {
                    let field = if at.is_empty() { (*name).to_string() } else { format!("{at}.{name}") };
                    match map.get(*name) {
                        // Go's encoding/json writes a nil list as null.
                        None | Some(Value::Null) if !required => {}
                        None => {
                            return Err(Mismatch { field, expected: format!("{} (it is required)", shape.describe()) })
                        }
                        Some(v) => shape.check_at(v, &field)?,
                    }
                }
                Ok(())
            }
            _ => Err(mismatch()),
        }
    }

    fn describe(&self) -> String {
        match self {
            Shape::Str => "a string".into(),
            Shape::Uint(max) => format!("an integer from 0 to {max}"),
            Shape::List(item) => format!("a list of {}", item.describe_plural()),
            Shape::Obj(_) => "an object".into(),
        }
    }

    fn describe_plural(&self) -> String {
        match self {
            Shape::Str => "strings".into(),
            Shape::Uint(max) => format!("integers from 0 to {max}"),
            Shape::List(_) => "lists".into(),
            Shape::Obj(_) => "objects".into(),
        }
    }
}
