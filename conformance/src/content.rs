//! Resources, the resource template, prompts and completions the conformance suite reads.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use mcpbus::server::{Context, ServerBuilder};
use mcpbus_proto::jsonrpc::ErrorObject;
use mcpbus_proto::mcp::{
    CompleteRequestParams, CompleteResult, ContentBlock, GetPromptResult, Prompt, PromptArgument,
    PromptMessage, ReadResourceResult, Reference, Resource, ResourceContents, ResourceTemplate,
    Role,
};
use serde_json::json;

use crate::media::TEST_PNG_BASE64;

/// The URI of the resource clients subscribe to.
pub(crate) const WATCHED_URI: &str = "test://watched-resource";

/// The changing state behind `test://watched-resource`: a revision counter.
#[derive(Debug, Default)]
pub(crate) struct Watched {
    revision: AtomicU64,
}

impl Watched {
    /// Moves to the next revision; returns it.
    pub(crate) fn bump(&self) -> u64 {
        self.revision.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn text(&self) -> String {
        format!(
            "Watched resource, revision {}.",
            self.revision.load(Ordering::Relaxed)
        )
    }
}

fn read_result(contents: ResourceContents) -> ReadResourceResult {
    ReadResourceResult {
        contents: vec![contents],
        meta: None,
    }
}

/// Adds the resources, the template, the prompts and the completion handler to `builder`.
pub(crate) fn register(builder: ServerBuilder, watched: Arc<Watched>) -> ServerBuilder {
    let builder = builder
        .resource(
            Resource::new("test://static-text", "static-text")
                .with_description("A fixed text resource")
                .with_mime_type("text/plain"),
            |uri, _ctx| async move {
                Ok(read_result(ResourceContents::text(
                    uri,
                    Some("text/plain".into()),
                    "This is the content of the static text resource.",
                )))
            },
        )
        .resource(
            Resource::new("test://static-binary", "static-binary")
                .with_description("A fixed binary resource (a 1x1 PNG)")
                .with_mime_type("image/png"),
            |uri, _ctx| async move {
                Ok(read_result(ResourceContents::blob(
                    uri,
                    Some("image/png".into()),
                    TEST_PNG_BASE64,
                )))
            },
        )
        .resource(
            Resource::new(WATCHED_URI, "watched-resource")
                .with_description("Changes every few seconds; subscribe to be told")
                .with_mime_type("text/plain"),
            move |uri, _ctx| {
                let text = watched.text();
                async move {
                    Ok(read_result(ResourceContents::text(
                        uri,
                        Some("text/plain".into()),
                        text,
                    )))
                }
            },
        );
    let mut template = ResourceTemplate::new("test://template/{id}/data", "template-data");
    template.description = Some("JSON data for any id".into());
    template.mime_type = Some("application/json".into());
    let builder = builder.resource_template(
        template,
        |uri, vars: BTreeMap<String, String>, _ctx| async move {
            let id = vars.get("id").cloned().unwrap_or_default();
            let body =
                json!({"id": id, "templateTest": true, "data": format!("Data for ID: {id}")});
            Ok(read_result(ResourceContents::text(
                uri,
                Some("application/json".into()),
                body.to_string(),
            )))
        },
    );
    prompts(builder).completion(complete)
}

/// The prompts the suite gets, by name.
fn prompts(builder: ServerBuilder) -> ServerBuilder {
    builder
        .prompt(
            described(
                Prompt::new("test_simple_prompt"),
                "A prompt without arguments",
            ),
            |_args, _ctx| async {
                Ok(prompt_result(vec![PromptMessage::user_text(
                    "This is a simple prompt for testing.",
                )]))
            },
        )
        .prompt(
            with_arguments(
                described(
                    Prompt::new("test_prompt_with_arguments"),
                    "A prompt that substitutes two arguments",
                ),
                &[
                    ("arg1", "First test argument"),
                    ("arg2", "Second test argument"),
                ],
            ),
            |args, _ctx| async move {
                let arg = |name: &str| args.get(name).cloned().unwrap_or_default();
                Ok(prompt_result(vec![PromptMessage::user_text(format!(
                    "Prompt with arguments: arg1='{}', arg2='{}'",
                    arg("arg1"),
                    arg("arg2")
                ))]))
            },
        )
        .prompt(
            with_arguments(
                described(
                    Prompt::new("test_prompt_with_embedded_resource"),
                    "A prompt that embeds the resource it is given",
                ),
                &[("resourceUri", "URI of the resource to embed")],
            ),
            |args, _ctx| async move {
                let uri = args.get("resourceUri").cloned().unwrap_or_default();
                Ok(prompt_result(vec![
                    PromptMessage {
                        role: Role::User,
                        content: ContentBlock::embedded(ResourceContents::text(
                            uri,
                            Some("text/plain".into()),
                            "Embedded resource content for testing.",
                        )),
                    },
                    PromptMessage::user_text("Please process the embedded resource above."),
                ]))
            },
        )
        .prompt(
            described(
                Prompt::new("test_prompt_with_image"),
                "A prompt that carries an image",
            ),
            |_args, _ctx| async {
                Ok(prompt_result(vec![
                    PromptMessage {
                        role: Role::User,
                        content: ContentBlock::image(TEST_PNG_BASE64, "image/png"),
                    },
                    PromptMessage::user_text("Please analyze the image above."),
                ]))
            },
        )
}

fn described(mut prompt: Prompt, description: &str) -> Prompt {
    prompt.description = Some(description.into());
    prompt
}

fn with_arguments(mut prompt: Prompt, arguments: &[(&str, &str)]) -> Prompt {
    prompt.arguments = Some(
        arguments
            .iter()
            .map(|(name, description)| PromptArgument {
                name: (*name).into(),
                description: Some((*description).into()),
                required: Some(true),
                ..Default::default()
            })
            .collect(),
    );
    prompt
}

fn prompt_result(messages: Vec<PromptMessage>) -> GetPromptResult {
    GetPromptResult {
        description: None,
        messages,
        meta: None,
    }
}

/// Suggests values for the prompt arguments and the template's `id` that start with what the
/// user typed.
async fn complete(
    params: CompleteRequestParams,
    _ctx: Context,
) -> Result<CompleteResult, ErrorObject> {
    let candidates: &[&str] = match (&params.r#ref, params.argument.name.as_str()) {
        (Reference::Prompt { name, .. }, "arg1" | "arg2")
            if name == "test_prompt_with_arguments" =>
        {
            &["paris", "park", "party", "test", "testValue1", "testValue2"]
        }
        (Reference::Prompt { name, .. }, "resourceUri")
            if name == "test_prompt_with_embedded_resource" =>
        {
            &["test://static-text", "test://static-binary", WATCHED_URI]
        }
        (Reference::Resource { uri }, "id") if uri == "test://template/{id}/data" => {
            &["1", "2", "3", "42", "123"]
        }
        _ => &[],
    };
    let typed = params.argument.value.as_str();
    let values = candidates
        .iter()
        .filter(|c| c.starts_with(typed))
        .map(|c| (*c).to_string())
        .collect();
    Ok(CompleteResult::from_values(values))
}
