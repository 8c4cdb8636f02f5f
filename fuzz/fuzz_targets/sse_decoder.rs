//! The SSE decoder and encoder (`mcpbus_proto::sse`).
//!
//! Input: one byte `n`, then `n % 16` chunk sizes (one byte each), then the stream bytes.
//! Properties:
//! - feeding the stream in the chunks those sizes cut (cycled, with empty chunks too) gives the
//!   same events, last event id, retry and pending byte count as feeding it whole;
//! - the events decoded from the stream, encoded again with `encode_event` / `encode_priming`
//!   (with comments in between), decode to the same events;
//! - the stream bytes split at `0x1F` into id, event type and data and encoded with
//!   `encode_event` decode to one event carrying them, line breaks normalized and the
//!   documented CR/LF removal and NUL rule applied.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcpbus_proto::sse::{SseDecoder, SseEvent, encode_comment, encode_event, encode_priming};

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(n % 16).min(rest.len());
    let (cuts, stream) = rest.split_at(n);
    let whole = decode_whole(stream);
    chunked_equals_whole(stream, cuts, &whole);
    reencode(&whole.0);
    encode_free_form(stream);
});

/// Everything a decoder exposes after a whole stream.
type Outcome = (Vec<SseEvent>, String, Option<u64>, usize);

fn decode_whole(stream: &[u8]) -> Outcome {
    let mut d = SseDecoder::new();
    let events = d.push(stream);
    (
        events,
        d.last_event_id().to_owned(),
        d.retry(),
        d.pending_bytes(),
    )
}

fn chunked_equals_whole(stream: &[u8], cuts: &[u8], whole: &Outcome) {
    let mut d = SseDecoder::new();
    let mut events = Vec::new();
    let mut at = 0;
    let mut i = 0;
    while at < stream.len() {
        // Sizes cycle; a size of 0 feeds an empty chunk, which must change nothing.
        let size = cuts
            .get(i % cuts.len().max(1))
            .map_or(stream.len(), |&c| usize::from(c));
        let end = (at + size).min(stream.len());
        events.extend(d.push(&stream[at..end]));
        at = end;
        i += 1;
        if i > stream.len() * 2 + 2 {
            // Only zero sizes: feed the rest whole.
            events.extend(d.push(&stream[at..]));
            break;
        }
    }
    let chunked = (
        events,
        d.last_event_id().to_owned(),
        d.retry(),
        d.pending_bytes(),
    );
    assert_eq!(&chunked, whole, "chunk sizes {cuts:?}");
}

/// Decoded events encoded again decode to themselves.
fn reencode(events: &[SseEvent]) {
    let mut out = Vec::new();
    let mut expected = Vec::new();
    for (i, e) in events.iter().enumerate() {
        if i % 2 == 1 {
            encode_comment(&mut out, &e.data);
        }
        let priming_shaped = e.retry.is_some() && e.event.is_none() && e.data.is_empty();
        match (&e.id, priming_shaped) {
            (Some(id), true) => {
                encode_priming(&mut out, id, e.retry);
                expected.push(e.clone());
            }
            _ => {
                encode_event(
                    &mut out,
                    e.id.as_deref(),
                    e.event.as_deref(),
                    e.data.as_bytes(),
                );
                expected.push(SseEvent {
                    retry: None,
                    ..e.clone()
                });
            }
        }
    }
    let mut d = SseDecoder::new();
    let got = d.push(&out);
    assert_eq!(
        got,
        expected,
        "re-encoded as {:?}",
        String::from_utf8_lossy(&out)
    );
    assert_eq!(d.pending_bytes(), 0);
}

/// Arbitrary id, type and data through the encoder.
fn encode_free_form(stream: &[u8]) {
    let mut parts = stream.splitn(3, |&b| b == 0x1F);
    let id = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let event = parts
        .next()
        .map(|e| String::from_utf8_lossy(e).into_owned());
    let data = parts.next().unwrap_or_default();
    let mut out = Vec::new();
    encode_event(&mut out, Some(&id), event.as_deref(), data);
    let single_line = |s: &str| s.replace(['\r', '\n'], "");
    let id_line = single_line(&id);
    let expected = SseEvent {
        id: (!id_line.contains('\0')).then_some(id_line),
        event: event.as_deref().map(single_line).filter(|e| !e.is_empty()),
        data: String::from_utf8_lossy(data)
            .replace("\r\n", "\n")
            .replace('\r', "\n"),
        retry: None,
    };
    let mut d = SseDecoder::new();
    assert_eq!(d.push(&out), vec![expected]);
    assert_eq!(d.pending_bytes(), 0);
}
