//! Registries of tools, resources, resource templates and prompts, and their handler types.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use futures::future::BoxFuture;
use mcpbus_proto::jsonrpc::ErrorObject;
use mcpbus_proto::mcp::{
    CompleteRequestParams, CompleteResult, GetPromptResult, Prompt, ReadResourceResult, Resource,
    ResourceTemplate, Tool,
};

use super::TemplateError;
use super::context::Context;
use super::tool::{TaskPolicy, ToolFn};

pub(crate) type ResourceFn = Arc<
    dyn Fn(String, Context) -> BoxFuture<'static, Result<ReadResourceResult, ErrorObject>>
        + Send
        + Sync,
>;
pub(crate) type TemplateFn = Arc<
    dyn Fn(
            String,
            BTreeMap<String, String>,
            Context,
        ) -> BoxFuture<'static, Result<ReadResourceResult, ErrorObject>>
        + Send
        + Sync,
>;
pub(crate) type PromptFn = Arc<
    dyn Fn(
            BTreeMap<String, String>,
            Context,
        ) -> BoxFuture<'static, Result<GetPromptResult, ErrorObject>>
        + Send
        + Sync,
>;
pub(crate) type CompletionFn = Arc<
    dyn Fn(
            CompleteRequestParams,
            Context,
        ) -> BoxFuture<'static, Result<CompleteResult, ErrorObject>>
        + Send
        + Sync,
>;

pub(crate) struct ToolEntry {
    pub(crate) tool: Tool,
    pub(crate) call: ToolFn,
    pub(crate) tasks: TaskPolicy,
}

pub(crate) struct ResourceEntry {
    pub(crate) resource: Resource,
    pub(crate) read: ResourceFn,
}

pub(crate) struct TemplateEntry {
    pub(crate) template: ResourceTemplate,
    pub(crate) matcher: UriTemplate,
    pub(crate) read: TemplateFn,
}

pub(crate) struct PromptEntry {
    pub(crate) prompt: Prompt,
    pub(crate) get: PromptFn,
}

/// Everything a server offers, in registration order, with lookups by name.
#[derive(Default)]
pub(crate) struct Registry {
    pub(crate) tools: Vec<ToolEntry>,
    tool_index: HashMap<String, usize>,
    pub(crate) resources: Vec<ResourceEntry>,
    resource_index: HashMap<String, usize>,
    pub(crate) templates: Vec<TemplateEntry>,
    pub(crate) prompts: Vec<PromptEntry>,
    prompt_index: HashMap<String, usize>,
    pub(crate) completion: Option<CompletionFn>,
}

impl Registry {
    /// Adds or replaces a tool.
    pub(crate) fn add_tool(&mut self, entry: ToolEntry) {
        let key = entry.tool.name.clone();
        upsert(&mut self.tools, &mut self.tool_index, key, entry);
    }

    pub(crate) fn tool(&self, name: &str) -> Option<&ToolEntry> {
        self.tool_index.get(name).map(|&i| &self.tools[i])
    }

    pub(crate) fn add_resource(&mut self, entry: ResourceEntry) {
        let key = entry.resource.uri.clone();
        upsert(&mut self.resources, &mut self.resource_index, key, entry);
    }

    pub(crate) fn resource(&self, uri: &str) -> Option<&ResourceEntry> {
        self.resource_index.get(uri).map(|&i| &self.resources[i])
    }

    pub(crate) fn add_prompt(&mut self, entry: PromptEntry) {
        let key = entry.prompt.name.clone();
        upsert(&mut self.prompts, &mut self.prompt_index, key, entry);
    }

    pub(crate) fn prompt(&self, name: &str) -> Option<&PromptEntry> {
        self.prompt_index.get(name).map(|&i| &self.prompts[i])
    }

    /// The first template matching `uri`, with the values of its variables.
    pub(crate) fn template_for(
        &self,
        uri: &str,
    ) -> Option<(&TemplateEntry, BTreeMap<String, String>)> {
        self.templates
            .iter()
            .find_map(|t| t.matcher.matches(uri).map(|vars| (t, vars)))
    }
}

/// Replaces the entry under `key`, or appends it (listings keep registration order).
fn upsert<T>(items: &mut Vec<T>, index: &mut HashMap<String, usize>, key: String, entry: T) {
    match index.get(&key) {
        Some(&i) => items[i] = entry,
        None => {
            index.insert(key, items.len());
            items.push(entry);
        }
    }
}

/// A URI template of RFC 6570 level 1 (`{name}` expansions) and level 2's reserved expansion
/// (`{+name}`), matched against concrete URIs. A variable matches one or more characters up to
/// the next literal, never across a `/` unless it is reserved (`{+path}` spans segments).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct UriTemplate {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Literal(String),
    /// A variable's name, and whether it is a reserved expansion (`{+name}`, `/` allowed).
    Var(String, bool),
}

impl UriTemplate {
    pub(crate) fn parse(template: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_string()));
            }
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| TemplateError::Unclosed {
                    template: template.to_owned(),
                })?;
            let expression = &rest[open + 1..open + close];
            let (name, reserved) = match expression.strip_prefix('+') {
                Some(name) => (name, true),
                None => (expression, false),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(TemplateError::UnsupportedExpression {
                    template: template.to_owned(),
                    expression: expression.to_owned(),
                });
            }
            if matches!(parts.last(), Some(Part::Var(..))) {
                return Err(TemplateError::AdjacentVariables {
                    template: template.to_owned(),
                });
            }
            parts.push(Part::Var(name.to_string(), reserved));
            rest = &rest[open + close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        Ok(UriTemplate { parts })
    }

    pub(crate) fn matches(&self, uri: &str) -> Option<BTreeMap<String, String>> {
        let mut vars = BTreeMap::new();
        let mut rest = uri;
        let mut i = 0;
        while i < self.parts.len() {
            match &self.parts[i] {
                Part::Literal(lit) => rest = rest.strip_prefix(lit.as_str())?,
                Part::Var(name, reserved) => {
                    let end = match self.parts.get(i + 1) {
                        Some(Part::Literal(next)) => rest.find(next.as_str())?,
                        _ => rest.len(),
                    };
                    let value = &rest[..end];
                    if value.is_empty() || (!reserved && value.contains('/')) {
                        return None;
                    }
                    vars.insert(name.clone(), value.to_string());
                    rest = &rest[end..];
                }
            }
            i += 1;
        }
        rest.is_empty().then_some(vars)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_templates_match_one_segment_per_variable() {
        let t = UriTemplate::parse("test://template/{id}/data").unwrap();
        assert_eq!(t.matches("test://template/42/data").unwrap()["id"], "42");
        assert!(t.matches("test://template//data").is_none());
        assert!(t.matches("test://template/a/b/data").is_none());
        assert!(t.matches("test://template/42/data/x").is_none());
        let t = UriTemplate::parse("file:///{name}").unwrap();
        assert_eq!(t.matches("file:///x.txt").unwrap()["name"], "x.txt");
        assert!(UriTemplate::parse("x://{a}{b}").is_err());
        let t = UriTemplate::parse("x://r/{+topic}").unwrap();
        assert_eq!(
            t.matches("x://r/build/status").unwrap()["topic"],
            "build/status"
        );
        assert!(t.matches("x://r/").is_none());
        assert!(UriTemplate::parse("x://{+}").is_err());
        assert!(UriTemplate::parse("x://{#frag}").is_err());
        assert!(UriTemplate::parse("x://{a").is_err());
    }

    #[test]
    fn build_errors_name_what_is_wrong_and_keep_their_source() {
        use crate::events::TopicSpec;
        use crate::server::{BuildError, Server};
        use mcpbus_proto::events::EventKind;
        use mcpbus_proto::mcp::ResourceTemplate;
        use std::error::Error as _;

        let err = Server::builder("s", "1")
            .topic(TopicSpec::new("ok/+", EventKind::Signal))
            .topic(TopicSpec::new("a/#/b", EventKind::Signal))
            .build()
            .unwrap_err();
        assert!(
            matches!(&err, BuildError::Topic { pattern, .. } if pattern == "a/#/b"),
            "{err:?}"
        );
        assert!(err.source().is_some());

        let template = ResourceTemplate::new("x://{a", "t");
        let err = Server::builder("s", "1")
            .resource_template(template, |_, _, _| async { unreachable!() })
            .build()
            .unwrap_err();
        assert!(
            matches!(&err, BuildError::Template(TemplateError::Unclosed { template }) if template == "x://{a"),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "unclosed '{' in URI template \"x://{a\"");
    }
}
