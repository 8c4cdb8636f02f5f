//! What the resource server tells clients (docs/auth.md): its RFC 9728 metadata document and
//! where it is served, and the RFC 6750 `WWW-Authenticate` challenge of a refused request.

use serde_json::{Value, json};

use super::fetch::Url;

/// The well-known segment of RFC 9728.
pub(crate) const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// The paths the metadata of `resource` is served at: the one RFC 9728 derives from the
/// resource's path (e.g. `/.well-known/oauth-protected-resource/mcp`), first, and the root
/// one, which clients try next.
pub(crate) fn metadata_paths(resource: &Url) -> Vec<String> {
    let path = resource.trimmed_path();
    if path.is_empty() {
        vec![WELL_KNOWN.to_owned()]
    } else {
        vec![format!("{WELL_KNOWN}{path}"), WELL_KNOWN.to_owned()]
    }
}

/// The absolute URL of the metadata (the first of [`metadata_paths`]).
pub(crate) fn metadata_url(resource: &Url) -> String {
    format!(
        "{}{WELL_KNOWN}{}",
        resource.origin(),
        resource.trimmed_path()
    )
}

/// What the metadata document says.
#[derive(Debug)]
pub(crate) struct Document<'a> {
    pub(crate) resource: &'a str,
    pub(crate) issuer: &'a str,
    pub(crate) scopes_supported: &'a [String],
    pub(crate) resource_name: Option<&'a str>,
    pub(crate) resource_documentation: Option<&'a str>,
}

/// The RFC 9728 metadata document.
pub(crate) fn metadata_document(d: &Document<'_>) -> Value {
    let mut doc = json!({
        "resource": d.resource,
        "authorization_servers": [d.issuer],
        "bearer_methods_supported": ["header"],
    });
    if !d.scopes_supported.is_empty() {
        doc["scopes_supported"] = json!(d.scopes_supported);
    }
    if let Some(name) = d.resource_name {
        doc["resource_name"] = json!(name);
    }
    if let Some(docs) = d.resource_documentation {
        doc["resource_documentation"] = json!(docs);
    }
    doc
}

/// A `WWW-Authenticate` value: `Bearer` with the metadata's URL, the scopes hinted or
/// required, and the error with its description when a token was refused.
pub(crate) fn www_authenticate(
    metadata_url: &str,
    scopes: &[String],
    error: Option<(&str, &str)>,
) -> String {
    let mut params = Vec::new();
    if let Some((code, _)) = error {
        params.push(format!("error=\"{}\"", quoted(code)));
    }
    params.push(format!("resource_metadata=\"{}\"", quoted(metadata_url)));
    if !scopes.is_empty() {
        params.push(format!("scope=\"{}\"", quoted(&scopes.join(" "))));
    }
    if let Some((_, description)) = error {
        params.push(format!("error_description=\"{}\"", quoted(description)));
    }
    format!("Bearer {}", params.join(", "))
}

/// `text` as the inside of an RFC 6750 quoted attribute value: the characters RFC 6750 allows
/// for `error_description` (printable ASCII but `"` and `\`); others become `?`.
fn quoted(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            ' ' | '!' | '#'..='[' | ']'..='~' => c,
            _ => '?',
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn metadata_lives_under_the_resource_path_and_the_root() {
        let r = Url::parse("https://mcp.example/public/mcp/").unwrap();
        assert_eq!(
            metadata_paths(&r),
            [
                "/.well-known/oauth-protected-resource/public/mcp",
                "/.well-known/oauth-protected-resource"
            ]
        );
        assert_eq!(
            metadata_url(&r),
            "https://mcp.example/.well-known/oauth-protected-resource/public/mcp"
        );
        let root = Url::parse("https://mcp.example").unwrap();
        assert_eq!(
            metadata_paths(&root),
            ["/.well-known/oauth-protected-resource"]
        );
    }

    #[test]
    fn the_document_lists_what_is_configured() {
        let doc = metadata_document(&Document {
            resource: "https://mcp.example/mcp",
            issuer: "https://as.example",
            scopes_supported: &["mcp".into()],
            resource_name: Some("bus"),
            resource_documentation: None,
        });
        assert_eq!(
            doc,
            json!({"resource": "https://mcp.example/mcp",
                "authorization_servers": ["https://as.example"],
                "bearer_methods_supported": ["header"], "scopes_supported": ["mcp"],
                "resource_name": "bus"})
        );
    }

    #[test]
    fn challenges_are_rfc_6750_attributes() {
        let url = "https://mcp.example/.well-known/oauth-protected-resource/mcp";
        assert_eq!(
            www_authenticate(url, &[], None),
            format!("Bearer resource_metadata=\"{url}\"")
        );
        assert_eq!(
            www_authenticate(
                url,
                &["a".into(), "b".into()],
                Some(("invalid_token", "bad \"quote\" \\ é"))
            ),
            format!(
                "Bearer error=\"invalid_token\", resource_metadata=\"{url}\", scope=\"a b\", \
                 error_description=\"bad ?quote? ? ?\""
            )
        );
    }
}
