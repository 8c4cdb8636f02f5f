//! Shared by the HTTP tests (`http_cli`, `interop_python_http`, `interop_ts`): a spawned
//! `mcpbus serve --listen 127.0.0.1:0` that is killed however the test ends, its stderr, a
//! minimal HTTP/1.1 client over `std::net::TcpStream`, and bounded child processes.
//!
//! Loopback only; no HTTP client crate (the tests must see status codes and headers exactly as
//! the server writes them).

#![allow(dead_code)] // each test crate uses a different part
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The publish token of `tests/fixtures/http.toml`.
pub const TOKEN: &str = "test-publish-token";

/// How long the server may take to print the address it listens on.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(30);

/// The fixture configuration of the HTTP tests.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A child process killed (and reaped) when dropped, on every path out of a test.
pub struct ChildGuard {
    pub child: Child,
}

impl ChildGuard {
    pub fn spawn(cmd: &mut Command, what: &str) -> ChildGuard {
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("{what}: cannot start {cmd:?}: {e}"));
        ChildGuard { child }
    }

    pub fn id(&self) -> u32 {
        self.child.id()
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
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
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

/// A running `mcpbus serve` on a free loopback port.
pub struct Server {
    pub guard: ChildGuard,
    pub port: u16,
    log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `mcpbus serve --listen 127.0.0.1:0 --config CONFIG` with `MCPBUS_LOG=log_filter`
    /// and waits for its "listening on" line. `MCPBUS_PUBLISH_TOKEN` is removed from its
    /// environment: the token comes from the configuration only.
    pub fn start(config: &Path, log_filter: &str) -> Server {
        Self::start_with(config, log_filter, &[])
    }

    /// [`start`](Self::start) with more arguments for `mcpbus serve` (e.g. `--redis URL`).
    pub fn start_with(config: &Path, log_filter: &str, extra: &[&str]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mcpbus"));
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(config)
            .args(extra)
            .env_remove("MCPBUS_REDIS")
            .env("MCPBUS_LOG", log_filter)
            .env_remove("MCPBUS_PUBLISH_TOKEN")
            .env_remove("MCPBUS_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut guard = ChildGuard::spawn(&mut cmd, "mcpbus serve");
        let stderr = guard.child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let deadline = Instant::now() + LISTEN_TIMEOUT;
        let port = loop {
            if let Some(port) = listening_port(&log.lock().unwrap()) {
                break port;
            }
            if let Ok(Some(status)) = guard.child.try_wait() {
                panic!(
                    "mcpbus serve exited ({status}) before listening:\n{}",
                    log.lock().unwrap()
                );
            }
            assert!(
                Instant::now() < deadline,
                "mcpbus serve printed no \"listening on\" line within {LISTEN_TIMEOUT:?}:\n{}",
                log.lock().unwrap()
            );
            thread::sleep(Duration::from_millis(20));
        };
        Server { guard, port, log }
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
        self.log.lock().unwrap().clone()
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

    /// One request to this server.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        http_request(self.port, method, path, headers, body)
    }

    /// `POST /publish` with a JSON body and the fixture's token.
    pub fn publish(&self, body: &serde_json::Value) -> Response {
        self.request(
            "POST",
            "/publish",
            &[
                ("Content-Type", "application/json"),
                ("Authorization", &format!("Bearer {TOKEN}")),
            ],
            body.to_string().as_bytes(),
        )
    }

    /// `GET /healthz` as JSON.
    pub fn healthz(&self) -> serde_json::Value {
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

/// An HTTP response, body de-chunked.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Header names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("response body is not JSON ({e}): {self:?} {}", self.text()))
    }
}

/// One HTTP/1.1 request with `Connection: close`; reads the whole response (10 s bound).
pub fn http_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the server");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .unwrap_or_else(|e| panic!("{method} {path}: reading the response: {e}"));
    parse_response(&raw).unwrap_or_else(|| {
        panic!(
            "{method} {path}: not an HTTP response: {:?}",
            String::from_utf8_lossy(&raw)
        )
    })
}

fn parse_response(raw: &[u8]) -> Option<Response> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &raw[split + 4..];
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(rest)?
    } else {
        rest.to_vec()
    };
    Some(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let eol = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&rest[..eol]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}

/// Runs a command to completion, or kills it after `timeout` and panics with its stderr.
pub fn run_bounded(mut cmd: Command, timeout: Duration, what: &str) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut guard = ChildGuard::spawn(&mut cmd, what);
    let mut stdout = guard.child.stdout.take().unwrap();
    let mut stderr = guard.child.stderr.take().unwrap();
    let out_thread = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err_thread = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let Some(status) = guard.wait_timeout(timeout) else {
        let _ = guard.child.kill();
        let _ = guard.child.wait();
        let err = err_thread.join().unwrap_or_default();
        let out = out_thread.join().unwrap_or_default();
        panic!(
            "{what}: no result within {timeout:?}; killed.\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&err)
        );
    };
    Output {
        status,
        stdout: out_thread.join().unwrap_or_default(),
        stderr: err_thread.join().unwrap_or_default(),
    }
}

/// The JSON summary on the last stdout line of an interop script.
pub fn summary_line(out: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("the summary line is not JSON ({e}): {stdout}"))
}

/// The Python from `MCPBUS_PYTHON` (default `python3`) and the version of its `mcp` package;
/// fails with the way to fix it when `module` cannot be imported.
pub fn python_with_mcp(module: &str) -> (String, String) {
    let python = std::env::var("MCPBUS_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut probe = Command::new(&python);
    probe.args([
        "-c",
        &format!("import importlib.metadata as m, mcp, {module}; print(m.version('mcp'))"),
    ]);
    let probe = run_bounded(probe, Duration::from_secs(60), "import mcp");
    assert!(
        probe.status.success(),
        "the MCP Python SDK is not importable with {python:?} (MCPBUS_PYTHON): run \
         `bash scripts/test.sh`, which installs the pinned `mcp` into .tools/py and runs the \
         tests with it.\n{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    let version = String::from_utf8_lossy(&probe.stdout).trim().to_string();
    (python, version)
}

/// Checks the summary of an HTTP interop script: it subscribed to its own inbox and
/// `build/status`, and received on its GET stream exactly the two events it published.
/// Returns its session id.
pub fn assert_published_summary(summary: &serde_json::Value) -> String {
    assert_eq!(summary["ok"], serde_json::json!(true), "{summary}");
    let session = summary["sessionId"]
        .as_str()
        .expect("sessionId")
        .to_string();
    assert_eq!(
        summary["subscribed"],
        serde_json::json!([format!("agents/{session}/inbox"), "build/status"]),
        "{summary}"
    );
    assert_eq!(
        summary["receivedOnGetStream"], summary["published"],
        "{summary}"
    );
    assert_eq!(
        summary["published"].as_array().map(Vec::len),
        Some(2),
        "{summary}"
    );
    session
}
