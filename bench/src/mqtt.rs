//! `fanout-mqtt`: the `fanout` scenario against an MQTT broker (the Mosquitto peer).
//!
//! N subscriber clients each open one TCP connection to the broker and subscribe to one topic
//! at QoS 0 (at most once, as mcpbus events are); one more client then publishes events at a
//! fixed rate at QoS 0. Each payload is the very JSON-RPC `events/emit` notification mcpbus
//! writes on a session's stream for a `POST /publish` of the fan-out scenario (same fields,
//! same size: about 165 bytes), carrying the sequence number and the send time in nanoseconds
//! since the run started. As in `fanout`, publisher and subscribers share this process and its
//! clock; a delivery is timestamped as soon as the client library hands over the PUBLISH packet,
//! before its payload is parsed, and the subscriber parses the payload as JSON just as the
//! `fanout` subscriber does. The report is a [`FanoutReport`], so the JSON line has the same
//! fields as `fanout`'s (with `"transport": "mqtt"` added and no publish round trip: QoS 0
//! publishes have no answer).

use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::fanout::{self, Completion, FanoutConfig, FanoutReport, StreamResult};
use crate::stats::ProcSample;

/// How long connecting one client, or subscribing it, may take.
const SETUP_TIMEOUT: Duration = Duration::from_secs(20);

/// Settings of the `fanout-mqtt` scenario.
#[derive(Debug, Clone)]
pub(crate) struct MqttFanoutConfig {
    /// The broker, `host:port`.
    pub broker: String,
    /// Subscriber clients (one connection each).
    pub subscribers: usize,
    /// Events published.
    pub events: usize,
    /// Events per second.
    pub rate: f64,
    /// The topic subscribed to and published on.
    pub topic: String,
    /// Clients set up at once.
    pub setup_concurrency: usize,
    /// How long to wait for outstanding deliveries after the last publish.
    pub drain_timeout: Duration,
    /// The broker process, to sample its CPU time and memory.
    pub broker_pid: Option<u32>,
}

impl MqttFanoutConfig {
    /// The same run described as a `fanout` configuration, for the shared report format.
    pub(crate) fn as_fanout(&self) -> FanoutConfig {
        FanoutConfig {
            url: format!("mqtt://{}", self.broker),
            publish_url: format!("mqtt://{}", self.broker),
            token: String::new(),
            sessions: self.subscribers,
            delivery: fanout::Delivery::Mqtt,
            events: self.events,
            rate: self.rate,
            topic: self.topic.clone(),
            setup_concurrency: self.setup_concurrency,
            drain_timeout: self.drain_timeout,
            server_pid: self.broker_pid,
            stalled: 0,
            payload_bytes: 0,
        }
    }
}

/// Runs the scenario.
pub(crate) async fn run(config: &MqttFanoutConfig) -> Result<FanoutReport, String> {
    if config.subscribers == 0 || config.events == 0 {
        return Err("--subscribers and --events must be at least 1".into());
    }
    fanout::check_open_files(config.subscribers + 1)?;
    let (host, port) = parse_broker(&config.broker)?;
    // Client ids must be unique on the broker: a second client with an id takes its place.
    let run_id = format!("mcpbus-bench-{}", std::process::id());
    let broker_base = config.broker_pid.and_then(|p| ProcSample::read(Some(p)));
    let start = Instant::now();
    let (stop_tx, stop_rx) = watch::channel(false);
    let completion = Arc::new(Completion::default());

    // Connect and subscribe every client, a few at a time; each then gets its reading task.
    let workers = config.setup_concurrency.clamp(1, config.subscribers);
    let mut setup = Vec::with_capacity(workers);
    for w in 0..workers {
        let ids: Vec<usize> = (w..config.subscribers).step_by(workers).collect();
        let (host, run_id, topic) = (host.clone(), run_id.clone(), config.topic.clone());
        let (stop_rx, completion, events) = (stop_rx.clone(), completion.clone(), config.events);
        setup.push(tokio::spawn(async move {
            let mut readers = Vec::with_capacity(ids.len());
            for i in ids {
                let id = format!("{run_id}-s{i}");
                let eventloop = subscribed_client(&id, &host, port, &topic).await?;
                readers.push(tokio::spawn(read_subscription(
                    eventloop,
                    events,
                    start,
                    stop_rx.clone(),
                    completion.clone(),
                )));
            }
            Ok::<_, String>(readers)
        }));
    }
    let (readers, setup_error) = fanout::join_setup(setup).await;
    if let Some(e) = setup_error {
        let _ = stop_tx.send(true);
        return Err(format!("subscriber setup failed: {e}"));
    }
    let mut report = FanoutReport {
        setup_secs: start.elapsed().as_secs_f64(),
        server_base: broker_base,
        ..FanoutReport::default()
    };

    // The publisher: its event loop runs on its own task, which writes what `publish` queues.
    let mut options = MqttOptions::new(format!("{run_id}-pub"), host.clone(), port);
    options.set_keep_alive(Duration::from_secs(120));
    options.set_request_channel_capacity(config.events.min(4096));
    let (publisher, mut eventloop) = AsyncClient::new(options, config.events.min(4096));
    let mut network = rumqttc::NetworkOptions::new();
    network.set_tcp_nodelay(true);
    eventloop.set_network_options(network);
    await_connack(&mut eventloop, "publisher").await?;
    let publisher_stop = stop_rx.clone();
    let publisher_loop = tokio::spawn(drive_publisher(eventloop, publisher_stop));

    // Let the last subscriptions settle before the clock that matters starts.
    tokio::time::sleep(Duration::from_millis(200)).await;
    report.server_idle = config.broker_pid.and_then(|p| ProcSample::read(Some(p)));
    let me_before = ProcSample::read(None);

    let mut sent_at = vec![0u64; config.events];
    let mut ok = vec![false; config.events];
    let first_publish = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / config.rate);
    for seq in 0..config.events {
        tokio::time::sleep_until((first_publish + interval.mul_f64(seq as f64)).into()).await;
        let t = start.elapsed().as_nanos() as u64;
        let payload = emit_payload(&config.topic, seq, t);
        sent_at[seq] = t;
        match publisher
            .publish(config.topic.as_str(), QoS::AtMostOnce, false, payload)
            .await
        {
            Ok(()) => {
                ok[seq] = true;
                report.published += 1;
            }
            Err(e) => {
                report.publish_errors += 1;
                report.first_error.get_or_insert(format!("publish: {e}"));
            }
        }
    }

    completion
        .wait(config.subscribers, config.drain_timeout)
        .await;
    let _ = stop_tx.send(true);
    let me_after = ProcSample::read(None);
    report.server_end = config.broker_pid.and_then(|p| ProcSample::read(Some(p)));
    if let (Some(b), Some(a)) = (report.server_idle, report.server_end) {
        report.server_cpu_secs = Some(a.cpu_secs - b.cpu_secs);
    }
    if let (Some(b), Some(a)) = (me_before, me_after) {
        report.generator_cpu_secs = Some(a.cpu_secs - b.cpu_secs);
    }
    if let Ok(Err(e)) = publisher_loop.await {
        report.publish_errors += 1;
        report.first_error.get_or_insert(e);
    }

    let mut results = Vec::with_capacity(readers.len());
    for reader in readers {
        results.push(reader.await.map_err(|e| e.to_string())?);
    }
    let first_ns = first_publish.duration_since(start).as_nanos() as u64;
    fanout::merge(
        &mut report,
        results,
        &sent_at,
        &ok,
        config.subscribers,
        first_ns,
    );
    Ok(report)
}

/// `host:port` of the broker (loopback or any address the generator can reach).
fn parse_broker(broker: &str) -> Result<(String, u16), String> {
    let (host, port) = broker
        .rsplit_once(':')
        .ok_or_else(|| format!("--broker {broker:?}: expected HOST:PORT"))?;
    let port = port
        .parse()
        .map_err(|_| format!("--broker {broker:?}: invalid port"))?;
    Ok((host.trim_matches(['[', ']']).to_string(), port))
}

/// A connected client subscribed to `topic` at QoS 0; its event loop, ready to read.
async fn subscribed_client(
    id: &str,
    host: &str,
    port: u16,
    topic: &str,
) -> Result<EventLoop, String> {
    let mut options = MqttOptions::new(id, host, port);
    options.set_keep_alive(Duration::from_secs(120));
    // A subscriber sends nothing but its subscription: keep its per-client state small.
    options.set_inflight(1);
    options.set_request_channel_capacity(1);
    let (client, mut eventloop) = AsyncClient::new(options, 1);
    await_connack(&mut eventloop, id).await?;
    client
        .subscribe(topic, QoS::AtMostOnce)
        .await
        .map_err(|e| format!("{id}: subscribe: {e}"))?;
    let suback = async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::SubAck(ack))) => return Ok(ack),
                Ok(_) => {}
                Err(e) => return Err(format!("{id}: waiting for SUBACK: {e}")),
            }
        }
    };
    let ack = tokio::time::timeout(SETUP_TIMEOUT, suback)
        .await
        .map_err(|_| format!("{id}: no SUBACK within {SETUP_TIMEOUT:?}"))??;
    if ack
        .return_codes
        .iter()
        .any(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure))
    {
        return Err(format!(
            "{id}: the broker refused the subscription to {topic:?}"
        ));
    }
    Ok(eventloop)
}

/// Polls a new client's event loop until the broker accepts the connection.
async fn await_connack(eventloop: &mut EventLoop, id: &str) -> Result<(), String> {
    let connack = async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(format!("{id}: connect: {e}")),
            }
        }
    };
    tokio::time::timeout(SETUP_TIMEOUT, connack)
        .await
        .map_err(|_| format!("{id}: no CONNACK within {SETUP_TIMEOUT:?}"))?
}

/// Runs the publisher's event loop (it writes the queued publishes) until told to stop.
async fn drive_publisher(
    mut eventloop: EventLoop,
    mut stop: watch::Receiver<bool>,
) -> Result<(), String> {
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => return Ok(()),
            event = eventloop.poll() => {
                if let Err(e) = event {
                    return Err(format!("publisher connection: {e}"));
                }
            }
        }
    }
}

/// Reads one subscriber's deliveries until told to stop; records when each event arrived.
async fn read_subscription(
    mut eventloop: EventLoop,
    events: usize,
    start: Instant,
    mut stop: watch::Receiver<bool>,
    completion: Arc<Completion>,
) -> StreamResult {
    let mut r = StreamResult::new(events);
    let mut received = 0usize;
    loop {
        let event = tokio::select! {
            biased;
            _ = stop.changed() => break,
            event = eventloop.poll() => event,
        };
        let now = (start.elapsed().as_nanos() as u64).max(1);
        let publish = match event {
            Ok(Event::Incoming(Packet::Publish(p))) => p,
            Ok(_) => continue,
            Err(_) => {
                // Polling again would reconnect: a lost connection ends this subscriber.
                r.ended = !*stop.borrow();
                break;
            }
        };
        let Some(seq) = std::str::from_utf8(&publish.payload)
            .ok()
            .and_then(fanout::event_seq)
        else {
            continue;
        };
        match r.arrivals.get_mut(seq) {
            Some(slot) if *slot == 0 => {
                *slot = now;
                received += 1;
                if received == events {
                    completion.one_done();
                }
            }
            Some(_) => r.duplicates += 1,
            None => {}
        }
    }
    r
}

/// The payload of event `seq`: the JSON-RPC `events/emit` notification mcpbus sends on a
/// session's stream for the `fanout` scenario's publish (same fields in the same order, an event
/// id of the same 26-character length as its ULIDs).
fn emit_payload(topic: &str, seq: usize, t: u64) -> Vec<u8> {
    let topic = Value::from(topic);
    format!(
        r#"{{"jsonrpc":"2.0","method":"events/emit","params":{{"topic":{topic},"eventId":"01MQTTBENCH{seq:015}","payload":{{"seq":{seq},"t":{t}}},"retained":false}}}}"#
    )
    .into_bytes()
}

/// The JSON line of a run: `fanout`'s, marked as MQTT, with the payload size.
pub(crate) fn to_json(report: &FanoutReport, label: &str, config: &MqttFanoutConfig) -> Value {
    let mut line = report.to_json(label, &config.as_fanout());
    line["transport"] = json!("mqtt");
    line["qos"] = json!(0);
    line["payload_bytes"] = json!(emit_payload(&config.topic, 0, 10_000_000_000).len());
    line
}

/// A human-readable summary (the `fanout` one).
pub(crate) fn to_table(report: &FanoutReport, label: &str, config: &MqttFanoutConfig) -> String {
    let table = report.to_table(label, &config.as_fanout());
    table.replacen("sessions on", "MQTT subscribers (QoS 0) on", 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_is_an_emit_notification_the_subscriber_reads() {
        let payload = emit_payload("build/status", 42, 12_345_678_901);
        let text = String::from_utf8(payload).unwrap();
        assert_eq!(fanout::event_seq(&text), Some(42));
        // The size of the notification mcpbus wrote for {"seq":199,"t":12345678901}.
        let mcpbus = r#"{"jsonrpc":"2.0","method":"events/emit","params":{"topic":"build/status","eventId":"01M7YYK1ENPGQEV4C86NG7TDYB","payload":{"seq":199,"t":12345678901},"retained":false}}"#;
        let ours = String::from_utf8(emit_payload("build/status", 199, 12_345_678_901)).unwrap();
        assert_eq!(ours.len(), mcpbus.len(), "{ours}");
        let value: Value = serde_json::from_str(&ours).unwrap();
        assert_eq!(value["params"]["topic"], "build/status");
        assert_eq!(value["params"]["payload"]["t"], 12_345_678_901_u64);
    }

    #[test]
    fn broker_addresses_parse() {
        assert_eq!(
            parse_broker("127.0.0.1:1883").unwrap(),
            ("127.0.0.1".to_string(), 1883)
        );
        assert_eq!(parse_broker("[::1]:9").unwrap(), ("::1".to_string(), 9));
        assert!(parse_broker("localhost").is_err());
        assert!(parse_broker("h:x").is_err());
    }
}
