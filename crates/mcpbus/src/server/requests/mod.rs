//! How a server answers the MCP requests, one file per family of methods. Each function refuses
//! a method whose capability the server does not offer, parses its params, and returns the
//! JSON result.

pub(crate) mod completion;
pub(crate) mod events;
pub(crate) mod events_ext;
pub(crate) mod lifecycle;
pub(crate) mod prompts;
pub(crate) mod resources;
pub(crate) mod tools;

use mcpbus_proto::jsonrpc::ErrorObject;
use mcpbus_proto::mcp::PaginatedRequestParams;
use serde_json::Value;

use crate::service::parse_params;

/// Refuses requests of a capability the server does not offer, as MCP asks (`-32601`).
fn require(offered: bool, method: &str) -> Result<(), ErrorObject> {
    if offered {
        Ok(())
    } else {
        Err(ErrorObject::method_not_found(method))
    }
}

/// The page of `items` a list request asks for (its params carry the cursor), and the cursor
/// of the next page.
fn requested_page<T>(
    items: &[T],
    params: Option<Value>,
    size: usize,
) -> Result<(&[T], Option<String>), ErrorObject> {
    let p: PaginatedRequestParams = parse_params(params)?;
    page(items, p.cursor.as_deref(), size)
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
