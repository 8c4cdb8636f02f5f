//! The URLs of discovery: where protected resource metadata (RFC 9728 section 3.1) and
//! authorization server metadata (RFC 8414 section 3.1, OpenID Connect Discovery 1.0) are
//! looked for, in the order the MCP specification gives, and whether a resource identifier
//! covers the MCP endpoint.
//!
//! Well-known URIs are built by "path insertion": `/.well-known/<suffix>` goes between the
//! host and the path, after a trailing `/` of the path is removed; OpenID Connect also knows
//! "path appending" (`<issuer>/.well-known/openid-configuration`). Query and fragment are
//! dropped.

use url::Url;

use super::OAuthError;

/// The well-known suffix of protected resource metadata.
const PRM_SUFFIX: &str = "oauth-protected-resource";
/// The well-known suffix of OAuth 2.0 authorization server metadata.
const OAUTH_SUFFIX: &str = "oauth-authorization-server";
/// The well-known suffix of OpenID Connect discovery.
const OIDC_SUFFIX: &str = "openid-configuration";

/// Parses `text` as an absolute `http` or `https` URL with a host; `what` names it in the
/// error.
pub(crate) fn http_url(what: &'static str, text: &str) -> Result<Url, OAuthError> {
    let bad = |reason: String| OAuthError::InvalidUrl {
        what,
        url: text.to_owned(),
        reason,
    };
    let url = Url::parse(text).map_err(|e| bad(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(format!(
            "the scheme is {:?}, not http or https",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("there is no host".into()));
    }
    Ok(url)
}

/// `scheme://host[:port]/.well-known/<suffix><path>` for `url`'s origin and path (without a
/// trailing `/`).
fn inserted(url: &Url, suffix: &str) -> String {
    let origin = url.origin().ascii_serialization();
    let path = url.path().trim_end_matches('/');
    format!("{origin}/.well-known/{suffix}{path}")
}

fn parsed(text: String) -> Result<Url, OAuthError> {
    http_url("well-known metadata URL", &text)
}

/// Where a client without a `resource_metadata` hint looks for the protected resource metadata
/// of the MCP endpoint `server`: the path-based well-known URI, then the root one (only the
/// root one when the endpoint has no path).
pub fn protected_resource_metadata_urls(server: &str) -> Result<Vec<Url>, OAuthError> {
    let url = http_url("MCP server URL", server)?;
    let mut urls = vec![parsed(inserted(&url, PRM_SUFFIX))?];
    let root = format!(
        "{}/.well-known/{PRM_SUFFIX}",
        url.origin().ascii_serialization()
    );
    if urls[0].as_str() != root {
        urls.push(parsed(root)?);
    }
    Ok(urls)
}

/// Where the metadata of the authorization server `issuer` is looked for, in order: for an
/// issuer with a path, OAuth with path insertion, OpenID Connect with path insertion, OpenID
/// Connect with path appending; for one without, OAuth then OpenID Connect.
///
/// An issuer identifier is an `http(s)` URL without query or fragment (RFC 8414 section 2);
/// anything else is refused.
pub fn authorization_server_metadata_urls(issuer: &str) -> Result<Vec<Url>, OAuthError> {
    let url = http_url("authorization server issuer", issuer)?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(OAuthError::InvalidUrl {
            what: "authorization server issuer",
            url: issuer.to_owned(),
            reason: "an issuer identifier has no query or fragment".into(),
        });
    }
    let has_path = !url.path().trim_end_matches('/').is_empty();
    let mut urls = vec![
        parsed(inserted(&url, OAUTH_SUFFIX))?,
        parsed(inserted(&url, OIDC_SUFFIX))?,
    ];
    if has_path {
        let base = url.as_str().trim_end_matches('/');
        urls.push(parsed(format!("{base}/.well-known/{OIDC_SUFFIX}"))?);
    }
    Ok(urls)
}

/// Whether the resource identifier `resource` (from protected resource metadata) covers the
/// MCP endpoint `server`: same origin (scheme, host, port; the host compared case-insensitively,
/// default ports elided), and the endpoint's path is the resource's path or below it. A
/// resource that is not a URL covers nothing.
pub fn resource_covers(resource: &str, server: &Url) -> bool {
    let Ok(resource) = Url::parse(resource) else {
        return false;
    };
    if resource.fragment().is_some() || resource.origin() != server.origin() {
        return false;
    }
    let base = resource.path().trim_end_matches('/');
    let path = server.path();
    base.is_empty()
        || path == base
        || path
            .strip_prefix(base)
            .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(urls: Vec<Url>) -> Vec<String> {
        urls.into_iter().map(String::from).collect()
    }

    #[test]
    fn protected_resource_metadata_path_then_root() {
        assert_eq!(
            strings(protected_resource_metadata_urls("http://localhost:3000/mcp").unwrap()),
            [
                "http://localhost:3000/.well-known/oauth-protected-resource/mcp",
                "http://localhost:3000/.well-known/oauth-protected-resource",
            ]
        );
        assert_eq!(
            strings(
                protected_resource_metadata_urls("https://Example.COM:443/a/b/?x=1#f").unwrap()
            ),
            [
                "https://example.com/.well-known/oauth-protected-resource/a/b",
                "https://example.com/.well-known/oauth-protected-resource",
            ]
        );
        assert_eq!(
            strings(protected_resource_metadata_urls("http://127.0.0.1:8080").unwrap()),
            ["http://127.0.0.1:8080/.well-known/oauth-protected-resource"]
        );
        assert_eq!(
            strings(protected_resource_metadata_urls("http://[::1]:9/").unwrap()),
            ["http://[::1]:9/.well-known/oauth-protected-resource"]
        );
    }

    #[test]
    fn authorization_server_metadata_in_the_specified_order() {
        assert_eq!(
            strings(authorization_server_metadata_urls("https://auth.example.com").unwrap()),
            [
                "https://auth.example.com/.well-known/oauth-authorization-server",
                "https://auth.example.com/.well-known/openid-configuration",
            ]
        );
        assert_eq!(
            strings(authorization_server_metadata_urls("https://auth.example.com/").unwrap()),
            [
                "https://auth.example.com/.well-known/oauth-authorization-server",
                "https://auth.example.com/.well-known/openid-configuration",
            ]
        );
        assert_eq!(
            strings(authorization_server_metadata_urls("http://localhost:3001/tenant1/").unwrap()),
            [
                "http://localhost:3001/.well-known/oauth-authorization-server/tenant1",
                "http://localhost:3001/.well-known/openid-configuration/tenant1",
                "http://localhost:3001/tenant1/.well-known/openid-configuration",
            ]
        );
    }

    #[test]
    fn bad_urls_get_clear_errors() {
        let e = authorization_server_metadata_urls("https://a.example/x?y=1").unwrap_err();
        assert!(e.to_string().contains("no query or fragment"), "{e}");
        let e = authorization_server_metadata_urls("auth.example.com").unwrap_err();
        assert!(e.to_string().contains("authorization server issuer"), "{e}");
        let e = protected_resource_metadata_urls("ftp://h/mcp").unwrap_err();
        assert!(e.to_string().contains("not http or https"), "{e}");
        let e = protected_resource_metadata_urls("file:///mcp").unwrap_err();
        assert!(e.to_string().contains("not http or https"), "{e}");
        assert!(http_url("x", "http://").is_err());
    }

    #[test]
    fn resource_coverage() {
        let server = Url::parse("http://localhost:3000/mcp").unwrap();
        assert!(resource_covers("http://localhost:3000/mcp", &server));
        assert!(resource_covers("http://localhost:3000", &server));
        assert!(resource_covers("http://LOCALHOST:3000/", &server));
        assert!(!resource_covers("http://localhost:3000/mc", &server));
        assert!(!resource_covers("http://localhost:3000/mcp/x", &server));
        assert!(!resource_covers("https://evil.example.com/mcp", &server));
        assert!(!resource_covers("http://localhost:3001/mcp", &server));
        assert!(!resource_covers("http://localhost:3000/mcp#f", &server));
        assert!(!resource_covers("not a url", &server));
        let nested = Url::parse("https://h.example/a/mcp").unwrap();
        assert!(resource_covers("https://h.example:443/a", &nested));
    }
}
