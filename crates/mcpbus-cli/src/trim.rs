//! Memory back to the system after a burst of frees (docs/reliability.md, "Connection storms
//! and abandoned sessions").
//!
//! glibc keeps what the process freed for reuse: after 10,000 abandoned sessions were reaped,
//! `mcpbus serve` stayed at 4.7 times its baseline RSS for good. Every [`PERIOD`] this task
//! looks at the server's load (sessions plus open HTTP connections); when it has dropped
//! sharply since its peak (by [`MIN_DROP`] and by a quarter), it waits until the load stops
//! falling (the idle reaper ends sessions in batches) and [`SETTLE`] more for the ended
//! sessions to be torn down, then asks the allocator to release its free pages
//! (`mcpbus_trim::release_free_memory`, `malloc_trim(0)`) on a blocking thread: one trim per
//! burst of frees. A steady server never trims.
//!
//! Before that, it fixes the size from which blocks get their own mapping: left to itself,
//! glibc raises it after the first burst frees a large table, and the large tables of later
//! bursts then come from the arenas, where they leave pages no trim can give back (RSS after
//! repeated bursts of 10,000 sessions: 1.30 times the baseline by the eleventh, 1.13 with the
//! fixed threshold; docs/BENCHMARKS.md).

use std::time::{Duration, Instant};

use mcpbus::server::Server;
use mcpbus::transport::http::ConnectionStats;

/// How often the load is looked at.
const PERIOD: Duration = Duration::from_secs(2);
/// The smallest drop that is worth a trim (a few MiB of sessions and connections).
const MIN_DROP: usize = 256;
/// How long the load must stay from falling before the trim runs: an ended session frees its
/// memory a little after it leaves the count (its service loop ends, its stored streams go
/// 100 ms later).
const SETTLE: Duration = Duration::from_secs(1);

/// Blocks of this size or more get their own mapping, given back when freed
/// (`mcpbus_trim::map_large_blocks`): glibc's own starting value, kept from rising.
const LARGE_BLOCK: usize = 128 * 1024;

/// Starts the task (on glibc only; elsewhere the allocator has no such call).
pub(crate) fn spawn(server: Server, connections: ConnectionStats) {
    if mcpbus_trim::SUPPORTED {
        mcpbus_trim::map_large_blocks(LARGE_BLOCK);
        tokio::spawn(watch(server, connections));
    }
}

async fn watch(server: Server, connections: ConnectionStats) {
    let mut peak = 0usize;
    loop {
        tokio::time::sleep(PERIOD).await;
        let load = server.session_count() + connections.open();
        peak = peak.max(load);
        if !sharp_drop(peak, load) {
            continue;
        }
        let mut last = load;
        loop {
            tokio::time::sleep(SETTLE).await;
            let now = server.session_count() + connections.open();
            if now >= last {
                break;
            }
            last = now;
        }
        trim().await;
        peak = server.session_count() + connections.open();
    }
}

/// Whether the load fell from `peak` to `now` by enough to trim.
fn sharp_drop(peak: usize, now: usize) -> bool {
    let drop = peak.saturating_sub(now);
    drop >= MIN_DROP && drop >= peak / 4
}

/// Releases the allocator's free pages, and logs what it gave back and what it cost.
async fn trim() {
    let before = rss_kib();
    let started = Instant::now();
    let released = tokio::task::spawn_blocking(mcpbus_trim::release_free_memory)
        .await
        .unwrap_or(false);
    let took_us = started.elapsed().as_micros() as u64;
    tracing::info!(
        released,
        took_us,
        rss_before_kib = before,
        rss_after_kib = rss_kib(),
        "gave the allocator's free memory back to the system"
    );
}

/// The process's resident size, from /proc (0 where it cannot be read).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_sharp_drop_is_worth_a_trim() {
        assert!(sharp_drop(10_000, 0));
        assert!(sharp_drop(10_000, 7_000));
        assert!(!sharp_drop(10_000, 9_000), "a tenth");
        assert!(!sharp_drop(200, 0), "too few to matter");
        assert!(sharp_drop(300, 0));
        assert!(!sharp_drop(0, 0));
    }

    #[test]
    fn the_resident_size_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(rss_kib() > 0);
        }
    }
}
