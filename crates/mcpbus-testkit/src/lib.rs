//! Test support shared by the mcpbus crates, one implementation of each piece:
//!
//! - [`HttpClient`]: an HTTP/1.1 client that sees status codes and headers as the server wrote
//!   them, reads whole answers or streams, and speaks the MCP requests the tests share;
//! - [`SseReader`] and [`open_sse`]: server-sent events read from a streaming answer, parsed by
//!   `mcpbus_proto::sse`;
//! - [`jsonrpc`]: the JSON-RPC messages several tests send; [`modern`]: 2026-07-28 requests;
//! - [`TestServer`]: an in-process server on a free loopback port, stopped when dropped;
//! - [`ServeProcess`], [`ChildGuard`], [`run_bounded`]: spawned `mcpbus` (or other) processes,
//!   killed however a test ends;
//! - [`RedisServer`]: a private `redis-server` on a free loopback port;
//! - [`FaultProxy`]: a TCP proxy that injects latency, resets, a black hole or refusal;
//! - [`interop`]: what the interop tests with the official SDKs share;
//! - [`oidc`]: a real OAuth 2.1 authorization server (`oidc-provider` under Node) and tokens
//!   minted from it.
//! - [`AuthServer`]: a small OAuth authorization server (metadata, keys, introspection) that
//!   signs access tokens for the resource-server tests.
//!
//! Everything listens on or connects to loopback only. Helpers panic with a message on failure:
//! a test that cannot set itself up must fail loudly.

mod auth_server;
mod fault_proxy;
mod http;
pub mod interop;
pub mod jsonrpc;
pub mod modern;
pub mod oidc;
mod oidc_codec;
mod process;
mod prometheus;
mod redis;
mod server;
mod sse;
mod sse_thread;

pub use auth_server::{
    AuthServer, Hits, INTROSPECTION_CLIENT, INTROSPECTION_SECRET, MetadataAt, unix_now,
};
pub use fault_proxy::{FaultProxy, ProxyMode};
pub use http::{Answer, HttpClient, block_on};
pub use process::{ChildGuard, ServeProcess, TOKEN, fixture, line_channel, repo_root, run_bounded};
pub use prometheus::{PrometheusServer, prometheus_binary};
pub use redis::RedisServer;
pub use server::{Shutdown, TestServer};
pub use sse::SseReader;
pub use sse_thread::{SseItem, open_sse};
