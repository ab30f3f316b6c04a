//! Every GraphQL document the client sends validates against Shopify's
//! published Admin API schema (an introspection result, converted to SDL here).

use std::io::Read;

use apollo_compiler::{ExecutableDocument, Schema, validation::Valid};
use serde_json::Value;
use storefront_assistant::commerce::shopify::queries;

use super::contracts::contract;

/// Built-in scalars and directives that every GraphQL schema already has.
const BUILT_IN_SCALARS: &[&str] = &["String", "Int", "Float", "Boolean", "ID"];

/// Shopify's schema as SDL, or `None` (with a notice) without the contracts.
fn shopify_sdl() -> Option<String> {
    let path = contract("shopify/admin_schema_2025-01.json.gz")?;
    let mut json = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).expect("open the schema"))
        .read_to_string(&mut json)
        .expect("gunzip the schema");
    let introspection: Value = serde_json::from_str(&json).expect("the schema is JSON");
    Some(introspection_to_sdl(&introspection["data"]["__schema"]))
}

#[test]
fn every_query_we_send_validates_against_shopifys_admin_schema() {
    let Some(sdl) = shopify_sdl() else {
        return;
    };
    let schema = match Schema::parse_and_validate(&sdl, "admin_2025-01.graphql") {
        Ok(schema) => schema,
        // Shopify's schema has quirks a strict validator reports (none affect
        // operations): parse it, and let the documents' validation do the work.
        Err(with_errors) => Valid::assume_valid(with_errors.partial),
    };
    assert!(schema.types.contains_key("Order"), "the converted schema has Order");

    for doc in queries::ALL {
        if let Err(errors) = ExecutableDocument::parse_and_validate(&schema, doc.text, format!("{}.graphql", doc.name))
        {
            panic!("{} does not validate against Shopify's schema:\n{}", doc.name, errors.errors);
        }
    }
}

#[test]
fn a_field_shopify_does_not_have_fails_validation() {
    let Some(sdl) = shopify_sdl() else {
        return;
    };
    let schema = Valid::assume_valid(Schema::parse(sdl, "s.graphql").expect("the SDL parses"));
    let bogus = "query Q { orders(first: 1) { nodes { trackingSecret } } }";
    assert!(ExecutableDocument::parse_and_validate(&schema, bogus, "q.graphql").is_err());
}

fn introspection_to_sdl(schema: &Value) -> String {
    let mut sdl = String::new();
    let root = |key: &str| schema[key]["name"].as_str().map(str::to_owned);
    sdl.push_str("schema {\n");
    for (op, key) in [("query", "queryType"), ("mutation", "mutationType"), ("subscription", "subscriptionType")] {
        if let Some(name) = root(key) {
            sdl.push_str(&format!("  {op}: {name}\n"));
        }
    }
    sdl.push_str("}\n\n");
    for t in schema["types"].as_array().expect("types") {
        let name = t["name"].as_str().expect("a type has a name");
        if name.starts_with("__") || BUILT_IN_SCALARS.contains(&name) {
            continue;
        }
        let interfaces = names(&t["interfaces"]);
        let implements =
            if interfaces.is_empty() { String::new() } else { format!(" implements {}", interfaces.join(" & ")) };
        match t["kind"].as_str().expect("a type has a kind") {
            "SCALAR" => sdl.push_str(&format!("scalar {name}\n\n")),
            "OBJECT" => sdl.push_str(&format!("type {name}{implements} {{\n{}}}\n\n", fields(&t["fields"]))),
            "INTERFACE" => sdl.push_str(&format!("interface {name}{implements} {{\n{}}}\n\n", fields(&t["fields"]))),
            "UNION" => sdl.push_str(&format!("union {name} = {}\n\n", names(&t["possibleTypes"]).join(" | "))),
            "ENUM" => sdl.push_str(&format!("enum {name} {{\n  {}\n}}\n\n", names(&t["enumValues"]).join("\n  "))),
            "INPUT_OBJECT" => {
                let inputs: String = list(&t["inputFields"]).iter().map(|f| format!("  {}\n", value_def(f))).collect();
                sdl.push_str(&format!("input {name} {{\n{inputs}}}\n\n"));
            }
            other => panic!("unknown type kind {other}"),
        }
    }
    sdl
}

fn list(value: &Value) -> &[Value] {
    value.as_array().map(Vec::as_slice).unwrap_or_default()
}

fn names(value: &Value) -> Vec<&str> {
    list(value).iter().filter_map(|v| v["name"].as_str()).collect()
}

fn fields(value: &Value) -> String {
    list(value)
        .iter()
        .map(|f| {
            let args: Vec<String> = list(&f["args"]).iter().map(value_def).collect();
            let args = if args.is_empty() { String::new() } else { format!("({})", args.join(", ")) };
            format!("  {}{args}: {}\n", f["name"].as_str().expect("field name"), type_ref(&f["type"]))
        })
        .collect()
}

/// An argument or input field: `name: Type = default`.
fn value_def(v: &Value) -> String {
    let default = v["defaultValue"].as_str().map(|d| format!(" = {d}")).unwrap_or_default();
    format!("{}: {}{default}", v["name"].as_str().expect("name"), type_ref(&v["type"]))
}

fn type_ref(t: &Value) -> String {
    match t["kind"].as_str() {
        Some("NON_NULL") => format!("{}!", type_ref(&t["ofType"])),
        Some("LIST") => format!("[{}]", type_ref(&t["ofType"])),
        _ => t["name"].as_str().expect("a named type").to_owned(),
    }
}
