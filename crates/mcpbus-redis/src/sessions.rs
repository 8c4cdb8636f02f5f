//! The shared session store.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use mcpbus::cluster::{ClusterListener, SessionRecord, SessionStore};
use mcpbus::store::EventStore;
use mcpbus::{BackendError, BackendErrorKind};
use tokio::sync::oneshot;

use crate::store::RedisEventStore;
use crate::tailer::Command;
use crate::{Inner, backend_error, lock, scripts};

pub(crate) struct RedisSessionStore(pub(crate) Arc<Inner>);

fn tailer_gone() -> BackendError {
    BackendError::msg(
        BackendErrorKind::Unavailable,
        "the Redis log reader has stopped",
    )
}

impl SessionStore for RedisSessionStore {
    fn listen(&self, listener: Arc<dyn ClusterListener>) {
        *lock(&self.0.listener) = Some(listener);
    }

    fn create<'a>(
        &'a self,
        session: &'a str,
        record: &'a SessionRecord,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        async move {
            let json = serde_json::to_string(record).map_err(|e| {
                BackendError::new(BackendErrorKind::Invalid, "session record not saved", e)
            })?;
            let mut conn = self.0.conn();
            let _: String = redis::Script::new(scripts::CREATE_SESSION)
                .key(self.0.keys.session(session))
                .key(self.0.keys.log())
                .arg(json)
                .arg(ttl.as_millis() as u64)
                .invoke_async(&mut conn)
                .await
                .map_err(backend_error)?;
            Ok(())
        }
        .boxed()
    }

    fn load<'a>(
        &'a self,
        session: &'a str,
    ) -> BoxFuture<'a, Result<Option<SessionRecord>, BackendError>> {
        async move {
            let mut conn = self.0.conn();
            let raw: Option<String> = redis::cmd("HGET")
                .arg(self.0.keys.session(session))
                .arg("record")
                .query_async(&mut conn)
                .await
                .map_err(backend_error)?;
            raw.map(|r| serde_json::from_str(&r))
                .transpose()
                .map_err(|e| {
                    BackendError::new(BackendErrorKind::Invalid, "unreadable session record", e)
                })
        }
        .boxed()
    }

    fn touch<'a>(
        &'a self,
        session: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        async move {
            let mut conn = self.0.conn();
            let _: i64 = redis::cmd("PEXPIRE")
                .arg(self.0.keys.session(session))
                .arg(ttl.as_millis() as u64)
                .query_async(&mut conn)
                .await
                .map_err(backend_error)?;
            Ok(())
        }
        .boxed()
    }

    fn end<'a>(&'a self, session: &'a str) -> BoxFuture<'a, Result<bool, BackendError>> {
        async move {
            let mut conn = self.0.conn();
            let ended: i64 = redis::Script::new(scripts::END_SESSION)
                .key(self.0.keys.session(session))
                .key(self.0.keys.log())
                .arg(session)
                .arg(self.0.config.log_max_len)
                .invoke_async(&mut conn)
                .await
                .map_err(backend_error)?;
            RedisEventStore(self.0.clone())
                .remove_session(session)
                .await;
            Ok(ended == 1)
        }
        .boxed()
    }

    fn attach_standalone<'a>(
        &'a self,
        session: &'a str,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        async move {
            let (tx, rx) = oneshot::channel();
            self.0
                .tailer
                .send(Command::Attach(session.into(), tx))
                .map_err(|_| tailer_gone())?;
            rx.await.map_err(|_| tailer_gone())?
        }
        .boxed()
    }

    fn detach_standalone(&self, session: &str) {
        let _ = self.0.tailer.send(Command::Detach(session.into()));
    }

    fn forward_response<'a>(
        &'a self,
        session: &'a str,
        frame: Bytes,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        async move {
            let mut conn = self.0.conn();
            let _: String = redis::cmd("XADD")
                .arg(self.0.keys.log())
                .arg("MAXLEN")
                .arg("~")
                .arg(self.0.config.log_max_len)
                .arg("*")
                .arg("k")
                .arg("r")
                .arg("s")
                .arg(session)
                .arg("m")
                .arg(frame.as_ref())
                .query_async(&mut conn)
                .await
                .map_err(backend_error)?;
            Ok(())
        }
        .boxed()
    }
}
