//! The request headers of the 2026-07-28 era, client side: `MCP-Protocol-Version`, `Mcp-Method`,
//! `Mcp-Name` and the `Mcp-Param-{Name}` headers that mirror the tool arguments a tool's input
//! schema marks with `x-mcp-header`, with the base64 sentinel form for values that are not plain
//! header text; and the checks of those annotations that decide which tools a client keeps.

use std::collections::{HashMap, HashSet};
use std::sync::RwLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::header::{HeaderName, HeaderValue};
use mcpbus_proto::headers::{
    BASE64_VALUE_PREFIX, BASE64_VALUE_SUFFIX, METHOD, NAME, NAMED_METHODS, PROTOCOL_VERSION, param,
};
use mcpbus_proto::jsonrpc::Request;
use mcpbus_proto::mcp::methods;
use mcpbus_proto::modern;
use serde_json::{Map, Value};

use super::HttpError;

/// One `x-mcp-header` annotation of a tool's input schema: the header's name part and the
/// property path (a chain of `properties` keys) of the argument it mirrors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeaderParam {
    /// The annotation's value: the header is `Mcp-Param-{header}`.
    pub(crate) header: String,
    /// Where the argument sits in `arguments`.
    pub(crate) path: Vec<String>,
}

/// The annotations of every tool the client kept from the last `tools/list`, by tool name.
pub(crate) type ToolHeaders = RwLock<HashMap<String, Vec<HeaderParam>>>;

/// Keywords whose values are data, not schemas: an `x-mcp-header` key inside them is no
/// annotation.
const DATA_KEYWORDS: &[&str] = &["const", "enum", "default", "examples"];

/// The `x-mcp-header` annotations of an input schema, or why they make the tool invalid: an
/// empty or non-token name, a name used twice (case-insensitively), an annotation on a property
/// that is not a string, integer or boolean, or one not reachable through `properties` alone.
pub(crate) fn header_params(schema: &Map<String, Value>) -> Result<Vec<HeaderParam>, String> {
    let mut found = Vec::new();
    walk(schema, Some(&[]), &mut found)?;
    let mut seen = HashSet::new();
    for p in &found {
        if !seen.insert(p.header.to_ascii_lowercase()) {
            return Err(format!(
                "x-mcp-header {:?} names two properties (header names are case-insensitive)",
                p.header
            ));
        }
    }
    Ok(found)
}

/// Walks a schema object; `path` is its property path when it is statically reachable.
fn walk(
    schema: &Map<String, Value>,
    path: Option<&[String]>,
    found: &mut Vec<HeaderParam>,
) -> Result<(), String> {
    if let Some(annotation) = schema.get("x-mcp-header") {
        let path = match path {
            Some(p) if !p.is_empty() => p,
            Some(_) => return Err("x-mcp-header on the schema root".into()),
            None => {
                return Err(format!(
                    "x-mcp-header {annotation} is on a property not reachable through \
                     `properties` alone"
                ));
            }
        };
        let header = annotation
            .as_str()
            .ok_or_else(|| format!("x-mcp-header must be a string, got {annotation}"))?;
        check_name(header)?;
        check_primitive(schema, header)?;
        found.push(HeaderParam {
            header: header.to_owned(),
            path: path.to_vec(),
        });
    }
    for (key, value) in schema {
        match (key.as_str(), value) {
            ("x-mcp-header", _) => {}
            (k, _) if DATA_KEYWORDS.contains(&k) => {}
            ("properties", Value::Object(properties)) => {
                for (name, property) in properties {
                    let Value::Object(property) = property else {
                        continue;
                    };
                    let inner = path.map(|p| [p, std::slice::from_ref(name)].concat());
                    walk(property, inner.as_deref(), found)?;
                }
            }
            (_, other) => walk_unreachable(other, found)?,
        }
    }
    Ok(())
}

/// Walks what hangs off a keyword other than `properties` (`items`, `anyOf`, `$defs`, ...):
/// no annotation may be there.
fn walk_unreachable(value: &Value, found: &mut Vec<HeaderParam>) -> Result<(), String> {
    match value {
        Value::Object(object) => walk(object, None, found),
        Value::Array(items) => items.iter().try_for_each(|v| walk_unreachable(v, found)),
        _ => Ok(()),
    }
}

/// An HTTP field-name token (RFC 9110 `1*tchar`), which rules out controls, spaces, colons and
/// anything outside ASCII.
fn check_name(header: &str) -> Result<(), String> {
    if header.is_empty() {
        return Err("x-mcp-header is empty".into());
    }
    let tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    match header.chars().find(|c| !tchar(*c)) {
        None => Ok(()),
        Some(c) => Err(format!(
            "x-mcp-header {header:?} holds {c:?}, which an HTTP header name cannot"
        )),
    }
}

/// The annotated property must be a string, an integer or a boolean (optionally nullable).
fn check_primitive(schema: &Map<String, Value>, header: &str) -> Result<(), String> {
    let allowed = |t: &str| matches!(t, "string" | "integer" | "boolean");
    let ok = match schema.get("type") {
        Some(Value::String(t)) => allowed(t),
        Some(Value::Array(types)) => {
            let names: Vec<&str> = types.iter().filter_map(Value::as_str).collect();
            names.len() == types.len()
                && names.iter().any(|t| allowed(t))
                && names.iter().all(|t| allowed(t) || *t == "null")
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "x-mcp-header {header:?} is on a property whose type is not string, integer or \
             boolean ({})",
            schema.get("type").map_or("none".into(), Value::to_string)
        ))
    }
}

/// A `Mcp-Name` or `Mcp-Param-*` value: as it is when it is plain visible ASCII (inner spaces
/// allowed), else `=?base64?…?=` of its UTF-8 bytes; a plain value that looks like that
/// sentinel is encoded too, so that it cannot be misread.
pub(crate) fn encode_value(text: &str) -> HeaderValue {
    let unsafe_text = text.bytes().any(|b| !(0x20..=0x7E).contains(&b))
        || text.starts_with(' ')
        || text.ends_with(' ');
    let sentinel = text.starts_with(BASE64_VALUE_PREFIX) && text.ends_with(BASE64_VALUE_SUFFIX);
    if !unsafe_text
        && !sentinel
        && let Ok(value) = HeaderValue::from_str(text)
    {
        return value;
    }
    let encoded = format!(
        "{BASE64_VALUE_PREFIX}{}{BASE64_VALUE_SUFFIX}",
        STANDARD.encode(text)
    );
    // Base64 and the sentinel are visible ASCII: this always converts.
    HeaderValue::from_str(&encoded).unwrap_or(HeaderValue::from_static(""))
}

/// The text an argument is mirrored as: strings as they are, numbers in decimal, booleans as
/// `true`/`false`; `None` for a value that is absent, null or not a primitive.
fn argument_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The headers of a 2026-07-28 request POST: the revision (the one in the body's `_meta`, else
/// `version`), `Mcp-Method`, `Mcp-Name` for the methods that act on a name, and for
/// `tools/call` one `Mcp-Param-*` per annotated argument present in the call.
pub(super) fn request_headers(
    request: &Request,
    version: &HeaderValue,
    tools: &ToolHeaders,
) -> Result<Vec<(HeaderName, HeaderValue)>, HttpError> {
    let params = request.params.as_ref();
    let version = match modern::protocol_version_of(params) {
        Some(v) => header_value(PROTOCOL_VERSION, v)?,
        None => version.clone(),
    };
    let mut headers = vec![
        (HeaderName::from_static(PROTOCOL_VERSION), version),
        (
            HeaderName::from_static(METHOD),
            header_value(METHOD, &request.method)?,
        ),
    ];
    if let Some((_, field)) = NAMED_METHODS.iter().find(|(m, _)| *m == request.method) {
        let name = params.and_then(|p| p.get(*field)).and_then(Value::as_str);
        if let Some(name) = name {
            headers.push((HeaderName::from_static(NAME), encode_value(name)));
        }
    }
    if request.method == methods::TOOLS_CALL {
        param_headers(params, tools, &mut headers);
    }
    Ok(headers)
}

/// Appends the `Mcp-Param-*` headers of a `tools/call` (none for a tool never listed).
fn param_headers(
    params: Option<&Value>,
    tools: &ToolHeaders,
    headers: &mut Vec<(HeaderName, HeaderValue)>,
) {
    let Some(name) = params.and_then(|p| p.get("name")).and_then(Value::as_str) else {
        return;
    };
    let tools = tools.read().unwrap_or_else(|p| p.into_inner());
    let Some(annotated) = tools.get(name) else {
        return;
    };
    let arguments = params.and_then(|p| p.get("arguments"));
    for p in annotated {
        let value = arguments.and_then(|args| p.path.iter().try_fold(args, |v, key| v.get(key)));
        let Some(text) = value.and_then(argument_text) else {
            continue;
        };
        match HeaderName::try_from(param(&p.header)) {
            Ok(header) => headers.push((header, encode_value(&text))),
            Err(e) => {
                tracing::warn!(header = %p.header, error = %e, "skipping an Mcp-Param header")
            }
        }
    }
}

fn header_value(name: &'static str, value: &str) -> Result<HeaderValue, HttpError> {
    HeaderValue::from_str(value).map_err(|source| HttpError::HeaderValue {
        name: HeaderName::from_static(name),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params_of(schema: Value) -> Result<Vec<HeaderParam>, String> {
        header_params(schema.as_object().expect("an object"))
    }

    #[test]
    fn values_are_plain_or_base64() {
        let cases = [
            ("us-west1", "us-west1"),
            ("us west 1", "us west 1"),
            ("", ""),
            ("Hello, 世界", "=?base64?SGVsbG8sIOS4lueVjA==?="),
            (" padded ", "=?base64?IHBhZGRlZCA=?="),
            ("line1\nline2", "=?base64?bGluZTEKbGluZTI=?="),
            ("\tindented", "=?base64?CWluZGVudGVk?="),
            ("=?base64?literal?=", "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?="),
        ];
        for (text, wire) in cases {
            assert_eq!(encode_value(text), wire, "{text:?}");
        }
    }

    #[test]
    fn annotations_are_found_and_checked() {
        let found = params_of(json!({"type": "object", "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "nested": {"type": "object", "properties": {
                "tenant": {"type": ["integer", "null"], "x-mcp-header": "Tenant"}}},
            "query": {"type": "string", "default": {"x-mcp-header": "data, not an annotation"}}
        }}))
        .expect("valid");
        assert_eq!(found.len(), 2);
        assert!(found.contains(&HeaderParam {
            header: "Tenant".into(),
            path: vec!["nested".into(), "tenant".into()]
        }));

        let invalid = [
            json!({"properties": {"v": {"type": "string", "x-mcp-header": ""}}}),
            json!({"properties": {"v": {"type": "string", "x-mcp-header": "My Region"}}}),
            json!({"properties": {"v": {"type": "string", "x-mcp-header": "Region:Primary"}}}),
            json!({"properties": {"v": {"type": "string", "x-mcp-header": "Région"}}}),
            json!({"properties": {"v": {"type": "string", "x-mcp-header": "Region\t1"}}}),
            json!({"properties": {"v": {"type": "object", "x-mcp-header": "Data"}}}),
            json!({"properties": {"v": {"type": "null", "x-mcp-header": "Nil"}}}),
            json!({"properties": {"v": {"type": "number", "x-mcp-header": "Num"}}}),
            json!({"properties": {
                "a": {"type": "string", "x-mcp-header": "MyField"},
                "b": {"type": "string", "x-mcp-header": "myfield"}}}),
            json!({"properties": {"v": {"type": "array",
                "items": {"type": "string", "x-mcp-header": "Item"}}}}),
            json!({"$defs": {"d": {"type": "string", "x-mcp-header": "Def"}}}),
            json!({"anyOf": [{"properties": {"v": {"type": "string", "x-mcp-header": "V"}}}]}),
        ];
        for schema in invalid {
            assert!(params_of(schema.clone()).is_err(), "{schema}");
        }
    }

    #[test]
    fn request_headers_mirror_the_body() {
        let tools = ToolHeaders::default();
        tools.write().expect("lock").insert(
            "sql".into(),
            vec![
                HeaderParam {
                    header: "Region".into(),
                    path: vec!["region".into()],
                },
                HeaderParam {
                    header: "Verbose".into(),
                    path: vec!["verbose".into()],
                },
                HeaderParam {
                    header: "Priority".into(),
                    path: vec!["priority".into()],
                },
            ],
        );
        let request = Request {
            id: mcpbus_proto::jsonrpc::RequestId::Number(1),
            method: "tools/call".into(),
            params: Some(json!({
                "name": "sql",
                "arguments": {"region": "eu 1 ", "verbose": null, "priority": 42},
                "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}
            })),
        };
        let fallback = HeaderValue::from_static("1999-01-01");
        let headers = request_headers(&request, &fallback, &tools).expect("headers");
        let get = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.to_str().expect("ascii").to_owned())
        };
        assert_eq!(get("mcp-protocol-version").as_deref(), Some("2026-07-28"));
        assert_eq!(get("mcp-method").as_deref(), Some("tools/call"));
        assert_eq!(get("mcp-name").as_deref(), Some("sql"));
        assert_eq!(
            get("mcp-param-region").as_deref(),
            Some("=?base64?ZXUgMSA=?=")
        );
        assert_eq!(get("mcp-param-priority").as_deref(), Some("42"));
        assert_eq!(get("mcp-param-verbose"), None);
    }
}
