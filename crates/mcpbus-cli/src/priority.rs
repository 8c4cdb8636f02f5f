//! Event priorities as the command line, the configuration and `POST /publish` name them.

use mcpbus_proto::events::EventPriority;

/// A priority name that is none of urgent, high, normal and low.
#[derive(Debug, thiserror::Error)]
#[error("invalid priority {0:?}: expected urgent, high, normal or low")]
pub(crate) struct InvalidPriority(pub String);

/// Reads a priority name as the `publish` tool, `POST /publish` and `mcpbus pub` take it.
pub(crate) fn parse_priority(name: &str) -> Result<EventPriority, InvalidPriority> {
    match name {
        "urgent" => Ok(EventPriority::Urgent),
        "high" => Ok(EventPriority::High),
        "normal" => Ok(EventPriority::Normal),
        "low" => Ok(EventPriority::Low),
        other => Err(InvalidPriority(other.to_owned())),
    }
}
