//! The OAuth state of one HTTP client transport, and what the transport asks of it: the
//! `Authorization` value of the next request, and what to do about a `401` or `403` answer.
//!
//! Flows are serialized (one authorization at a time per transport). Every new token bumps a
//! generation number; a request that failed with an older token than the current one is simply
//! sent again, so that concurrent requests that all met a `401` authorize once.

use std::sync::{Arc, Mutex};

use http::header::{AUTHORIZATION, HeaderName};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use url::Url;

use super::agent::Agent;
use super::challenge::{BearerChallenge, challenges_in};
use super::dpop::Dpop;
use super::flow::Target;
use super::jwt::unix_now;
use super::store::{StoredCredentials, Tokens};
use super::urls::http_url;
use super::{OAuthConfig, OAuthError};
use crate::util::lock;

/// How many times a request is sent again because another request renewed the token meanwhile.
const MAX_STALE_RETRIES: u32 = 3;
/// How many times a request is sent again with a new DPoP nonce of the MCP server.
const MAX_NONCE_RETRIES: u32 = 2;

/// The headers that authorize a request (`Authorization`, and `DPoP` for a DPoP-bound token),
/// and the token generation they carry.
#[derive(Debug, Clone)]
pub(crate) struct Credential {
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) generation: u64,
}

/// What one request already went through, so that it never loops.
#[derive(Debug, Default)]
pub(crate) struct Attempts {
    pub(super) refreshed: bool,
    pub(super) authorized: bool,
    step_ups: u32,
    stale: u32,
    nonces: u32,
}

/// What the transport does after an answer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// Use the answer as it is.
    Done,
    /// Send the request again with the current credential.
    Retry,
}

/// What the transport's flows share.
#[derive(Default)]
pub(super) struct State {
    loaded: bool,
    pub(super) entry: StoredCredentials,
    generation: u64,
    /// The last discovery, to refresh an expired token without discovering again.
    pub(super) target: Option<Arc<Target>>,
    /// The DPoP key, once DPoP is used (or a stored key was loaded).
    pub(super) dpop: Option<Arc<Dpop>>,
}

/// The OAuth client of one HTTP client transport.
pub(crate) struct Authorizer {
    pub(super) config: OAuthConfig,
    pub(super) agent: Agent,
    /// The MCP endpoint.
    pub(super) server: Url,
    key: String,
    pub(super) state: Mutex<State>,
    /// Held while a flow runs: flows are serialized.
    flow: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorizer")
            .field("server", &self.server.as_str())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Authorizer {
    /// The OAuth client of the MCP endpoint `server`.
    pub(crate) fn new(config: OAuthConfig, server: &Uri) -> Result<Authorizer, OAuthError> {
        config.validate()?;
        let server = http_url("MCP server URL", &server.to_string())?;
        let agent = Agent::new(&config.extra_root_certificates, config.http_timeout)?;
        let key = config
            .store_key
            .clone()
            .unwrap_or_else(|| server.to_string());
        Ok(Authorizer {
            config,
            agent,
            server,
            key,
            state: Mutex::default(),
            flow: tokio::sync::Mutex::new(()),
        })
    }

    /// The credential for the next request (`method` to the MCP endpoint): the current access
    /// token, loaded from the store at first use and refreshed first when it has expired and
    /// can be; a DPoP-bound token with a fresh proof.
    pub(crate) async fn credential(&self, method: &Method) -> Credential {
        let needs_work = {
            let state = lock(&self.state);
            !state.loaded || (state.target.is_some() && refreshable_expired(&state.entry))
        };
        if needs_work {
            let _flow = self.flow.lock().await;
            self.load().await;
            let target = {
                let state = lock(&self.state);
                refreshable_expired(&state.entry)
                    .then(|| state.target.clone())
                    .flatten()
            };
            if let Some(target) = target
                && let Err(e) = self.refresh(&target).await
            {
                tracing::warn!(error = %e, "refreshing the expired access token failed");
                self.forget_tokens().await;
            }
        }
        let state = lock(&self.state);
        let headers = match &state.entry.tokens {
            Some(tokens) => self
                .authorization(tokens, state.dpop.as_deref(), method)
                .unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "cannot present the access token");
                    Vec::new()
                }),
            None => Vec::new(),
        };
        Credential {
            headers,
            generation: state.generation,
        }
    }

    /// `Authorization: Bearer …`, or `Authorization: DPoP …` with its proof.
    fn authorization(
        &self,
        tokens: &Tokens,
        dpop: Option<&Dpop>,
        method: &Method,
    ) -> Result<Vec<(HeaderName, HeaderValue)>, OAuthError> {
        let value = |text: String| {
            HeaderValue::from_str(&text).map_err(|_| {
                OAuthError::InvalidTokenResponse("the token is no header value".into())
            })
        };
        let token = &tokens.access_token;
        if tokens.token_type != "DPoP" {
            return Ok(vec![(AUTHORIZATION, value(format!("Bearer {token}"))?)]);
        }
        let dpop = dpop.ok_or_else(|| OAuthError::Crypto("the DPoP key is lost".into()))?;
        let proof = dpop.proof(method.as_str(), &self.server, Some(token))?;
        Ok(vec![
            (AUTHORIZATION, value(format!("DPoP {token}"))?),
            (HeaderName::from_static("dpop"), value(proof)?),
        ])
    }

    /// Loads what the store holds for this server, once.
    async fn load(&self) {
        if lock(&self.state).loaded {
            return;
        }
        let loaded = match self.config.store.load(&self.key).await {
            Ok(entry) => entry.unwrap_or_default(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the OAuth token store; starting without tokens");
                StoredCredentials::default()
            }
        };
        let mut loaded = loaded;
        let dpop = match loaded.dpop_key.as_deref().map(Dpop::from_stored) {
            Some(Ok(dpop)) => Some(Arc::new(dpop)),
            Some(Err(e)) => {
                tracing::warn!(error = %e, "the stored DPoP key is unusable");
                None
            }
            None => None,
        };
        if dpop.is_none()
            && loaded
                .tokens
                .as_ref()
                .is_some_and(|t| t.token_type == "DPoP")
        {
            loaded.tokens = None; // bound to a key that is gone
        }
        let mut state = lock(&self.state);
        state.loaded = true;
        if loaded.tokens.is_some() {
            state.generation += 1;
        }
        state.entry = loaded;
        state.dpop = dpop;
    }

    /// Decides what to do about an answer with `status` and `headers` to a request that carried
    /// the credential of generation `sent`.
    pub(crate) async fn answered(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        sent: u64,
        attempts: &mut Attempts,
    ) -> Result<Next, OAuthError> {
        let dpop = lock(&self.state).dpop.clone();
        let new_nonce = match (dpop, headers.get("dpop-nonce")) {
            (Some(dpop), Some(nonce)) => nonce.to_str().is_ok_and(|n| dpop.set_rs_nonce(n)),
            _ => false,
        };
        if status == StatusCode::UNAUTHORIZED && new_nonce && attempts.nonces < MAX_NONCE_RETRIES {
            // RFC 9449 section 9: the server wants its nonce in the proof; nothing else changes.
            attempts.nonces += 1;
            return Ok(Next::Retry);
        }
        match status {
            StatusCode::UNAUTHORIZED => self.unauthorized(headers, sent, attempts).await,
            StatusCode::FORBIDDEN => self.forbidden(headers, sent, attempts).await,
            _ => Ok(Next::Done),
        }
    }

    async fn unauthorized(
        &self,
        headers: &HeaderMap,
        sent: u64,
        attempts: &mut Attempts,
    ) -> Result<Next, OAuthError> {
        let challenges = challenges_in(headers)?;
        let challenge = match BearerChallenge::find(&challenges) {
            Some(challenge) => challenge,
            // No challenge at all: discover through the well-known URIs.
            None if challenges.is_empty() => BearerChallenge::default(),
            None => {
                return Err(OAuthError::NotBearer {
                    schemes: challenges.into_iter().map(|c| c.scheme).collect(),
                });
            }
        };
        let _flow = self.flow.lock().await;
        if self.renewed_since(sent, attempts) {
            return Ok(Next::Retry);
        }
        if attempts.authorized {
            return Err(OAuthError::Rejected {
                status: StatusCode::UNAUTHORIZED,
            });
        }
        self.recover(&challenge, attempts).await?;
        Ok(Next::Retry)
    }

    async fn forbidden(
        &self,
        headers: &HeaderMap,
        sent: u64,
        attempts: &mut Attempts,
    ) -> Result<Next, OAuthError> {
        let challenge = match challenges_in(headers).map(|c| BearerChallenge::find(&c)) {
            Ok(Some(challenge)) if challenge.is_insufficient_scope() => challenge,
            // Any other 403 is the server's answer to pass on.
            _ => return Ok(Next::Done),
        };
        let wanted = challenge.scope.clone().unwrap_or_default();
        if wanted.is_empty() {
            return Ok(Next::Done);
        }
        let _flow = self.flow.lock().await;
        if self.renewed_since(sent, attempts) {
            return Ok(Next::Retry);
        }
        let held = self.held_scopes();
        if wanted.iter().all(|s| held.contains(s)) {
            return Err(OAuthError::ScopeRefused { scopes: wanted });
        }
        if attempts.step_ups >= self.config.max_step_ups {
            return Err(OAuthError::StepUpExhausted {
                scopes: wanted,
                attempts: attempts.step_ups,
            });
        }
        attempts.step_ups += 1;
        tracing::info!(scopes = ?wanted, "the server asks for more scopes: step-up authorization");
        self.step_up(&challenge).await?;
        Ok(Next::Retry)
    }

    /// Whether the token changed since the request was sent (another request renewed it): then
    /// sending again is enough, a bounded number of times.
    fn renewed_since(&self, sent: u64, attempts: &mut Attempts) -> bool {
        if lock(&self.state).generation == sent || attempts.stale >= MAX_STALE_RETRIES {
            return false;
        }
        attempts.stale += 1;
        true
    }

    /// The scopes of the current token.
    pub(super) fn held_scopes(&self) -> Vec<String> {
        lock(&self.state)
            .entry
            .tokens
            .as_ref()
            .map(|t| t.scopes.clone())
            .unwrap_or_default()
    }

    /// Installs new tokens (a new generation) and saves the entry.
    pub(super) async fn install(&self, tokens: Tokens) {
        let entry = {
            let mut state = lock(&self.state);
            state.entry.tokens = Some(tokens);
            state.generation += 1;
            state.entry.clone()
        };
        self.save(&entry).await;
    }

    /// Drops the tokens (kept registration) and saves the entry.
    pub(super) async fn forget_tokens(&self) {
        let entry = {
            let mut state = lock(&self.state);
            state.entry.tokens = None;
            state.entry.clone()
        };
        self.save(&entry).await;
    }

    /// Saves `entry`; a failing store only costs a login next time, so it is logged.
    pub(super) async fn save(&self, entry: &StoredCredentials) {
        if let Err(e) = self.config.store.save(&self.key, entry).await {
            tracing::warn!(error = %e, "cannot save the OAuth credentials");
        }
    }
}

/// Whether the entry's token has expired and a refresh token could renew it.
fn refreshable_expired(entry: &StoredCredentials) -> bool {
    entry
        .tokens
        .as_ref()
        .is_some_and(|t| t.refresh_token.is_some() && t.expired_at(unix_now()))
}
