//! Replaces the shared Redis connection when it goes silent (docs/reliability.md): the
//! connection manager reconnects after a connection is closed or reset, but a connection that
//! stays open and never answers again (a hung Redis, a peer that vanished without a reset, a
//! black hole on the way) only makes every command time out, forever. The watchdog pings on the
//! shared connection every second; after two pings in a row without an answer in time, it makes
//! a new connection manager and puts it in place of the old one. Commands in flight on the old
//! one fail with their timeout; every later command goes to the new one.

use std::sync::Weak;
use std::time::Duration;

use redis::aio::ConnectionManager;

use crate::{Inner, lock};

/// How often the shared connection is checked.
const PERIOD: Duration = Duration::from_secs(1);

/// Pings in a row without an answer before the connection is replaced.
const SILENT_PINGS: u32 = 2;

/// Runs until the backend is dropped.
pub(crate) async fn run(inner: Weak<Inner>) {
    let mut silent = 0;
    loop {
        tokio::time::sleep(PERIOD).await;
        let Some(backend) = inner.upgrade() else {
            return;
        };
        let timeout = backend.config.response_timeout;
        let mut conn = backend.conn();
        let cmd = redis::cmd("PING");
        let ping = cmd.query_async::<String>(&mut conn);
        match tokio::time::timeout(timeout, ping).await {
            Ok(Ok(_)) => silent = 0,
            // An answer, even an error, means the connection is alive (the manager itself
            // reconnects closed ones).
            Ok(Err(e)) if !e.is_timeout() => silent = 0,
            _ => silent += 1,
        }
        if silent >= SILENT_PINGS {
            tracing::warn!(
                "the Redis connection has stopped answering; replacing it with a new one"
            );
            if let Some(fresh) = reconnect(&backend).await {
                *lock(&backend.conn) = fresh;
                silent = 0;
            }
        }
    }
}

/// A new connection manager with the backend's settings, or `None` when Redis cannot be
/// reached now (the next check tries again).
async fn reconnect(backend: &Inner) -> Option<ConnectionManager> {
    let config = crate::manager_config(&backend.config);
    let connecting = backend.client.get_connection_manager_with_config(config);
    match tokio::time::timeout(backend.config.response_timeout * 2, connecting).await {
        Ok(Ok(fresh)) => Some(fresh),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot open a new Redis connection yet");
            None
        }
        Err(_) => {
            tracing::warn!("opening a new Redis connection timed out");
            None
        }
    }
}
