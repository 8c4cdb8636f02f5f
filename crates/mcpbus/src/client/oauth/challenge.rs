//! Reading `WWW-Authenticate` (RFC 9110 section 11.6.1) and the Bearer challenge parameters MCP
//! servers send with it (RFC 6750 section 3, RFC 9728 section 5.1).
//!
//! A header holds one or more challenges separated by commas, each an auth scheme followed by
//! either a `token68` or comma-separated `name=value` parameters (`value` a token or a quoted
//! string); several header lines add up. Commas therefore separate both parameters and
//! challenges: a comma followed by `name =` continues the parameters, a comma followed by a bare
//! token starts a new challenge. Unquoted values are read up to the next comma or space rather
//! than strictly as tokens, because servers commonly send URLs (`resource_metadata=https://…`)
//! unquoted.

use http::HeaderMap;
use http::header::WWW_AUTHENTICATE;

/// A malformed `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed WWW-Authenticate header {header:?}: {reason} at byte {at}")]
pub struct ChallengeError {
    /// The header value.
    pub header: String,
    /// What is wrong.
    pub reason: &'static str,
    /// Where (a byte offset into `header`).
    pub at: usize,
}

/// One challenge of a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Challenge {
    /// The auth scheme as sent (compare case-insensitively, e.g. with
    /// [`is_scheme`](Self::is_scheme)).
    pub scheme: String,
    /// The parameters in order, names lowercased (they are case-insensitive), values unquoted.
    pub params: Vec<(String, String)>,
    /// The `token68` form (`Basic abc==`), when the challenge uses it instead of parameters.
    pub token68: Option<String>,
}

impl Challenge {
    /// Whether the challenge's scheme is `scheme` (case-insensitive).
    pub fn is_scheme(&self, scheme: &str) -> bool {
        self.scheme.eq_ignore_ascii_case(scheme)
    }

    /// The value of the parameter `name` (case-insensitive); the first one if it is repeated.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The parameters of a `Bearer` challenge that drive the OAuth flow.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BearerChallenge {
    /// The protected resource metadata URL (RFC 9728 section 5.1).
    pub resource_metadata: Option<String>,
    /// The scopes the server asks for (RFC 6750 section 3), in order, without duplicates.
    pub scope: Option<Vec<String>>,
    /// The error code, e.g. `invalid_token` or `insufficient_scope`.
    pub error: Option<String>,
    /// The human-readable error description.
    pub error_description: Option<String>,
    /// Whether the server (also) challenged with the `DPoP` scheme (RFC 9449 section 7.1):
    /// it accepts sender-constrained tokens.
    pub dpop: bool,
}

impl BearerChallenge {
    /// The `Bearer` challenge among `challenges`, else the `DPoP` one (same parameters), if
    /// there is one.
    pub fn find(challenges: &[Challenge]) -> Option<BearerChallenge> {
        let dpop = challenges.iter().find(|c| c.is_scheme("DPoP"));
        let bearer = challenges.iter().find(|c| c.is_scheme("Bearer")).or(dpop)?;
        Some(BearerChallenge {
            resource_metadata: bearer.param("resource_metadata").map(str::to_owned),
            scope: bearer.param("scope").map(split_scope),
            error: bearer.param("error").map(str::to_owned),
            error_description: bearer.param("error_description").map(str::to_owned),
            dpop: dpop.is_some(),
        })
    }

    /// Whether the server refused the token for lack of scope (`error="insufficient_scope"`).
    pub fn is_insufficient_scope(&self) -> bool {
        self.error.as_deref() == Some("insufficient_scope")
    }
}

/// Splits a space-separated scope string (RFC 6749 section 3.3) into its scopes, in order and
/// without duplicates.
pub fn split_scope(scope: &str) -> Vec<String> {
    let mut scopes: Vec<String> = Vec::new();
    for s in scope.split_ascii_whitespace() {
        if !scopes.iter().any(|seen| seen == s) {
            scopes.push(s.to_owned());
        }
    }
    scopes
}

/// Every challenge of every `WWW-Authenticate` header in `headers`, in order.
pub fn challenges_in(headers: &HeaderMap) -> Result<Vec<Challenge>, ChallengeError> {
    let mut all = Vec::new();
    for value in headers.get_all(WWW_AUTHENTICATE) {
        let text = String::from_utf8_lossy(value.as_bytes());
        all.extend(parse_www_authenticate(&text)?);
    }
    Ok(all)
}

/// Parses one `WWW-Authenticate` header value into its challenges.
pub fn parse_www_authenticate(header: &str) -> Result<Vec<Challenge>, ChallengeError> {
    let mut parser = Parser {
        text: header,
        bytes: header.as_bytes(),
        pos: 0,
    };
    let mut challenges = Vec::new();
    loop {
        parser.skip(|b| b == b',' || is_space(b));
        if parser.at_end() {
            break;
        }
        let scheme = parser.token();
        if scheme.is_empty() {
            return Err(parser.error("expected an auth scheme"));
        }
        let mut challenge = Challenge {
            scheme: scheme.to_owned(),
            ..Challenge::default()
        };
        parser.params(&mut challenge)?;
        challenges.push(challenge);
    }
    Ok(challenges)
}

fn is_space(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// RFC 9110 `token68` characters (before the trailing `=`s).
fn is_token68(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip(&mut self, f: impl Fn(u8) -> bool) {
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
    }

    fn error(&self, reason: &'static str) -> ChallengeError {
        ChallengeError {
            header: self.text.to_owned(),
            reason,
            at: self.pos,
        }
    }

    fn token(&mut self) -> &str {
        let start = self.pos;
        self.skip(is_tchar);
        &self.text[start..self.pos]
    }

    /// Whether a parameter (`name =`) starts at the current position: a token followed by
    /// optional spaces and a `=` that does not end the item (which would make it a `token68`).
    fn param_ahead(&self) -> bool {
        let mut i = self.pos;
        while self.bytes.get(i).is_some_and(|&b| is_tchar(b)) {
            i += 1;
        }
        if i == self.pos {
            return false;
        }
        while self.bytes.get(i).is_some_and(|&b| is_space(b)) {
            i += 1;
        }
        if self.bytes.get(i) != Some(&b'=') {
            return false;
        }
        i += 1;
        while self.bytes.get(i).is_some_and(|&b| is_space(b)) {
            i += 1;
        }
        !matches!(self.bytes.get(i), None | Some(b',') | Some(b'='))
    }

    /// Reads what follows a scheme: a `token68` or parameters, up to the next challenge.
    fn params(&mut self, challenge: &mut Challenge) -> Result<(), ChallengeError> {
        self.skip(is_space);
        if !self.at_end() && self.peek() != Some(b',') && !self.param_ahead() {
            let start = self.pos;
            self.skip(is_token68);
            self.skip(|b| b == b'=');
            if self.pos == start {
                return Err(self.error("expected a token68 or a parameter after the scheme"));
            }
            challenge.token68 = Some(self.text[start..self.pos].to_owned());
            return self.end_of_item();
        }
        loop {
            self.skip(|b| b == b',' || is_space(b));
            if self.at_end() || !self.param_ahead() {
                return Ok(()); // the next challenge's scheme, or the end
            }
            let name = self.token().to_ascii_lowercase();
            self.skip(is_space);
            self.pos += 1; // the '=' param_ahead saw
            self.skip(is_space);
            let value = self.value()?;
            if challenge.param(&name).is_none() {
                challenge.params.push((name, value));
            }
            self.end_of_item()?;
        }
    }

    /// After an item only spaces, then a comma or the end, may follow.
    fn end_of_item(&mut self) -> Result<(), ChallengeError> {
        self.skip(is_space);
        match self.peek() {
            None | Some(b',') => Ok(()),
            Some(_) => Err(self.error("expected a comma")),
        }
    }

    fn value(&mut self) -> Result<String, ChallengeError> {
        if self.peek() != Some(b'"') {
            let start = self.pos;
            self.skip(|b| b != b',' && !is_space(b));
            return Ok(self.text[start..self.pos].to_owned());
        }
        let open = self.pos;
        self.pos += 1;
        let mut value = Vec::new();
        loop {
            match self.peek() {
                None => {
                    self.pos = open;
                    return Err(self.error("unterminated quoted string"));
                }
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(String::from_utf8_lossy(&value).into_owned());
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let Some(escaped) = self.peek() else {
                        return Err(self.error("a backslash ends the header"));
                    };
                    value.push(escaped);
                    self.pos += 1;
                }
                Some(b) => {
                    value.push(b);
                    self.pos += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(c: &Challenge) -> Vec<(&str, &str)> {
        c.params
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect()
    }

    #[test]
    fn bearer_with_quoted_and_unquoted_parameters() {
        let header = r#"Bearer error="invalid_token", error_description="Missing \"Authorization\" header", resource_metadata=http://localhost:3000/.well-known/oauth-protected-resource/mcp, scope="a b  a""#;
        let all = parse_www_authenticate(header).unwrap();
        assert_eq!(all.len(), 1);
        let bearer = BearerChallenge::find(&all).unwrap();
        assert_eq!(bearer.error.as_deref(), Some("invalid_token"));
        assert_eq!(
            bearer.error_description.as_deref(),
            Some(r#"Missing "Authorization" header"#)
        );
        assert_eq!(
            bearer.resource_metadata.as_deref(),
            Some("http://localhost:3000/.well-known/oauth-protected-resource/mcp")
        );
        assert_eq!(bearer.scope, Some(vec!["a".to_owned(), "b".to_owned()]));
        assert!(!bearer.is_insufficient_scope());
    }

    #[test]
    fn several_challenges_and_token68() {
        let all = parse_www_authenticate(
            r#"Basic realm="x", charset="UTF-8", Newauth abc==, bearer  Scope = "s1" ,error=insufficient_scope,, DPoP algs="ES256""#,
        )
        .unwrap();
        let schemes: Vec<&str> = all.iter().map(|c| c.scheme.as_str()).collect();
        assert_eq!(schemes, ["Basic", "Newauth", "bearer", "DPoP"]);
        assert_eq!(params(&all[0]), [("realm", "x"), ("charset", "UTF-8")]);
        assert_eq!(all[1].token68.as_deref(), Some("abc=="));
        assert!(all[1].params.is_empty());
        let bearer = BearerChallenge::find(&all).unwrap();
        assert_eq!(bearer.scope, Some(vec!["s1".to_owned()]));
        assert!(bearer.is_insufficient_scope());
        assert!(bearer.dpop);
        assert_eq!(all[3].param("ALGS"), Some("ES256"));
        let dpop = parse_www_authenticate(r#"DPoP error="use_dpop_nonce", resource_metadata="u""#)
            .unwrap();
        let dpop = BearerChallenge::find(&dpop).unwrap();
        assert!(dpop.dpop && dpop.error.as_deref() == Some("use_dpop_nonce"));
        assert_eq!(dpop.resource_metadata.as_deref(), Some("u"));
    }

    #[test]
    fn bare_scheme_and_headers_without_bearer() {
        let all = parse_www_authenticate("Bearer").unwrap();
        assert_eq!(
            BearerChallenge::find(&all),
            Some(BearerChallenge::default())
        );
        let all = parse_www_authenticate(r#"Basic realm="r""#).unwrap();
        assert_eq!(BearerChallenge::find(&all), None);
        assert!(parse_www_authenticate("").unwrap().is_empty());
        assert!(parse_www_authenticate(" , ,").unwrap().is_empty());
    }

    #[test]
    fn repeated_parameters_keep_the_first() {
        let all = parse_www_authenticate(r#"Bearer scope="a", scope="b""#).unwrap();
        assert_eq!(params(&all[0]), [("scope", "a")]);
    }

    #[test]
    fn malformed_headers_are_refused_with_the_place() {
        let e = parse_www_authenticate(r#"Bearer realm="open"#).unwrap_err();
        assert_eq!(e.reason, "unterminated quoted string");
        assert_eq!(e.at, 13);
        assert!(e.to_string().contains("at byte 13"), "{e}");
        let e = parse_www_authenticate(r#"Bearer realm="a" junk"#).unwrap_err();
        assert_eq!(e.reason, "expected a comma");
        let e = parse_www_authenticate("=oops").unwrap_err();
        assert_eq!(e.reason, "expected an auth scheme");
        assert_eq!(e.at, 0);
        let e = parse_www_authenticate("Bearer \"x\"").unwrap_err();
        assert_eq!(
            e.reason,
            "expected a token68 or a parameter after the scheme"
        );
        let e = parse_www_authenticate("Bearer a=\"\\").unwrap_err();
        assert!(e.reason.contains("unterminated") || e.reason.contains("backslash"));
    }

    #[test]
    fn headers_add_up() {
        let mut headers = HeaderMap::new();
        headers.append(WWW_AUTHENTICATE, "Basic realm=\"r\"".parse().unwrap());
        headers.append(
            WWW_AUTHENTICATE,
            "Bearer resource_metadata=\"http://h/prm\"".parse().unwrap(),
        );
        let all = challenges_in(&headers).unwrap();
        assert_eq!(all.len(), 2);
        let bearer = BearerChallenge::find(&all).unwrap();
        assert_eq!(bearer.resource_metadata.as_deref(), Some("http://h/prm"));
        assert_eq!(split_scope("  x y x "), ["x", "y"]);
    }
}
