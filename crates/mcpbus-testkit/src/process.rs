//! Child processes for tests: killed however a test ends, bounded in time, and `mcpbus serve`
//! on a free loopback port with its log at hand.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use http::Method;
use serde_json::Value;

use crate::http::{Answer, HttpClient, block_on};

/// The publish token of the `http.toml` [fixture].
pub const TOKEN: &str = "test-publish-token";

/// How long `mcpbus serve` may take to print the address it listens on.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(30);

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A fixture of the `mcpbus` command's tests (`crates/mcpbus-cli/tests/fixtures/NAME`).
pub fn fixture(name: &str) -> PathBuf {
    repo_root()
        .join("crates/mcpbus-cli/tests/fixtures")
        .join(name)
}

/// Calls `f` with each line of `reader` on a thread, until the end or `f` returns false.
fn each_line(
    reader: impl Read + Send + 'static,
    mut f: impl FnMut(String) -> bool + Send + 'static,
) {
    thread::spawn(move || {
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            if !f(line) {
                break;
            }
        }
    });
}

/// The lines of `reader` (a child's stdout, say) as they come, read on a thread.
pub fn line_channel(reader: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    each_line(reader, move |line| tx.send(line).is_ok());
    rx
}

/// A child process killed (and reaped) when dropped, on every path out of a test.
#[derive(Debug)]
pub struct ChildGuard {
    /// The process.
    pub child: Child,
}

impl ChildGuard {
    /// Spawns `cmd`; panics naming `what` if it cannot start.
    pub fn spawn(cmd: &mut Command, what: &str) -> ChildGuard {
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("{what}: cannot start {cmd:?}: {e}"));
        ChildGuard { child }
    }

    /// Sends SIGTERM (unix) so that the process can shut down cleanly.
    pub fn terminate(&self) {
        #[cfg(unix)]
        {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(self.child.id().to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }

    /// Waits for the exit, up to `timeout`.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("the child's status") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Runs a command to completion, or kills it after `timeout` and panics with its output.
pub fn run_bounded(mut cmd: Command, timeout: Duration, what: &str) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut guard = ChildGuard::spawn(&mut cmd, what);
    let read_all = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            buf
        })
    };
    let stdout = read_all(Box::new(guard.child.stdout.take().expect("piped stdout")));
    let stderr = read_all(Box::new(guard.child.stderr.take().expect("piped stderr")));
    let Some(status) = guard.wait_timeout(timeout) else {
        let _ = guard.child.kill();
        let _ = guard.child.wait();
        let err = stderr.join().unwrap_or_default();
        let out = stdout.join().unwrap_or_default();
        panic!(
            "{what}: no result within {timeout:?}; killed.\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&err)
        );
    };
    Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

/// A running `mcpbus serve` on a free loopback port, killed when dropped. Its methods are
/// blocking: the tests that spawn it drive it from plain threads.
#[derive(Debug)]
pub struct ServeProcess {
    /// The process.
    pub guard: ChildGuard,
    /// The port it listens on.
    pub port: u16,
    log: Arc<Mutex<String>>,
}

impl ServeProcess {
    /// `BIN serve --listen 127.0.0.1:0 --config CONFIG EXTRA...` with `MCPBUS_LOG=log_filter`.
    /// `MCPBUS_PUBLISH_TOKEN`, `MCPBUS_REDIS` and `MCPBUS_CONFIG` are removed from its
    /// environment: only the configuration and the arguments count. `BIN` is the test's
    /// `env!("CARGO_BIN_EXE_mcpbus")`.
    pub fn command(bin: &str, config: &Path, log_filter: &str, extra: &[&str]) -> Command {
        let mut cmd = Command::new(bin);
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(config)
            .args(extra)
            .env("MCPBUS_LOG", log_filter)
            .env_remove("MCPBUS_REDIS")
            .env_remove("MCPBUS_PUBLISH_TOKEN")
            .env_remove("MCPBUS_CONFIG");
        cmd
    }

    /// Starts [`command`](Self::command) and waits for it to listen.
    pub fn start(bin: &str, config: &Path, log_filter: &str, extra: &[&str]) -> ServeProcess {
        Self::spawn(Self::command(bin, config, log_filter, extra))
    }

    /// Spawns `cmd` (an `mcpbus serve --listen 127.0.0.1:0 ...`), collects its stderr, and waits
    /// for its "listening on" line.
    pub fn spawn(mut cmd: Command) -> ServeProcess {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut guard = ChildGuard::spawn(&mut cmd, "mcpbus serve");
        let stderr = guard.child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        each_line(stderr, move |line| {
            let mut log = sink.lock().expect("the log lock");
            log.push_str(&line);
            log.push('\n');
            true
        });
        let mut server = ServeProcess {
            guard,
            port: 0,
            log,
        };
        server.port = server.wait_until_listening();
        server
    }

    fn wait_until_listening(&mut self) -> u16 {
        let deadline = Instant::now() + LISTEN_TIMEOUT;
        loop {
            if let Some(port) = listening_port(&self.log()) {
                return port;
            }
            if let Ok(Some(status)) = self.guard.child.try_wait() {
                panic!(
                    "mcpbus serve exited ({status}) before listening:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "mcpbus serve printed no \"listening on\" line within {LISTEN_TIMEOUT:?}:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT/mcp`
    pub fn mcp_url(&self) -> String {
        format!("{}/mcp", self.base_url())
    }

    /// Everything the server wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().expect("the log lock").clone()
    }

    /// Waits until a stderr line satisfies `pred`; that line, or a panic naming `what`.
    pub fn wait_for_log(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.log().lines().find(|l| pred(l)) {
                return line.to_string();
            }
            assert!(
                Instant::now() < deadline,
                "no server log line {what} within {timeout:?}; log:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// One request to `path` on this server.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Answer {
        let method = Method::from_bytes(method.as_bytes()).expect("an HTTP method");
        let client = HttpClient::new(format!("{}{path}", self.base_url()));
        block_on(client.call(method, headers, body))
    }

    /// [`HttpClient::post`] to `/mcp`.
    pub fn post(&self, session: Option<&str>, message: &Value) -> Answer {
        block_on(HttpClient::new(self.mcp_url()).post(session, message))
    }

    /// [`HttpClient::initialize`] on `/mcp`: a confirmed session's id.
    pub fn initialize(&self) -> String {
        block_on(HttpClient::new(self.mcp_url()).initialize())
    }

    /// `POST /publish` with a JSON body and the fixture's [`TOKEN`].
    pub fn publish(&self, body: &Value) -> Answer {
        let auth = format!("Bearer {TOKEN}");
        let headers = [
            ("Content-Type", "application/json"),
            ("Authorization", &auth),
        ];
        self.request("POST", "/publish", &headers, body.to_string().as_bytes())
    }

    /// `GET /healthz` as JSON.
    pub fn healthz(&self) -> Value {
        let r = self.request("GET", "/healthz", &[], b"");
        assert_eq!(r.status, 200, "/healthz: {r:?}");
        r.json()
    }
}

/// The port of "mcpbus: listening on http://127.0.0.1:PORT/mcp" in a log.
fn listening_port(log: &str) -> Option<u16> {
    log.lines().find_map(|line| {
        let rest = line.strip_prefix("mcpbus: listening on http://127.0.0.1:")?;
        rest.split('/').next()?.parse().ok()
    })
}
