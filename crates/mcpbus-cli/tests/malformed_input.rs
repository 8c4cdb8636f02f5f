//! Malformed input on the stdio transport of the real `mcpbus` binary.
//!
//! Every bad line must get exactly the answer JSON-RPC 2.0 (section 5, "Error object") and MCP
//! prescribe, and must not disturb the session: the same process keeps answering valid requests
//! afterwards. The HTTP side of the same rules is docs/protocol.md 5 (a body that is not JSON or
//! not one JSON-RPC message gets an id-less JSON-RPC error, -32700 or -32600); on stdio the error
//! is one line.
//!
//! - `-32700` Parse error: the line is not JSON (or not UTF-8). The id cannot be read: no `id`.
//! - `-32600` Invalid Request: JSON but not one valid message (batch arrays are not part of MCP
//!   since 2025-06-18; ids are a string or an integer, never null). The answer carries the id
//!   when it could be read, and has no `id` otherwise.
//! - `-32601` Method not found, `-32602` Invalid params: always with the request's id.
//! - A notification is never answered, not even with an error.
//!
//! Requests are answered by spawned tasks while unparseable lines are answered at once, so the
//! test sends one line and waits for its answer before sending the next: the order of answers is
//! then the order of lines. Every read has a timeout, so a hang fails the test instead of
//! blocking it.

use std::io::Write;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use mcpbus_testkit::line_channel;
use serde_json::{Value, json};

/// How long one answer may take. Generous: debug build on a busy 2-core machine.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(20);

/// The `id` an answer must (or must not) carry.
#[derive(Debug, Clone)]
enum Id {
    /// No `id` member at all (the id could not be read).
    Absent,
    /// Exactly this id.
    Is(Value),
}

/// The stdio server under test, with a line reader on its stdout.
struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
}

impl Server {
    fn spawn() -> Server {
        let config = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/publish.toml");
        let mut child = Command::new(env!("CARGO_BIN_EXE_mcpbus"))
            .args(["serve", "--stdio", "--config", config])
            .env("MCPBUS_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn mcpbus serve --stdio");
        let stdin = child.stdin.take();
        let lines = line_channel(child.stdout.take().expect("piped stdout"));
        Server {
            child,
            stdin,
            lines,
        }
    }

    /// Writes raw bytes followed by a newline.
    fn send_raw(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(bytes).expect("write to server");
        stdin.write_all(b"\n").expect("write to server");
        stdin.flush().expect("flush to server");
    }

    fn send(&mut self, message: &Value) {
        self.send_raw(message.to_string().as_bytes());
    }

    /// The next line the server writes, parsed; panics on timeout or end of output.
    fn recv(&mut self, what: &str) -> Value {
        match self.lines.recv_timeout(ANSWER_TIMEOUT) {
            Ok(line) => serde_json::from_str(&line).unwrap_or_else(|e| {
                panic!("{what}: the server wrote a line that is not JSON ({e}): {line}")
            }),
            Err(RecvTimeoutError::Timeout) => {
                panic!("{what}: no answer within {ANSWER_TIMEOUT:?} (server hung?)")
            }
            Err(RecvTimeoutError::Disconnected) => {
                panic!("{what}: the server closed its output (crashed?)")
            }
        }
    }

    /// A request that must succeed; returns its result.
    fn request(&mut self, id: i64, method: &str, params: Value) -> Value {
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let answer = self.recv(method);
        assert_eq!(answer["jsonrpc"], json!("2.0"), "{method}: {answer}");
        assert_eq!(answer["id"], json!(id), "{method}: wrong id in {answer}");
        assert!(answer.get("error").is_none(), "{method} failed: {answer}");
        answer["result"].clone()
    }

    /// Sends one bad line and checks its single answer: the error code and the id.
    fn expect_error(&mut self, name: &str, line: &[u8], code: i64, id: Id) {
        self.send_raw(line);
        let answer = self.recv(name);
        assert_eq!(answer["jsonrpc"], json!("2.0"), "{name}: {answer}");
        assert!(
            answer.get("result").is_none(),
            "{name}: expected an error, got a result: {answer}"
        );
        let error = answer
            .get("error")
            .unwrap_or_else(|| panic!("{name}: no error member in {answer}"));
        assert_eq!(error["code"], json!(code), "{name}: wrong code in {answer}");
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{name}: the error needs a message: {answer}"
        );
        match id {
            Id::Absent => assert!(
                answer.get("id").is_none(),
                "{name}: the id could not be read, so the answer must have no id: {answer}"
            ),
            Id::Is(expected) => assert_eq!(
                answer.get("id"),
                Some(&expected),
                "{name}: wrong id in {answer}"
            ),
        }
    }

    /// Sends a line that must get no answer at all, proven by a ping answered right after it.
    fn expect_silence(&mut self, name: &str, line: &[u8], ping_id: i64) {
        self.send_raw(line);
        self.send(&json!({"jsonrpc": "2.0", "id": ping_id, "method": "ping"}));
        let answer = self.recv(name);
        assert_eq!(
            answer,
            json!({"jsonrpc": "2.0", "id": ping_id, "result": {}}),
            "{name}: expected no answer, so the next line must be the ping's answer"
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // End of input ends the server; kill it if it does not go in time.
        drop(self.stdin.take());
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const METHOD_NOT_FOUND: i64 = -32601;
const INVALID_PARAMS: i64 = -32602;

fn initialize(server: &mut Server) {
    let result = server.request(
        1,
        "initialize",
        json!({
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "malformed-input-test", "version": "1"}
        }),
    );
    assert_eq!(result["protocolVersion"], json!("2025-11-25"), "{result}");
    server.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
}

#[test]
fn every_malformed_line_gets_its_error_and_the_session_survives() {
    let mut s = Server::spawn();
    use Id::{Absent, Is};

    // MCP lifecycle: before initialize only initialize and ping are served; any other request
    // is refused as an invalid request, addressed to its id.
    s.expect_error(
        "tools/list before initialize",
        br#"{"jsonrpc":"2.0","id":"early","method":"tools/list"}"#,
        INVALID_REQUEST,
        Is(json!("early")),
    );
    initialize(&mut s);

    // --- -32700 Parse error: not JSON at all (JSON-RPC 2.0 section 5). No id can be read. ---
    let parse_errors: &[(&str, &[u8])] = &[
        (
            "truncated object",
            br#"{"jsonrpc":"2.0","id":2,"method":"ping""#,
        ),
        (
            "trailing garbage",
            br#"{"jsonrpc":"2.0","id":2,"method":"ping"} garbage"#,
        ),
        (
            "two objects on one line",
            br#"{"jsonrpc":"2.0","id":2,"method":"ping"}{"jsonrpc":"2.0","id":3,"method":"ping"}"#,
        ),
        ("bare word", b"hello"),
        ("single quotes", b"{'jsonrpc':'2.0','id':2,'method':'ping'}"),
        (
            "trailing comma",
            br#"{"jsonrpc":"2.0","id":2,"method":"ping",}"#,
        ),
        ("unquoted key", br#"{jsonrpc:"2.0","id":2,"method":"ping"}"#),
        (
            "NaN literal",
            br#"{"jsonrpc":"2.0","id":2,"method":"ping","params":{"x":NaN}}"#,
        ),
        (
            "invalid UTF-8 in a string",
            b"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"pi\xff\xfeng\"}",
        ),
        ("invalid UTF-8 alone", b"\xc3\x28\xa0\xa1"),
        (
            "lone surrogate escape",
            br#"{"jsonrpc":"2.0","id":2,"method":"\ud800"}"#,
        ),
    ];
    for (name, line) in parse_errors {
        s.expect_error(name, line, PARSE_ERROR, Absent);
    }

    // Nesting 10,000 levels deep: serde_json stops at 128 levels ("recursion limit exceeded"), so
    // the line is refused as unparseable rather than overflowing the stack.
    let deep = format!(
        r#"{{"jsonrpc":"2.0","id":2,"method":"ping","params":{{"a":{}{}}}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    s.expect_error("nesting 10,000 deep", deep.as_bytes(), PARSE_ERROR, Absent);

    // A number literal beyond f64: serde_json (without arbitrary_precision) refuses it with
    // "number out of range", so the whole line is a parse error, even though the literal is
    // grammatically valid JSON and sits in params. Documented here as the server's behaviour.
    s.expect_error(
        "1e999999 in params",
        br#"{"jsonrpc":"2.0","id":2,"method":"ping","params":{"x":1e999999}}"#,
        PARSE_ERROR,
        Absent,
    );

    // --- -32600 Invalid Request, no readable id: JSON, but not one MCP message. ---
    let id_less_invalid: &[(&str, &[u8])] = &[
        // MCP removed JSON-RPC batching (2025-06-18): an array is refused as a whole.
        (
            "batch array",
            br#"[{"jsonrpc":"2.0","id":2,"method":"ping"}]"#,
        ),
        ("empty batch", b"[]"),
        ("number", b"42"),
        ("string", br#""ping""#),
        ("null", b"null"),
        ("true", b"true"),
        ("empty object", b"{}"),
        // MCP: "the ID MUST NOT be null"; ids are a string or an integer.
        ("id null", br#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#),
        ("id float", br#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#),
        (
            "id object",
            br#"{"jsonrpc":"2.0","id":{"n":1},"method":"ping"}"#,
        ),
        ("id array", br#"{"jsonrpc":"2.0","id":[1],"method":"ping"}"#),
        ("id bool", br#"{"jsonrpc":"2.0","id":true,"method":"ping"}"#),
        // Beyond i64 (serde_json reads it as an f64): not an id the server can echo exactly.
        (
            "id beyond i64",
            br#"{"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"ping"}"#,
        ),
        (
            "id just beyond u64",
            br#"{"jsonrpc":"2.0","id":18446744073709551616,"method":"ping"}"#,
        ),
    ];
    for (name, line) in id_less_invalid {
        s.expect_error(name, line, INVALID_REQUEST, Absent);
    }

    // --- -32600 Invalid Request with a readable id: the answer is addressed to it. ---
    let invalid_with_id: &[(&str, &[u8], Value)] = &[
        (
            "jsonrpc 1.0",
            br#"{"jsonrpc":"1.0","id":10,"method":"ping"}"#,
            json!(10),
        ),
        (
            "jsonrpc as a number",
            br#"{"jsonrpc":2.0,"id":11,"method":"ping"}"#,
            json!(11),
        ),
        (
            "missing jsonrpc",
            br#"{"id":"no-version","method":"ping"}"#,
            json!("no-version"),
        ),
        (
            "method a number",
            br#"{"jsonrpc":"2.0","id":12,"method":5}"#,
            json!(12),
        ),
        (
            "method null",
            br#"{"jsonrpc":"2.0","id":"m-null","method":null}"#,
            json!("m-null"),
        ),
        (
            "params a string",
            br#"{"jsonrpc":"2.0","id":13,"method":"ping","params":"x"}"#,
            json!(13),
        ),
        (
            "params a number",
            br#"{"jsonrpc":"2.0","id":14,"method":"ping","params":3}"#,
            json!(14),
        ),
        (
            "neither method nor result",
            br#"{"jsonrpc":"2.0","id":15}"#,
            json!(15),
        ),
        (
            "request carrying a result",
            br#"{"jsonrpc":"2.0","id":16,"method":"ping","result":{}}"#,
            json!(16),
        ),
        (
            "negative i64 id, jsonrpc missing",
            br#"{"id":-9223372036854775808,"method":"ping"}"#,
            json!(i64::MIN),
        ),
        (
            "initialize again",
            br#"{"jsonrpc":"2.0","id":17,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
            json!(17),
        ),
    ];
    for (name, line, id) in invalid_with_id {
        s.expect_error(name, line, INVALID_REQUEST, Is(id.clone()));
    }

    // --- -32601 Method not found, with the id. ---
    s.expect_error(
        "unknown method",
        br#"{"jsonrpc":"2.0","id":20,"method":"no/such/method"}"#,
        METHOD_NOT_FOUND,
        Is(json!(20)),
    );
    s.expect_error(
        "unknown method, string id",
        br#"{"jsonrpc":"2.0","id":"s-21","method":"events/emit","params":{}}"#,
        METHOD_NOT_FOUND,
        Is(json!("s-21")),
    );

    // --- -32602 Invalid params: a known method with params of the wrong shape, with the id. ---
    let invalid_params: &[(&str, &[u8], Value)] = &[
        (
            "tools/call name a number",
            br#"{"jsonrpc":"2.0","id":30,"method":"tools/call","params":{"name":5}}"#,
            json!(30),
        ),
        (
            "tools/call without params",
            br#"{"jsonrpc":"2.0","id":31,"method":"tools/call"}"#,
            json!(31),
        ),
        (
            "tools/call unknown tool",
            br#"{"jsonrpc":"2.0","id":32,"method":"tools/call","params":{"name":"nope","arguments":{}}}"#,
            json!(32),
        ),
        (
            "events/subscribe topics a string",
            br#"{"jsonrpc":"2.0","id":33,"method":"events/subscribe","params":{"topics":"build/status"}}"#,
            json!(33),
        ),
        (
            "events/subscribe topics of numbers",
            br#"{"jsonrpc":"2.0","id":34,"method":"events/subscribe","params":{"topics":[1,2]}}"#,
            json!(34),
        ),
        (
            "resources/read uri a number",
            br#"{"jsonrpc":"2.0","id":35,"method":"resources/read","params":{"uri":5}}"#,
            json!(35),
        ),
        (
            "tools/list params an array",
            br#"{"jsonrpc":"2.0","id":36,"method":"tools/list","params":[1]}"#,
            json!(36),
        ),
    ];
    for (name, line, id) in invalid_params {
        s.expect_error(name, line, INVALID_PARAMS, Is(id.clone()));
    }

    // --- Never answered: notifications (JSON-RPC 2.0 section 4.1), stray responses, blanks. ---
    s.expect_silence(
        "notification with an unknown method",
        br#"{"jsonrpc":"2.0","method":"no/such/notification","params":{"x":1}}"#,
        40,
    );
    s.expect_silence(
        "notification with params of the wrong shape",
        br#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":[]}}"#,
        41,
    );
    s.expect_silence(
        "response to a request never sent",
        br#"{"jsonrpc":"2.0","id":"never-sent","result":{}}"#,
        42,
    );
    s.expect_silence(
        "error response to a request never sent",
        br#"{"jsonrpc":"2.0","id":99,"error":{"code":-1,"message":"x"}}"#,
        43,
    );
    // The stdio framing skips blank lines (a trailing \r is part of the line ending).
    s.expect_silence("blank line", b"", 44);
    s.expect_silence("whitespace line", b" \t \r", 45);

    // --- The session is intact: valid requests still get correct results. ---
    let ping = s.request(50, "ping", json!({}));
    assert_eq!(ping, json!({}));
    let tools = s.request(51, "tools/list", json!({}));
    let names: Vec<&str> = tools["tools"]
        .as_array()
        .expect("tools array")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    let expected = [
        "list_topics",
        "read_retained",
        "wait_for_events",
        "publish",
        "whoami",
    ];
    assert_eq!(names, expected, "{tools}");
    let topics = s.request(52, "events/list", json!({}));
    let patterns: Vec<&str> = topics["topics"]
        .as_array()
        .expect("topics array")
        .iter()
        .filter_map(|t| t["pattern"].as_str())
        .collect();
    assert_eq!(
        patterns,
        [
            "build/status",
            "deploy/status",
            "alerts/+",
            "files/#",
            "agents/{agent_id}/inbox"
        ],
        "{topics}"
    );
    // A string id right after all that is still echoed exactly.
    s.send_raw(br#"{"jsonrpc":"2.0","id":"last","method":"ping"}"#);
    assert_eq!(
        s.recv("final ping"),
        json!({"jsonrpc": "2.0", "id": "last", "result": {}})
    );
}

/// A line over the 16 MiB limit is refused with an id-less `-32600` and skipped to its end; the
/// next line is served. Writing 16 MiB through a pipe costs well under a second, so it stays in.
#[test]
fn a_line_over_the_limit_is_refused_and_skipped() {
    const LIMIT: usize = 16 * 1024 * 1024;
    let mut s = Server::spawn();
    initialize(&mut s);
    // A syntactically plausible message whose string alone passes the limit.
    let mut line = Vec::with_capacity(LIMIT + 64);
    line.extend_from_slice(br#"{"jsonrpc":"2.0","id":2,"method":"ping","params":{"pad":""#);
    line.resize(LIMIT + 16, b'x');
    line.extend_from_slice(br#""}}"#);
    s.expect_error("line over 16 MiB", &line, INVALID_REQUEST, Id::Absent);
    assert_eq!(s.request(3, "ping", json!({})), json!({}));
}
