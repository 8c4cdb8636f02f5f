//! A CI status server over stdio: a `finish` tool publishes `build/<project>` events, retained
//! so that an agent subscribing later still sees the last result.
//!
//! Run it under the subscriber: `cargo run -p mcpbus-examples --bin ci_subscriber`.

use mcpbus::events::{Event, TopicSpec};
use mcpbus::server::{Context, Server};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

/// Arguments of the `finish` tool.
#[derive(Deserialize, JsonSchema)]
struct Finish {
    /// The project whose build finished.
    project: String,
    /// Whether the build passed.
    ok: bool,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = Server::builder("ci", "1.0.0")
        .topic(
            TopicSpec::content("build/+")
                .description("Build status per project")
                .retained(true),
        )
        .tool(
            "finish",
            "Report a finished build",
            |args: Finish, ctx: Context| async move {
                let state = if args.ok { "passed" } else { "failed" };
                let report = ctx
                    .events()
                    .publish(Event::new(
                        format!("build/{}", args.project),
                        json!({"state": state}),
                    ))
                    .await?;
                Ok(format!("reported to {} subscriber(s)", report.delivered))
            },
        )
        .build()?;
    server.serve(mcpbus::transport::stdio()).await;
    Ok(())
}
