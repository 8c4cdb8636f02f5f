//! Server-sent events (SSE) framing, as the Streamable HTTP transport uses it.
//!
//! Encoding writes the frames the MCP SDKs write: `event: message`, `id: <id>`, `data: <json>`
//! then a blank line; priming events (`id`, optional `retry`, empty `data`); and comments for
//! keep-alive. [`SseDecoder`] parses a byte stream incrementally following the WHATWG
//! EventSource rules (<https://html.spec.whatwg.org/multipage/server-sent-events.html>), with one
//! deliberate deviation documented on [`SseDecoder`].
//!
//! Pure code: no I/O, no async runtime.

/// One server-sent event as received.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `id` field of this event, if the event carried one (`Some("")` for an empty `id:`,
    /// which resets the stream's last event id). A value containing NUL is ignored, per spec.
    pub id: Option<String>,
    /// The `event` field (the event type); `None` when absent or empty, which means `message`.
    pub event: Option<String>,
    /// The `data` lines of the event joined with `\n` (empty for a priming event).
    pub data: String,
    /// The `retry` field in milliseconds, if this event carried a valid one.
    pub retry: Option<u64>,
}

impl SseEvent {
    /// Whether this is a `message` event (no type, or the type `message`).
    pub fn is_message(&self) -> bool {
        matches!(self.event.as_deref(), None | Some("message"))
    }
}

/// Appends `field: value\n` for each line of `value` (split on `\r\n`, `\n` or `\r`).
fn push_field_lines(out: &mut Vec<u8>, field: &[u8], value: &[u8]) {
    let mut rest = value;
    loop {
        let end = rest.iter().position(|&b| b == b'\n' || b == b'\r');
        let line = &rest[..end.unwrap_or(rest.len())];
        out.extend_from_slice(field);
        out.extend_from_slice(b": ");
        out.extend_from_slice(line);
        out.push(b'\n');
        match end {
            None => break,
            Some(i) => {
                let skip = if rest[i] == b'\r' && rest.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                rest = &rest[i + skip..];
            }
        }
    }
}

/// Appends a single-line field; CR and LF would break the framing and are removed.
fn push_single_line(out: &mut Vec<u8>, field: &[u8], value: &str) {
    out.extend_from_slice(field);
    out.extend_from_slice(b": ");
    out.extend(value.bytes().filter(|&b| b != b'\r' && b != b'\n'));
    out.push(b'\n');
}

/// Appends one event: optional `event:` line, optional `id:` line, `data:` line(s), then a blank
/// line.
///
/// `data` is split on `\r\n`, `\n` and `\r` into several `data:` lines, so a decoder yields it
/// back with `\n` line separators (data without `\r` round-trips exactly). CR and LF inside `id`
/// or `event` would break the framing and are removed.
pub fn encode_event(out: &mut Vec<u8>, id: Option<&str>, event: Option<&str>, data: &[u8]) {
    if let Some(event) = event {
        push_single_line(out, b"event", event);
    }
    if let Some(id) = id {
        push_single_line(out, b"id", id);
    }
    push_field_lines(out, b"data", data);
    out.push(b'\n');
}

/// Appends a priming event: `id: <id>`, optional `retry: <ms>`, empty `data:`, blank line.
///
/// MCP servers (2025-11-25, SEP-1699) open an SSE stream with one so that the client learns an
/// id to resume from, and send `retry` before closing a stream the client should poll.
pub fn encode_priming(out: &mut Vec<u8>, id: &str, retry_ms: Option<u64>) {
    push_single_line(out, b"id", id);
    if let Some(ms) = retry_ms {
        out.extend_from_slice(format!("retry: {ms}\n").as_bytes());
    }
    out.extend_from_slice(b"data: \n\n");
}

/// Appends a comment (ignored by decoders; used as a keep-alive), e.g. `: keep-alive\n\n`.
///
/// A multi-line `text` becomes several comment lines.
pub fn encode_comment(out: &mut Vec<u8>, text: &str) {
    push_field_lines(out, b"", text.as_bytes());
    out.push(b'\n');
}

const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// Incremental SSE decoder following the WHATWG EventSource parsing rules.
///
/// - Lines end in `\n`, `\r\n` or `\r` (a `\r\n` split across two chunks counts once).
/// - A line starting with `:` is a comment and ignored; a line without a colon is a field name
///   with an empty value; one space after the colon is stripped.
/// - `data` lines are joined with `\n`; `event` sets the type; `id` sets the event's id (ignored
///   if it contains NUL); `retry` is used only if it is all ASCII digits.
/// - A UTF-8 byte order mark at the start of the stream is skipped; invalid UTF-8 in a line is
///   replaced lossily.
///
/// **Deviation from the spec:** a browser dispatches an event on a blank line only if at least
/// one `data` line was seen. This decoder also yields an event without `data` lines when it set
/// an `id` or a `retry` (with empty `data`), because MCP clients must see priming events to learn
/// the id they resume from and the delay they wait before reconnecting.
#[derive(Debug, Clone)]
pub struct SseDecoder {
    /// Bytes of the current, not yet terminated line.
    line: Vec<u8>,
    /// The previous chunk ended in `\r`: a `\n` starting the next chunk belongs to it.
    pending_cr: bool,
    /// While the stream start is checked for a BOM: how many BOM bytes matched so far.
    bom_matched: Option<usize>,
    /// The event being assembled.
    data: String,
    has_data: bool,
    event_type: String,
    event_id: Option<String>,
    event_retry: Option<u64>,
    /// The stream's last event id (persists across events, as in the spec).
    last_event_id: String,
    /// The last valid `retry` value of the stream.
    last_retry: Option<u64>,
}

impl Default for SseDecoder {
    fn default() -> Self {
        SseDecoder::new()
    }
}

impl SseDecoder {
    /// A decoder at the start of a stream.
    pub fn new() -> Self {
        SseDecoder {
            line: Vec::new(),
            pending_cr: false,
            bom_matched: Some(0),
            data: String::new(),
            has_data: false,
            event_type: String::new(),
            event_id: None,
            event_retry: None,
            last_event_id: String::new(),
            last_retry: None,
        }
    }

    /// Feeds the next chunk of the stream and returns the events it completed, in order.
    /// Partial lines are buffered until a later chunk ends them.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        let mut out = Vec::new();
        let mut input = chunk;
        if let Some(matched) = self.bom_matched {
            let mut m = matched;
            let mut i = 0;
            while i < input.len() && m < BOM.len() && input[i] == BOM[m] {
                m += 1;
                i += 1;
            }
            if m == BOM.len() {
                self.bom_matched = None;
            } else if i == input.len() {
                // Only (part of) a BOM so far: decide with the next chunk.
                self.bom_matched = Some(m);
                return out;
            } else {
                // Not a BOM: the bytes taken for one are line content.
                self.bom_matched = None;
                self.line.extend_from_slice(&BOM[..m]);
            }
            input = &input[i..];
        }

        let mut start = 0;
        for (i, &b) in input.iter().enumerate() {
            if self.pending_cr {
                self.pending_cr = false;
                if b == b'\n' {
                    start = i + 1;
                    continue;
                }
            }
            if b == b'\n' || b == b'\r' {
                self.line.extend_from_slice(&input[start..i]);
                self.process_line(&mut out);
                self.pending_cr = b == b'\r';
                start = i + 1;
            }
        }
        self.line.extend_from_slice(&input[start..]);
        out
    }

    /// Ends the stream. Per spec an event not terminated by a blank line is discarded, so this
    /// returns `None`; the decoder is reset to the start of a new stream (the last event id and
    /// retry are kept).
    pub fn finish(&mut self) -> Option<SseEvent> {
        self.line.clear();
        self.pending_cr = false;
        self.bom_matched = Some(0);
        self.reset_event();
        None
    }

    /// The stream's last event id: the value of the last `id` field seen (empty if none).
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// The last valid `retry` value seen on the stream, in milliseconds.
    pub fn retry(&self) -> Option<u64> {
        self.last_retry
    }

    /// Bytes buffered for the unfinished line and event; lets a caller bound its memory use
    /// against a peer that never ends a line or an event.
    pub fn pending_bytes(&self) -> usize {
        self.line.len() + self.data.len()
    }

    fn reset_event(&mut self) {
        self.data.clear();
        self.has_data = false;
        self.event_type.clear();
        self.event_id = None;
        self.event_retry = None;
    }

    fn process_line(&mut self, out: &mut Vec<SseEvent>) {
        if self.line.is_empty() {
            self.dispatch(out);
            return;
        }
        let line = String::from_utf8_lossy(&self.line);
        let (field, value) = match line.find(':') {
            Some(0) => {
                self.line.clear();
                return; // comment
            }
            Some(i) => {
                let value = &line[i + 1..];
                (&line[..i], value.strip_prefix(' ').unwrap_or(value))
            }
            None => (&line[..], ""),
        };
        match field {
            "event" => self.event_type = value.to_owned(),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "id" if !value.contains('\0') => {
                self.last_event_id = value.to_owned();
                self.event_id = Some(value.to_owned());
            }
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                // All digits but too large for u64: ignored like any invalid value.
                if let Ok(ms) = value.parse::<u64>() {
                    self.event_retry = Some(ms);
                    self.last_retry = Some(ms);
                }
            }
            _ => {}
        }
        self.line.clear();
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        if self.has_data || self.event_id.is_some() || self.event_retry.is_some() {
            out.push(SseEvent {
                id: self.event_id.take(),
                event: (!self.event_type.is_empty()).then(|| std::mem::take(&mut self.event_type)),
                data: std::mem::take(&mut self.data),
                retry: self.event_retry,
            });
        }
        self.reset_event();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: Option<&str>, event: Option<&str>, data: &str, retry: Option<u64>) -> SseEvent {
        SseEvent {
            id: id.map(str::to_owned),
            event: event.map(str::to_owned),
            data: data.to_owned(),
            retry,
        }
    }

    fn decode_all(bytes: &[u8]) -> Vec<SseEvent> {
        let mut d = SseDecoder::new();
        let events = d.push(bytes);
        assert_eq!(d.finish(), None);
        events
    }

    fn sample_stream() -> (Vec<u8>, Vec<SseEvent>) {
        let mut out = Vec::new();
        encode_priming(&mut out, "s1-0", Some(1500));
        encode_comment(&mut out, "keep-alive");
        encode_event(
            &mut out,
            Some("s1-1"),
            Some("message"),
            br#"{"jsonrpc":"2.0"}"#,
        );
        encode_event(&mut out, None, None, b"line one\nline two\n");
        encode_event(&mut out, Some("s1-2"), Some("custom"), b"");
        let expected = vec![
            ev(Some("s1-0"), None, "", Some(1500)),
            ev(Some("s1-1"), Some("message"), r#"{"jsonrpc":"2.0"}"#, None),
            ev(None, None, "line one\nline two\n", None),
            ev(Some("s1-2"), Some("custom"), "", None),
        ];
        (out, expected)
    }

    #[test]
    fn encodes_the_sdk_wire_format() {
        let mut out = Vec::new();
        encode_event(&mut out, Some("7"), Some("message"), b"{}");
        assert_eq!(out, b"event: message\nid: 7\ndata: {}\n\n");
        out.clear();
        encode_priming(&mut out, "p", Some(1000));
        assert_eq!(out, b"id: p\nretry: 1000\ndata: \n\n");
        out.clear();
        encode_priming(&mut out, "p", None);
        assert_eq!(out, b"id: p\ndata: \n\n");
        out.clear();
        encode_comment(&mut out, "keep-alive");
        assert_eq!(out, b": keep-alive\n\n");
        out.clear();
        encode_event(&mut out, Some("a\r\nb"), None, b"x\r\ny\rz");
        assert_eq!(out, b"id: ab\ndata: x\ndata: y\ndata: z\n\n");
    }

    #[test]
    fn round_trips() {
        let (bytes, expected) = sample_stream();
        assert_eq!(decode_all(&bytes), expected);
    }

    #[test]
    fn any_chunk_split_gives_the_same_events() {
        let (bytes, expected) = sample_stream();
        for variant in [bytes.clone(), crlf(&bytes), cr(&bytes), with_bom(&bytes)] {
            for split in 0..=variant.len() {
                let mut d = SseDecoder::new();
                let mut got = d.push(&variant[..split]);
                got.extend(d.push(&variant[split..]));
                assert_eq!(got, expected, "split at {split} of {variant:?}");
            }
            // One byte at a time.
            let mut d = SseDecoder::new();
            let got: Vec<_> = variant.iter().flat_map(|b| d.push(&[*b])).collect();
            assert_eq!(got, expected);
        }
    }

    fn crlf(bytes: &[u8]) -> Vec<u8> {
        bytes
            .iter()
            .flat_map(|&b| {
                if b == b'\n' {
                    vec![b'\r', b'\n']
                } else {
                    vec![b]
                }
            })
            .collect()
    }

    fn cr(bytes: &[u8]) -> Vec<u8> {
        bytes
            .iter()
            .map(|&b| if b == b'\n' { b'\r' } else { b })
            .collect()
    }

    fn with_bom(bytes: &[u8]) -> Vec<u8> {
        let mut v = BOM.to_vec();
        v.extend_from_slice(bytes);
        v
    }

    #[test]
    fn parses_fields_per_spec() {
        let input = b"data:no-space\n\ndata:  two spaces\n\ndata\n\nevent:x\ndata:1\ndata:2\n\n";
        assert_eq!(
            decode_all(input),
            vec![
                ev(None, None, "no-space", None),
                ev(None, None, " two spaces", None),
                ev(None, None, "", None),
                ev(None, Some("x"), "1\n2", None),
            ]
        );
    }

    #[test]
    fn comments_and_unknown_fields_are_ignored() {
        let input = b": hello\n:\nfoo: bar\n\n: only comment\n\ndata: x\n: inside\n\n";
        assert_eq!(decode_all(input), vec![ev(None, None, "x", None)]);
    }

    #[test]
    fn priming_and_id_only_events_are_surfaced() {
        let mut d = SseDecoder::new();
        let got = d.push(b"id: 42\n\nretry: 250\n\n");
        assert_eq!(
            got,
            vec![
                ev(Some("42"), None, "", None),
                ev(None, None, "", Some(250))
            ]
        );
        assert_eq!(d.last_event_id(), "42");
        assert_eq!(d.retry(), Some(250));
        // An empty blank line after nothing dispatches nothing.
        assert!(d.push(b"\n\n\n").is_empty());
    }

    #[test]
    fn retry_must_be_all_digits() {
        let input = b"retry: 12a\ndata: a\n\nretry: -5\ndata: b\n\nretry:\ndata: c\n\nretry: 99999999999999999999999\ndata: d\n\nretry: 0300\ndata: e\n\n";
        let got = decode_all(input);
        let retries: Vec<_> = got.iter().map(|e| e.retry).collect();
        assert_eq!(retries, vec![None, None, None, None, Some(300)]);
    }

    #[test]
    fn ids_with_nul_are_ignored_and_ids_persist() {
        let mut d = SseDecoder::new();
        let got = d.push(b"id: a\0b\ndata: x\n\nid: good\ndata: y\n\ndata: z\n\nid\ndata: w\n\n");
        let ids: Vec<_> = got.iter().map(|e| e.id.clone()).collect();
        assert_eq!(
            ids,
            vec![None, Some("good".into()), None, Some(String::new())]
        );
        assert_eq!(d.last_event_id(), "");
    }

    #[test]
    fn incomplete_event_at_end_is_discarded() {
        let mut d = SseDecoder::new();
        assert!(d.push(b"data: partial\n").is_empty());
        assert_eq!(d.pending_bytes(), "partial".len());
        assert_eq!(d.finish(), None);
        assert_eq!(d.pending_bytes(), 0);
        assert!(d.push(b"data: unterminated").is_empty());
        assert_eq!(d.finish(), None);
    }

    #[test]
    fn bom_only_at_stream_start_and_partial_bom_is_content() {
        let mut input = BOM.to_vec();
        input.extend_from_slice(b"data: a\n\n");
        input.extend_from_slice(&BOM);
        input.extend_from_slice(b"data: b\n\n");
        let got = decode_all(&input);
        // The second BOM starts a line: the field name is "\u{feff}data", unknown, ignored.
        assert_eq!(got, vec![ev(None, None, "a", None)]);
        // Two BOM bytes then something else: kept as (invalid, lossily replaced) line content.
        let got = decode_all(b"\xEF\xBBdata: x\n\ndata: y\n\n");
        assert_eq!(got, vec![ev(None, None, "y", None)]);
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        let got = decode_all(b"data: a\xFFb\n\n");
        assert_eq!(got, vec![ev(None, None, "a\u{FFFD}b", None)]);
    }

    #[test]
    fn crlf_split_across_chunks_counts_once() {
        let mut d = SseDecoder::new();
        let mut got = d.push(b"data: a\r");
        got.extend(d.push(b"\n\r"));
        got.extend(d.push(b"\ndata: b\r\r"));
        assert_eq!(
            got,
            vec![ev(None, None, "a", None), ev(None, None, "b", None)]
        );
    }
}
