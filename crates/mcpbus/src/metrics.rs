//! Prometheus metrics of one server process: a [`Metrics`] registry the server owns, whose
//! counters are updated where things happen and whose gauges are read from the server's state
//! when it is scraped ([`Server::metrics_text`]).
//!
//! Cheap on the hot path: a counter is one relaxed atomic add. The per-topic counters are
//! created once per declared topic when the hub is built, so publishing and delivering never
//! look a label set up (no lock per event), and their `topic` label is the declared pattern,
//! never the concrete topic: the number of series is bounded by the configuration.
//!
//! Each process exports its own numbers. Behind a load balancer, with replicas sharing Redis,
//! every replica counts what it did itself (the publishes it accepted, the copies it handed to
//! the subscribers it serves), so `sum()` across replicas is the deployment's total.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::server::Server;
use crate::transport::http::ConnectionStats;

/// The media type of [`Metrics::encode`]'s output (the OpenMetrics text format, which
/// Prometheus scrapes natively).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A `topic` label: a declared topic pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TopicLabel {
    topic: String,
}

/// An `era` label.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct EraLabel {
    era: &'static str,
}

/// The labels of an open 2026-07-28 stream: its era and the method that opened it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StreamLabels {
    era: &'static str,
    method: &'static str,
}

/// A `result` label (`ok`, `failed`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

/// An `operation` label of the event log.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OperationLabel {
    operation: &'static str,
}

/// An `action` label of the topic permissions (`subscribe`, `publish`, `webhook`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ActionLabel {
    action: &'static str,
}

/// The labels of an HTTP answer: which route, which status.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct HttpLabels {
    route: &'static str,
    status: u16,
}

/// A `route` label.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteLabel {
    route: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Latency buckets from 50 µs to about 1.6 s, doubling.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

/// The counters of one declared topic, created once: a publish or a delivery adds to them
/// without looking anything up.
#[derive(Debug, Clone)]
pub(crate) struct TopicCounters {
    /// Events accepted by this process's hub on the topic.
    pub(crate) published: Counter,
    /// Copies handed to this process's subscribers.
    pub(crate) delivered: Counter,
}

/// The metric families; registered once, in [`Metrics::new`].
struct Families {
    published: Family<TopicLabel, Counter>,
    delivered: Family<TopicLabel, Counter>,
    dropped: Counter,
    sessions: Family<EraLabel, Gauge>,
    streams: Family<StreamLabels, Gauge>,
    subscriptions: Gauge,
    webhook_subscriptions: Gauge,
    retained: Gauge,
    log_length: Gauge,
    webhook_deliveries: Family<ResultLabel, Counter>,
    http_responses: Family<HttpLabels, Counter>,
    http_duration: HistogramFamily<RouteLabel>,
    log_duration: HistogramFamily<OperationLabel>,
    log_errors: Family<OperationLabel, Counter>,
    access_denials: Family<ActionLabel, Counter>,
    connections: Gauge,
    connections_accepted: Counter,
    connections_stalled: Counter,
}

struct Inner {
    registry: Registry,
    families: Families,
    /// The hub's drop total when last scraped (the dropped counter adds the difference).
    dropped_seen: std::sync::Mutex<u64>,
    /// The series of log appends, fetched once: a publish looks nothing up.
    append_duration: Histogram,
    append_errors: Counter,
    /// The HTTP connections of the server's listener, read when scraped.
    connections: ConnectionStats,
    /// Their counts when last scraped (the counters add the differences).
    connections_seen: std::sync::Mutex<(u64, u64)>,
}

/// The Prometheus registry of one server: cheap to clone (every clone is the same registry).
///
/// The server updates it; an embedding application may record its HTTP answers
/// ([`observe_http`](Self::observe_http)) and serve [`Server::metrics_text`].
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every mcpbus metric (names prefixed `mcpbus_`), all at zero.
    pub fn new() -> Self {
        let families = Families {
            published: Family::default(),
            delivered: Family::default(),
            dropped: Counter::default(),
            sessions: Family::default(),
            streams: Family::default(),
            subscriptions: Gauge::default(),
            webhook_subscriptions: Gauge::default(),
            retained: Gauge::default(),
            log_length: Gauge::default(),
            webhook_deliveries: Family::default(),
            http_responses: Family::default(),
            http_duration: Family::new_with_constructor(latency_histogram),
            log_duration: Family::new_with_constructor(latency_histogram),
            log_errors: Family::default(),
            access_denials: Family::default(),
            connections: Gauge::default(),
            connections_accepted: Counter::default(),
            connections_stalled: Counter::default(),
        };
        // Series that alerts divide or rate from exist at zero before their first event.
        for result in ["ok", "failed"] {
            let _ = families
                .webhook_deliveries
                .get_or_create(&ResultLabel { result });
        }
        for action in crate::events::access::Action::ALL {
            let _ = families.access_denials.get_or_create(&ActionLabel {
                action: action.as_str(),
            });
        }
        let append = OperationLabel {
            operation: "append",
        };
        let append_duration = families.log_duration.get_or_create_owned(&append);
        let append_errors = families.log_errors.get_or_create_owned(&append);
        let mut registry = Registry::with_prefix("mcpbus");
        register(&mut registry, &families);
        Metrics {
            inner: Arc::new(Inner {
                registry,
                families,
                dropped_seen: std::sync::Mutex::new(0),
                append_duration,
                append_errors,
                connections: ConnectionStats::default(),
                connections_seen: std::sync::Mutex::new((0, 0)),
            }),
        }
    }

    /// The counters of the declared topic `pattern`.
    pub(crate) fn topic(&self, pattern: &str) -> TopicCounters {
        let f = &self.inner.families;
        let label = TopicLabel {
            topic: pattern.to_owned(),
        };
        TopicCounters {
            published: f.published.get_or_create_owned(&label),
            delivered: f.delivered.get_or_create_owned(&label),
        }
    }

    /// Records one append to the event log: its duration when `took` is given (only for a
    /// shared log, where it is a round trip: a histogram takes a lock, and the in-memory
    /// append is not worth timing), its failure when not `ok`.
    pub(crate) fn observe_append(&self, took: Option<Duration>, ok: bool) {
        if let Some(took) = took {
            self.inner.append_duration.observe(took.as_secs_f64());
        }
        if !ok {
            self.inner.append_errors.inc();
        }
    }

    /// Counts one failed operation on the event log.
    pub(crate) fn count_log_error(&self, operation: &'static str) {
        self.inner
            .families
            .log_errors
            .get_or_create(&OperationLabel { operation })
            .inc();
    }

    /// Records one operation on the event log (with Redis: one round trip to Redis).
    pub(crate) fn observe_log(&self, operation: &'static str, took: Duration, ok: bool) {
        let f = &self.inner.families;
        let label = OperationLabel { operation };
        f.log_duration
            .get_or_create(&label)
            .observe(took.as_secs_f64());
        if !ok {
            f.log_errors.get_or_create(&label).inc();
        }
    }

    /// The counts of the server's HTTP connections: `serve_http` counts there; an application
    /// that runs [`serve_router`](crate::transport::http::serve_router) itself passes a clone
    /// in its `ConnectionLimits` to have them in the metrics.
    pub fn connections(&self) -> &ConnectionStats {
        &self.inner.connections
    }

    /// Records one webhook delivery attempt: acknowledged (2xx) or not.
    pub(crate) fn observe_webhook(&self, ok: bool) {
        let result = if ok { "ok" } else { "failed" };
        self.inner
            .families
            .webhook_deliveries
            .get_or_create(&ResultLabel { result })
            .inc();
    }

    /// Counts one action the topic permissions refused.
    pub(crate) fn count_access_denial(&self, action: &'static str) {
        self.inner
            .families
            .access_denials
            .get_or_create(&ActionLabel { action })
            .inc();
    }

    /// Records one HTTP answer: `route` names what was asked (a small fixed set, e.g. `mcp`,
    /// `publish`, `healthz`, `metrics`, `dashboard`, `other`: never a raw path), `status` its
    /// status, `took` the time until the answer's head was ready (for a stream, its start).
    pub fn observe_http(&self, route: &'static str, status: u16, took: Duration) {
        let f = &self.inner.families;
        f.http_duration
            .get_or_create(&RouteLabel { route })
            .observe(took.as_secs_f64());
        f.http_responses
            .get_or_create(&HttpLabels { route, status })
            .inc();
    }

    /// The registry in the OpenMetrics text format ([`CONTENT_TYPE`]), as it stands: the
    /// gauges are only as fresh as their last refresh (see [`Server::metrics_text`]).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.inner.registry);
        out
    }

    /// Sets the gauges read from the server's state, and catches the drop counter up.
    fn refresh(&self, state: &Snapshot) {
        let f = &self.inner.families;
        let gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        f.sessions
            .get_or_create(&EraLabel { era: HANDSHAKE_ERA })
            .set(gauge(state.sessions));
        for (method, n) in [
            ("subscriptions/listen", state.listen_streams),
            ("events/stream", state.push_streams),
        ] {
            f.streams
                .get_or_create(&StreamLabels {
                    era: MODERN_ERA,
                    method,
                })
                .set(gauge(n));
        }
        f.subscriptions.set(gauge(state.subscriptions));
        f.webhook_subscriptions
            .set(gauge(state.webhook_subscriptions));
        if let Some(n) = state.retained {
            f.retained.set(gauge(n));
        }
        if let Some(n) = state.log_length {
            f.log_length.set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        let mut seen = crate::util::lock(&self.inner.dropped_seen);
        if state.dropped > *seen {
            f.dropped.inc_by(state.dropped - *seen);
            *seen = state.dropped;
        }
        drop(seen);
        self.refresh_connections();
    }

    /// Sets the open connections, and catches the connection counters up.
    fn refresh_connections(&self) {
        let (f, c) = (&self.inner.families, &self.inner.connections);
        f.connections
            .set(i64::try_from(c.open()).unwrap_or(i64::MAX));
        let mut seen = crate::util::lock(&self.inner.connections_seen);
        let (accepted, stalled) = (c.accepted(), c.stalled_closed());
        f.connections_accepted
            .inc_by(accepted.saturating_sub(seen.0));
        f.connections_stalled.inc_by(stalled.saturating_sub(seen.1));
        *seen = (accepted.max(seen.0), stalled.max(seen.1));
    }
}

/// The `era` label of the handshake era.
const HANDSHAKE_ERA: &str = "2025-11-25";
/// The `era` label of the 2026-07-28 era.
const MODERN_ERA: &str = "2026-07-28";

/// Registers every family under its name (documented in docs/deployment.md): those of events
/// and subscribers here, the rest in [`register_transport`].
fn register(r: &mut Registry, f: &Families) {
    r.register(
        "events_published",
        "Events accepted by this process, by declared topic pattern",
        f.published.clone(),
    );
    r.register(
        "events_delivered",
        "Event copies this process handed to its own subscribers (sessions, push streams, \
         polls, webhook subscriptions), by declared topic pattern",
        f.delivered.clone(),
    );
    r.register(
        "events_dropped",
        "Events this process dropped because a subscriber read too slowly",
        f.dropped.clone(),
    );
    r.register(
        "sessions",
        "Handshake-era sessions this process serves",
        f.sessions.clone(),
    );
    r.register(
        "streams",
        "Open 2026-07-28 streams of this process, by method",
        f.streams.clone(),
    );
    r.register(
        "subscriptions",
        "(pattern, subscriber) subscriptions attached to this process",
        f.subscriptions.clone(),
    );
    r.register(
        "webhook_subscriptions",
        "Webhook subscriptions this process delivers",
        f.webhook_subscriptions.clone(),
    );
    r.register(
        "retained_values",
        "Retained values in the event log (shared by every replica with Redis)",
        f.retained.clone(),
    );
    r.register(
        "log_length",
        "Entries kept in the event log (shared by every replica with Redis)",
        f.log_length.clone(),
    );
    r.register(
        "webhook_deliveries",
        "Webhook POST attempts, by result (ok: a 2xx answer)",
        f.webhook_deliveries.clone(),
    );
    register_transport(r, f);
}

/// Registers the families of the HTTP listener, the event log and the topic permissions.
fn register_transport(r: &mut Registry, f: &Families) {
    r.register(
        "http_responses",
        "HTTP answers, by route and status",
        f.http_responses.clone(),
    );
    r.register_with_unit(
        "http_request_duration",
        "Time until an HTTP answer's head was ready, by route",
        Unit::Seconds,
        f.http_duration.clone(),
    );
    r.register_with_unit(
        "log_operation_duration",
        "Event log operations (with Redis: round trips to Redis), by operation",
        Unit::Seconds,
        f.log_duration.clone(),
    );
    r.register(
        "access_denials",
        "Actions the topic permissions refused, by action (subscribe, publish, webhook)",
        f.access_denials.clone(),
    );
    r.register(
        "http_connections",
        "Open HTTP connections of the server's listener",
        f.connections.clone(),
    );
    r.register(
        "http_connections_accepted",
        "HTTP connections accepted",
        f.connections_accepted.clone(),
    );
    r.register(
        "http_connections_stalled",
        "HTTP connections reset because their client took no byte for the stalled stream \
         timeout while the server had bytes to write",
        f.connections_stalled.clone(),
    );
    r.register(
        "log_errors",
        "Failed event log operations (with Redis: Redis errors), by operation",
        f.log_errors.clone(),
    );
}

/// What the gauges show, read from the server when scraped.
#[derive(Debug, Default)]
struct Snapshot {
    sessions: usize,
    listen_streams: usize,
    push_streams: usize,
    subscriptions: usize,
    webhook_subscriptions: usize,
    retained: Option<usize>,
    log_length: Option<u64>,
    dropped: u64,
}

impl Server {
    /// The server's metrics registry.
    pub fn metrics(&self) -> &Metrics {
        self.events().metrics()
    }

    /// Every metric in the OpenMetrics text format ([`CONTENT_TYPE`]), gauges read now. Reads
    /// the event log's length and its retained values (with Redis, round trips to Redis); a
    /// failed read leaves those gauges as they were, and counts a log error.
    pub async fn metrics_text(&self) -> String {
        let hub = self.events();
        let stats = hub.stats();
        let metrics = self.metrics();
        let mut snapshot = Snapshot {
            sessions: self.session_count(),
            listen_streams: self.listen_streams(),
            push_streams: hub.push_streams(),
            subscriptions: stats.subscriptions,
            webhook_subscriptions: self.webhook_subscriptions(),
            dropped: stats.dropped,
            ..Snapshot::default()
        };
        let started = std::time::Instant::now();
        let length = hub.log().length().await;
        metrics.observe_log("length", started.elapsed(), length.is_ok());
        snapshot.log_length = length.ok().flatten();
        let started = std::time::Instant::now();
        let retained = hub.log().retained_count().await;
        metrics.observe_log("retained", started.elapsed(), retained.is_ok());
        snapshot.retained = retained.ok();
        metrics.refresh(&snapshot);
        metrics.encode()
    }
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
