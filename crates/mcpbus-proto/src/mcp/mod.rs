//! MCP messages
