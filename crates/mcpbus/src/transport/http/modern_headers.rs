//! The request headers of the 2026-07-28 era (docs/protocol.md 6.3): `MCP-Protocol-Version`,
//! `Mcp-Method`, `Mcp-Name` and `Mcp-Param-{Name}` mirror the body so that intermediaries can
//! route on them; a server checks that they say what the body says (`-32020` otherwise).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::HeaderMap;
use mcpbus_proto::headers::{
    BASE64_VALUE_PREFIX, BASE64_VALUE_SUFFIX, METHOD, NAME, NAMED_METHODS, PROTOCOL_VERSION, param,
};
use mcpbus_proto::jsonrpc::{ErrorObject, Request};
use mcpbus_proto::mcp::methods;
use serde_json::{Map, Value};

use crate::server::Server;

/// Checks the headers of a modern request against its body and its `_meta` revision.
pub(super) fn check(
    headers: &HeaderMap,
    request: &Request,
    meta_version: &str,
    server: &Server,
) -> Result<(), ErrorObject> {
    let version = plain(headers, PROTOCOL_VERSION)?
        .ok_or_else(|| mismatch("the MCP-Protocol-Version header is missing"))?;
    if version != meta_version {
        return Err(mismatch(format_args!(
            "MCP-Protocol-Version header {version:?} does not match the request's _meta \
             protocolVersion {meta_version:?}"
        )));
    }
    let method =
        plain(headers, METHOD)?.ok_or_else(|| mismatch("the Mcp-Method header is missing"))?;
    if method != request.method {
        return Err(mismatch(format_args!(
            "Mcp-Method header {method:?} does not match the body's method {:?}",
            request.method
        )));
    }
    check_name(headers, request)?;
    if request.method == methods::TOOLS_CALL {
        check_params(headers, request, server)?;
    }
    Ok(())
}

/// `Mcp-Name` must mirror `params.name` (or `params.uri`) of the methods that act on a name.
fn check_name(headers: &HeaderMap, request: &Request) -> Result<(), ErrorObject> {
    let Some((_, field)) = NAMED_METHODS.iter().find(|(m, _)| *m == request.method) else {
        return Ok(());
    };
    let header =
        decoded(headers, NAME)?.ok_or_else(|| mismatch("the Mcp-Name header is missing"))?;
    let body = request
        .params
        .as_ref()
        .and_then(|p| p.get(*field))
        .and_then(Value::as_str);
    if body != Some(header.as_str()) {
        return Err(mismatch(format_args!(
            "Mcp-Name header {header:?} does not match the body's params.{field} {body:?}"
        )));
    }
    Ok(())
}

/// Every argument the tool marks with `x-mcp-header` must travel in its `Mcp-Param-*` header
/// too, with the same value; absent (or null) in the body, absent in the headers.
fn check_params(
    headers: &HeaderMap,
    request: &Request,
    server: &Server,
) -> Result<(), ErrorObject> {
    let params = request.params.as_ref();
    let Some(name) = params.and_then(|p| p.get("name")).and_then(Value::as_str) else {
        return Ok(());
    };
    let Some(schema) = server.tool_input_schema(name) else {
        return Ok(());
    };
    let arguments = params.and_then(|p| p.get("arguments"));
    for (header_name, path) in header_params(schema) {
        let header = decoded(headers, &param(&header_name))?;
        let body = value_at(arguments, &path).filter(|v| !v.is_null());
        match (header, body) {
            (None, None) => {}
            (Some(h), Some(b)) if same_value(&h, b) => {}
            (h, b) => {
                return Err(mismatch(format_args!(
                    "Mcp-Param-{header_name} header {h:?} does not match the argument {} ({})",
                    path.join("."),
                    b.map_or("absent".into(), Value::to_string)
                )));
            }
        }
    }
    Ok(())
}

/// The `x-mcp-header` annotations of an input schema: header name and property path, for the
/// properties reachable through `properties` alone.
fn header_params(schema: &Map<String, Value>) -> Vec<(String, Vec<String>)> {
    let mut found = Vec::new();
    walk(schema, &mut Vec::new(), &mut found);
    found
}

fn walk(
    schema: &Map<String, Value>,
    path: &mut Vec<String>,
    found: &mut Vec<(String, Vec<String>)>,
) {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (key, property) in properties {
        let Some(property) = property.as_object() else {
            continue;
        };
        path.push(key.clone());
        if let Some(name) = property.get("x-mcp-header").and_then(Value::as_str) {
            found.push((name.to_owned(), path.clone()));
        }
        walk(property, path, found);
        path.pop();
    }
}

fn value_at<'a>(arguments: Option<&'a Value>, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(arguments?, |v, key| v.get(key))
}

/// A header value against the body's: strings exactly, numbers numerically, booleans by name.
fn same_value(header: &str, body: &Value) -> bool {
    match body {
        Value::String(s) => s == header,
        Value::Number(n) => match (header.trim().parse::<f64>(), n.as_f64()) {
            (Ok(h), Some(b)) => h == b,
            _ => false,
        },
        Value::Bool(b) => header == if *b { "true" } else { "false" },
        _ => false,
    }
}

/// A header that must be plain visible ASCII.
fn plain<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ErrorObject> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(Some)
            .map_err(|_| mismatch(format_args!("the {name} header holds invalid characters"))),
    }
}

/// A header that may use the base64 form (`=?base64?...?=`), decoded.
fn decoded(headers: &HeaderMap, name: &str) -> Result<Option<String>, ErrorObject> {
    let Some(raw) = plain(headers, name)? else {
        return Ok(None);
    };
    let Some(encoded) = raw
        .strip_prefix(BASE64_VALUE_PREFIX)
        .and_then(|r| r.strip_suffix(BASE64_VALUE_SUFFIX))
    else {
        if raw != raw.trim() {
            return Err(mismatch(format_args!(
                "the {name} header has surrounding whitespace; such values must be base64-encoded"
            )));
        }
        return Ok(Some(raw.to_owned()));
    };
    STANDARD
        .decode(encoded)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .map(Some)
        .ok_or_else(|| {
            mismatch(format_args!(
                "the {name} header is not valid base64 of UTF-8"
            ))
        })
}

fn mismatch(detail: impl std::fmt::Display) -> ErrorObject {
    ErrorObject::header_mismatch(detail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn annotations_are_found_through_properties_only() {
        let schema = json!({"type": "object", "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "nested": {"type": "object", "properties": {
                "tenant": {"type": "integer", "x-mcp-header": "Tenant"}}},
            "list": {"type": "array", "items": {"type": "string", "x-mcp-header": "No"}}
        }});
        let mut found = header_params(schema.as_object().unwrap());
        found.sort();
        assert_eq!(
            found,
            vec![
                ("Region".to_string(), vec!["region".to_string()]),
                (
                    "Tenant".to_string(),
                    vec!["nested".to_string(), "tenant".to_string()]
                ),
            ]
        );
    }

    #[test]
    fn values_compare_by_type() {
        assert!(same_value("42", &json!(42)));
        assert!(same_value("42.0", &json!(42)));
        assert!(!same_value("43", &json!(42)));
        assert!(same_value("true", &json!(true)));
        assert!(!same_value("True", &json!(true)));
        assert!(same_value("us-west1", &json!("us-west1")));
    }

    #[test]
    fn base64_values_are_decoded() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "mcp-name",
            "=?base64?SGVsbG8sIOS4lueVjA==?=".parse().unwrap(),
        );
        assert_eq!(
            decoded(&headers, "mcp-name").unwrap().as_deref(),
            Some("Hello, 世界")
        );
        headers.insert("mcp-name", "=?base64?!!!?=".parse().unwrap());
        assert_eq!(decoded(&headers, "mcp-name").unwrap_err().code, -32020);
    }
}
