//! A TCP proxy on a free loopback port that forwards to a local port (a `redis-server`) and
//! injects faults on command: latency on every chunk, a reset of every open connection, a
//! black hole (connections are accepted and read, nothing is forwarded or answered) and
//! refusal (connections are accepted and reset at once). Toxiproxy does the same, but is not
//! available where the tests run; this is the part of it the fault tests need.
//!
//! Resets are real TCP resets (`SO_LINGER` 0), as a crashed peer or a middlebox would send.
//! A black hole discards what it reads, so a connection that went through one can never be
//! trusted again (a reply went missing): leaving the black hole resets every connection, as
//! a client's timeout or TCP keepalive would end it in production. [`FaultProxy::stall_open`]
//! is the case nobody resets: the connections open now go silent for good (a peer that vanished
//! without a reset, a NAT entry dropped), while new connections work.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// How long connecting to the target may take before the client's connection is reset.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// What happens to traffic through the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyMode {
    /// Forward both ways (after the configured latency).
    Pass,
    /// Accept and read, never forward nor answer.
    BlackHole,
    /// Accept new connections and reset them at once; open ones are reset too.
    Refuse,
}

#[derive(Debug, Clone, Copy)]
struct Faults {
    mode: ProxyMode,
    latency: Duration,
}

/// The proxy; stopped (every connection closed) when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    /// Its loopback port: point clients here instead of at the target.
    pub port: u16,
    faults: watch::Sender<Faults>,
    resets: watch::Sender<u64>,
    stalls: watch::Sender<u64>,
    stop: watch::Sender<bool>,
    accepted: Arc<AtomicUsize>,
    thread: Option<thread::JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts forwarding a free loopback port to `127.0.0.1:target`, faults off.
    pub fn start(target: u16) -> FaultProxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let port = listener.local_addr().expect("the proxy's address").port();
        let (faults, faults_rx) = watch::channel(Faults {
            mode: ProxyMode::Pass,
            latency: Duration::ZERO,
        });
        let (resets, resets_rx) = watch::channel(0u64);
        let (stalls, stalls_rx) = watch::channel(0u64);
        let (stop, stop_rx) = watch::channel(false);
        let accepted = Arc::new(AtomicUsize::new(0));
        let links = Links {
            target,
            faults: faults_rx,
            resets: resets_rx,
            stalls: stalls_rx,
        };
        let count = accepted.clone();
        let thread = thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a Tokio runtime for the proxy");
            runtime.block_on(accept_loop(listener, links, count, stop_rx));
        });
        FaultProxy {
            port,
            faults,
            resets,
            stalls,
            stop,
            accepted,
            thread: Some(thread),
        }
    }

    /// `redis://127.0.0.1:PORT`: the proxy as a Redis URL.
    pub fn redis_url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Delays every chunk, each way, by `latency` (zero: none).
    pub fn set_latency(&self, latency: Duration) {
        self.faults.send_modify(|f| f.latency = latency);
    }

    /// Resets every open connection (new ones are served as the mode says).
    pub fn reset_all(&self) {
        self.resets.send_modify(|n| *n += 1);
    }

    /// Silences every open connection for good (what it reads is dropped, nothing comes back)
    /// until a [reset](Self::reset_all); new connections are served as the mode says.
    pub fn stall_open(&self) {
        self.stalls.send_modify(|n| *n += 1);
    }

    /// Switches to `mode`. Leaving a black hole, or entering refusal, resets every connection.
    pub fn set_mode(&self, mode: ProxyMode) {
        let before = self.faults.borrow().mode;
        self.faults.send_modify(|f| f.mode = mode);
        if before == ProxyMode::BlackHole || mode == ProxyMode::Refuse {
            self.reset_all();
        }
    }

    /// Back to plain forwarding: [`ProxyMode::Pass`], no latency.
    pub fn heal(&self) {
        self.set_latency(Duration::ZERO);
        self.set_mode(ProxyMode::Pass);
    }

    /// How many connections it accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.send_replace(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What every connection's task watches.
#[derive(Clone)]
struct Links {
    target: u16,
    faults: watch::Receiver<Faults>,
    resets: watch::Receiver<u64>,
    stalls: watch::Receiver<u64>,
}

async fn accept_loop(
    listener: std::net::TcpListener,
    links: Links,
    accepted: Arc<AtomicUsize>,
    mut stop: watch::Receiver<bool>,
) {
    let listener = TcpListener::from_std(listener).expect("a Tokio listener");
    loop {
        tokio::select! {
            conn = listener.accept() => {
                let Ok((conn, _)) = conn else { continue };
                accepted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(conn, links.clone()));
            }
            // Returning drops the runtime, which ends every connection's task.
            _ = stop.changed() => return,
        }
    }
}

/// Serves one client connection until it ends or a reset comes.
async fn serve(mut client: TcpStream, mut links: Links) {
    links.resets.borrow_and_update();
    let mode = links.faults.borrow().mode;
    let upstream = match mode {
        ProxyMode::Refuse => None,
        ProxyMode::BlackHole => {
            tokio::select! {
                () = discard(client.split().0) => {}
                _ = links.resets.changed() => {}
            }
            None
        }
        ProxyMode::Pass => {
            let target = ("127.0.0.1", links.target);
            match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target)).await {
                Ok(Ok(upstream)) => Some(upstream),
                _ => None,
            }
        }
    };
    if let Some(mut upstream) = upstream {
        let (client_read, client_write) = client.split();
        let (up_read, up_write) = upstream.split();
        let watch = Watch {
            faults: links.faults.clone(),
            stalls: links.stalls.clone(),
            born: *links.stalls.borrow(),
        };
        let both = async {
            tokio::join!(
                pump(client_read, up_write, watch.clone()),
                pump(up_read, client_write, watch.clone()),
            )
        };
        tokio::select! {
            _ = both => {}
            _ = links.resets.changed() => {}
        }
        let _ = upstream.set_zero_linger();
    }
    let _ = client.set_zero_linger();
}

/// Reads and drops everything until the end of the stream.
async fn discard(mut from: ReadHalf<'_>) {
    let mut buf = vec![0u8; 16 * 1024];
    while matches!(from.read(&mut buf).await, Ok(n) if n > 0) {}
}

/// What a connection's pumps check before forwarding a chunk.
#[derive(Clone)]
struct Watch {
    faults: watch::Receiver<Faults>,
    stalls: watch::Receiver<u64>,
    /// The stall generation when the connection opened: a later one silences it.
    born: u64,
}

/// Copies `from` to `to` chunk by chunk, each after the latency; in a black hole, or once the
/// connection is stalled, chunks are dropped. Ends (shutting `to` down) at the end of `from`
/// or on an error.
async fn pump(mut from: ReadHalf<'_>, mut to: WriteHalf<'_>, watch: Watch) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let now = *watch.faults.borrow();
        if now.mode == ProxyMode::BlackHole || *watch.stalls.borrow() > watch.born {
            continue;
        }
        if !now.latency.is_zero() {
            tokio::time::sleep(now.latency).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{ErrorKind, Read, Write};
    use std::net::TcpStream as StdStream;
    use std::time::Instant;

    /// A loopback echo server; its port.
    fn echo_server() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                thread::spawn(move || {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = conn.read(&mut buf) {
                        if n == 0 || conn.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        port
    }

    fn connect(proxy: &FaultProxy) -> StdStream {
        let conn = StdStream::connect(("127.0.0.1", proxy.port)).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        conn
    }

    /// Sends `ping` and reads the echo: `Ok` with it, or the error/EOF seen instead.
    fn round_trip(conn: &mut StdStream) -> Result<Vec<u8>, ErrorKind> {
        conn.write_all(b"ping").map_err(|e| e.kind())?;
        let mut buf = [0u8; 4];
        match conn.read(&mut buf) {
            Ok(0) => Err(ErrorKind::UnexpectedEof),
            Ok(n) => Ok(buf[..n].to_vec()),
            Err(e) => Err(e.kind()),
        }
    }

    #[test]
    fn forwards_and_delays() {
        let proxy = FaultProxy::start(echo_server());
        let mut conn = connect(&proxy);
        assert_eq!(round_trip(&mut conn), Ok(b"ping".to_vec()));
        proxy.set_latency(Duration::from_millis(150));
        let start = Instant::now();
        assert_eq!(round_trip(&mut conn), Ok(b"ping".to_vec()));
        // Both ways are delayed.
        assert!(start.elapsed() >= Duration::from_millis(300));
        assert_eq!(proxy.accepted(), 1);
    }

    #[test]
    fn resets_open_connections_and_serves_new_ones() {
        let proxy = FaultProxy::start(echo_server());
        let mut conn = connect(&proxy);
        assert_eq!(round_trip(&mut conn), Ok(b"ping".to_vec()));
        proxy.reset_all();
        thread::sleep(Duration::from_millis(100));
        assert!(round_trip(&mut conn).is_err(), "the old connection is gone");
        let mut fresh = connect(&proxy);
        assert_eq!(round_trip(&mut fresh), Ok(b"ping".to_vec()));
    }

    #[test]
    fn a_black_hole_answers_nothing_and_its_end_resets() {
        let proxy = FaultProxy::start(echo_server());
        let mut old = connect(&proxy);
        proxy.set_mode(ProxyMode::BlackHole);
        let mut new = connect(&proxy);
        new.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        old.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        for conn in [&mut old, &mut new] {
            let silent = round_trip(conn);
            assert!(
                matches!(silent, Err(ErrorKind::WouldBlock | ErrorKind::TimedOut)),
                "{silent:?}"
            );
        }
        proxy.heal();
        thread::sleep(Duration::from_millis(100));
        assert!(round_trip(&mut old).is_err(), "reset when the hole closes");
        let mut fresh = connect(&proxy);
        assert_eq!(round_trip(&mut fresh), Ok(b"ping".to_vec()));
    }

    #[test]
    fn a_stall_silences_open_connections_only() {
        let proxy = FaultProxy::start(echo_server());
        let mut old = connect(&proxy);
        assert_eq!(round_trip(&mut old), Ok(b"ping".to_vec()));
        proxy.stall_open();
        old.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let silent = round_trip(&mut old);
        assert!(
            matches!(silent, Err(ErrorKind::WouldBlock | ErrorKind::TimedOut)),
            "{silent:?}"
        );
        let mut fresh = connect(&proxy);
        assert_eq!(round_trip(&mut fresh), Ok(b"ping".to_vec()));
        proxy.reset_all();
        thread::sleep(Duration::from_millis(100));
        assert!(
            round_trip(&mut old).is_err(),
            "a reset ends the stalled one"
        );
    }

    #[test]
    fn refusal_resets_at_once() {
        let proxy = FaultProxy::start(echo_server());
        proxy.set_mode(ProxyMode::Refuse);
        let mut conn = connect(&proxy);
        assert!(round_trip(&mut conn).is_err());
        proxy.heal();
        let mut fresh = connect(&proxy);
        assert_eq!(round_trip(&mut fresh), Ok(b"ping".to_vec()));
    }

    #[test]
    fn a_dead_target_resets_the_client() {
        // A port nothing listens on (bound, then released).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let proxy = FaultProxy::start(port);
        let mut conn = connect(&proxy);
        assert!(round_trip(&mut conn).is_err());
    }
}
