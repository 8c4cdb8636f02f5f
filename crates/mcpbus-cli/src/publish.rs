//! `mcpbus pub`: publish one event through a running server's `POST /publish`.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

use crate::serve::InvalidPriority;

/// Why `mcpbus pub` failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PubError {
    /// `--priority` names no priority.
    #[error(transparent)]
    Priority(#[from] InvalidPriority),
    /// No HTTP request can be made for the URL.
    #[error("invalid URL {url:?}: {source}")]
    InvalidUrl {
        /// The `/publish` URL.
        url: String,
        /// Why.
        source: http::Error,
    },
    /// The server did not answer in time.
    #[error("no answer from {url} within 30 s")]
    Timeout {
        /// The `/publish` URL.
        url: String,
    },
    /// The server could not be reached.
    #[error("cannot reach {url}: {source}")]
    Unreachable {
        /// The `/publish` URL.
        url: String,
        /// Why.
        source: hyper_util::client::legacy::Error,
    },
    /// The server refused the event.
    #[error("{url} answered {status}: {body}")]
    Refused {
        /// The `/publish` URL.
        url: String,
        /// The status of the answer.
        status: http::StatusCode,
        /// The body of the answer (the server's reason).
        body: String,
    },
}

/// What `mcpbus pub` was asked to do (its command line).
#[derive(Debug, clap::Args)]
pub(crate) struct PubArgs {
    /// The concrete topic.
    pub topic: String,
    /// The payload, as JSON (a bare word is sent as a string).
    pub payload: String,
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// The bearer token of /publish.
    #[arg(long, env = "MCPBUS_PUBLISH_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Keep the event as the topic's retained value.
    #[arg(long)]
    pub retained: bool,
    /// urgent, high, normal or low.
    #[arg(long)]
    pub priority: Option<String>,
    /// Seconds until the event expires.
    #[arg(long)]
    pub expires_in: Option<u64>,
    /// The event's source.
    #[arg(long)]
    pub source: Option<String>,
}

/// The JSON body of `POST /publish` for these arguments.
pub(crate) fn body(args: &PubArgs) -> Result<Value, InvalidPriority> {
    let payload = serde_json::from_str::<Value>(&args.payload)
        .unwrap_or_else(|_| Value::String(args.payload.clone()));
    let mut body = json!({"topic": args.topic, "payload": payload});
    if args.retained {
        body["retained"] = json!(true);
    }
    if let Some(p) = &args.priority {
        crate::serve::parse_priority(p)?;
        body["priority"] = json!(p);
    }
    if let Some(secs) = args.expires_in {
        let at = chrono::Utc::now()
            + chrono::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX / 1000));
        body["expiresAt"] = json!(at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    }
    if let Some(s) = &args.source {
        body["source"] = json!(s);
    }
    Ok(body)
}

/// Publishes and prints the server's report.
pub(crate) async fn run(args: PubArgs) -> Result<(), PubError> {
    let body = body(&args)?;
    let url = format!("{}/publish", args.url.trim_end_matches('/'));
    let mut request = http::Request::post(&url).header("content-type", "application/json");
    if let Some(t) = &args.token {
        request = request.header("authorization", format!("Bearer {t}"));
    }
    let request = match request.body(Full::new(Bytes::from(body.to_string()))) {
        Ok(request) => request,
        Err(source) => return Err(PubError::InvalidUrl { url, source }),
    };
    let client = Client::builder(TokioExecutor::new()).build_http();
    let response =
        match tokio::time::timeout(Duration::from_secs(30), client.request(request)).await {
            Err(_) => return Err(PubError::Timeout { url }),
            Ok(Err(source)) => return Err(PubError::Unreachable { url, source }),
            Ok(Ok(response)) => response,
        };
    let status = response.status();
    let text = response
        .into_body()
        .collect()
        .await
        .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
        .unwrap_or_default();
    if status.is_success() {
        println!("{text}");
        Ok(())
    } else {
        Err(PubError::Refused {
            url,
            status,
            body: text,
        })
    }
}
