//! Test support for the Redis tests: a real `redis-server` on a free loopback port, started
//! and stopped by the test (never one that happens to run on 6379), and a streaming SSE reader.

#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use mcpbus_proto::sse::{SseDecoder, SseEvent};

/// A `redis-server` of this test only, on a free loopback port, in its own directory.
pub struct Redis {
    pub port: u16,
    pub dir: PathBuf,
    child: Option<Child>,
    persistent: bool,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Redis {
    /// Starts one; `persistent` turns on the append-only file with an fsync per write.
    pub fn start(persistent: bool) -> Redis {
        let dir = std::env::temp_dir().join(format!(
            "mcpbus-redis-test-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut redis = Redis {
            port: free_port(),
            dir,
            child: None,
            persistent,
        };
        redis.launch();
        redis
    }

    fn launch(&mut self) {
        let mut cmd = Command::new("redis-server");
        cmd.args(["--bind", "127.0.0.1", "--port"])
            .arg(self.port.to_string())
            .arg("--dir")
            .arg(&self.dir)
            .args(["--save", ""]);
        if self.persistent {
            cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            cmd.args(["--appendonly", "no"]);
        }
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        self.child = Some(cmd.spawn().unwrap_or_else(|e| {
            panic!("cannot start redis-server ({e}); scripts/test.sh installs it when missing")
        }));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.write_all(b"PING\r\n");
                let mut buf = [0u8; 7];
                if s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n" {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// `redis://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it at once (SIGKILL: what a crash looks like).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and directory (reloading its append-only file).
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What an SSE reader thread reports.
#[derive(Debug)]
pub enum SseItem {
    /// The response status (first).
    Status(u16),
    /// One event.
    Event(SseEvent),
    /// The connection ended.
    End,
}

/// Opens a GET stream and reads it on a thread: status, events, end.
pub fn open_sse(port: u16, headers: &[(&str, &str)]) -> mpsc::Receiver<SseItem> {
    open_stream(port, "GET", headers, b"")
}

/// Sends a request to `/mcp` whose answer is an SSE stream (a GET, or a POST answered with
/// SSE) and reads it on a thread: status, events, end.
pub fn open_stream(
    port: u16,
    method: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> mpsc::Receiver<SseItem> {
    let mut request = format!(
        "{method} /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (n, v) in headers {
        request.push_str(&format!("{n}: {v}\r\n"));
    }
    request.push_str("\r\n");
    let mut request = request.into_bytes();
    request.extend_from_slice(body);
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
            let _ = tx.send(SseItem::End);
            return;
        };
        if stream.write_all(&request).is_err() {
            let _ = tx.send(SseItem::End);
            return;
        }
        let mut raw = Vec::new();
        let mut buf = [0u8; 16384];
        let mut head_done = false;
        let mut decoder = SseDecoder::new();
        loop {
            let n = match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            raw.extend_from_slice(&buf[..n]);
            if !head_done {
                let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
                    continue;
                };
                let head = String::from_utf8_lossy(&raw[..split]).into_owned();
                let status = head
                    .split(' ')
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                let _ = tx.send(SseItem::Status(status));
                raw.drain(..split + 4);
                head_done = true;
                if status != 200 {
                    break;
                }
            }
            // Chunked transfer: take every complete chunk.
            while let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") {
                let Ok(size) = usize::from_str_radix(
                    String::from_utf8_lossy(&raw[..eol])
                        .split(';')
                        .next()
                        .unwrap_or("")
                        .trim(),
                    16,
                ) else {
                    break;
                };
                if raw.len() < eol + 2 + size + 2 {
                    break;
                }
                let data = raw[eol + 2..eol + 2 + size].to_vec();
                raw.drain(..eol + 2 + size + 2);
                for event in decoder.push(&data) {
                    if tx.send(SseItem::Event(event)).is_err() {
                        return;
                    }
                }
            }
        }
        let _ = tx.send(SseItem::End);
    });
    rx
}
