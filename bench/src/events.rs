//! The SEP-3415 requests the event scenarios send, in the 2026-07-28 era (no session; every
//! request carries its `_meta` and headers, see [`mcp::modern_request`]): a push stream
//! (`events/stream`, answered with an SSE stream on its own connection), a poll
//! (`events/poll`) and a webhook subscription (`events/subscribe`).

use http::{StatusCode, header};
use hyper::body::Incoming;
use serde_json::{Value, json};

use crate::conn::{Conn, Endpoint};
use crate::mcp;

/// Opens a push stream of event type `name` (arguments `{"retained": false}`: from now, without
/// the retained values) on a connection of its own; returns that connection and the stream's
/// body, whose first message is `notifications/events/active`.
pub(crate) async fn open_push_stream(
    endpoint: &Endpoint,
    name: &str,
) -> Result<(Conn, Incoming), String> {
    let mut conn = Conn::connect(endpoint).await?;
    let params = json!({"name": name, "arguments": {"retained": false}, "cursor": null});
    let request = mcp::modern_request(endpoint, 1, "events/stream", params, None);
    let response = conn.send(request).await?;
    let is_sse = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/event-stream"));
    if response.status() != StatusCode::OK || !is_sse {
        // A refused subscription is a JSON-RPC error in a JSON answer: show it.
        let status = response.status();
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        return Err(format!(
            "events/stream of {name:?}: HTTP {status}, not an SSE stream: {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        ));
    }
    Ok((conn, response.into_body()))
}

/// What one `events/poll` answered.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PollAnswer {
    /// The sequence numbers of the bench events it carried, in order (events without one are
    /// skipped).
    pub seqs: Vec<usize>,
    /// Where the next poll starts.
    pub cursor: Value,
    /// Whether more events wait (poll again at once).
    pub has_more: bool,
}

/// One `events/poll` of event type `name` from `cursor` (`null`: from now) on `conn`.
pub(crate) async fn poll(
    conn: &mut Conn,
    endpoint: &Endpoint,
    id: u64,
    name: &str,
    cursor: &Value,
) -> Result<PollAnswer, String> {
    let params = json!({"name": name, "arguments": {"retained": false}, "cursor": cursor});
    let answer = conn
        .exchange(mcp::modern_request(
            endpoint,
            id,
            "events/poll",
            params,
            None,
        ))
        .await?;
    let result = mcp::answer_result(&answer).map_err(|e| format!("events/poll: {e}"))?;
    poll_answer(&result)
}

/// Reads a poll's result.
fn poll_answer(result: &Value) -> Result<PollAnswer, String> {
    let cursor = result
        .get("cursor")
        .filter(|c| c.is_string())
        .cloned()
        .ok_or_else(|| format!("events/poll: a result without cursor: {result}"))?;
    let seqs = result
        .get("events")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("events/poll: a result without events: {result}"))?
        .iter()
        .filter_map(|e| e.pointer("/data/payload/seq")?.as_u64())
        .filter_map(|s| usize::try_from(s).ok())
        .collect();
    Ok(PollAnswer {
        seqs,
        cursor,
        has_more: result.get("hasMore").and_then(Value::as_bool) == Some(true),
    })
}

/// Subscribes `url` to event type `name` for webhook delivery (from now, without retained
/// values), as the principal `bearer` names; the server verifies the endpoint before it
/// answers. Returns the subscription's id.
pub(crate) async fn subscribe_webhook(
    conn: &mut Conn,
    endpoint: &Endpoint,
    bearer: &str,
    name: &str,
    url: &str,
    secret: &str,
) -> Result<String, String> {
    let params = json!({
        "name": name,
        "arguments": {"retained": false},
        "delivery": {"mode": "webhook", "url": url, "secret": secret},
        "cursor": null,
        "ttlMs": 3_600_000,
    });
    let request = mcp::modern_request(endpoint, 1, "events/subscribe", params, Some(bearer));
    let answer = conn.exchange(request).await?;
    let result = mcp::answer_result(&answer).map_err(|e| format!("events/subscribe: {e}"))?;
    result
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("events/subscribe: a result without id: {result}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_results_give_sequence_numbers_and_the_next_cursor() {
        let result = json!({"events": [
            {"eventId": "a", "data": {"topic": "build/status", "payload": {"seq": 3, "t": 1}}},
            {"eventId": "b", "data": {"topic": "build/status", "payload": "other"}},
            {"eventId": "c", "data": {"topic": "build/status", "payload": {"seq": 4}}}],
            "cursor": "17", "hasMore": true, "nextPollMs": 1000});
        let a = poll_answer(&result).unwrap();
        assert_eq!(a.seqs, [3, 4]);
        assert_eq!(a.cursor, json!("17"));
        assert!(a.has_more);
        assert!(poll_answer(&json!({"events": []})).is_err());
        assert!(poll_answer(&json!({"cursor": "1"})).is_err());
    }
}
