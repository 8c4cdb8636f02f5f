//! Sessions shared with other replicas through a [`SessionStore`]: serving a session another
//! replica created, ending it everywhere, keeping it alive, and routing client answers.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use axum::body::Body;
use bytes::Bytes;
use http::{Response, StatusCode};
use mcpbus_proto::error_codes;
use mcpbus_proto::jsonrpc::{Message, RequestId, parse_message};

use super::HttpInner;
use super::handlers::error;
use super::session::{HttpSession, lock};
use crate::cluster::{ClusterError, ClusterListener, SessionRecord};
use crate::server::ClientSession;

/// How long a session lives in the shared store without use when no idle timeout is set.
const DEFAULT_SHARED_TTL: Duration = Duration::from_secs(24 * 3600);

/// The HTTP answer when the shared backend fails: the client may retry.
pub(crate) fn unavailable(e: &ClusterError) -> Response<Body> {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        error_codes::INTERNAL_ERROR,
        e.to_string(),
    )
}

fn not_found() -> Response<Body> {
    error(
        StatusCode::NOT_FOUND,
        error_codes::INVALID_REQUEST,
        "Session not found",
    )
}

impl HttpInner {
    /// How long the shared store keeps an unused session.
    pub(crate) fn shared_ttl(&self) -> Duration {
        self.config
            .session_idle_timeout
            .unwrap_or(DEFAULT_SHARED_TTL)
    }

    /// The session `id`: this replica's copy, or (with a shared store) one started here from
    /// the record another replica saved. 404 when it exists nowhere.
    pub(crate) async fn session_by_id(
        self: &Arc<Self>,
        id: &str,
    ) -> Result<Arc<HttpSession>, Response<Body>> {
        let local = lock(&self.sessions).get(id).cloned();
        let Some(cluster) = &self.config.session_store else {
            return local.ok_or_else(not_found);
        };
        if let Some(session) = local {
            self.touch(&session).await;
            return Ok(session);
        }
        let record = match cluster.load(id).await {
            Ok(Some(r)) => r,
            Ok(None) => return Err(not_found()),
            Err(e) => return Err(unavailable(&e)),
        };
        if lock(&self.sessions).len() >= self.config.max_sessions {
            return Err(error(
                StatusCode::SERVICE_UNAVAILABLE,
                error_codes::INTERNAL_ERROR,
                format!("too many sessions (limit {})", self.config.max_sessions),
            ));
        }
        let id: Arc<str> = id.into();
        let client = ClientSession {
            protocol_version: record.protocol_version,
            client_info: record.client_info,
            capabilities: record.capabilities,
        };
        // Two requests may ask for the same session at once: one copy is started, under a
        // lock (this happens once per session and replica).
        let _starting = self.materializing.lock().await;
        if let Some(session) = lock(&self.sessions).get(&id).cloned() {
            return Ok(session);
        }
        let winner = self.start_session(id.clone(), Some(client), false).await;
        self.server.set_agent_id(&id, &record.agent_id);
        lock(&self.sessions).insert(id.clone(), winner.clone());
        tracing::info!(session = %id, "serving a session created by another replica");
        *lock(&winner.last_touch) = Some(Instant::now());
        Ok(winner)
    }

    /// Tells the shared store a session is in use, at most a few times per idle timeout.
    pub(crate) async fn touch(&self, session: &HttpSession) {
        let Some(cluster) = &self.config.session_store else {
            return;
        };
        let ttl = self.shared_ttl();
        let now = Instant::now();
        {
            let mut last = lock(&session.last_touch);
            if last.is_some_and(|t| now.duration_since(t) < ttl / 8) {
                return;
            }
            *last = Some(now);
        }
        if let Err(e) = cluster.touch(&session.id, ttl).await {
            tracing::warn!(session = %session.id, error = %e, "could not keep the shared session alive");
        }
    }

    /// Saves a session that just initialized, so that every replica can serve it. A session
    /// that cannot be saved ends (the client gets 503 and may retry).
    pub(crate) async fn share_session(&self, session: &HttpSession) -> Result<(), Response<Body>> {
        let Some(cluster) = &self.config.session_store else {
            return Ok(());
        };
        let Some(record): Option<SessionRecord> = self.server.session_record(&session.id) else {
            return Ok(());
        };
        match cluster
            .create(&session.id, &record, self.shared_ttl())
            .await
        {
            Ok(()) => {
                *lock(&session.last_touch) = Some(Instant::now());
                Ok(())
            }
            Err(e) => {
                self.end_session(session, "could not be shared");
                Err(unavailable(&e))
            }
        }
    }

    /// DELETE: ends the session for every replica, then here.
    pub(crate) async fn delete_session(&self, session: &HttpSession) -> Result<(), Response<Body>> {
        if let Some(cluster) = &self.config.session_store {
            if let Err(e) = cluster.end(&session.id).await {
                return Err(unavailable(&e));
            }
            session.set_ended_everywhere();
        }
        self.end_session(session, "deleted by client");
        Ok(())
    }

    /// A client's answer: to this replica's copy when it waits for it, else to the replica
    /// that does (shared sessions). `None`: deliver it here.
    pub(crate) async fn forward_answer(
        &self,
        session: &HttpSession,
        message: &Message,
    ) -> Option<Response<Body>> {
        let cluster = self.config.session_store.as_ref()?;
        let id = answer_id(message)?;
        if session.peer.has_pending(id) {
            return None;
        }
        let frame = Bytes::from(message.to_vec());
        Some(match cluster.forward_response(&session.id, frame).await {
            Ok(()) => super::handlers::status_only(StatusCode::ACCEPTED),
            Err(e) => unavailable(&e),
        })
    }

    /// Keeps the shared records of sessions with open streams alive (called by the reaper).
    pub(crate) async fn touch_active(&self) {
        if self.config.session_store.is_none() {
            return;
        }
        let now = Instant::now();
        let active: Vec<_> = lock(&self.sessions)
            .values()
            .filter(|s| s.idle_for(now).is_zero())
            .cloned()
            .collect();
        for s in active {
            self.touch(&s).await;
        }
    }
}

/// The request a client's answer (a response or an error with an id) belongs to.
fn answer_id(message: &Message) -> Option<&RequestId> {
    match message {
        Message::Response(r) => Some(&r.id),
        Message::Error(e) => e.id.as_ref(),
        _ => None,
    }
}

/// Hears from the shared session store what other replicas did.
pub(crate) struct Listener(pub(crate) Weak<HttpInner>);

impl ClusterListener for Listener {
    fn session_ended(&self, session: &str) {
        let Some(inner) = self.0.upgrade() else {
            return;
        };
        let local = lock(&inner.sessions).get(session).cloned();
        if let Some(s) = local {
            s.set_ended_everywhere();
            inner.end_session(&s, "ended on another replica");
        }
    }

    fn response(&self, session: &str, frame: Bytes) {
        let Some(inner) = self.0.upgrade() else {
            return;
        };
        let Some(s) = lock(&inner.sessions).get(session).cloned() else {
            return;
        };
        let Ok(message) = parse_message(&frame) else {
            return;
        };
        if answer_id(&message).is_some_and(|id| s.peer.has_pending(id)) {
            tokio::spawn(async move {
                let _ = s.inbound.send(Box::new(message)).await;
            });
        }
    }
}
