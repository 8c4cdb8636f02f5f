//! Fault injection between `mcpbus serve --redis` replicas and Redis: three replicas reach a
//! `redis-server` (append-only file, fsync on every write) through a [`FaultProxy`], and a
//! seeded random schedule kills and restarts replicas, kills and restarts Redis, resets the
//! proxy's connections, black-holes them for a while, refuses them, slows them down, and
//! silences every open one for good (new connections work), while
//! publishers publish through random replicas and push streams and pollers follow `alerts/+`,
//! resuming with their last cursor on whichever replica is up. Then everything heals and the
//! checker (fault_schedule/checker.rs) compares what every subscriber received with what was
//! acknowledged: nothing acknowledged lost, nothing twice, log order per subscriber.
//!
//! `seed=N` is printed first; replay a run with `MCPBUS_FAULT_SEED=N`. `MCPBUS_FAULT_STEPS`
//! sets the schedule's length (8 by default: the short run of CI), `MCPBUS_FAULT_SEEDS` the
//! number of runs, seed after seed (docs/reliability.md: the long run is `bash
//! scripts/faults.sh`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "fault_schedule/checker.rs"]
mod checker;
#[path = "fault_schedule/clients.rs"]
mod clients;

use std::collections::HashSet;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use clients::{Live, Subscriber};
use mcpbus_testkit::{FaultProxy, ProxyMode, RedisServer, ServeProcess, fixture};

/// Replicas in the cluster.
const REPLICAS: usize = 3;
/// How long the subscribers may take to catch up once everything healed.
const CATCH_UP: Duration = Duration::from_secs(60);

/// SplitMix64: small, seedable, the same sequence everywhere.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// A duration between `lo` and `hi` milliseconds.
    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.below(hi - lo + 1))
    }
}

/// Prints past the test harness's capture, so CI logs show the seed and the counts of a run
/// that passed too.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn env_number(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?}: expected a whole number")),
    )
}

/// Redis behind the proxy, the replicas (`None`: down) pointing at the proxy.
struct Cluster {
    redis: RedisServer,
    proxy: FaultProxy,
    replicas: Vec<Option<ServeProcess>>,
    live: Live,
}

impl Cluster {
    fn start() -> Cluster {
        let redis = RedisServer::start(true);
        let proxy = FaultProxy::start(redis.port);
        let mut cluster = Cluster {
            redis,
            proxy,
            replicas: (0..REPLICAS).map(|_| None).collect(),
            live: Live::default(),
        };
        for i in 0..REPLICAS {
            cluster.start_replica(i);
        }
        cluster
    }

    fn start_replica(&mut self, i: usize) {
        let url = self.proxy.redis_url();
        let extra = ["--redis", &url, "--redis-prefix", "faults"];
        let bin = env!("CARGO_BIN_EXE_mcpbus");
        self.replicas[i] = Some(ServeProcess::start(
            bin,
            &fixture("http.toml"),
            "warn",
            &extra,
        ));
        self.publish_live();
    }

    /// SIGKILL, no clean shutdown. Clients hear of it by failing, as they would.
    fn kill_replica(&mut self, i: usize) {
        if let Some(mut replica) = self.replicas[i].take() {
            self.publish_live();
            let _ = replica.guard.child.kill();
            let _ = replica.guard.child.wait();
        }
    }

    fn publish_live(&self) {
        let urls = self
            .replicas
            .iter()
            .flatten()
            .map(|r| r.base_url())
            .collect();
        self.live.set(urls);
    }

    fn up(&self) -> Vec<usize> {
        (0..REPLICAS)
            .filter(|i| self.replicas[*i].is_some())
            .collect()
    }

    /// A replica that exited by itself is a failure of the run.
    fn check_alive(&mut self) {
        for (i, replica) in self.replicas.iter_mut().enumerate() {
            if let Some(r) = replica
                && let Ok(Some(status)) = r.guard.child.try_wait()
            {
                panic!("replica {i} exited by itself ({status}):\n{}", r.log());
            }
        }
    }
}

/// Runs one step of the schedule: a fault, held for a while and healed, or a replica's death
/// or return (which lasts until a later step). Returns what it did.
fn step(cluster: &mut Cluster, rng: &mut Rng) -> String {
    let up = cluster.up();
    let down: Vec<usize> = (0..REPLICAS).filter(|i| !up.contains(i)).collect();
    match rng.below(9) {
        0 if up.len() > 1 => {
            let i = up[rng.below(up.len() as u64) as usize];
            cluster.kill_replica(i);
            format!("kill replica {i}")
        }
        1 if !down.is_empty() => {
            let i = down[rng.below(down.len() as u64) as usize];
            cluster.start_replica(i);
            format!("restart replica {i}")
        }
        2 => {
            let pause = rng.millis(100, 1500);
            cluster.redis.kill();
            thread::sleep(pause);
            cluster.redis.restart();
            format!("kill Redis, restart it {pause:?} later")
        }
        3 => {
            cluster.proxy.reset_all();
            "reset every Redis connection".into()
        }
        4 => hold(
            cluster,
            ProxyMode::BlackHole,
            rng.millis(200, 2500),
            "black hole",
        ),
        5 => hold(
            cluster,
            ProxyMode::Refuse,
            rng.millis(100, 1500),
            "refuse connections",
        ),
        6 => {
            let (latency, pause) = (rng.millis(1, 80), rng.millis(300, 2000));
            cluster.proxy.set_latency(latency);
            thread::sleep(pause);
            cluster.proxy.set_latency(Duration::ZERO);
            format!("latency {latency:?} for {pause:?}")
        }
        7 => {
            // For good: the replicas must notice and reconnect by themselves (their watchdog
            // and their tailer's deadline, docs/reliability.md "Silent connections").
            cluster.proxy.stall_open();
            "silence every open Redis connection".into()
        }
        _ => {
            let pause = rng.millis(100, 800);
            thread::sleep(pause);
            format!("quiet for {pause:?}")
        }
    }
}

fn hold(cluster: &Cluster, mode: ProxyMode, pause: Duration, what: &str) -> String {
    cluster.proxy.set_mode(mode);
    thread::sleep(pause);
    cluster.proxy.heal();
    format!("{what} for {pause:?}")
}

/// One run of `steps` steps from `seed`: panics with the counts and examples on any loss,
/// repeat, disorder or gap.
fn run(seed: u64, steps: u64) {
    say(&format!("seed={seed} steps={steps}"));
    let started = Instant::now();
    let mut rng = Rng::new(seed);
    let mut cluster = Cluster::start();
    let live = cluster.live.clone();
    let subscribers: Vec<Subscriber> = [("push-1", true), ("push-2", true), ("poll-1", false)]
        .into_iter()
        .map(|(label, push)| Subscriber::start(label.into(), push, live.clone(), rng.next()))
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let publishers: Vec<_> = ["p1", "p2"]
        .into_iter()
        .map(|name| clients::publisher(name.into(), live.clone(), rng.next(), stop.clone()))
        .collect();
    for n in 1..=steps {
        let what = step(&mut cluster, &mut rng);
        eprintln!("seed={seed} step {n}: {what}");
        thread::sleep(rng.millis(100, 400));
        cluster.check_alive();
    }
    // Heal: the proxy forwards, Redis is up (restart() waited for its PING), publishing ends.
    cluster.proxy.heal();
    stop.store(true, Ordering::SeqCst);
    let mut attempted = HashSet::new();
    let mut acked = Vec::new();
    for p in publishers {
        let done = p.join().unwrap();
        attempted.extend(done.attempted);
        acked.extend(done.acked);
    }
    let keys: HashSet<&str> = acked.iter().map(|a| a.key.as_str()).collect();
    let deadline = Instant::now() + CATCH_UP;
    while Instant::now() < deadline && !subscribers.iter().all(|s| s.has_all(&keys)) {
        thread::sleep(Duration::from_millis(100));
    }
    // Late repeats would show up now.
    thread::sleep(Duration::from_millis(1500));
    cluster.check_alive();
    verdict(seed, started, &attempted, &acked, &subscribers);
}

fn verdict(
    seed: u64,
    started: Instant,
    attempted: &HashSet<String>,
    acked: &[clients::Ack],
    subscribers: &[Subscriber],
) {
    let mut gaps = Vec::new();
    let mut resumes = Vec::new();
    let received: Vec<(String, Vec<clients::Delivered>)> = subscribers
        .iter()
        .map(|s| {
            let seen = s.seen.lock().unwrap();
            gaps.extend(seen.problems.iter().map(|p| format!("{}: {p}", s.label)));
            resumes.push(format!(
                "{}={}/{}",
                s.label,
                seen.events.len(),
                seen.resumes
            ));
            (s.label.clone(), seen.events.clone())
        })
        .collect();
    let counts = checker::check(attempted, acked, &received);
    say(&format!(
        "seed={seed} {} gaps={} (received/resumes: {}) in {:.1?}",
        counts.line(),
        gaps.len(),
        resumes.join(" "),
        started.elapsed()
    ));
    assert!(
        counts.ok() && gaps.is_empty(),
        "seed={seed} failed (replay: MCPBUS_FAULT_SEED={seed}): {}\n{:#?}\n{gaps:#?}",
        counts.line(),
        counts.examples
    );
    assert!(
        counts.acknowledged > 0,
        "seed={seed}: nothing was acknowledged"
    );
}

#[test]
fn acknowledged_events_survive_a_random_fault_schedule() {
    let first = env_number("MCPBUS_FAULT_SEED").unwrap_or_else(|| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        now.map_or(1, |d| d.as_nanos() as u64)
    });
    let steps = env_number("MCPBUS_FAULT_STEPS").unwrap_or(8);
    let seeds = env_number("MCPBUS_FAULT_SEEDS").unwrap_or(1);
    for n in 0..seeds {
        run(first.wrapping_add(n), steps);
    }
    say(&format!("{seeds} seed(s) from seed={first} passed"));
}

/// A Redis connection that goes silent for good (no reset: a hung peer, a NAT entry dropped)
/// while new connections work (docs/reliability.md "Silent connections"): the replica whose
/// connections went silent must publish again (its shared connection replaced by the
/// watchdog), and its push stream must get the event published through a healthy replica (its
/// tailer's `XREAD` taken for dead and reopened). Both failed for good before the fix.
#[test]
fn a_silently_dead_redis_connection_is_replaced() {
    let redis = RedisServer::start(false);
    let proxy = FaultProxy::start(redis.port);
    let url = proxy.redis_url();
    let extra = ["--redis", &url, "--redis-prefix", "stall"];
    let bin = env!("CARGO_BIN_EXE_mcpbus");
    let a = ServeProcess::start(bin, &fixture("http.toml"), "info", &extra);
    let pushed = push_stream(a.mcp_url());
    let active = pushed.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(active.contains("notifications/events/active"), "{active}");
    proxy.stall_open();
    // B connects after the stall: its connections work.
    let b = ServeProcess::start(bin, &fixture("http.toml"), "info", &extra);
    let body = serde_json::json!({"topic": "alerts/x", "payload": {"n": 1}});
    let r = b.publish(&body);
    assert_eq!(r.status, 200, "{}", r.text());
    let acked = r.json()["eventId"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    let through_a = loop {
        let r = a.publish(&body);
        if r.status == 200 || Instant::now() > deadline {
            break r;
        }
        thread::sleep(Duration::from_millis(500));
    };
    let mut on_a = false;
    while let Ok(data) = pushed.recv_timeout(Duration::from_secs(10)) {
        if data.contains(&acked) {
            on_a = true;
            break;
        }
    }
    assert!(
        on_a && through_a.status == 200,
        "30 s after its Redis connections went silent, replica A {} and its push stream {} \
         the event published through B:\n{}",
        if through_a.status == 200 {
            "publishes again"
        } else {
            "still refuses publishes"
        },
        if on_a { "got" } else { "never got" },
        a.log()
    );
}

/// An `events/stream` of [`clients::NAME`] on `mcp`, its SSE data as they come.
fn push_stream(mcp: String) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        mcpbus_testkit::block_on(async move {
            let params = serde_json::json!({"name": clients::NAME});
            let message =
                mcpbus_testkit::modern::request(1, "events/stream", params, serde_json::json!({}));
            let response = mcpbus_testkit::HttpClient::new(mcp)
                .post_modern_stream(&message)
                .await;
            let mut stream = mcpbus_testkit::SseReader::new(response);
            while let Some(event) = stream.next_event().await {
                if tx.send(event.data).is_err() {
                    return;
                }
            }
        })
    });
    rx
}
