//! The Tasks extension in the 2026-07-28 era (`io.modelcontextprotocol/tasks`, SEP-2663;
//! docs/protocol.md 6.9).
//!
//! A `tools/call` of a tool declared with [`TaskSupport::Optional`] or
//! [`TaskSupport::Required`], in a request that declares the extension, is answered with a
//! task (`resultType: "task"`) once the task is in the [`TaskStore`](crate::tasks::TaskStore);
//! the handler runs on in the background ([`task_run`](super::task_run)). `tasks/get`,
//! `tasks/update` and `tasks/cancel` work on the store alone, so any replica that shares it
//! answers them, whichever replica runs the handler.

use std::sync::Arc;

use bytes::Bytes;
use mcpbus_proto::jsonrpc::{ErrorObject, RequestId};
use mcpbus_proto::mcp::{CreateMessageResult, ElicitResult, ListRootsResult, methods};
use mcpbus_proto::modern::tasks::{
    CancelTaskRequestParams, GetTaskRequestParams, TASKS_CANCEL, TASKS_EXTENSION, TASKS_GET,
    TASKS_UPDATE, TaskStatus,
};
use mcpbus_proto::modern::{ClientCapabilities, Complete, InputRequest};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::ModernScope;
use super::task_run::{Handler, TaskRun, spawn_worker};
use crate::server::Server;
use crate::server::context::Context;
use crate::server::requests::tools;
use crate::service::{FrameKind, Peer, RelatedSink, Routing, parse_params, to_result};
use crate::tasks::{TaskRecord, TaskStart, TaskStore, TaskSupport, modify};

/// Whether `method` is one of the extension's (`tasks/get`, `tasks/update`, `tasks/cancel`).
pub(crate) fn is_task_method(method: &str) -> bool {
    matches!(method, TASKS_GET | TASKS_UPDATE | TASKS_CANCEL)
}

/// Whether the server runs any tool as a task: then it advertises the extension and answers
/// its methods.
pub(crate) fn offered(server: &Server) -> bool {
    server
        .inner
        .registry
        .tools
        .iter()
        .any(|t| t.tasks.support != TaskSupport::None)
}

/// The capability `server/discover` adds when tasks are offered.
pub(crate) fn advertise(capabilities: &mut Value, server: &Server) {
    if offered(server) {
        capabilities["extensions"][TASKS_EXTENSION] = json!({});
    }
}

/// Whether the request declares the tasks extension.
pub(super) fn declares_extension(scope: &ModernScope) -> bool {
    scope
        .meta
        .client_capabilities
        .extension(TASKS_EXTENSION)
        .is_some()
}

/// `-32021` naming the extension.
pub(super) fn missing_extension() -> ErrorObject {
    let required = ClientCapabilities::default().with_extension(TASKS_EXTENSION, Map::new());
    ErrorObject::missing_required_client_capability(required)
}

/// `tools/call`: as a task when the tool and the request both allow it, as any other call
/// otherwise.
pub(crate) async fn call(
    scope: &Arc<ModernScope>,
    params: Option<Value>,
    mut ctx: Context,
) -> Result<Value, ErrorObject> {
    let name = params
        .as_ref()
        .and_then(|p| p.get("name"))
        .and_then(Value::as_str);
    let policy = name
        .and_then(|n| ctx.server.inner.registry.tool(n))
        .map(|entry| entry.tasks)
        .unwrap_or_default();
    match (policy.support, declares_extension(scope)) {
        (TaskSupport::None, _) | (TaskSupport::Optional, false) => {
            return super::drive(scope, tools::call(params, ctx)).await;
        }
        (TaskSupport::Required, false) => return Err(missing_extension()),
        (TaskSupport::Optional | TaskSupport::Required, true) => {}
    }
    let config = ctx.server.inner.modern.tasks.clone();
    let run = Arc::new(TaskRun::new(config, ctx.server.clone()));
    scope.attach_task(run.clone());
    // The handler outlives the request: its cancellation is the task's from now on.
    let request_cancel = std::mem::replace(&mut ctx.request.cancel, run.cancel.clone());
    match policy.start {
        TaskStart::AtCall => {
            // Tasks carry no progress or log messages (SEP-2663), and once the call is
            // answered nothing listens to its stream anyway.
            ctx.request.progress_token = None;
            ctx.request.peer = detached_peer(&ctx);
            let created = run.create().await?;
            spawn_worker(run, Box::pin(tools::call(params, ctx)));
            Ok(created)
        }
        TaskStart::Handler => {
            let handler = Box::pin(tools::call(params, ctx));
            start_in_handler(scope, run, request_cancel, handler).await
        }
    }
}

/// A peer whose messages go nowhere: what a task's handler sends has no stream to go to.
fn detached_peer(ctx: &Context) -> Peer {
    let routing = Routing {
        related: Some(Arc::new(Discard)),
    };
    let timeout = ctx.server.inner.service.request_timeout;
    Peer::new(1, timeout, routing).scoped(ctx.request.id.clone())
}

struct Discard;

impl RelatedSink for Discard {
    fn route(&self, _id: &RequestId, _frame: Bytes, _kind: FrameKind) -> Result<(), Bytes> {
        Ok(())
    }
}

/// Runs the handler as a plain call (with `input_required` rounds) until it asks for its
/// task ([`Context::start_task`](crate::server::Context::start_task)); then stores the task,
/// answers with it and lets the handler run on in the background.
async fn start_in_handler(
    scope: &ModernScope,
    run: Arc<TaskRun>,
    request_cancel: tokio_util::sync::CancellationToken,
    mut handler: Handler,
) -> Result<Value, ErrorObject> {
    let mut start = false;
    let answer = super::drive(scope, async {
        tokio::select! {
            biased;
            answer = &mut handler => answer,
            () = run.start_requested() => {
                start = true;
                Ok(Value::Null)
            }
            () = request_cancel.cancelled() => Err(ErrorObject::new(
                mcpbus_proto::error_codes::REQUEST_CANCELLED,
                "the request was cancelled",
            )),
        }
    })
    .await;
    if !start {
        // The handler's own answer (or a round of input): no task.
        return answer;
    }
    match run.create().await {
        Ok(created) => {
            run.confirm_start(true);
            spawn_worker(run, handler);
            Ok(created)
        }
        Err(e) => {
            run.confirm_start(false);
            Err(e)
        }
    }
}

/// `tasks/get`, `tasks/update` and `tasks/cancel`, for a request that declares the extension.
pub(crate) async fn serve(
    method: &str,
    params: Option<Value>,
    ctx: &Context,
    scope: &ModernScope,
) -> Result<Value, ErrorObject> {
    if !declares_extension(scope) {
        return Err(missing_extension());
    }
    let store = &*ctx.server.inner.modern.tasks.store;
    match method {
        TASKS_GET => {
            let p: GetTaskRequestParams = parse_params(params)?;
            let record = load(store, &p.task_id).await?;
            to_result(&Complete(record.detailed()))
        }
        TASKS_UPDATE => update(store, params, &ctx.server).await,
        TASKS_CANCEL => cancel(store, params, &ctx.server).await,
        other => Err(ErrorObject::method_not_found(other)),
    }
}

/// `tasks/update` params, read leniently: answers under keys the task does not wait for are
/// ignored whatever they hold.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateParams {
    task_id: String,
    input_responses: Map<String, Value>,
}

/// `tasks/update`: hands the answers to outstanding requests to the task; the task goes back
/// to `working` once nothing is outstanding. Acknowledged with an empty result.
async fn update(
    store: &dyn TaskStore,
    params: Option<Value>,
    server: &Server,
) -> Result<Value, ErrorObject> {
    let p: UpdateParams = parse_params(params)?;
    let record = load(store, &p.task_id).await?;
    for (key, answer) in &p.input_responses {
        if let Some(request) = record.input_requests.get(key) {
            check_answer(request, answer).map_err(|e| {
                ErrorObject::invalid_params(format_args!("inputResponses[{key:?}]: {e}"))
            })?;
        }
    }
    let written = modify(store, &p.task_id, |r| {
        let answered: Vec<&String> = p
            .input_responses
            .keys()
            .filter(|k| r.input_requests.contains_key(*k))
            .collect();
        if answered.is_empty() || r.status.is_terminal() {
            return false;
        }
        for key in answered {
            r.input_requests.remove(key);
            r.input_responses
                .insert(key.clone(), p.input_responses[key].clone());
        }
        if r.input_requests.is_empty() && r.status == TaskStatus::InputRequired {
            r.status = TaskStatus::Working;
        }
        true
    })
    .await
    .map_err(store_failed)?;
    let written = written.ok_or_else(|| unknown_task(&p.task_id))?;
    if written.version > record.version {
        server.notify_task_changed(&p.task_id);
    }
    Ok(json!({}))
}

/// `tasks/cancel`: a task not over yet becomes `cancelled` (final: what its handler does
/// afterwards is discarded); one already over stays as it is. Acknowledged with an empty
/// result either way.
async fn cancel(
    store: &dyn TaskStore,
    params: Option<Value>,
    server: &Server,
) -> Result<Value, ErrorObject> {
    let p: CancelTaskRequestParams = parse_params(params)?;
    let mut cancelled = false;
    let written = modify(store, &p.task_id, |r| {
        cancelled = !r.status.is_terminal();
        if !cancelled {
            return false;
        }
        r.status = TaskStatus::Cancelled;
        r.status_message = Some("Cancelled at the client's request.".into());
        r.input_requests.clear();
        r.input_responses.clear();
        true
    })
    .await
    .map_err(store_failed)?;
    written.ok_or_else(|| unknown_task(&p.task_id))?;
    if cancelled {
        server.notify_task_changed(&p.task_id);
    }
    Ok(json!({}))
}

/// Whether `answer` is a well-formed answer to `request`.
fn check_answer(request: &InputRequest, answer: &Value) -> Result<(), serde_json::Error> {
    let answer = answer.clone();
    match request.method() {
        methods::ELICITATION_CREATE => serde_json::from_value::<ElicitResult>(answer).map(drop),
        methods::SAMPLING_CREATE_MESSAGE => {
            serde_json::from_value::<CreateMessageResult>(answer).map(drop)
        }
        _ => serde_json::from_value::<ListRootsResult>(answer).map(drop),
    }
}

async fn load(store: &dyn TaskStore, task_id: &str) -> Result<TaskRecord, ErrorObject> {
    store
        .load(task_id)
        .await
        .map_err(store_failed)?
        .ok_or_else(|| unknown_task(task_id))
}

/// `-32602` for a task id the store does not know.
fn unknown_task(task_id: &str) -> ErrorObject {
    ErrorObject::invalid_params(format_args!(
        "unknown task {task_id:?}: it does not exist or has expired"
    ))
    .with_data(json!({"taskId": task_id}))
}

fn store_failed(e: crate::BackendError) -> ErrorObject {
    ErrorObject::internal(format_args!("the task store failed: {e}"))
}
