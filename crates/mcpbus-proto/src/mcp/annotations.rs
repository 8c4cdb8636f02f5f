//! Annotations: hints about who an object is meant for and how important it is.

use serde::{Deserialize, Serialize};

use super::utilities::compact_f64;

/// The sender or recipient of a message, and an audience of annotated content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The human side.
    User,
    /// The model side.
    Assistant,
}

/// Hints for the client about how to use an object.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Annotations {
    /// Who the object is meant for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<Vec<Role>>,
    /// Importance, from 0.0 (optional) to 1.0 (required).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "compact_f64::option"
    )]
    pub priority: Option<f64>,
    /// When the object was last modified (ISO 8601).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
}
