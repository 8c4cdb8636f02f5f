//! One tool call that runs (or may come to run) as a task: its creation in the store, the
//! input its handler asks for while it runs, and the outcome it records.
//!
//! The handler keeps the [`Context`](crate::server::Context) it started with; once the call is
//! a task, the context's requests for input land here (they park the task in
//! `input_required` until `tasks/update` answers them) instead of in `input_required` rounds of
//! the call, and its cancellation is the task's own (fired by `tasks/cancel`, seen through the
//! store from any replica).

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use mcpbus_proto::jsonrpc::ErrorObject;
use mcpbus_proto::modern::InputRequest;
use mcpbus_proto::modern::tasks::{CreateTaskResult, TaskStatus};
use serde_json::{Value, json};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use crate::error::{BackendError, Error};
use crate::server::Server;
use crate::tasks::{TaskConfig, TaskRecord, TaskStore, modify, new_task_id};
use crate::util::lock;

/// A tool handler's future, as the task runs it.
pub(crate) type Handler = BoxFuture<'static, Result<Value, ErrorObject>>;

/// A call that runs as a task, from before the task exists until the handler ends.
#[derive(Debug)]
pub(crate) struct TaskRun {
    config: TaskConfig,
    /// Told of every change, for the listen streams watching the task.
    server: Server,
    /// Set once the task is stored: from then on the call is a task.
    id: OnceLock<String>,
    /// The handler's cancellation: fired when the task is cancelled or expires.
    pub(crate) cancel: CancellationToken,
    /// The handler asks for the task to start ([`TaskStart::Handler`](crate::tasks::TaskStart)).
    start_wanted: Notify,
    /// Whether the task the handler asked for was created (`None` until decided).
    started: watch::Sender<Option<bool>>,
    keys: Mutex<Keys>,
}

/// The input keys issued in this task: SEP-2663 wants each unique over the task's lifetime.
#[derive(Debug, Default)]
struct Keys {
    issued: HashSet<String>,
    asked: usize,
}

impl TaskRun {
    pub(crate) fn new(config: TaskConfig, server: Server) -> Self {
        TaskRun {
            config,
            server,
            id: OnceLock::new(),
            cancel: CancellationToken::new(),
            start_wanted: Notify::new(),
            started: watch::channel(None).0,
            keys: Mutex::new(Keys::default()),
        }
    }

    /// The task's id, once it is stored.
    pub(crate) fn id(&self) -> Option<&str> {
        self.id.get().map(String::as_str)
    }

    fn store(&self) -> &dyn TaskStore {
        &*self.config.store
    }

    /// Stores the task (durably: any replica sharing the store finds it from now on) and
    /// gives the `CreateTaskResult` to answer the call with.
    pub(crate) async fn create(&self) -> Result<Value, ErrorObject> {
        let record = TaskRecord::new(new_task_id()?, &self.config);
        self.store().create(&record).await.map_err(|e| {
            ErrorObject::internal(format_args!("the task could not be stored: {e}"))
        })?;
        let created = CreateTaskResult {
            task: record.task(),
            meta: None,
        };
        let _ = self.id.set(record.task_id);
        serde_json::to_value(created).map_err(ErrorObject::internal)
    }

    /// [`Context::start_task`](crate::server::Context::start_task): asks the call's driver to
    /// create the task, and returns once it exists.
    pub(crate) async fn start(&self) -> Result<(), Error> {
        if self.id.get().is_some() {
            return Ok(());
        }
        let mut started = self.started.subscribe();
        self.start_wanted.notify_one();
        match started.wait_for(Option::is_some).await.map(|s| *s) {
            Ok(Some(true)) => Ok(()),
            _ => Err(Error::Protocol("the task could not be created".into())),
        }
    }

    /// Completes when the handler asks for the task to start.
    pub(crate) async fn start_requested(&self) {
        self.start_wanted.notified().await
    }

    /// Tells a handler waiting in [`start`](Self::start) whether its task exists.
    pub(crate) fn confirm_start(&self, created: bool) {
        self.started.send_replace(Some(created));
    }

    /// Asks the client for input through the task: parks the task in `input_required` with
    /// the request under a key of its own, and waits for `tasks/update` to answer it.
    pub(crate) async fn ask(
        &self,
        key: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<Value, Error> {
        let id = self
            .id()
            .ok_or_else(|| Error::Protocol("the task does not exist yet".into()))?;
        let request: InputRequest =
            serde_json::from_value(json!({"method": method, "params": params})).map_err(|e| {
                Error::Protocol(format!("{method} cannot be asked for in a task: {e}"))
            })?;
        let key = self.mint_key(key, method);
        let parked = modify(self.store(), id, |r| {
            if r.status.is_terminal() {
                return false;
            }
            r.input_requests.insert(key.clone(), request.clone());
            r.status = TaskStatus::InputRequired;
            true
        })
        .await
        .map_err(backend)?;
        if parked.is_none_or(|r| r.status.is_terminal()) {
            return Err(Error::Cancelled);
        }
        self.server.notify_task_changed(id);
        let answer = self.answer_to(id, &key).await?;
        // Taken: the key is never issued again, so its answer need not be kept.
        let _ = modify(self.store(), id, |r| {
            r.input_responses.remove(&key).is_some()
        })
        .await;
        Ok(answer)
    }

    /// Waits for the answer under `key`.
    async fn answer_to(&self, id: &str, key: &str) -> Result<Value, Error> {
        loop {
            let since = match self.store().load(id).await {
                Ok(Some(record)) => {
                    if let Some(answer) = record.input_responses.get(key) {
                        return Ok(answer.clone());
                    }
                    if record.status.is_terminal() {
                        return Err(Error::Cancelled);
                    }
                    Some(record.version)
                }
                Ok(None) => return Err(Error::Cancelled),
                Err(e) => {
                    tracing::warn!(task = id, error = %e, "cannot read the task; retrying");
                    None
                }
            };
            tokio::select! {
                () = self.wait(id, since) => {}
                () = self.cancel.cancelled() => return Err(Error::Cancelled),
            }
        }
    }

    /// Waits for a change after `since`, or a poll interval after a failed read.
    async fn wait(&self, id: &str, since: Option<u64>) {
        match since {
            Some(version) => self.store().changed(id, version).await,
            None => tokio::time::sleep(self.config.poll_interval).await,
        }
    }

    /// A key unique in this task: the one the handler gave, or one by the order of asking,
    /// suffixed when it was issued before.
    fn mint_key(&self, wanted: Option<&str>, method: &str) -> String {
        let mut keys = lock(&self.keys);
        keys.asked += 1;
        let base = match wanted {
            Some(key) => key.to_owned(),
            None => {
                let kind = method.split('/').next().unwrap_or("input");
                format!("{kind}-{}", keys.asked)
            }
        };
        let mut key = base.clone();
        let mut n = 1;
        while !keys.issued.insert(key.clone()) {
            n += 1;
            key = format!("{base}-{n}");
        }
        key
    }

    /// Completes when the task is over for the handler: cancelled, expired or gone.
    async fn stopped(&self) {
        let Some(id) = self.id() else { return };
        loop {
            let since = match self.store().load(id).await {
                Ok(Some(record)) if !record.status.is_terminal() => Some(record.version),
                Ok(_) => return,
                Err(e) => {
                    tracing::warn!(task = id, error = %e, "cannot read the task; retrying");
                    None
                }
            };
            self.wait(id, since).await;
        }
    }

    /// Records how the handler ended: `completed` with its result, or `failed` with its
    /// error. A task already over (cancelled) stays as it is.
    async fn finish(&self, answer: Result<Value, ErrorObject>) {
        let Some(id) = self.id() else { return };
        let (result, error) = match answer {
            Ok(Value::Object(result)) => (Some(result), None),
            Ok(other) => (
                None,
                Some(ErrorObject::internal(format_args!(
                    "the handler's result is not an object: {other}"
                ))),
            ),
            Err(e) => (None, Some(e)),
        };
        let status = if result.is_some() {
            TaskStatus::Completed
        } else {
            TaskStatus::Failed
        };
        let mut delay = self.config.poll_interval;
        for _ in 0..5 {
            let written = modify(self.store(), id, |r| {
                if r.status.is_terminal() {
                    return false;
                }
                r.status = status;
                r.result = result.clone();
                r.error = error.clone();
                r.input_requests.clear();
                r.input_responses.clear();
                true
            })
            .await;
            match written {
                Ok(written) => {
                    if written.is_some_and(|r| r.status == status) {
                        self.server.notify_task_changed(id);
                    }
                    return;
                }
                Err(e) => {
                    tracing::warn!(task = id, error = %e, "cannot record the task's outcome");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
            }
        }
        tracing::error!(task = id, "gave up recording the task's outcome");
    }
}

/// Runs a task's handler in the background until it ends or the task is cancelled; then the
/// handler gets [`TaskConfig::cancel_grace`] to wind down, and its result is discarded.
pub(crate) fn spawn_worker(run: Arc<TaskRun>, handler: Handler) {
    tokio::spawn(async move {
        let mut handler = AssertUnwindSafe(handler).catch_unwind();
        let outcome = tokio::select! {
            done = &mut handler => Some(done.unwrap_or_else(|_| {
                Err(ErrorObject::internal("the tool's handler panicked"))
            })),
            () = run.stopped() => None,
        };
        match outcome {
            Some(answer) => run.finish(answer).await,
            None => {
                run.cancel.cancel();
                let _ = tokio::time::timeout(run.config.cancel_grace, handler).await;
            }
        }
    });
}

fn backend(e: BackendError) -> Error {
    Error::Protocol(format!("the task store failed: {e}"))
}
