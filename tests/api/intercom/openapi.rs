//! Request bodies checked against Intercom's OpenAPI description, read in
//! place from the shared contracts. A small validator of the parts of
//! OpenAPI 3.0 schemas that description uses: `$ref`, types, `nullable`,
//! `enum`, `required`, `properties`, `items`, `allOf`/`anyOf`/`oneOf`,
//! lengths and `maxItems`. Where an object lists its properties, one it does
//! not list is a violation too: a misspelt field is ignored by a real
//! Intercom, which is exactly the bug this should catch.

use std::{collections::HashSet, sync::OnceLock};

use serde_json::Value;

use crate::shopify::contracts::contract;

pub const DESCRIPTION: &str = "intercom/api.intercom.io.2.16.yaml";

/// The description as JSON, parsed once; `None` (with a notice) without the contracts.
pub fn description() -> Option<&'static Value> {
    static SPEC: OnceLock<Option<Value>> = OnceLock::new();
    SPEC.get_or_init(|| {
        let path = contract(DESCRIPTION)?;
        let text = std::fs::read_to_string(path).expect("read the OpenAPI description");
        Some(serde_yaml::from_str(&text).expect("the OpenAPI description is YAML"))
    })
    .as_ref()
}

/// Violations of the operation at `method path` by `body` (empty: it conforms).
pub fn check_request(spec: &Value, method: &str, path: &str, body: Option<&Value>) -> Vec<String> {
    let Some((template, operation)) = operation(spec, method, path) else {
        return vec![format!("{method} {path}: no such operation in the description")];
    };
    let schema = &operation["requestBody"]["content"]["application/json"]["schema"];
    let mut errors = Vec::new();
    match (body, schema.is_null()) {
        (None, false) if operation["requestBody"]["required"] == true => errors.push("a body is required".into()),
        (Some(_), true) => errors.push("this operation takes no body".into()),
        (Some(body), false) => Validator { spec }.check(schema, body, "body", true, &mut errors),
        _ => {}
    }
    errors.into_iter().map(|e| format!("{method} {template}: {e}")).collect()
}

/// The operation whose path template matches, preferring literal segments.
fn operation<'a>(spec: &'a Value, method: &str, path: &str) -> Option<(&'a str, &'a Value)> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let mut best: Option<(usize, &str, &Value)> = None;
    for (template, item) in spec["paths"].as_object()? {
        let parts: Vec<&str> = template.trim_matches('/').split('/').collect();
        if parts.len() != segments.len() {
            continue;
        }
        let matches = parts.iter().zip(&segments).all(|(t, s)| t.starts_with('{') || t == s);
        let op = &item[method.to_ascii_lowercase()];
        if !matches || op.is_null() {
            continue;
        }
        let literal = parts.iter().filter(|t| !t.starts_with('{')).count();
        if best.is_none_or(|(l, ..)| literal > l) {
            best = Some((literal, template, op));
        }
    }
    best.map(|(_, t, op)| (t, op))
}

struct Validator<'a> {
    spec: &'a Value,
}

impl<'a> Validator<'a> {
    fn resolve(&self, mut schema: &'a Value) -> &'a Value {
        while let Some(reference) = schema["$ref"].as_str() {
            let pointer = reference.trim_start_matches('#');
            schema = self.spec.pointer(pointer).unwrap_or(&Value::Null);
        }
        schema
    }

    /// `strict`: unknown properties are violations (off inside `allOf`,
    /// whose parts each know only some of the properties).
    fn check(&self, schema: &'a Value, value: &Value, at: &str, strict: bool, errors: &mut Vec<String>) {
        let schema = self.resolve(schema);
        if value.is_null() {
            if schema["nullable"] != true && !schema["type"].is_null() {
                errors.push(format!("{at} is null"));
            }
            return;
        }
        if let Some(kind) = schema["type"].as_str()
            && !type_matches(kind, value)
        {
            errors.push(format!("{at} should be {kind}, is {value}"));
            return;
        }
        if let Some(options) = schema["enum"].as_array()
            && !options.contains(value)
        {
            errors.push(format!("{at} = {value} is not one of {}", Value::Array(options.clone())));
        }
        if let Some(text) = value.as_str() {
            let len = text.chars().count() as u64;
            if schema["minLength"].as_u64().is_some_and(|m| len < m)
                || schema["maxLength"].as_u64().is_some_and(|m| len > m)
            {
                errors.push(format!("{at} has a length outside the allowed range"));
            }
        }
        if let Some(items) = value.as_array() {
            if schema["maxItems"].as_u64().is_some_and(|m| items.len() as u64 > m) {
                errors.push(format!("{at} has too many items"));
            }
            if !schema["items"].is_null() {
                for (i, item) in items.iter().enumerate() {
                    self.check(&schema["items"], item, &format!("{at}[{i}]"), true, errors);
                }
            }
        }
        if let Some(object) = value.as_object() {
            for name in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                if !object.contains_key(name) {
                    errors.push(format!("{at}.{name} is required"));
                }
            }
            let properties = &schema["properties"];
            for (name, field) in object {
                if let Some(property) = properties.get(name) {
                    self.check(property, field, &format!("{at}.{name}"), true, errors);
                }
            }
            let known = self.known_properties(schema);
            if strict && !known.is_empty() && schema["additionalProperties"].is_null() {
                for name in object.keys().filter(|n| !known.contains(n.as_str())) {
                    errors.push(format!("{at}.{name} is not a property the description knows"));
                }
            }
        }
        for part in schema["allOf"].as_array().into_iter().flatten() {
            self.check(part, value, at, false, errors);
        }
        if let Some(options) = schema["anyOf"].as_array() {
            let fits = options.iter().any(|o| self.fits(o, value, at));
            if !fits {
                errors.push(format!("{at} matches none of anyOf"));
            }
        }
        if let Some(options) = schema["oneOf"].as_array() {
            let fitting = options.iter().filter(|o| self.fits(o, value, at)).count();
            if fitting != 1 {
                errors.push(format!("{at} matches {fitting} of oneOf, not exactly one"));
            }
        }
    }

    fn fits(&self, schema: &'a Value, value: &Value, at: &str) -> bool {
        let mut errors = Vec::new();
        self.check(schema, value, at, true, &mut errors);
        errors.is_empty()
    }

    /// The properties an object schema lists, its `allOf` parts' included.
    fn known_properties(&self, schema: &'a Value) -> HashSet<&'a str> {
        let mut known: HashSet<&str> =
            schema["properties"].as_object().map(|p| p.keys().map(String::as_str).collect()).unwrap_or_default();
        for part in schema["allOf"].as_array().into_iter().flatten() {
            known.extend(self.known_properties(self.resolve(part)));
        }
        known
    }
}

fn type_matches(kind: &str, value: &Value) -> bool {
    match kind {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        _ => true,
    }
}

#[test]
fn the_validator_catches_a_wrong_type_a_missing_field_and_a_misspelt_one() {
    let Some(spec) = description() else { return };
    let good = serde_json::json!({ "message_type": "note", "type": "admin", "admin_id": "1", "body": "<p>x</p>" });
    assert_eq!(check_request(spec, "POST", "/conversations/1/reply", Some(&good)), Vec::<String>::new());
    let cases = [
        serde_json::json!({ "message_type": "note", "type": "admin", "body": "x" }),
        serde_json::json!({ "message_type": "note", "type": "robot", "admin_id": "1", "body": "x" }),
        serde_json::json!({ "message_type": "note", "type": "admin", "admin_id": 1, "body": "x" }),
        serde_json::json!({ "message_type": "note", "type": "admin", "admin_id": "1", "bodyy": "x" }),
    ];
    for bad in cases {
        assert!(!check_request(spec, "POST", "/conversations/1/reply", Some(&bad)).is_empty(), "{bad}");
    }
    let short_id = serde_json::json!({ "from": { "type": "user", "id": "abc" }, "body": "hi" });
    assert!(!check_request(spec, "POST", "/conversations", Some(&short_id)).is_empty());
    assert!(!check_request(spec, "POST", "/conversationz", None).is_empty());
}
