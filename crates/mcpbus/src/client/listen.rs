//! `subscriptions/listen` on the client (2026-07-28): one long-lived request whose stream carries
//! the change notifications the client asked for, kept open by a task of its own.
//!
//! The stream's notifications reach the client's notification callback like the handshake
//! era's do; the acknowledgement that opens each stream is taken here. A stream that ends or
//! breaks after it was acknowledged is reopened with a backoff (0.5 s doubling to 30 s, back to
//! 0.5 s once a stream is acknowledged again), until the client stops listening or closes; a new
//! filter replaces the stream at once. A stream that fails before its first acknowledgement
//! (e.g. a server without `subscriptions/listen`) is reported to whoever asked for it and not
//! retried.

use std::sync::Arc;
use std::time::Duration;

use mcpbus_proto::mcp::methods;
use mcpbus_proto::modern::SubscriptionFilter;
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::modern::ModernLink;
use crate::error::{Error, Result};
use crate::service::{Peer, RequestOptions};
use crate::util::lock;

/// The first wait before reopening a stream that ended.
const INITIAL_BACKOFF: Duration = Duration::from_millis(500);
/// The longest wait before reopening.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long one stream request may stay open before it is replaced (it is reopened at once):
/// a listen stream has no answer to wait for, but a request needs a bound.
const STREAM_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// The filter of one version of the stream.
#[derive(Debug, Clone, Default)]
struct Generation {
    n: u64,
    filter: SubscriptionFilter,
}

/// How the stream of a generation started: acknowledged with a filter, or failed.
#[derive(Debug, Clone, Default)]
struct Status {
    n: u64,
    outcome: Option<std::result::Result<SubscriptionFilter, String>>,
}

/// The running task and how to steer it.
struct Control {
    generations: watch::Sender<Generation>,
    status: watch::Receiver<Status>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

/// The client's listen stream, if one is open.
#[derive(Default)]
pub(super) struct Listener {
    control: std::sync::Mutex<Option<Control>>,
    /// Tasks told to stop, until someone waits for them.
    stopping: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Listener {
    /// The filter last asked for, if the stream runs.
    pub(super) fn filter(&self) -> Option<SubscriptionFilter> {
        let control = lock(&self.control);
        control
            .as_ref()
            .map(|c| c.generations.borrow().filter.clone())
    }

    /// Opens the stream with `filter` (or replaces the running one's filter) and waits up to
    /// `wait` for its acknowledgement; `acks` receives the acknowledgements the client handler
    /// takes from the connection.
    pub(super) async fn listen(
        &self,
        peer: &Peer,
        link: &Arc<ModernLink>,
        acks: impl FnOnce() -> mpsc::UnboundedReceiver<SubscriptionFilter>,
        filter: SubscriptionFilter,
        wait: Duration,
    ) -> Result<SubscriptionFilter> {
        let (n, mut status) = {
            let mut control = lock(&self.control);
            if control.as_ref().is_none_or(|c| c.stop.is_cancelled()) {
                *control = Some(spawn(peer.clone(), link.clone(), acks()));
            }
            let Some(c) = control.as_ref() else {
                return Err(Error::Closed);
            };
            let n = c.generations.borrow().n + 1;
            c.generations.send_replace(Generation { n, filter });
            (n, c.status.clone())
        };
        let acknowledged = async {
            loop {
                {
                    let s = status.borrow_and_update();
                    if s.n == n
                        && let Some(outcome) = &s.outcome
                    {
                        return outcome.clone().map_err(Error::Protocol);
                    }
                }
                if status.changed().await.is_err() {
                    return Err(Error::Closed);
                }
            }
        };
        match tokio::time::timeout(wait, acknowledged).await {
            Ok(outcome) => outcome,
            Err(_) => Err(Error::Timeout(wait)),
        }
    }

    /// Closes the stream and stops reopening it.
    pub(super) fn stop(&self) {
        if let Some(control) = lock(&self.control).take() {
            control.stop.cancel();
            lock(&self.stopping).push(control.task);
        }
    }

    /// Like [`stop`](Self::stop), and waits until the stream's request is given up, so that its
    /// cancellation goes out before the connection closes (a server would otherwise keep the
    /// stream, and the connection, open).
    pub(super) async fn stop_and_wait(&self) {
        self.stop();
        let tasks = std::mem::take(&mut *lock(&self.stopping));
        for task in tasks {
            let _ = task.await;
        }
    }
}

fn spawn(
    peer: Peer,
    link: Arc<ModernLink>,
    acks: mpsc::UnboundedReceiver<SubscriptionFilter>,
) -> Control {
    let (generations, generation_rx) = watch::channel(Generation::default());
    let (status_tx, status) = watch::channel(Status::default());
    let stop = CancellationToken::new();
    let task = Task {
        peer,
        link,
        generations: generation_rx,
        status: status_tx,
        acks,
        stop: stop.clone(),
    };
    let task = tokio::spawn(task.run());
    Control {
        generations,
        status,
        stop,
        task,
    }
}

/// The task that keeps the stream open.
struct Task {
    peer: Peer,
    link: Arc<ModernLink>,
    generations: watch::Receiver<Generation>,
    status: watch::Sender<Status>,
    acks: mpsc::UnboundedReceiver<SubscriptionFilter>,
    stop: CancellationToken,
}

/// How one stream ended.
enum Ended {
    /// The request finished (the server ended the stream, or it broke): why.
    Finished(String),
    /// A new filter replaces it.
    Replaced,
    /// The client stops listening or closed.
    Stopped,
}

impl Task {
    async fn run(mut self) {
        // Wait for the first filter.
        if self.generations.changed().await.is_err() {
            return;
        }
        let mut backoff = INITIAL_BACKOFF;
        let mut acknowledged = false;
        loop {
            let generation = self.generations.borrow_and_update().clone();
            let ended = self
                .stream(&generation, &mut acknowledged, &mut backoff)
                .await;
            let reason = match ended {
                Ended::Stopped => return,
                Ended::Replaced => {
                    acknowledged = false;
                    continue;
                }
                Ended::Finished(_) if self.peer.is_closed() => return,
                Ended::Finished(reason) => reason,
            };
            if !acknowledged {
                // It never worked with this filter: say so, and wait for another filter.
                self.status.send_replace(Status {
                    n: generation.n,
                    outcome: Some(Err(format!("subscriptions/listen failed: {reason}"))),
                });
                tokio::select! {
                    r = self.generations.changed() => if r.is_err() { return },
                    _ = self.stop.cancelled() => return,
                }
                continue;
            }
            tracing::info!(%reason, ?backoff, "the subscriptions/listen stream ended; reopening it");
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                r = self.generations.changed() => {
                    if r.is_err() { return }
                    acknowledged = false;
                }
                _ = self.stop.cancelled() => return,
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Runs one stream of `generation` until it ends.
    async fn stream(
        &mut self,
        generation: &Generation,
        acknowledged: &mut bool,
        backoff: &mut Duration,
    ) -> Ended {
        // Acknowledgements of a stream closed before are stale.
        while self.acks.try_recv().is_ok() {}
        let params = json!({"notifications": generation.filter});
        let opts = RequestOptions {
            timeout: Some(STREAM_LIFETIME),
            ..RequestOptions::default()
        };
        let request = self.link.send(
            &self.peer,
            methods::SUBSCRIPTIONS_LISTEN,
            Some(params),
            opts,
        );
        tokio::pin!(request);
        loop {
            tokio::select! {
                outcome = &mut request => {
                    return Ended::Finished(match outcome {
                        Ok(_) => "the server ended the stream".to_owned(),
                        Err(e) => e.to_string(),
                    });
                }
                Some(filter) = self.acks.recv() => {
                    *acknowledged = true;
                    *backoff = INITIAL_BACKOFF;
                    self.status.send_replace(Status {
                        n: generation.n,
                        outcome: Some(Ok(filter)),
                    });
                }
                // Dropping the request closes its stream (HTTP) or cancels it (stdio).
                r = self.generations.changed() => {
                    return if r.is_err() { Ended::Stopped } else { Ended::Replaced };
                }
                _ = self.stop.cancelled() => return Ended::Stopped,
            }
        }
    }
}
