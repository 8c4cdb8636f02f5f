//! The Tasks extension of 2026-07-28 (`io.modelcontextprotocol/tasks`, SEP-2663): wire types only.
//!
//! A client that declares [`TASKS_EXTENSION`] among the extensions of a request's capabilities
//! lets the server answer that request (today only `tools/call`) with a [`CreateTaskResult`]
//! (`resultType: "task"`) instead of the result itself. The client then polls `tasks/get`
//! ([`GetTaskRequestParams`]), which answers a [`DetailedTask`]: the task's state and, by
//! status, the input it waits for, the inlined result or the error. `tasks/update`
//! ([`UpdateTaskRequestParams`]) answers the input a task waits for, `tasks/cancel`
//! ([`CancelTaskRequestParams`]) asks the server to stop it; both are acknowledged with an empty
//! complete result. A server may also push [`DetailedTask`]s as `notifications/tasks` on a
//! `subscriptions/listen` stream.
//!
//! The handshake era's experimental tasks (2025-11-25: `tasks/result`, `tasks/list`, the `task`
//! request parameter, `ttl`/`pollInterval`) are not wire-compatible and are not described here.

use std::fmt;

use serde::de::{self, Deserializer};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::mrtr::{InputRequests, InputResponses};
use crate::jsonrpc::ErrorObject;

/// The extension's identifier, under `capabilities.extensions` of both peers.
pub const TASKS_EXTENSION: &str = "io.modelcontextprotocol/tasks";

/// `tasks/get`: the state of a task.
pub const TASKS_GET: &str = "tasks/get";

/// `tasks/update`: answers to the input a task waits for.
pub const TASKS_UPDATE: &str = "tasks/update";

/// `tasks/cancel`: asks the server to stop a task.
pub const TASKS_CANCEL: &str = "tasks/cancel";

/// `notifications/tasks`: a task's new state, pushed on a `subscriptions/listen` stream.
pub const TASKS_NOTIFICATION: &str = "notifications/tasks";

/// The `resultType` of a [`CreateTaskResult`].
pub const RESULT_TYPE_TASK: &str = "task";

/// Where a task stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// The request is being processed.
    Working,
    /// The task waits for the client's answers to its `inputRequests` (`tasks/update`).
    InputRequired,
    /// The request finished with a result (a tool result with `isError: true` included).
    Completed,
    /// The request ended with a JSON-RPC error.
    Failed,
    /// The request was cancelled before it finished.
    Cancelled,
}

impl TaskStatus {
    /// Whether the task can no longer change: `completed`, `failed` or `cancelled`.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskStatus::Completed | TaskStatus::Failed | TaskStatus::Cancelled
        )
    }

    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Working => "working",
            TaskStatus::InputRequired => "input_required",
            TaskStatus::Completed => "completed",
            TaskStatus::Failed => "failed",
            TaskStatus::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What every view of a task carries (`Task`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    /// The server-generated, unguessable identifier of the task.
    pub task_id: String,
    /// Where the task stands.
    pub status: TaskStatus,
    /// A human-readable word on the current status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    /// When the task was created (ISO 8601).
    pub created_at: String,
    /// When the task last changed (ISO 8601).
    pub last_updated_at: String,
    /// How long after its creation the server keeps the task, in milliseconds; `None`
    /// (`null` on the wire, where the member is always present) means without limit.
    #[serde(default)]
    pub ttl_ms: Option<u64>,
    /// How often the client should poll `tasks/get`, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_interval_ms: Option<u64>,
}

/// A task with what its status comes with (`DetailedTask`): the answer of `tasks/get`
/// (wrapped in [`Complete`](super::Complete)) and the params of `notifications/tasks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DetailedTask {
    /// The task itself.
    #[serde(flatten)]
    pub task: Task,
    /// With `input_required`: every request still waiting for an answer, by key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_requests: Option<InputRequests>,
    /// With `completed`: the result of the request the task runs (e.g. a `CallToolResult`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Map<String, Value>>,
    /// With `failed`: the JSON-RPC error the request ended with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorObject>,
    /// Metadata (on a notification: the listen stream's subscription id).
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Map<String, Value>>,
}

/// The answer to a request the server runs as a task: the task's first state, flat, with
/// `resultType: "task"` (`CreateTaskResult = Result & Task`).
#[derive(Debug, Clone, PartialEq)]
pub struct CreateTaskResult {
    /// The task's first state.
    pub task: Task,
    /// The result's metadata.
    pub meta: Option<Map<String, Value>>,
}

#[derive(Serialize, Deserialize)]
struct CreateTaskWire<T> {
    #[serde(rename = "resultType")]
    result_type: String,
    #[serde(flatten)]
    task: T,
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    meta: Option<Map<String, Value>>,
}

impl Serialize for CreateTaskResult {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        CreateTaskWire {
            result_type: RESULT_TYPE_TASK.to_owned(),
            task: &self.task,
            meta: self.meta.clone(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for CreateTaskResult {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = CreateTaskWire::<Task>::deserialize(deserializer)?;
        if wire.result_type != RESULT_TYPE_TASK {
            return Err(de::Error::custom(format_args!(
                "resultType is \"{}\" where a task was expected",
                wire.result_type
            )));
        }
        Ok(CreateTaskResult {
            task: wire.task,
            meta: wire.meta,
        })
    }
}

/// Params of `tasks/get` and `tasks/cancel`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetTaskRequestParams {
    /// The task.
    pub task_id: String,
    /// Metadata (in 2026-07-28: the request's revision, client and capabilities).
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Map<String, Value>>,
}

/// Params of `tasks/cancel` (the same members as `tasks/get`).
pub type CancelTaskRequestParams = GetTaskRequestParams;

/// Params of `tasks/update`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateTaskRequestParams {
    /// The task.
    pub task_id: String,
    /// Answers to the task's outstanding `inputRequests`, under their keys; a server ignores
    /// keys it is not waiting for.
    pub input_responses: InputResponses,
    /// Metadata (in 2026-07-28: the request's revision, client and capabilities).
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Map<String, Value>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn task() -> Task {
        Task {
            task_id: "t1".into(),
            status: TaskStatus::Working,
            status_message: None,
            created_at: "2026-07-28T10:00:00.000Z".into(),
            last_updated_at: "2026-07-28T10:00:00.000Z".into(),
            ttl_ms: None,
            poll_interval_ms: Some(500),
        }
    }

    #[test]
    fn a_create_result_is_flat_with_result_type_task() {
        let created = CreateTaskResult {
            task: task(),
            meta: None,
        };
        let wire = serde_json::to_value(&created).unwrap();
        assert_eq!(
            wire,
            json!({"resultType": "task", "taskId": "t1", "status": "working",
                   "createdAt": "2026-07-28T10:00:00.000Z",
                   "lastUpdatedAt": "2026-07-28T10:00:00.000Z",
                   "ttlMs": null, "pollIntervalMs": 500})
        );
        assert_eq!(
            serde_json::from_value::<CreateTaskResult>(wire).unwrap(),
            created
        );
        let complete = json!({"resultType": "complete", "taskId": "t1", "status": "working",
                              "createdAt": "x", "lastUpdatedAt": "x"});
        assert!(serde_json::from_value::<CreateTaskResult>(complete).is_err());
    }

    #[test]
    fn a_detailed_task_inlines_its_payload() {
        let mut done = task();
        done.status = TaskStatus::Completed;
        let detailed = DetailedTask {
            task: done,
            input_requests: None,
            result: Some(Map::from_iter([("content".into(), json!([]))])),
            error: None,
            meta: None,
        };
        let wire = serde_json::to_value(super::super::Complete(&detailed)).unwrap();
        assert_eq!(wire["resultType"], "complete");
        assert_eq!(wire["status"], "completed");
        assert_eq!(wire["result"], json!({"content": []}));
        assert!(wire.get("error").is_none() && wire.get("inputRequests").is_none());
        assert!(TaskStatus::Completed.is_terminal() && !TaskStatus::InputRequired.is_terminal());
        assert_eq!(
            serde_json::to_value(TaskStatus::InputRequired).unwrap(),
            "input_required"
        );
    }
}
