//! How SEP-3415 subscriptions are served (docs/protocol.md 3.4): the server's side of polls and
//! push streams.

use std::time::Duration;

/// The settings of `events/poll` and `events/stream` (docs/protocol.md 3.4); set them with
/// `ServerBuilder::event_delivery`.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// `nextPollMs` of every poll answer: how long a client waits before polling again when
    /// nothing more waits (default 1 s).
    pub next_poll: Duration,
    /// Events in a poll answer when the client names no `maxEvents` (default 100).
    pub default_poll_events: usize,
    /// The most events a poll answer carries, whatever `maxEvents` asks (default 1000).
    pub max_poll_events: usize,
    /// The longest a long poll (`timeoutMs`) is held (default 30 s); longer asks are shortened.
    pub max_poll_wait: Duration,
    /// How often a push stream sends `notifications/events/heartbeat` (default 15 s; the SEP
    /// asks for at least every 30 s, so longer is shortened to 30 s).
    pub heartbeat: Duration,
    /// Push streams a server holds open at once (default 1024); beyond, `events/stream` fails
    /// with ResourceExhausted (`data.limit = "streams"`). Push streams do not count against the
    /// limits on requests in flight.
    pub max_streams: usize,
    /// Live events a push stream may hold before its reader catches up (default 1024); a
    /// stream that falls further behind reads the log again from its cursor, and tells its
    /// client of a gap (`notifications/events/active` with `truncated: true`) only if the log
    /// no longer holds what it missed.
    pub stream_buffer: usize,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            next_poll: Duration::from_secs(1),
            default_poll_events: 100,
            max_poll_events: 1000,
            max_poll_wait: Duration::from_secs(30),
            heartbeat: Duration::from_secs(15),
            max_streams: 1024,
            stream_buffer: 1024,
        }
    }
}

impl DeliveryConfig {
    /// The heartbeat interval as served: at least 10 ms, at most 30 s.
    pub(crate) fn heartbeat_interval(&self) -> Duration {
        self.heartbeat
            .clamp(Duration::from_millis(10), Duration::from_secs(30))
    }
}
