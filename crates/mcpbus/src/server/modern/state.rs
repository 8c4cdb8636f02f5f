//! `requestState` of the 2026-07-28 era: what a request that needs several rounds of input
//! carries from one round to the next (the answers given so far), sealed so that a client can
//! neither forge it, nor move it to another request, nor keep it forever (docs/protocol.md 6.5).
//!
//! A state is `v1.<key id>.<payload>.<mac>`: the payload is base64url JSON
//! `{"b": binding, "r": answers, "x": expiry}`, the mac an HMAC-SHA256 of everything before it
//! under the key named. Replicas that share the keys accept each other's states, so a retry may
//! land on any of them; rotation adds a new signing key while the old ones are still accepted.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// How long a client has to answer a round of input by default.
pub const DEFAULT_STATE_TTL: Duration = Duration::from_secs(15 * 60);

/// The keys that seal `requestState`: one signs, every one is accepted (rotation).
///
/// Every replica behind one load balancer must share them; a server built without keys draws a
/// random one at start, which only that process accepts.
#[derive(Clone)]
pub struct RequestStateKeys {
    /// The signing key first, then the ones still accepted.
    keys: Vec<(String, Vec<u8>)>,
    ttl: Duration,
}

impl std::fmt::Debug for RequestStateKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("RequestStateKeys")
            .field("key_ids", &ids)
            .field("ttl", &self.ttl)
            .finish()
    }
}

/// Why keys were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StateKeyError {
    /// A key id must be 1 to 32 characters of `A-Z a-z 0-9 - _`.
    #[error("request state key id {0:?} must be 1 to 32 characters of A-Z, a-z, 0-9, '-' or '_'")]
    InvalidId(String),
    /// A secret must hold at least 16 bytes.
    #[error("request state key {0:?}: the secret must be at least 16 bytes")]
    ShortSecret(String),
    /// Two keys share one id.
    #[error("request state key id {0:?} is given twice")]
    DuplicateId(String),
}

impl RequestStateKeys {
    /// Keys that sign with `secret`, named `id` inside every state.
    pub fn new(id: impl Into<String>, secret: impl Into<Vec<u8>>) -> Result<Self, StateKeyError> {
        let keys = RequestStateKeys {
            keys: Vec::new(),
            ttl: DEFAULT_STATE_TTL,
        };
        keys.accept(id, secret)
    }

    /// A random key, accepted by this process only.
    pub fn random() -> Self {
        let mut secret = [0u8; 32];
        // A key must never be guessable: without the OS source there is no safe fallback.
        getrandom::fill(&mut secret).expect("the operating system's random source failed");
        RequestStateKeys {
            keys: vec![("local".into(), secret.to_vec())],
            ttl: DEFAULT_STATE_TTL,
        }
    }

    /// Also accepts states sealed with `secret` under `id` (a key being rotated out).
    pub fn accept(
        mut self,
        id: impl Into<String>,
        secret: impl Into<Vec<u8>>,
    ) -> Result<Self, StateKeyError> {
        let id = id.into();
        let secret = secret.into();
        let valid_id = !id.is_empty()
            && id.len() <= 32
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid_id {
            return Err(StateKeyError::InvalidId(id));
        }
        if secret.len() < 16 {
            return Err(StateKeyError::ShortSecret(id));
        }
        if self.keys.iter().any(|(known, _)| *known == id) {
            return Err(StateKeyError::DuplicateId(id));
        }
        self.keys.push((id, secret));
        Ok(self)
    }

    /// How long a state stays valid after it is issued.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Seals the answers given so far for the request `binding` names.
    pub(crate) fn seal(&self, binding: &str, answers: &BTreeMap<String, Value>) -> String {
        let (id, secret) = &self.keys[0];
        let expires = unix_ms(SystemTime::now() + self.ttl);
        let payload = Payload {
            b: binding.to_owned(),
            r: answers.clone(),
            x: expires,
        };
        // A map of JSON values always serializes.
        let json = serde_json::to_vec(&payload).unwrap_or_default();
        let signed = format!("v1.{id}.{}", URL_SAFE_NO_PAD.encode(json));
        let mac = URL_SAFE_NO_PAD.encode(mac_of(secret, &signed));
        format!("{signed}.{mac}")
    }

    /// Opens a state a client echoed, for the request `binding` names: the answers it holds.
    pub(crate) fn open(
        &self,
        state: &str,
        binding: &str,
    ) -> Result<BTreeMap<String, Value>, StateError> {
        let (signed, mac) = state.rsplit_once('.').ok_or(StateError::Malformed)?;
        let mut parts = signed.splitn(3, '.');
        let (Some("v1"), Some(id), Some(payload)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(StateError::Malformed);
        };
        let (_, secret) = self
            .keys
            .iter()
            .find(|(known, _)| known == id)
            .ok_or(StateError::UnknownKey)?;
        let mac = URL_SAFE_NO_PAD
            .decode(mac)
            .map_err(|_| StateError::Malformed)?;
        let mut check = HmacSha256::new_from_slice(secret).map_err(|_| StateError::UnknownKey)?;
        check.update(signed.as_bytes());
        check.verify_slice(&mac).map_err(|_| StateError::Tampered)?;
        let json = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| StateError::Malformed)?;
        let payload: Payload = serde_json::from_slice(&json).map_err(|_| StateError::Malformed)?;
        if payload.x < unix_ms(SystemTime::now()) {
            return Err(StateError::Expired);
        }
        if payload.b != binding {
            return Err(StateError::OtherRequest);
        }
        Ok(payload.r)
    }
}

/// Why an echoed `requestState` was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum StateError {
    #[error("requestState is malformed (it must be echoed exactly as the server sent it)")]
    Malformed,
    #[error("requestState was not issued by this server (unknown key)")]
    UnknownKey,
    #[error("requestState failed its integrity check (it was altered)")]
    Tampered,
    #[error("requestState has expired; send the request again without it")]
    Expired,
    #[error("requestState was issued for a different request")]
    OtherRequest,
}

#[derive(Serialize, Deserialize)]
struct Payload {
    /// What the state is bound to: method, name and arguments of the request.
    b: String,
    /// The answers given in earlier rounds, by input key.
    r: BTreeMap<String, Value>,
    /// Expiry, in milliseconds since the Unix epoch.
    x: u64,
}

fn mac_of(secret: &[u8], data: &str) -> Vec<u8> {
    // HMAC takes keys of any length.
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// What a state is bound to: the method, the name (tool, prompt) or URI (resource), and a
/// digest of the arguments in a canonical form (keys sorted at every depth).
pub(crate) fn binding(method: &str, target: &str, arguments: Option<&Value>) -> String {
    let mut canonical = Vec::new();
    if let Some(arguments) = arguments {
        write_canonical(arguments, &mut canonical);
    }
    let digest = Sha256::digest(&canonical);
    format!("{method} {target} {}", URL_SAFE_NO_PAD.encode(digest))
}

fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(&Value::String(key.clone()), out);
                out.push(b':');
                write_canonical(&map[key], out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        scalar => out.extend_from_slice(scalar.to_string().as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keys() -> RequestStateKeys {
        RequestStateKeys::new("k1", b"0123456789abcdef0123".to_vec()).unwrap()
    }

    fn answers() -> BTreeMap<String, Value> {
        BTreeMap::from([("input-1".to_string(), json!({"action": "accept"}))])
    }

    #[test]
    fn a_sealed_state_opens_for_its_own_request_only() {
        let bind = binding(
            "tools/call",
            "t",
            Some(&json!({"b": 1, "a": [1, {"y": 2, "x": 1}]})),
        );
        let same = binding(
            "tools/call",
            "t",
            Some(&json!({"a": [1, {"x": 1, "y": 2}], "b": 1})),
        );
        assert_eq!(bind, same, "key order must not matter");
        let state = keys().seal(&bind, &answers());
        assert_eq!(keys().open(&state, &bind).unwrap(), answers());
        let other = binding("tools/call", "t", Some(&json!({"b": 2})));
        assert_eq!(keys().open(&state, &other), Err(StateError::OtherRequest));
    }

    #[test]
    fn altered_foreign_and_expired_states_are_refused() {
        let bind = binding("prompts/get", "p", None);
        let state = keys().seal(&bind, &answers());
        let mut altered = state.clone().into_bytes();
        let at = state.find('.').unwrap() + 4;
        altered[at] = if altered[at] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).unwrap();
        assert!(matches!(
            keys().open(&altered, &bind),
            Err(StateError::Tampered | StateError::Malformed)
        ));
        let foreign = RequestStateKeys::new("k1", b"another secret of 16+".to_vec()).unwrap();
        assert_eq!(foreign.open(&state, &bind), Err(StateError::Tampered));
        assert_eq!(
            RequestStateKeys::random().open(&state, &bind),
            Err(StateError::UnknownKey)
        );
        assert_eq!(keys().open("garbage", &bind), Err(StateError::Malformed));
        let expired = keys().ttl(Duration::ZERO).seal(&bind, &answers());
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(keys().open(&expired, &bind), Err(StateError::Expired));
    }

    #[test]
    fn a_rotated_key_still_opens_old_states() {
        let bind = binding("tools/call", "t", None);
        let old = keys().seal(&bind, &answers());
        let rotated = RequestStateKeys::new("k2", b"the new secret, 16+".to_vec())
            .unwrap()
            .accept("k1", b"0123456789abcdef0123".to_vec())
            .unwrap();
        assert_eq!(rotated.open(&old, &bind).unwrap(), answers());
        assert!(rotated.seal(&bind, &answers()).starts_with("v1.k2."));
        assert!(matches!(
            RequestStateKeys::new("bad id", b"0123456789abcdef".to_vec()),
            Err(StateKeyError::InvalidId(_))
        ));
        assert!(matches!(
            RequestStateKeys::new("k", b"short".to_vec()),
            Err(StateKeyError::ShortSecret(_))
        ));
    }
}
