//! The connection loop of the HTTP server (docs/http.md, "Slow clients"): HTTP/1.1 on each
//! accepted connection, `TCP_NODELAY` (small SSE writes must not wait for a delayed ACK), a
//! bound on how long a request's head may take to arrive (a client that sends its headers a
//! byte at a time holds nothing for long), a bound on how long a client may stop taking what
//! the server writes (`stalled.rs`), counts of the connections ([`ConnectionStats`]), and a
//! graceful end: on shutdown every connection finishes its request in flight and closes.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

use super::stalled::StallBounded;

/// Bounds on each connection of [`serve_router`], and where its connections are counted.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// How long a request's line and headers may take to arrive, from the first byte (or from
    /// the connection's start); beyond it the connection is closed (default 10 s).
    pub header_read_timeout: Duration,
    /// How long the client may take no byte of what the server writes (a stream it stopped
    /// reading, in practice); beyond it the connection is reset and counted in
    /// [`ConnectionStats::stalled_closed`] (default 30 s; `None`: no bound).
    pub stalled_stream_timeout: Option<Duration>,
    /// Counts the connections ([`Server::metrics`](crate::server::Server::metrics) has the
    /// server's, which `/metrics` reports; the default counts for nobody).
    pub stats: ConnectionStats,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(10),
            stalled_stream_timeout: Some(DEFAULT_STALLED_STREAM_TIMEOUT),
            stats: ConnectionStats::default(),
        }
    }
}

/// The default of [`ConnectionLimits::stalled_stream_timeout`]: long enough for a client on a
/// congested network to take a byte now and then, short enough that one that stopped reading
/// does not hold its connection, its stream and their buffers for long.
pub(super) const DEFAULT_STALLED_STREAM_TIMEOUT: Duration = Duration::from_secs(30);

/// Counts of the connections of [`serve_router`] (cheap to clone: clones count together).
#[derive(Debug, Clone, Default)]
pub struct ConnectionStats(Arc<Counts>);

#[derive(Debug, Default)]
struct Counts {
    accepted: AtomicU64,
    open: AtomicUsize,
    stalled_closed: AtomicU64,
}

impl ConnectionStats {
    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.0.accepted.load(Ordering::Relaxed)
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.0.open.load(Ordering::Relaxed)
    }

    /// Connections closed because their client took no byte for the stalled stream timeout
    /// while the server had bytes to write.
    pub fn stalled_closed(&self) -> u64 {
        self.0.stalled_closed.load(Ordering::Relaxed)
    }

    pub(super) fn count_stalled(&self) {
        self.0.stalled_closed.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a connection accepted and open until the guard is dropped.
    fn opened(&self) -> OpenConnection {
        self.0.accepted.fetch_add(1, Ordering::Relaxed);
        self.0.open.fetch_add(1, Ordering::Relaxed);
        OpenConnection(self.clone())
    }
}

/// One open connection, counted in [`ConnectionStats::open`] until dropped.
struct OpenConnection(ConnectionStats);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then lets every connection finish
/// its request in flight and waits for them all to close.
pub async fn serve_router(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    // Every connection holds a clone; all are dropped once every connection has closed.
    let (open_tx, open_rx) = watch::channel(());
    tokio::pin!(shutdown);
    loop {
        let (tcp, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little, never spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        let open = (open_rx.clone(), limits.stats.opened());
        let tcp = StallBounded::new(tcp, limits.stalled_stream_timeout, limits.stats.clone());
        let head_timeout = limits.header_read_timeout;
        tokio::spawn(connection(
            tcp,
            app.clone(),
            head_timeout,
            stop_rx.clone(),
            open,
        ));
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(open_rx);
    open_tx.closed().await;
    Ok(())
}

/// Serves one connection until it closes, or gracefully once `stop` turns true. `_open` holds
/// the server's wait for its connections and this one's count until it returns.
async fn connection(
    tcp: StallBounded,
    app: Router,
    header_read_timeout: Duration,
    mut stop: watch::Receiver<bool>,
    _open: (watch::Receiver<()>, OpenConnection),
) {
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let app = app.clone();
        // The router's error type is `Infallible`: every request gets a response.
        async move { app.oneshot(req.map(Body::new)).await }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let conn = builder
        .serve_connection(TokioIo::new(tcp), service)
        .with_upgrades();
    tokio::pin!(conn);
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::trace!(error = %e, "connection ended with an error");
                }
                return;
            }
            changed = stop.changed() => {
                conn.as_mut().graceful_shutdown();
                if changed.is_err() {
                    // The server is gone: finish this connection, then return.
                    let _ = conn.as_mut().await;
                    return;
                }
            }
        }
    }
}
