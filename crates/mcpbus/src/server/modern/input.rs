//! Multi round-trip requests (MRTR) on the server: how [`Context::elicit`],
//! [`Context::create_message`] and [`Context::list_roots`] work in the 2026-07-28 era, where a
//! server never sends the client a request (docs/protocol.md 6.5).
//!
//! A handler is run again from the start on every round. Each input it asks for has a key: the
//! one the handler gives ([`Context::input_key`]), or one by the order of asking
//! (`elicitation-1`, `sampling-2`, ...), the same on every run of a deterministic handler. An input already answered (in this retry's `inputResponses`, or in
//! an earlier round, sealed in `requestState`) is returned at once; an unanswered one parks the
//! handler, and the request is answered with `input_required` listing everything the handler
//! asked for in that run, plus a `requestState` sealing the answers so far.
//!
//! [`Context::elicit`]: crate::server::Context::elicit
//! [`Context::create_message`]: crate::server::Context::create_message
//! [`Context::list_roots`]: crate::server::Context::list_roots
//! [`Context::input_key`]: crate::server::Context::input_key

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use mcpbus_proto::jsonrpc::ErrorObject;
use mcpbus_proto::mcp::methods;
use serde_json::{Map, Value, json};
use tokio::sync::Notify;

use super::state::{RequestStateKeys, StateError, binding};
use crate::util::lock;

/// The input side of one modern request: answers known, inputs asked for.
#[derive(Debug)]
pub(crate) struct InputRound {
    /// `None` for methods that cannot ask for input (only `tools/call`, `prompts/get` and
    /// `resources/read` can); otherwise what a state issued for this request is bound to.
    binding: Option<String>,
    /// Answers from earlier rounds and from this retry, by key.
    answers: BTreeMap<String, Value>,
    /// What this run asked for without an answer, by key: `{"method", "params"}` objects.
    asked: Mutex<BTreeMap<String, Value>>,
    next_key: AtomicUsize,
    parked: Notify,
    keys: Arc<RequestStateKeys>,
}

impl InputRound {
    /// The round of a request of `method` with `params`: reads (and checks) the answers the
    /// client sent back, if any.
    pub(crate) fn of_request(
        method: &str,
        params: Option<&Value>,
        keys: &Arc<RequestStateKeys>,
    ) -> Result<Self, ErrorObject> {
        let binding = request_binding(method, params);
        let mut answers = BTreeMap::new();
        let state = params.and_then(|p| p.get("requestState"));
        if let (Some(binding), Some(state)) = (&binding, state) {
            let state = state
                .as_str()
                .ok_or_else(|| ErrorObject::invalid_params("requestState must be a string"))?;
            answers = keys.open(state, binding).map_err(state_error)?;
        }
        match params.and_then(|p| p.get("inputResponses")) {
            None | Some(Value::Null) => {}
            Some(Value::Object(given)) if binding.is_some() => {
                answers.extend(given.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            Some(Value::Object(_)) => {}
            Some(_) => {
                return Err(ErrorObject::invalid_params(
                    "inputResponses must be an object of answers by key",
                ));
            }
        }
        Ok(InputRound {
            binding,
            answers,
            asked: Mutex::new(BTreeMap::new()),
            next_key: AtomicUsize::new(1),
            parked: Notify::new(),
            keys: keys.clone(),
        })
    }

    /// Asks the client for input: the answer if the client gave it already; otherwise the
    /// handler parks here for good and the request is answered with `input_required`.
    pub(crate) async fn ask(
        &self,
        key: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<Value, crate::Error> {
        if self.binding.is_none() {
            return Err(crate::Error::Protocol(format!(
                "{method} cannot be asked for while answering this request: in MCP 2026-07-28 \
                 only tools/call, prompts/get and resources/read may ask the client for input"
            )));
        }
        let n = self.next_key.fetch_add(1, Ordering::Relaxed);
        let key = key.map_or_else(|| format!("{}-{n}", key_prefix(method)), str::to_owned);
        if let Some(answer) = self.answers.get(&key) {
            return Ok(answer.clone());
        }
        lock(&self.asked).insert(key, json!({"method": method, "params": params}));
        self.parked.notify_one();
        std::future::pending().await
    }

    /// Runs `handler` until it finishes or parks on input it lacks; in the second case, the
    /// `input_required` result to answer with.
    pub(crate) async fn drive<F>(&self, handler: F) -> Driven
    where
        F: Future<Output = Result<Value, ErrorObject>>,
    {
        tokio::pin!(handler);
        tokio::select! {
            biased;
            answer = &mut handler => return Driven::Done(answer),
            _ = self.parked.notified() => {}
        }
        // Inputs asked for together (e.g. with `join!`) park in the same poll; one more
        // chance lets any that were woken in between register too.
        tokio::task::yield_now().await;
        tokio::select! {
            biased;
            answer = &mut handler => return Driven::Done(answer),
            () = std::future::ready(()) => {}
        }
        Driven::InputRequired(self.input_required())
    }

    fn input_required(&self) -> Value {
        let asked = std::mem::take(&mut *lock(&self.asked));
        let binding = self.binding.as_deref().unwrap_or_default();
        json!({
            "resultType": "input_required",
            "inputRequests": Map::from_iter(asked),
            "requestState": self.keys.seal(binding, &self.answers),
        })
    }
}

/// How a driven handler ended.
#[derive(Debug)]
pub(crate) enum Driven {
    /// It finished.
    Done(Result<Value, ErrorObject>),
    /// It needs input: the `input_required` result.
    InputRequired(Value),
}

/// What a state of this request is bound to, for the methods that may ask for input.
fn request_binding(method: &str, params: Option<&Value>) -> Option<String> {
    let field = match method {
        methods::TOOLS_CALL | methods::PROMPTS_GET => "name",
        methods::RESOURCES_READ => "uri",
        _ => return None,
    };
    let target = params
        .and_then(|p| p.get(field))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let arguments = params.and_then(|p| p.get("arguments"));
    Some(binding(method, target, arguments))
}

fn key_prefix(method: &str) -> &'static str {
    match method {
        methods::ELICITATION_CREATE => "elicitation",
        methods::SAMPLING_CREATE_MESSAGE => "sampling",
        methods::ROOTS_LIST => "roots",
        _ => "input",
    }
}

fn state_error(e: StateError) -> ErrorObject {
    ErrorObject::invalid_params(e)
}
