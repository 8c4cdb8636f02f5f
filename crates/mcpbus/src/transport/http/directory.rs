//! Where the endpoint finds its sessions: the [`SessionDirectory`] seam, and
//! [`LocalSessions`], the directory of a server that shares its sessions with nobody.
//!
//! The POST, GET and DELETE handlers ask the directory and never test whether sessions are
//! shared: everything that differs with several replicas (finding a session another replica
//! created, saving a new one, forwarding a client's answer, ending a session everywhere) is a
//! method here, and [`SharedSessions`](super::shared_sessions::SharedSessions) implements it
//! with a [`SessionStore`](crate::cluster::SessionStore).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use futures::future::BoxFuture;
use mcpbus_proto::jsonrpc::Message;

use super::session::{HttpSession, StandaloneGuard, lock};
use crate::error::BackendError;

/// Why the directory could not do what a request needs (each is one HTTP answer).
#[derive(Debug)]
pub(crate) enum DirectoryError {
    /// No replica serves the session: unknown, ended or expired (404).
    NotFound,
    /// This replica serves as many sessions as it may (503).
    Full {
        /// The configured `max_sessions`.
        limit: usize,
    },
    /// The shared backend failed; the client may retry (503).
    Unavailable(BackendError),
}

/// The sessions an endpoint serves, and what it must tell other replicas about them.
pub(crate) trait SessionDirectory: Send + Sync + 'static {
    /// The sessions this process serves (with shared sessions: this replica's copies).
    fn local(&self) -> &LocalSessions;

    /// The session a request names, ready to serve here.
    fn find<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Arc<HttpSession>, DirectoryError>>;

    /// Called for every session started here, before it serves anything.
    fn started(&self, _session: &HttpSession) {}

    /// A new session initialized: from now on every replica may serve it. On an error the
    /// caller ends the session (a client must not hold a session other replicas cannot see).
    fn share<'a>(&'a self, session: &'a HttpSession) -> BoxFuture<'a, Result<(), DirectoryError>>;

    /// A client's answer (a response or an error) to a request of `session`: `Ok(true)` when it
    /// was sent to the replica whose request waits for it, `Ok(false)` to deliver it here.
    fn forward_answer<'a>(
        &'a self,
        session: &'a HttpSession,
        answer: &'a Message,
    ) -> BoxFuture<'a, Result<bool, DirectoryError>>;

    /// A GET stream of `session` just took the standalone slot (`guard`): with shared
    /// sessions, this replica now delivers the session's events.
    fn hold_standalone<'a>(
        &'a self,
        session: &'a HttpSession,
        guard: &'a mut StandaloneGuard,
    ) -> BoxFuture<'a, Result<(), DirectoryError>>;

    /// DELETE: ends `session` for every replica (the caller then ends this copy).
    fn end_everywhere<'a>(
        &'a self,
        session: &'a HttpSession,
    ) -> BoxFuture<'a, Result<(), DirectoryError>>;

    /// Whether an ended copy may drop the session's stored streams (not while another replica
    /// may still serve the session).
    fn may_drop_streams(&self, session: &HttpSession) -> bool;

    /// Keeps sessions with requests in flight or streams open from expiring elsewhere (called
    /// periodically by the idle reaper).
    fn touch_active(&self) -> BoxFuture<'_, ()>;
}

/// Sessions by id, in this process only.
#[derive(Default)]
pub(crate) struct LocalSessions {
    sessions: Mutex<HashMap<Arc<str>, Arc<HttpSession>>>,
}

impl LocalSessions {
    /// How many sessions are open.
    pub(crate) fn len(&self) -> usize {
        lock(&self.sessions).len()
    }

    /// The session `id`, if served here.
    pub(crate) fn get(&self, id: &str) -> Option<Arc<HttpSession>> {
        lock(&self.sessions).get(id).cloned()
    }

    /// Every session served here.
    pub(crate) fn all(&self) -> Vec<Arc<HttpSession>> {
        lock(&self.sessions).values().cloned().collect()
    }

    /// Adds (or replaces) a session.
    pub(crate) fn insert(&self, session: Arc<HttpSession>) {
        lock(&self.sessions).insert(session.id.clone(), session);
    }

    /// Removes session `id`: new requests no longer find it.
    pub(crate) fn remove(&self, id: &str) {
        let mut sessions = lock(&self.sessions);
        sessions.remove(id);
        crate::util::shrink_sparse(&mut sessions);
    }

    /// Removes `session`, unless a newer copy of the same session replaced it meanwhile.
    pub(crate) fn remove_copy(&self, session: &HttpSession) {
        let mut sessions = lock(&self.sessions);
        if sessions
            .get(&session.id)
            .is_some_and(|s| std::ptr::eq(Arc::as_ptr(s), session))
        {
            sessions.remove(&session.id);
            crate::util::shrink_sparse(&mut sessions);
        }
    }
}

impl SessionDirectory for LocalSessions {
    fn local(&self) -> &LocalSessions {
        self
    }

    fn find<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Arc<HttpSession>, DirectoryError>> {
        futures::future::ready(self.get(id).ok_or(DirectoryError::NotFound)).boxed()
    }

    fn share<'a>(&'a self, _session: &'a HttpSession) -> BoxFuture<'a, Result<(), DirectoryError>> {
        futures::future::ready(Ok(())).boxed()
    }

    fn forward_answer<'a>(
        &'a self,
        _session: &'a HttpSession,
        _answer: &'a Message,
    ) -> BoxFuture<'a, Result<bool, DirectoryError>> {
        futures::future::ready(Ok(false)).boxed()
    }

    fn hold_standalone<'a>(
        &'a self,
        _session: &'a HttpSession,
        _guard: &'a mut StandaloneGuard,
    ) -> BoxFuture<'a, Result<(), DirectoryError>> {
        futures::future::ready(Ok(())).boxed()
    }

    fn end_everywhere<'a>(
        &'a self,
        _session: &'a HttpSession,
    ) -> BoxFuture<'a, Result<(), DirectoryError>> {
        futures::future::ready(Ok(())).boxed()
    }

    fn may_drop_streams(&self, _session: &HttpSession) -> bool {
        true
    }

    fn touch_active(&self) -> BoxFuture<'_, ()> {
        futures::future::ready(()).boxed()
    }
}
