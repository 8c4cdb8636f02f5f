//! [`SharedSessions`]: the session directory of a replica that shares its sessions with the
//! other replicas of a deployment through a [`SessionStore`]. Any replica serves any session
//! (it starts a copy from the record the creating replica saved), ends it for every replica,
//! keeps it alive, and routes a client's answer to the replica whose request waits for it.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use mcpbus_proto::jsonrpc::{Message, RequestId, parse_message};

use super::directory::{DirectoryError, LocalSessions, SessionDirectory};
use super::session::{HttpSession, StandaloneGuard, lock};
use super::{HttpConfig, HttpInner};
use crate::cluster::{ClusterListener, SessionRecord, SessionStore};
use crate::server::ClientSession;

/// How long a session lives in the shared store without use when no idle timeout is set.
const DEFAULT_SHARED_TTL: Duration = Duration::from_secs(24 * 3600);

/// This replica's copies of shared sessions, and the store that shares them.
pub(crate) struct SharedSessions {
    local: LocalSessions,
    store: Arc<dyn SessionStore>,
    /// The endpoint, to start copies of sessions other replicas created (weak: the endpoint
    /// owns this directory).
    http: Weak<HttpInner>,
    /// How long the store keeps an unused session.
    ttl: Duration,
    max_sessions: usize,
    /// Held while a copy of a session another replica created is started here.
    materializing: tokio::sync::Mutex<()>,
}

impl SharedSessions {
    /// The directory of endpoint `http` (being built), sharing sessions through `store`.
    pub(crate) fn new(
        store: Arc<dyn SessionStore>,
        config: &HttpConfig,
        http: Weak<HttpInner>,
    ) -> Self {
        store.listen(Arc::new(Listener(http.clone())));
        SharedSessions {
            local: LocalSessions::default(),
            store,
            http,
            ttl: config.session_idle_timeout.unwrap_or(DEFAULT_SHARED_TTL),
            max_sessions: config.max_sessions,
            materializing: tokio::sync::Mutex::new(()),
        }
    }

    /// Tells the shared store a session is in use, at most a few times per idle timeout.
    async fn touch(&self, session: &HttpSession) {
        let now = Instant::now();
        {
            let mut last = lock(&session.last_touch);
            if last.is_some_and(|t| now.duration_since(t) < self.ttl / 8) {
                return;
            }
            *last = Some(now);
        }
        if let Err(e) = self.store.touch(&session.id, self.ttl).await {
            tracing::warn!(session = %session.id, error = %e, "could not keep the shared session alive");
        }
    }

    /// The session `id`: this replica's copy, or one started here from the record another
    /// replica saved.
    async fn find_or_start(&self, id: &str) -> Result<Arc<HttpSession>, DirectoryError> {
        if let Some(session) = self.local.get(id) {
            self.touch(&session).await;
            return Ok(session);
        }
        let record = match self.store.load(id).await {
            Ok(Some(r)) => r,
            Ok(None) => return Err(DirectoryError::NotFound),
            Err(e) => return Err(DirectoryError::Unavailable(e)),
        };
        if self.local.len() >= self.max_sessions {
            return Err(DirectoryError::Full {
                limit: self.max_sessions,
            });
        }
        self.start_copy(id.into(), record).await
    }

    /// Starts serving here a session another replica created.
    async fn start_copy(
        &self,
        id: Arc<str>,
        record: SessionRecord,
    ) -> Result<Arc<HttpSession>, DirectoryError> {
        // Only a dropped endpoint has no `HttpInner`, and it serves no request any more.
        let Some(http) = self.http.upgrade() else {
            return Err(DirectoryError::NotFound);
        };
        let client = ClientSession {
            protocol_version: record.protocol_version,
            client_info: record.client_info,
            capabilities: record.capabilities,
        };
        // Two requests may ask for the same session at once: one copy is started, under a
        // lock (this happens once per session and replica).
        let _starting = self.materializing.lock().await;
        if let Some(session) = self.local.get(&id) {
            return Ok(session);
        }
        let copy = http.start_session(id.clone(), Some(client), false).await;
        http.server.set_agent_id(&id, &record.agent_id);
        if let Some(subject) = &record.subject {
            http.server.set_bound_subject(&id, subject);
        }
        self.local.insert(copy.clone());
        tracing::info!(session = %id, "serving a session created by another replica");
        *lock(&copy.last_touch) = Some(Instant::now());
        Ok(copy)
    }

    /// Saves the record of a session that just initialized.
    async fn save(&self, session: &HttpSession) -> Result<(), DirectoryError> {
        let Some(http) = self.http.upgrade() else {
            return Ok(());
        };
        let Some(record) = http.server.session_record(&session.id) else {
            return Ok(());
        };
        self.store
            .create(&session.id, &record, self.ttl)
            .await
            .map_err(DirectoryError::Unavailable)?;
        *lock(&session.last_touch) = Some(Instant::now());
        Ok(())
    }
}

impl SessionDirectory for SharedSessions {
    fn local(&self) -> &LocalSessions {
        &self.local
    }

    fn find<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Arc<HttpSession>, DirectoryError>> {
        self.find_or_start(id).boxed()
    }

    fn started(&self, session: &HttpSession) {
        // Replicas serving one session number their requests to the client apart.
        let base = crate::util::random_u32();
        session
            .peer
            .start_request_ids_at((i64::from(base) << 20) | 1);
    }

    fn share<'a>(&'a self, session: &'a HttpSession) -> BoxFuture<'a, Result<(), DirectoryError>> {
        self.save(session).boxed()
    }

    fn forward_answer<'a>(
        &'a self,
        session: &'a HttpSession,
        answer: &'a Message,
    ) -> BoxFuture<'a, Result<bool, DirectoryError>> {
        async move {
            let Some(id) = answer_id(answer) else {
                return Ok(false);
            };
            if session.peer.has_pending(id) {
                return Ok(false);
            }
            let frame = Bytes::from(answer.to_vec());
            self.store
                .forward_response(&session.id, frame)
                .await
                .map_err(DirectoryError::Unavailable)?;
            Ok(true)
        }
        .boxed()
    }

    fn hold_standalone<'a>(
        &'a self,
        session: &'a HttpSession,
        guard: &'a mut StandaloneGuard,
    ) -> BoxFuture<'a, Result<(), DirectoryError>> {
        async move {
            self.store
                .attach_standalone(&session.id)
                .await
                .map_err(DirectoryError::Unavailable)?;
            // The guard tells the store again when the stream goes.
            guard.cluster = Some(self.store.clone());
            Ok(())
        }
        .boxed()
    }

    fn end_everywhere<'a>(
        &'a self,
        session: &'a HttpSession,
    ) -> BoxFuture<'a, Result<(), DirectoryError>> {
        async move {
            self.store
                .end(&session.id)
                .await
                .map_err(DirectoryError::Unavailable)?;
            session.set_ended_everywhere();
            Ok(())
        }
        .boxed()
    }

    fn may_drop_streams(&self, session: &HttpSession) -> bool {
        session.ended_everywhere()
    }

    fn touch_active(&self) -> BoxFuture<'_, ()> {
        async move {
            let now = Instant::now();
            let active: Vec<_> = self
                .local
                .all()
                .into_iter()
                .filter(|s| s.idle_for(now).is_zero())
                .collect();
            for s in active {
                self.touch(&s).await;
            }
        }
        .boxed()
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
struct Listener(Weak<HttpInner>);

impl ClusterListener for Listener {
    fn session_ended(&self, session: &str) {
        let Some(inner) = self.0.upgrade() else {
            return;
        };
        if let Some(s) = inner.sessions.local().get(session) {
            s.set_ended_everywhere();
            inner.end_session(&s, "ended on another replica");
        }
    }

    fn response(&self, session: &str, frame: Bytes) {
        let Some(inner) = self.0.upgrade() else {
            return;
        };
        let Some(s) = inner.sessions.local().get(session) else {
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
