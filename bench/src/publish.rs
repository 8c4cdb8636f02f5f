//! The publisher of the event scenarios: bench events through the server's `POST /publish`
//! at a fixed rate on one keep-alive connection, each carrying its sequence number and its
//! send time, so that subscribers in this process can tell which event arrived and how late.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, StatusCode, header};
use http_body_util::Full;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::conn::{Conn, Endpoint};
use crate::stats::{self, Latency};

/// Publishes bench events through `POST /publish`, each carrying its sequence number and its
/// send time (`t`, nanoseconds since the run started).
#[derive(Debug, Clone)]
pub(crate) struct Publisher {
    /// The publish endpoint.
    pub endpoint: Endpoint,
    /// Its bearer token.
    pub token: String,
    /// The topic published on.
    pub topic: String,
    /// Bytes of padding in each payload (`pad`), to make events bigger (0: none).
    pub pad: usize,
}

/// What a [`Publisher`] did, per sequence number and in all.
#[derive(Debug, Clone, Default)]
pub(crate) struct Published {
    /// Send time of each event, ns since the run started.
    pub sent_at: Vec<u64>,
    /// Whether each publish succeeded.
    pub ok: Vec<bool>,
    /// When the first publish was sent, ns since the run started.
    pub first_ns: u64,
    /// Successful publishes.
    pub count: usize,
    /// Failed publishes.
    pub errors: usize,
    /// The first error seen.
    pub first_error: Option<String>,
    /// The smallest `delivered` count a publish answer reported.
    pub min_matched: Option<u64>,
    /// Round trip of the publishes.
    pub rtt: Latency,
}

impl Publisher {
    /// Publishes `events` events at `rate` per second on one keep-alive connection; stops
    /// early when `stop` turns true.
    pub(crate) async fn publish_at(
        &self,
        events: usize,
        rate: f64,
        start: Instant,
        stop: Option<watch::Receiver<bool>>,
    ) -> Result<Published, String> {
        let mut conn = Conn::connect(&self.endpoint).await?;
        let mut out = Published {
            sent_at: vec![0; events],
            ok: vec![false; events],
            ..Published::default()
        };
        let mut rtt = stats::latency_histogram();
        let first_publish = Instant::now();
        out.first_ns = first_publish.duration_since(start).as_nanos() as u64;
        let interval = Duration::from_secs_f64(1.0 / rate);
        for seq in 0..events {
            tokio::time::sleep_until((first_publish + interval.mul_f64(seq as f64)).into()).await;
            if stop.as_ref().is_some_and(|s| *s.borrow()) {
                break;
            }
            let sent = Instant::now();
            out.sent_at[seq] = sent.duration_since(start).as_nanos() as u64;
            let outcome = self.publish_one(&mut conn, seq, out.sent_at[seq]).await;
            stats::record(&mut rtt, sent.elapsed().as_nanos() as u64);
            match outcome {
                Ok(matched) => {
                    out.ok[seq] = true;
                    out.count += 1;
                    if let Some(m) = matched {
                        out.min_matched = Some(out.min_matched.map_or(m, |x| x.min(m)));
                    }
                }
                Err(e) => {
                    out.errors += 1;
                    out.first_error.get_or_insert(e);
                    if let Ok(c) = Conn::connect(&self.endpoint).await {
                        conn = c;
                    }
                }
            }
        }
        out.rtt = Latency::of(&rtt);
        Ok(out)
    }

    /// One publish of the bench event `seq` sent at `t` (ns since the run started) on `conn`;
    /// the `delivered` count of its answer.
    pub(crate) async fn publish_one(
        &self,
        conn: &mut Conn,
        seq: usize,
        t: u64,
    ) -> Result<Option<u64>, String> {
        let mut payload = json!({"seq": seq, "t": t});
        if self.pad > 0 {
            payload["pad"] = Value::String("x".repeat(self.pad));
        }
        let body = json!({"topic": self.topic, "payload": payload});
        let request = self
            .endpoint
            .request(Method::POST)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| format!("publish request: {e}"))?;
        let a = conn.exchange(request).await?;
        let value: Value = serde_json::from_slice(&a.body).unwrap_or(Value::Null);
        if a.status == StatusCode::OK {
            Ok(value.get("delivered").and_then(Value::as_u64))
        } else {
            Err(format!("publish: HTTP {}: {value}", a.status))
        }
    }
}
