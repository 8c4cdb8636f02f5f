//! Slow clients (docs/http.md, "Slow clients"): a request whose headers trickle in closes its
//! connection after `header_read_timeout`, a POST body that trickles in gets a 408 after
//! `body_read_timeout`, and the server goes on serving everyone else. Raw sockets, so that
//! nothing but these bytes reach the server.

#![allow(clippy::unwrap_used)] // tests unwrap to fail loudly

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use mcpbus::server::Server;
use mcpbus::transport::http::{HttpConfig, serve_http};
use mcpbus_testkit::{HttpClient, TestServer};

async fn start() -> (TestServer, HttpClient, String) {
    let config = HttpConfig {
        header_read_timeout: Duration::from_millis(300),
        body_read_timeout: Duration::from_millis(500),
        ..HttpConfig::default()
    };
    let server = Server::builder("slow", "1").build().unwrap();
    let ts = TestServer::start(|l, stop| serve_http(l, "/mcp", server, config, stop)).await;
    let raw = HttpClient::new(ts.url());
    let addr = ts
        .url()
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    (ts, raw, addr)
}

/// Writes `head`, then `trickle` one byte every 100 ms (stopping when the server closes), and
/// returns what the server answered and how long until it closed.
fn trickle(addr: &str, head: &str, trickle: &'static [u8]) -> (String, Duration) {
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let started = Instant::now();
    conn.write_all(head.as_bytes()).unwrap();
    let mut reader = conn.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        for byte in trickle {
            std::thread::sleep(Duration::from_millis(100));
            if conn.write_all(&[*byte]).is_err() {
                return;
            }
        }
    });
    let mut answer = Vec::new();
    let _ = reader.read_to_end(&mut answer);
    let closed_after = started.elapsed();
    let _ = writer.join();
    (String::from_utf8_lossy(&answer).into_owned(), closed_after)
}

#[tokio::test]
async fn trickling_headers_and_bodies_are_cut_off_and_others_are_served() {
    let (_ts, raw, addr) = start().await;
    let endless: &'static [u8] = Box::leak(vec![b'x'; 200].into_boxed_slice());

    let a = addr.clone();
    let (answer, after) = tokio::task::spawn_blocking(move || {
        trickle(
            &a,
            "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ",
            endless,
        )
    })
    .await
    .unwrap();
    // 200 bytes at 100 ms would take 20 s: the head's bound ends it long before.
    assert!(
        after < Duration::from_secs(10),
        "headers: closed after {after:?}"
    );
    assert!(!answer.starts_with("HTTP/1.1 2"), "headers: {answer:.200}");

    let a = addr.clone();
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nContent-Length: 200\r\n\r\n"
    );
    let (answer, after) = tokio::task::spawn_blocking(move || trickle(&a, &head, endless))
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "body: {answer:.300}");
    assert!(answer.contains("-32600") && answer.contains("did not arrive within 500 ms"));
    assert!(
        after < Duration::from_secs(10),
        "body: closed after {after:?}"
    );

    // Everyone else is served meanwhile and after.
    raw.initialize().await;
}
