//! A Prometheus server of one test only (the Debian package `prometheus`), on a free loopback
//! port with a configuration of its own that scrapes the test's targets every second; queried
//! through its HTTP API. Killed, and its directory removed, when dropped.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use http::Method;
use serde_json::Value;

use crate::http::{HttpClient, block_on};
use crate::process::ChildGuard;

/// How long Prometheus may take to say it is ready.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running Prometheus.
#[derive(Debug)]
pub struct PrometheusServer {
    /// Its loopback port.
    pub port: u16,
    dir: PathBuf,
    child: ChildGuard,
}

/// The Prometheus binary: `MCPBUS_PROMETHEUS` (set by `scripts/test.sh`, which installs the
/// Debian package when missing), else `prometheus` on PATH.
pub fn prometheus_binary() -> PathBuf {
    std::env::var_os("MCPBUS_PROMETHEUS")
        .filter(|p| !p.is_empty())
        .map_or_else(|| PathBuf::from("prometheus"), PathBuf::from)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// Percent-encodes a query parameter (RFC 3986 unreserved characters kept).
fn encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl PrometheusServer {
    /// Starts one scraping `targets` (`host:port`, loopback) at `path` every second.
    pub fn start(targets: &[String], path: &str) -> PrometheusServer {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!(
            "mcpbus-prometheus-test-{}-{port}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let list = targets
            .iter()
            .map(|t| format!("'{t}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: mcpbus\n    metrics_path: '{path}'\n    \
             static_configs:\n      - targets: [{list}]\n"
        );
        let config_file = dir.join("prometheus.yml");
        std::fs::write(&config_file, config).expect("the Prometheus configuration written");
        let binary = prometheus_binary();
        let mut cmd = Command::new(&binary);
        cmd.arg(format!("--config.file={}", config_file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(dir.join("prometheus.log"))
                    .map_or_else(|_| Stdio::null(), Stdio::from),
            );
        let child = match cmd.spawn() {
            Ok(child) => ChildGuard { child },
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                panic!(
                    "cannot start {} ({e}): set MCPBUS_PROMETHEUS, or run `bash scripts/test.sh`, \
                     which installs Debian's prometheus",
                    binary.display()
                );
            }
        };
        let mut server = PrometheusServer { port, dir, child };
        server.wait_ready();
        server
    }

    fn wait_ready(&mut self) {
        let client = HttpClient::new(format!("http://127.0.0.1:{}/-/ready", self.port));
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let ready = std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
                && block_on(client.call(Method::GET, &[], b"")).status == 200;
            if ready {
                return;
            }
            if let Ok(Some(status)) = self.child.child.try_wait() {
                let log = std::fs::read_to_string(self.dir.join("prometheus.log"));
                panic!("Prometheus exited ({status}):\n{}", log.unwrap_or_default());
            }
            assert!(
                Instant::now() < deadline,
                "Prometheus did not get ready in {START_TIMEOUT:?}"
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs an instant PromQL query (`/api/v1/query`); returns `data.result`.
    pub fn query(&self, promql: &str) -> Vec<Value> {
        let url = format!(
            "http://127.0.0.1:{}/api/v1/query?query={}",
            self.port,
            encode(promql)
        );
        let answer = block_on(HttpClient::new(url).call(Method::GET, &[], b""));
        assert_eq!(answer.status, 200, "{promql}: {}", answer.text());
        let body = answer.json();
        assert_eq!(body["status"], "success", "{promql}: {body}");
        body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The value of a query whose result is one sample (`None` when it has none yet).
    pub fn query_value(&self, promql: &str) -> Option<f64> {
        let result = self.query(promql);
        let sample = result.first()?;
        sample["value"][1].as_str()?.parse().ok()
    }

    /// Waits until `promql` gives `expected` (every scrape after the numbers settled), up to
    /// `timeout`; returns the last value seen.
    pub fn wait_for_value(&self, promql: &str, expected: f64, timeout: Duration) -> Option<f64> {
        let deadline = Instant::now() + timeout;
        loop {
            let value = self.query_value(promql);
            if value == Some(expected) || Instant::now() >= deadline {
                return value;
            }
            thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        // Stopped first: a running Prometheus would write into the directory being removed.
        let _ = self.child.child.kill();
        let _ = self.child.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn queries_are_percent_encoded() {
        assert_eq!(
            super::encode(r#"sum(m{topic="a/+"})"#),
            "sum%28m%7Btopic%3D%22a%2F%2B%22%7D%29"
        );
    }
}
