//! The lease loop of one replica (docs/protocol.md 3.6.8): every tick it renews the leases of
//! the subscriptions it delivers (stopping a delivery whose lease is lost, and taking in what a
//! refresh or an unsubscribe on any replica changed), then claims every stored subscription
//! that nobody holds and delivers it from its stored watermark.
//!
//! A tick is a fifth of the lease's time to live (at most a second): a lease is renewed several
//! times before it could lapse, and the subscriptions of a replica that died are taken over
//! within the time to live and a tick.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::destination::CallbackUrl;
use super::registry::Inner;
use super::store::StoredWebhook;
use super::sub::Sub;

/// The loop's period for leases of `ttl`.
pub(super) fn tick(ttl: Duration) -> Duration {
    (ttl / 5).clamp(Duration::from_millis(20), Duration::from_secs(1))
}

/// Runs until the server closes (or is dropped).
pub(super) async fn run(inner: Weak<Inner>, shutdown: CancellationToken) {
    loop {
        let Some(period) = inner.upgrade().map(|i| tick(i.config.lease_ttl)) else {
            return;
        };
        tokio::select! {
            () = tokio::time::sleep(period) => {}
            () = shutdown.cancelled() => return,
        }
        let Some(inner) = inner.upgrade() else {
            return;
        };
        renew_held(&inner).await;
        claim_free(&inner).await;
    }
}

/// Renews the leases of the subscriptions delivered here, and applies their stored records.
async fn renew_held(inner: &Arc<Inner>) {
    let ttl = inner.config.lease_ttl;
    for sub in inner.held() {
        let sent = Instant::now();
        match inner.store.renew(&sub.id, &sub.token, ttl).await {
            Ok(true) => sub.leased_until(inner.lease_deadline(sent)),
            Ok(false) => {
                tracing::warn!(subscription = %sub.id, "webhook lease lost; delivery stops here");
                sub.cancel.cancel();
                inner.forget_local(&sub);
                continue;
            }
            Err(e) => {
                // The lease's deadline stops delivery if this lasts.
                tracing::warn!(subscription = %sub.id, "cannot renew a webhook lease: {e}");
                continue;
            }
        }
        match inner.store.load(&sub.id).await {
            Ok(Some(stored)) => sub.apply(&stored.record),
            Ok(None) => {
                tracing::info!(subscription = %sub.id, "webhook subscription ended elsewhere");
                sub.end();
                inner.forget_local(&sub);
            }
            Err(e) => {
                tracing::warn!(subscription = %sub.id, "cannot read a webhook subscription: {e}")
            }
        }
    }
}

/// Claims and starts delivering every stored subscription nobody holds.
async fn claim_free(inner: &Arc<Inner>) {
    let ids = match inner.store.ids().await {
        Ok(ids) => ids,
        Err(e) => {
            tracing::warn!("cannot list the webhook subscriptions: {e}");
            return;
        }
    };
    for id in ids {
        if inner.shutdown.is_cancelled() {
            return;
        }
        if inner.holds(&id) {
            continue;
        }
        let token = inner.new_token();
        let sent = Instant::now();
        match inner.store.claim(&id, &token, inner.config.lease_ttl).await {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                tracing::warn!(subscription = %id, "cannot claim a webhook lease: {e}");
                continue;
            }
        }
        match inner.store.load(&id).await {
            Ok(Some(stored)) => take_over(inner, stored, token, sent).await,
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(subscription = %id, "cannot read a webhook subscription: {e}");
                let _ = inner.store.release(&id, &token).await;
            }
        }
    }
}

/// Delivers a claimed subscription here, from its stored watermark; one that can no longer be
/// delivered (its topic gone, its principal refused, its URL unusable) is terminated.
async fn take_over(inner: &Arc<Inner>, stored: StoredWebhook, token: String, sent: Instant) {
    let events = match inner.subscription_of(&stored.record) {
        Ok(events) => events,
        Err(error) => {
            super::worker::terminate_stored(inner, &stored.record, error).await;
            return;
        }
    };
    let Ok(url) = CallbackUrl::parse(&stored.record.url) else {
        let error = mcpbus_proto::jsonrpc::ErrorObject::invalid_params("unusable callback URL");
        super::worker::terminate_stored(inner, &stored.record, error).await;
        return;
    };
    let record = stored.record.clone();
    let cancel = inner.shutdown.child_token();
    let sub = Sub::new(
        stored,
        url,
        events,
        token,
        cancel,
        inner.lease_deadline(sent),
    );
    // A refresh made while nobody delivered resumes delivery now.
    sub.apply(&record);
    inner.deliver(Arc::new(sub), Vec::new(), None);
}
