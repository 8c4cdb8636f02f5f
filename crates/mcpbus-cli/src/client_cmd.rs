//! `mcpbus call` and `mcpbus ls`: one tool call, or the server's tools, resources and prompts,
//! against a server of either era of MCP, over HTTP or by spawning a stdio server.

use mcpbus::client::{Client, ClientBuilder, Era};
use mcpbus::proto::mcp::{CallToolResult, ContentBlock};
use serde_json::{Map, Value, json};

use crate::connect::{self, ConnectError};
use crate::sub::print_json;

/// Why `mcpbus call` or `mcpbus ls` failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClientCmdError {
    /// The target is neither a URL nor a command.
    #[error("no server given: pass an http:// URL or a command that runs a stdio server")]
    NoTarget,
    /// The server could not be reached.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The tool arguments are not a JSON object.
    #[error("the tool arguments must be a JSON object, e.g. '{{\"city\": \"Paris\"}}': {0}")]
    Arguments(String),
    /// A request failed.
    #[error("{what} failed: {source}")]
    Request {
        /// What was asked.
        what: String,
        /// Why.
        source: mcpbus::Error,
    },
    /// The tool ran and reported an error (its result is printed).
    #[error("the tool {0:?} reported an error (isError)")]
    ToolError(String),
}

/// Where the server is: an `http://` URL, or a command line run as a stdio server.
pub(crate) enum Target {
    /// Streamable HTTP.
    Url(String),
    /// A program and its arguments.
    Command(Vec<String>),
}

impl Target {
    /// `http://…` or `https://…` is a URL; anything else a command line, split on whitespace.
    pub(crate) fn parse(text: &str) -> Result<Target, ClientCmdError> {
        if text.starts_with("http://") || text.starts_with("https://") {
            return Ok(Target::Url(text.to_owned()));
        }
        let words: Vec<String> = text.split_whitespace().map(str::to_owned).collect();
        if words.is_empty() {
            return Err(ClientCmdError::NoTarget);
        }
        Ok(Target::Command(words))
    }

    /// Connects `builder` to the server in `era`.
    pub(crate) async fn connect(
        &self,
        builder: ClientBuilder,
        era: Era,
    ) -> Result<Client, ClientCmdError> {
        let builder = builder.era(era);
        Ok(match self {
            Target::Url(url) => connect::to_url(builder, url).await?,
            Target::Command(words) => {
                let (program, args) = words.split_first().ok_or(ClientCmdError::NoTarget)?;
                connect::to_command(builder, program, args).await?
            }
        })
    }
}

fn builder() -> ClientBuilder {
    Client::builder("mcpbus-cli", env!("CARGO_PKG_VERSION"))
}

/// `mcpbus call TARGET TOOL [ARGS]`: prints the result's text blocks (other blocks and
/// `structuredContent` as JSON lines), or with `json` the whole result as one JSON line.
pub(crate) async fn call(
    target: &str,
    tool: &str,
    arguments: Option<&str>,
    era: Era,
    json: bool,
) -> Result<(), ClientCmdError> {
    let arguments = match arguments {
        None => Value::Object(Map::new()),
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(v @ Value::Object(_)) => v,
            Ok(other) => return Err(ClientCmdError::Arguments(format!("got {other}"))),
            Err(e) => return Err(ClientCmdError::Arguments(e.to_string())),
        },
    };
    let client = Target::parse(target)?.connect(builder(), era).await?;
    if client.era() == Era::Modern {
        // Over HTTP the tool's `x-mcp-header` annotations decide headers of the call; listing
        // first also spares the server a refused call. A failure here is not the call's.
        let _ = client.list_tools().await;
    }
    let outcome = client.call_tool(tool, arguments).await;
    client.close().await;
    let result = outcome.map_err(|source| ClientCmdError::Request {
        what: format!("tools/call {tool}"),
        source,
    })?;
    if json {
        print_json(&result);
    } else {
        print_result(&result);
    }
    if result.is_error == Some(true) {
        return Err(ClientCmdError::ToolError(tool.to_owned()));
    }
    Ok(())
}

fn print_result(result: &CallToolResult) {
    for block in &result.content {
        match block {
            ContentBlock::Text(t) => println!("{}", t.text),
            other => print_json(other),
        }
    }
    if let Some(structured) = &result.structured_content
        && !result
            .content
            .iter()
            .any(|b| matches!(b, ContentBlock::Text(_)))
    {
        print_json(structured);
    }
}

/// `mcpbus ls TARGET`: the server, then its tools, resources, resource templates and prompts
/// (those its capabilities declare); with `json`, one JSON object.
pub(crate) async fn ls(target: &str, era: Era, json: bool) -> Result<(), ClientCmdError> {
    let client = Target::parse(target)?.connect(builder(), era).await?;
    let outcome = listing(&client).await;
    client.close().await;
    let listing = outcome?;
    if json {
        print_json(&listing);
        return Ok(());
    }
    let info = client.server_info();
    println!(
        "server {} {} (MCP {}, {} era)",
        info.name,
        info.version,
        client.protocol_version(),
        client.era()
    );
    for (title, key, name_of) in SECTIONS {
        let Some(items) = listing[key].as_array() else {
            continue;
        };
        println!("{title} ({}):", items.len());
        for item in items {
            let name = item[name_of].as_str().unwrap_or("?");
            match item["description"].as_str() {
                Some(d) => println!("  {name}  {}", first_line(d)),
                None => println!("  {name}"),
            }
        }
    }
    Ok(())
}

/// The sections of a listing: title, JSON key, the member that names an item.
const SECTIONS: [(&str, &str, &str); 4] = [
    ("tools", "tools", "name"),
    ("resources", "resources", "uri"),
    ("resource templates", "resourceTemplates", "uriTemplate"),
    ("prompts", "prompts", "name"),
];

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

async fn listing(client: &Client) -> Result<Value, ClientCmdError> {
    let failed = |what: &str| {
        let what = what.to_owned();
        move |source| ClientCmdError::Request { what, source }
    };
    let caps = client.capabilities().clone();
    let mut out = json!({
        "era": client.era().as_str(),
        "protocolVersion": client.protocol_version(),
        "server": client.server_info(),
    });
    if caps.tools.is_some() {
        out["tools"] = json!(client.list_tools().await.map_err(failed("tools/list"))?);
    }
    if caps.resources.is_some() {
        let resources = client
            .list_resources()
            .await
            .map_err(failed("resources/list"))?;
        out["resources"] = json!(resources);
        let templates = client
            .list_resource_templates()
            .await
            .map_err(failed("resources/templates/list"))?;
        out["resourceTemplates"] = json!(templates);
    }
    if caps.prompts.is_some() {
        out["prompts"] = json!(
            client
                .list_prompts()
                .await
                .map_err(failed("prompts/list"))?
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_urls_or_command_lines() {
        assert!(matches!(
            Target::parse("http://127.0.0.1:1/mcp"),
            Ok(Target::Url(_))
        ));
        match Target::parse("mcpbus serve --stdio") {
            Ok(Target::Command(words)) => assert_eq!(words, ["mcpbus", "serve", "--stdio"]),
            _ => panic!("a command"),
        }
        assert!(matches!(Target::parse("  "), Err(ClientCmdError::NoTarget)));
    }
}
