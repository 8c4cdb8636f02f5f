//! Answers the requests of one client session.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::FutureExt;
use futures::future::BoxFuture;
use mcpbus_proto::error_codes;
use mcpbus_proto::events::{EventListResult, EventSubscribeParams, EventUnsubscribeParams};
use mcpbus_proto::jsonrpc::{ErrorObject, Notification, Request};
use mcpbus_proto::mcp::{
    CallToolRequestParams, CallToolResult, CompleteRequestParams, EmptyResult,
    GetPromptRequestParams, InitializeRequestParams, InitializeResult, LATEST_PROTOCOL_VERSION,
    ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult, ListToolsResult,
    PaginatedRequestParams, ReadResourceRequestParams, SetLevelRequestParams,
    SubscribeRequestParams, UnsubscribeRequestParams, is_supported_protocol_version, methods,
};
use serde_json::{Value, json};

use super::context::{ClientSession, Context, SessionState, lock};
use super::{Server, ToolError};
use crate::service::{Handler, Peer, RequestContext, parse_params, to_result};

/// The [`Handler`] of one session: routes requests to the server's registries.
pub(crate) struct SessionHandler {
    pub(crate) server: Server,
    pub(crate) session: Arc<SessionState>,
}

impl Handler for SessionHandler {
    fn handle_request(
        &self,
        request: Request,
        ctx: RequestContext,
    ) -> BoxFuture<'static, Result<Value, ErrorObject>> {
        let ctx = Context {
            request: ctx,
            session: self.session.clone(),
            server: self.server.clone(),
        };
        dispatch(request, ctx).boxed()
    }

    fn handle_notification(&self, notification: Notification, _peer: &Peer) {
        match notification.method.as_str() {
            methods::INITIALIZED => self.session.mark_initialized(),
            methods::ROOTS_LIST_CHANGED => {
                tracing::debug!(session = %self.session.id, "client roots changed");
            }
            other => tracing::debug!(method = other, "ignoring notification"),
        }
    }

    fn on_close(&self) {
        self.server.end_session(&self.session);
    }

    fn is_sequential(&self, method: &str) -> bool {
        // A client may pipeline requests right behind `initialize`; they must see its effects.
        method == methods::INITIALIZE
    }
}

/// Refuses requests of a capability the server does not offer, as MCP asks (`-32601`).
fn require(offered: bool, method: &str) -> Result<(), ErrorObject> {
    if offered {
        Ok(())
    } else {
        Err(ErrorObject::method_not_found(method))
    }
}

async fn dispatch(request: Request, ctx: Context) -> Result<Value, ErrorObject> {
    let method = request.method.as_str();
    let params = request.params;
    if method != methods::INITIALIZE && method != methods::PING && ctx.session.client().is_none() {
        return Err(ErrorObject::invalid_request(
            "the session is not initialized: send initialize first",
        ));
    }
    let server = ctx.server.clone();
    let inner = &server.inner;
    match method {
        methods::INITIALIZE => initialize(parse_params(params)?, &ctx),
        methods::PING => Ok(json!({})),
        methods::TOOLS_LIST => {
            require(!inner.registry.tools.is_empty(), method)?;
            let p: PaginatedRequestParams = parse_params(params)?;
            let (tools, next_cursor) =
                page(&inner.registry.tools, p.cursor.as_deref(), inner.page_size)?;
            to_result(&ListToolsResult {
                tools: tools.iter().map(|t| t.tool.clone()).collect(),
                next_cursor,
                meta: None,
            })
        }
        methods::TOOLS_CALL => {
            require(!inner.registry.tools.is_empty(), method)?;
            let p: CallToolRequestParams = parse_params(params)?;
            let entry = inner.registry.tool(&p.name).ok_or_else(|| {
                ErrorObject::invalid_params(format_args!("unknown tool {:?}", p.name))
            })?;
            let call = entry.call.clone();
            let result = match call(p.arguments.unwrap_or_default(), ctx).await {
                Ok(result) => result,
                Err(ToolError::Failed(message)) => CallToolResult::error_text(message),
                Err(ToolError::Protocol(e)) => return Err(e),
            };
            to_result(&result)
        }
        methods::RESOURCES_LIST => {
            require(inner.offers_resources(), method)?;
            let p: PaginatedRequestParams = parse_params(params)?;
            let (items, next_cursor) = page(
                &inner.registry.resources,
                p.cursor.as_deref(),
                inner.page_size,
            )?;
            to_result(&ListResourcesResult {
                resources: items.iter().map(|r| r.resource.clone()).collect(),
                next_cursor,
                meta: None,
            })
        }
        methods::RESOURCES_TEMPLATES_LIST => {
            require(inner.offers_resources(), method)?;
            let p: PaginatedRequestParams = parse_params(params)?;
            let (items, next_cursor) = page(
                &inner.registry.templates,
                p.cursor.as_deref(),
                inner.page_size,
            )?;
            to_result(&ListResourceTemplatesResult {
                resource_templates: items.iter().map(|t| t.template.clone()).collect(),
                next_cursor,
                meta: None,
            })
        }
        methods::RESOURCES_READ => {
            require(inner.offers_resources(), method)?;
            let p: ReadResourceRequestParams = parse_params(params)?;
            if let Some(entry) = inner.registry.resource(&p.uri) {
                let read = entry.read.clone();
                return to_result(&read(p.uri, ctx).await?);
            }
            if let Some((entry, vars)) = inner.registry.template_for(&p.uri) {
                let read = entry.read.clone();
                return to_result(&read(p.uri, vars, ctx).await?);
            }
            Err(
                ErrorObject::new(error_codes::RESOURCE_NOT_FOUND, "Resource not found")
                    .with_data(json!({"uri": p.uri})),
            )
        }
        methods::RESOURCES_SUBSCRIBE => {
            require(inner.offers_resources(), method)?;
            let p: SubscribeRequestParams = parse_params(params)?;
            lock(&ctx.session.resource_subscriptions).insert(p.uri);
            to_result(&EmptyResult::default())
        }
        methods::RESOURCES_UNSUBSCRIBE => {
            require(inner.offers_resources(), method)?;
            let p: UnsubscribeRequestParams = parse_params(params)?;
            lock(&ctx.session.resource_subscriptions).remove(&p.uri);
            to_result(&EmptyResult::default())
        }
        methods::PROMPTS_LIST => {
            require(!inner.registry.prompts.is_empty(), method)?;
            let p: PaginatedRequestParams = parse_params(params)?;
            let (items, next_cursor) = page(
                &inner.registry.prompts,
                p.cursor.as_deref(),
                inner.page_size,
            )?;
            to_result(&ListPromptsResult {
                prompts: items.iter().map(|p| p.prompt.clone()).collect(),
                next_cursor,
                meta: None,
            })
        }
        methods::PROMPTS_GET => {
            require(!inner.registry.prompts.is_empty(), method)?;
            let p: GetPromptRequestParams = parse_params(params)?;
            let entry = inner.registry.prompt(&p.name).ok_or_else(|| {
                ErrorObject::invalid_params(format_args!("unknown prompt {:?}", p.name))
            })?;
            let args: BTreeMap<String, String> = p.arguments.unwrap_or_default();
            for arg in entry.prompt.arguments.iter().flatten() {
                if arg.required == Some(true) && !args.contains_key(&arg.name) {
                    return Err(ErrorObject::invalid_params(format_args!(
                        "prompt {:?} needs the argument {:?}",
                        p.name, arg.name
                    )));
                }
            }
            let get = entry.get.clone();
            to_result(&get(args, ctx).await?)
        }
        methods::COMPLETION_COMPLETE => {
            let complete = inner.registry.completion.clone();
            let Some(complete) = complete else {
                return Err(ErrorObject::method_not_found(method));
            };
            let p: CompleteRequestParams = parse_params(params)?;
            to_result(&complete(p, ctx).await?)
        }
        methods::LOGGING_SET_LEVEL => {
            let p: SetLevelRequestParams = parse_params(params)?;
            *lock(&ctx.session.log_level) = Some(p.level);
            to_result(&EmptyResult::default())
        }
        methods::EVENTS_SUBSCRIBE | methods::EVENTS_UNSUBSCRIBE | methods::EVENTS_LIST => {
            let hub = server.events();
            if !hub.has_topics() {
                return Err(ErrorObject::new(
                    error_codes::METHOD_NOT_FOUND,
                    "Method not found: server has no events capability",
                ));
            }
            match method {
                methods::EVENTS_SUBSCRIBE => {
                    let p: EventSubscribeParams = parse_params(params)?;
                    let principal = lock(&ctx.session.principal).clone();
                    to_result(&hub.subscribe(&principal, p.topics).await?)
                }
                methods::EVENTS_UNSUBSCRIBE => {
                    let p: EventUnsubscribeParams = parse_params(params)?;
                    to_result(&hub.unsubscribe(&ctx.session.id, p.topics).await?)
                }
                _ => to_result(&EventListResult {
                    topics: hub.descriptors(),
                    meta: None,
                }),
            }
        }
        other => Err(ErrorObject::method_not_found(other)),
    }
}

fn initialize(params: InitializeRequestParams, ctx: &Context) -> Result<Value, ErrorObject> {
    let session = &ctx.session;
    let inner = &ctx.server.inner;
    let version = if is_supported_protocol_version(&params.protocol_version) {
        params.protocol_version.clone()
    } else {
        LATEST_PROTOCOL_VERSION.to_string()
    };
    {
        let mut client = lock(&session.client);
        if client.is_some() {
            return Err(ErrorObject::invalid_request(
                "the session is already initialized",
            ));
        }
        *client = Some(ClientSession {
            protocol_version: version.clone(),
            client_info: params.client_info.clone(),
            capabilities: params.capabilities.clone(),
        });
    }
    if let Some(identify) = &inner.agent_identity {
        let agent_id = identify(&session.id, &params);
        lock(&session.principal).agent_id = agent_id.into();
    }
    tracing::info!(
        session = %session.id,
        client = %params.client_info.name,
        client_version = %params.client_info.version,
        protocol = %version,
        "session initialized"
    );
    let mut result = InitializeResult::new(version, inner.capabilities(), inner.info.clone());
    result.instructions = inner.instructions.clone();
    result.set_session_id(session.id.to_string());
    to_result(&result)
}

/// One page of a listing. Cursors are opaque to clients; here they are the offset in decimal.
fn page<'a, T>(
    items: &'a [T],
    cursor: Option<&str>,
    size: usize,
) -> Result<(&'a [T], Option<String>), ErrorObject> {
    let start = match cursor {
        None => 0,
        Some(c) => c
            .parse::<usize>()
            .ok()
            .filter(|&n| n <= items.len())
            .ok_or_else(|| ErrorObject::invalid_params(format_args!("invalid cursor {c:?}")))?,
    };
    let end = start.saturating_add(size).min(items.len());
    let next = (end < items.len()).then(|| end.to_string());
    Ok((&items[start..end], next))
}

impl SessionState {
    pub(crate) fn is_initialized(&self) -> bool {
        self.initialized.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::page;

    #[test]
    fn pages_and_cursors() {
        let items: Vec<u32> = (0..5).collect();
        let (first, next) = page(&items, None, 2).unwrap();
        assert_eq!(first, &[0, 1]);
        assert_eq!(next.as_deref(), Some("2"));
        let (last, next) = page(&items, Some("4"), 2).unwrap();
        assert_eq!(last, &[4]);
        assert_eq!(next, None);
        assert_eq!(page(&items, Some("x"), 2).unwrap_err().code, -32602);
        assert_eq!(page(&items, Some("9"), 2).unwrap_err().code, -32602);
    }
}
