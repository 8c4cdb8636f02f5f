//! Sampling: `sampling/createMessage` (server asks the client's LLM).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::annotations::Role;
use super::content::ContentBlock;
use super::utilities::compact_f64;

/// One message of a sampling conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SamplingMessage {
    /// Who says it.
    pub role: Role,
    /// What is said: one block, or (2025-11-25) an array of blocks.
    pub content: SamplingContent,
}

impl SamplingMessage {
    /// A user message of one text block.
    pub fn user_text(text: impl Into<String>) -> Self {
        SamplingMessage {
            role: Role::User,
            content: SamplingContent::Single(ContentBlock::text(text)),
        }
    }
}

/// The content of a sampling message or result: one block or several.
///
/// Blocks this crate does not model (2025-11-25 `tool_use` and `tool_result`, used with sampling
/// tools) are kept verbatim in [`SamplingContent::Other`] rather than rejected.
// `Single` is as large as a content block; boxing it would make the variants awkward to build and
// match, and sampling is rare enough that the size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SamplingContent {
    /// A single block.
    Single(ContentBlock),
    /// An array of blocks (2025-11-25).
    Multiple(Vec<ContentBlock>),
    /// Content holding blocks other than text, image, audio or resources, verbatim.
    Other(Value),
}

impl SamplingContent {
    /// The typed blocks, in order (none for [`SamplingContent::Other`]).
    pub fn blocks(&self) -> &[ContentBlock] {
        match self {
            SamplingContent::Single(block) => std::slice::from_ref(block),
            SamplingContent::Multiple(blocks) => blocks,
            SamplingContent::Other(_) => &[],
        }
    }

    /// The text of all text blocks, concatenated.
    pub fn text(&self) -> String {
        self.blocks()
            .iter()
            .filter_map(ContentBlock::as_text)
            .collect()
    }
}

impl From<ContentBlock> for SamplingContent {
    fn from(block: ContentBlock) -> Self {
        SamplingContent::Single(block)
    }
}

impl From<Vec<ContentBlock>> for SamplingContent {
    fn from(blocks: Vec<ContentBlock>) -> Self {
        SamplingContent::Multiple(blocks)
    }
}

/// The server's preferences for model selection; the client decides.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelPreferences {
    /// Model name hints, in order of preference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hints: Option<Vec<ModelHint>>,
    /// How much cost matters, 0 to 1.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "compact_f64::option"
    )]
    pub cost_priority: Option<f64>,
    /// How much speed matters, 0 to 1.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "compact_f64::option"
    )]
    pub speed_priority: Option<f64>,
    /// How much capability matters, 0 to 1.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "compact_f64::option"
    )]
    pub intelligence_priority: Option<f64>,
}

/// A hint naming a model or family (substring match).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelHint {
    /// Name or part of a name, e.g. `"claude-3-5-sonnet"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Params of `sampling/createMessage`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateMessageRequestParams {
    /// The conversation.
    pub messages: Vec<SamplingMessage>,
    /// Model selection preferences.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_preferences: Option<ModelPreferences>,
    /// System prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
    /// Context to include: `"none"`, `"thisServer"` or `"allServers"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_context: Option<String>,
    /// Sampling temperature.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "compact_f64::option"
    )]
    pub temperature: Option<f64>,
    /// Most tokens to generate.
    pub max_tokens: u64,
    /// Stop sequences.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_sequences: Option<Vec<String>>,
    /// Provider-specific metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// Tools the model may call (2025-11-25), verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Value>>,
    /// Tool choice (2025-11-25), verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Value>,
    /// Request metadata.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Map<String, Value>>,
}

impl CreateMessageRequestParams {
    /// A request with the given messages and token limit.
    pub fn new(messages: Vec<SamplingMessage>, max_tokens: u64) -> Self {
        CreateMessageRequestParams {
            messages,
            model_preferences: None,
            system_prompt: None,
            include_context: None,
            temperature: None,
            max_tokens,
            stop_sequences: None,
            metadata: None,
            tools: None,
            tool_choice: None,
            meta: None,
        }
    }
}

/// Result of `sampling/createMessage`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateMessageResult {
    /// Who produced the content (normally the assistant).
    pub role: Role,
    /// The generated content.
    pub content: SamplingContent,
    /// The model that produced it.
    pub model: String,
    /// Why generation stopped: `"endTurn"`, `"stopSequence"`, `"maxTokens"`, `"toolUse"` or
    /// another provider value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<String>,
    /// Result metadata.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Map<String, Value>>,
}
