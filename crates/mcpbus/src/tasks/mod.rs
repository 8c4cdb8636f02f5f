//! Tasks on the server: the 2026-07-28 extension `io.modelcontextprotocol/tasks` (SEP-2663,
//! docs/protocol.md 6.9), with which a tool call is answered by a task handle at once and runs
//! in the background, while the client polls `tasks/get` for its state and result.
//!
//! - Which tools run as tasks is declared per tool ([`TaskSupport`], [`TaskStart`], set on
//!   [`ToolSpec`](crate::server::ToolSpec)); a client takes part per request, by declaring the
//!   extension among its capabilities.
//! - Where task state lives is a [`TaskStore`]: [`MemoryTaskStore`] for one process; a shared
//!   backend (e.g. Redis) lets any replica answer `tasks/get`, `tasks/update` and `tasks/cancel`
//!   for a task another replica runs.
//! - How long tasks are kept and how often clients should poll is a [`TaskConfig`], given to
//!   the server with [`ModernConfig::tasks`](crate::server::modern::ModernConfig::tasks).
//!
//! A task is written to the store before the client hears of it, so a `tasks/get` right after
//! the answer finds it on any replica that shares the store.

mod memory;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use mcpbus_proto::jsonrpc::ErrorObject;
use mcpbus_proto::modern::InputRequests;
use mcpbus_proto::modern::tasks::{DetailedTask, Task, TaskStatus};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{BackendError, BackendErrorKind};

pub use memory::{DEFAULT_MAX_TASKS, MemoryTaskStore};

/// Whether a tool may run as a task for a client that declared the tasks extension.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TaskSupport {
    /// Never: the call is always answered with its result (the default).
    #[default]
    None,
    /// As a task when the request declares the extension, with its result otherwise.
    Optional,
    /// Only as a task: a 2026-07-28 request that does not declare the extension is refused
    /// with `-32021` naming it, and a handshake-era session (which has no such extension)
    /// with `-32601`, as 2025-11-25 refuses a task-required tool called without a task.
    Required,
}

/// When a call of a task-supporting tool becomes a task.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TaskStart {
    /// Before the handler runs (the default): the client gets the task at once, and every
    /// input the handler asks for ([`Context::elicit`](crate::server::Context::elicit) and the
    /// like) parks the task in `input_required` until `tasks/update` answers it.
    #[default]
    AtCall,
    /// When the handler calls [`Context::start_task`](crate::server::Context::start_task): what
    /// it asks for before that is gathered through `input_required` rounds of the call itself
    /// (MRTR), as SEP-2663 advises for input needed before the work starts, and a handler that
    /// returns without starting the task answers with its result directly.
    Handler,
}

/// One task as a [`TaskStore`] keeps it: its state, what it waits for, how it ended.
///
/// Stores keep records whole (they are serializable) and compare [`version`](Self::version)s;
/// the server alone decides what a record holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaskRecord {
    /// The task's id: 128 random bits, hex (it is the only proof a client has of the task).
    pub task_id: String,
    /// Bumped by every change; [`TaskStore::replace`] compares it.
    pub version: u64,
    /// Where the task stands.
    pub status: TaskStatus,
    /// A human-readable word on the status.
    pub status_message: Option<String>,
    /// When the task was created, in milliseconds since the Unix epoch.
    pub created_at_ms: u64,
    /// When the task last changed, in milliseconds since the Unix epoch.
    pub last_updated_at_ms: u64,
    /// How long after its creation the task is kept, in milliseconds (`None`: until the store
    /// is dropped).
    pub ttl_ms: Option<u64>,
    /// How often clients should poll, in milliseconds.
    pub poll_interval_ms: Option<u64>,
    /// The requests for input not answered yet, by key.
    pub input_requests: InputRequests,
    /// Answers given through `tasks/update` and not yet taken by the running handler, by key.
    pub input_responses: Map<String, Value>,
    /// With `completed`: the result.
    pub result: Option<Map<String, Value>>,
    /// With `failed`: the JSON-RPC error.
    pub error: Option<ErrorObject>,
}

impl TaskRecord {
    /// A new `working` task created now.
    pub(crate) fn new(task_id: String, config: &TaskConfig) -> Self {
        let now = now_ms();
        TaskRecord {
            task_id,
            version: 1,
            status: TaskStatus::Working,
            status_message: None,
            created_at_ms: now,
            last_updated_at_ms: now,
            ttl_ms: config.ttl.map(duration_ms),
            poll_interval_ms: Some(duration_ms(config.poll_interval)),
            input_requests: InputRequests::new(),
            input_responses: Map::new(),
            result: None,
            error: None,
        }
    }

    /// When the store may forget the task, in milliseconds since the Unix epoch.
    pub fn expires_at_ms(&self) -> Option<u64> {
        self.ttl_ms
            .map(|ttl| self.created_at_ms.saturating_add(ttl))
    }

    /// Whether the task's time to live has passed at `now_ms`.
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expires_at_ms().is_some_and(|at| at <= now_ms)
    }

    /// The task as the wire shows it.
    pub fn task(&self) -> Task {
        Task {
            task_id: self.task_id.clone(),
            status: self.status,
            status_message: self.status_message.clone(),
            created_at: iso8601(self.created_at_ms),
            last_updated_at: iso8601(self.last_updated_at_ms),
            ttl_ms: self.ttl_ms,
            poll_interval_ms: self.poll_interval_ms,
        }
    }

    /// The task with what its status comes with, as `tasks/get` answers it.
    pub fn detailed(&self) -> DetailedTask {
        let status = self.status;
        DetailedTask {
            task: self.task(),
            input_requests: (status == TaskStatus::InputRequired)
                .then(|| self.input_requests.clone()),
            result: (status == TaskStatus::Completed)
                .then(|| self.result.clone().unwrap_or_default()),
            error: (status == TaskStatus::Failed).then(|| {
                self.error
                    .clone()
                    .unwrap_or_else(|| ErrorObject::internal("the task failed"))
            }),
            meta: None,
        }
    }
}

/// Where task state lives. Every method may run on any replica: a task created on one must be
/// found by [`load`](Self::load) on every other one as soon as [`create`](Self::create)
/// returns (SEP-2663 answers the client only after that).
///
/// The server changes a task by reading it, changing the copy and writing it back with
/// [`replace`](Self::replace), which succeeds only if nobody wrote in between (optimistic
/// concurrency); an implementation only stores, compares versions, expires and wakes.
pub trait TaskStore: Send + Sync + 'static {
    /// Stores a new task (its id is fresh); durable when the future completes.
    fn create<'a>(&'a self, record: &'a TaskRecord) -> BoxFuture<'a, Result<(), BackendError>>;

    /// The task `task_id`, unless unknown or past its time to live.
    fn load<'a>(
        &'a self,
        task_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<TaskRecord>, BackendError>>;

    /// Replaces the stored task with `record` if the stored one still has version
    /// `expected_version`; `false` (nothing written) if it changed or is gone.
    fn replace<'a>(
        &'a self,
        record: &'a TaskRecord,
        expected_version: u64,
    ) -> BoxFuture<'a, Result<bool, BackendError>>;

    /// Completes when the task may have a version above `since_version`, or is gone. It may
    /// complete spuriously (a store that polls completes after its poll interval): callers
    /// load the task again and wait again.
    fn changed<'a>(&'a self, task_id: &'a str, since_version: u64) -> BoxFuture<'a, ()>;
}

impl fmt::Debug for dyn TaskStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TaskStore")
    }
}

/// How a server keeps and runs tasks.
#[derive(Debug, Clone)]
pub struct TaskConfig {
    pub(crate) store: Arc<dyn TaskStore>,
    pub(crate) ttl: Option<Duration>,
    pub(crate) poll_interval: Duration,
    pub(crate) cancel_grace: Duration,
}

/// How long a task is kept by default, from its creation.
pub const DEFAULT_TASK_TTL: Duration = Duration::from_secs(60 * 60);

/// How often clients are asked to poll by default.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(500);

impl Default for TaskConfig {
    fn default() -> Self {
        TaskConfig {
            store: Arc::new(MemoryTaskStore::default()),
            ttl: Some(DEFAULT_TASK_TTL),
            poll_interval: DEFAULT_POLL_INTERVAL,
            cancel_grace: Duration::from_secs(5),
        }
    }
}

impl TaskConfig {
    /// Tasks kept in this process's memory ([`MemoryTaskStore`]), for an hour, polled every
    /// 500 ms.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps tasks in `store` (e.g. one shared by every replica).
    pub fn store(mut self, store: Arc<dyn TaskStore>) -> Self {
        self.store = store;
        self
    }

    /// How long a task is kept after its creation (`None`: for as long as the store lives;
    /// at least one second otherwise). Clients see it as `ttlMs`. Without a time to live,
    /// finished tasks are never dropped: a [`MemoryTaskStore`] then fills up for good once it
    /// holds its maximum.
    pub fn ttl(mut self, ttl: Option<Duration>) -> Self {
        self.ttl = ttl.map(|t| t.max(Duration::from_secs(1)));
        self
    }

    /// How often clients should poll `tasks/get` (`pollIntervalMs`; at least 1 ms).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// How long a cancelled task's handler may go on after its
    /// [`cancellation`](crate::server::Context::cancellation) fires before it is dropped
    /// (default 5 s). Its result is discarded either way: the task stays `cancelled`.
    pub fn cancel_grace(mut self, grace: Duration) -> Self {
        self.cancel_grace = grace;
        self
    }
}

/// Changes task `task_id` with `change` (which returns whether it changed anything) until the
/// write wins over concurrent ones; the task as stored afterwards, `None` if it is gone.
pub(crate) async fn modify<F>(
    store: &dyn TaskStore,
    task_id: &str,
    mut change: F,
) -> Result<Option<TaskRecord>, BackendError>
where
    F: FnMut(&mut TaskRecord) -> bool,
{
    // Writers of one task are its handler and a few client requests: a handful of retries
    // always suffices unless the store misbehaves.
    for _ in 0..64 {
        let Some(mut record) = store.load(task_id).await? else {
            return Ok(None);
        };
        let expected = record.version;
        if !change(&mut record) {
            return Ok(Some(record));
        }
        record.version = expected + 1;
        record.last_updated_at_ms = now_ms().max(record.last_updated_at_ms);
        if store.replace(&record, expected).await? {
            return Ok(Some(record));
        }
    }
    Err(BackendError::msg(
        BackendErrorKind::Unavailable,
        format!("task {task_id} kept changing under concurrent writes"),
    ))
}

/// A fresh task id: 128 bits from the operating system's random source. Task ids are the only
/// proof of access to a task, so there is no fallback: without randomness, no task.
pub(crate) fn new_task_id() -> Result<String, ErrorObject> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| ErrorObject::internal(format_args!("no random task id: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, duration_ms)
}

fn duration_ms(d: Duration) -> u64 {
    d.as_millis().try_into().unwrap_or(u64::MAX)
}

/// An ISO 8601 UTC timestamp with milliseconds, e.g. `2026-07-28T10:30:00.000Z`.
fn iso8601(ms: u64) -> String {
    let ms = i64::try_from(ms).unwrap_or(i64::MAX);
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn records_show_what_their_status_comes_with() {
        let config = TaskConfig::new().ttl(Some(Duration::from_millis(10)));
        let mut record = TaskRecord::new("t".into(), &config);
        assert_eq!(record.ttl_ms, Some(1000), "a ttl is at least one second");
        let wire = serde_json::to_value(record.detailed()).unwrap();
        assert_eq!(wire["status"], "working");
        assert!(wire.get("result").is_none() && wire.get("inputRequests").is_none());
        let created = wire["createdAt"].as_str().unwrap();
        assert!(created.ends_with('Z') && created.len() == 24, "{created}");
        record.status = TaskStatus::Failed;
        let wire = serde_json::to_value(record.detailed()).unwrap();
        assert_eq!(wire["error"]["code"], json!(-32603));
        assert!(wire.get("result").is_none());
        assert!(!record.is_expired(record.created_at_ms + 999));
        assert!(record.is_expired(record.created_at_ms + 1000));
    }

    #[test]
    fn task_ids_are_long_and_distinct() {
        let (a, b) = (new_task_id().unwrap(), new_task_id().unwrap());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }
}
