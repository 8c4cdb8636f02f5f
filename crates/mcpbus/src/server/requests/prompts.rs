//! `prompts/list` and `prompts/get`.

use std::collections::BTreeMap;

use mcpbus_proto::jsonrpc::ErrorObject;
use mcpbus_proto::mcp::{GetPromptRequestParams, ListPromptsResult, Prompt, methods};
use serde_json::Value;

use super::{requested_page, require};
use crate::server::context::Context;
use crate::service::{parse_params, to_result};

/// `prompts/list`: one page of the declared prompts.
pub(crate) fn list(params: Option<Value>, ctx: &Context) -> Result<Value, ErrorObject> {
    let inner = &ctx.server.inner;
    require(!inner.registry.prompts.is_empty(), methods::PROMPTS_LIST)?;
    let (items, next_cursor) = requested_page(&inner.registry.prompts, params, inner.page_size)?;
    to_result(&ListPromptsResult {
        prompts: items.iter().map(|p| p.prompt.clone()).collect(),
        next_cursor,
        meta: None,
    })
}

/// `prompts/get`: the prompt's messages, once its required arguments are all there.
pub(crate) async fn get(params: Option<Value>, ctx: Context) -> Result<Value, ErrorObject> {
    let server = ctx.server.clone();
    let registry = &server.inner.registry;
    require(!registry.prompts.is_empty(), methods::PROMPTS_GET)?;
    let p: GetPromptRequestParams = parse_params(params)?;
    let entry = registry
        .prompt(&p.name)
        .ok_or_else(|| ErrorObject::invalid_params(format_args!("unknown prompt {:?}", p.name)))?;
    let args: BTreeMap<String, String> = p.arguments.unwrap_or_default();
    check_required_arguments(&entry.prompt, &args)?;
    let get = entry.get.clone();
    to_result(&get(args, ctx).await?)
}

/// The handler never runs without an argument the prompt declares required (`-32602`).
fn check_required_arguments(
    prompt: &Prompt,
    args: &BTreeMap<String, String>,
) -> Result<(), ErrorObject> {
    for arg in prompt.arguments.iter().flatten() {
        if arg.required == Some(true) && !args.contains_key(&arg.name) {
            return Err(ErrorObject::invalid_params(format_args!(
                "prompt {:?} needs the argument {:?}",
                prompt.name, arg.name
            )));
        }
    }
    Ok(())
}
