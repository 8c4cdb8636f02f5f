//! `[modern]`: how `mcpbus serve` serves the 2026-07-28 era (docs/protocol.md 6).

use std::time::Duration;

use mcpbus::server::modern::{ModernConfig, RequestStateKeys, StateKeyError};
use mcpbus_proto::modern::CacheScope;
use serde::Deserialize;

/// The environment variable holding the `requestState` key when the file names none.
pub(crate) const STATE_KEY_ENV: &str = "MCPBUS_STATE_KEY";

/// `[modern]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModernSection {
    /// Serve the 2026-07-28 era beside the handshake era (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Keys sealing `requestState`, the first signs; secrets come from the environment.
    #[serde(default)]
    pub request_state_keys: Vec<StateKeyEntry>,
    /// `ttlMs` of list results, `server/discover` and `resources/read`, in seconds.
    #[serde(default)]
    pub cache_ttl_secs: u64,
    /// `cacheScope` of those results: `private` (default) or `public`.
    #[serde(default = "private")]
    pub cache_scope: String,
    /// `subscriptions/listen` streams held open at once.
    #[serde(default = "default_max_listens")]
    pub max_listens: usize,
}

/// One `[[modern.request_state_keys]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StateKeyEntry {
    /// The key's id, written in every state it seals.
    pub id: String,
    /// The environment variable holding its secret (at least 16 bytes).
    pub secret_env: String,
}

fn yes() -> bool {
    true
}

fn private() -> String {
    "private".into()
}

fn default_max_listens() -> usize {
    mcpbus::server::modern::DEFAULT_MAX_LISTENS
}

impl Default for ModernSection {
    fn default() -> Self {
        ModernSection {
            enabled: true,
            request_state_keys: Vec::new(),
            cache_ttl_secs: 0,
            cache_scope: private(),
            max_listens: default_max_listens(),
        }
    }
}

/// Why `[modern]` cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ModernConfigError {
    /// A key's secret variable is not set.
    #[error("[modern] request state key {id:?}: the environment variable {var} is not set")]
    MissingSecret {
        /// The key.
        id: String,
        /// The variable.
        var: String,
    },
    /// A key is unusable.
    #[error("[modern] {0}")]
    Key(#[from] StateKeyError),
    /// `cache_scope` is neither value.
    #[error("[modern] cache_scope {0:?}: expected private or public")]
    CacheScope(String),
}

impl ModernSection {
    /// The server's modern-era settings; `env` reads environment variables.
    pub(crate) fn to_config(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<ModernConfig, ModernConfigError> {
        if !self.enabled {
            return Ok(ModernConfig::disabled());
        }
        let scope = match self.cache_scope.as_str() {
            "private" => CacheScope::Private,
            "public" => CacheScope::Public,
            other => return Err(ModernConfigError::CacheScope(other.into())),
        };
        let mut config = ModernConfig::default()
            .cache(Duration::from_secs(self.cache_ttl_secs), scope)
            .max_listens(self.max_listens);
        if let Some(keys) = self.state_keys(&env)? {
            config = config.state_keys(keys);
        }
        Ok(config)
    }

    /// The configured keys, else the one in `MCPBUS_STATE_KEY`, else none (a random key).
    fn state_keys(
        &self,
        env: &impl Fn(&str) -> Option<String>,
    ) -> Result<Option<RequestStateKeys>, ModernConfigError> {
        let mut keys: Option<RequestStateKeys> = None;
        for entry in &self.request_state_keys {
            let secret =
                env(&entry.secret_env).ok_or_else(|| ModernConfigError::MissingSecret {
                    id: entry.id.clone(),
                    var: entry.secret_env.clone(),
                })?;
            keys = Some(match keys {
                None => RequestStateKeys::new(&entry.id, secret)?,
                Some(k) => k.accept(&entry.id, secret)?,
            });
        }
        if keys.is_none()
            && let Some(secret) = env(STATE_KEY_ENV)
        {
            keys = Some(RequestStateKeys::new("env", secret)?);
        }
        Ok(keys)
    }

    /// Whether the keys are this process's own (random): a retry must come back here.
    pub(crate) fn uses_random_key(&self, env: impl Fn(&str) -> Option<String>) -> bool {
        self.enabled && self.request_state_keys.is_empty() && env(STATE_KEY_ENV).is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "NEW" => Some("a new secret of 16+ bytes".into()),
            "OLD" => Some("an old secret of 16+ bytes".into()),
            _ => None,
        }
    }

    #[test]
    fn keys_come_from_the_environment_first_one_signs() {
        let section: ModernSection = toml::from_str(
            r#"request_state_keys = [{id = "new", secret_env = "NEW"}, {id = "old", secret_env = "OLD"}]"#,
        )
        .unwrap();
        let config = section.to_config(env).unwrap();
        assert!(format!("{config:?}").contains(r#"key_ids: ["new", "old"]"#));
        let missing: ModernSection =
            toml::from_str(r#"request_state_keys = [{id = "k", secret_env = "NOPE"}]"#).unwrap();
        assert!(matches!(
            missing.to_config(env),
            Err(ModernConfigError::MissingSecret { .. })
        ));
    }

    #[test]
    fn bad_values_are_named() {
        let section: ModernSection = toml::from_str(r#"cache_scope = "shared""#).unwrap();
        let e = section.to_config(env).unwrap_err().to_string();
        assert!(e.contains("cache_scope \"shared\""), "{e}");
        let off: ModernSection = toml::from_str("enabled = false").unwrap();
        assert!(!off.uses_random_key(env));
    }
}
