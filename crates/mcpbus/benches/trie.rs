//! Topic matching: `TopicTrie::matches` at 1k, 10k and 100k (pattern, subscriber) pairs, for
//! topics that hit about 1 and about 10 subscribers (and one that hits none), next to a naive
//! linear scan over every pattern at 1k and 10k.
//!
//! Run with `cargo bench -j2 -p mcpbus --bench trie`; results are recorded in
//! `docs/BENCHMARKS.md`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_main};
use mcpbus::events::TopicTrie;
use mcpbus_proto::TopicPattern;

/// Pairs per tenant block in [`workload`].
const PER_TENANT: usize = 12;

/// Global pairs in [`workload`].
const GLOBALS: [&str; 5] = [
    "+/build/+/status",
    "+/+/+/status",
    "+/build/0/status",
    "+/status",
    "+/+/logs",
];

/// The number of tenants in a workload of about `n` pairs.
fn tenant_count(n: usize) -> usize {
    (n.saturating_sub(GLOBALS.len()) / PER_TENANT).max(TOPICS_PER_KIND)
}

/// Topics matched in turn, each from a different tenant, so no single path stays hot.
const TOPICS_PER_KIND: usize = 64;

/// Builds about `n` (pattern, subscriber) pairs shaped like a multi-tenant CI server.
///
/// Per tenant `i` (12 pairs): `tenant{i}/build/{j}/status` for j in 0..4,
/// `tenant{i}/build/+/status` by 3 subscribers, `tenant{i}/build/0/+`, `tenant{i}/build/#`,
/// `tenant{i}/+/logs`, `tenant{i}/deploy/+/status`, `tenant{i}/#`. Plus 5 global pairs:
/// `+/build/+/status`, `+/+/+/status`, `+/build/0/status`, `+/status`, `+/+/logs`.
///
/// Then `tenant{k}/build/0/status` matches 10 subscribers and `tenant{k}/alerts/disk` matches 1
/// (`tenant{k}/#`), whatever `n` is.
fn workload(n: usize) -> Vec<(TopicPattern, u64)> {
    let mut pairs = Vec::with_capacity(n + PER_TENANT);
    let mut next_sub = 0u64;
    let mut add = |pairs: &mut Vec<(TopicPattern, u64)>, pattern: &str| {
        let p = TopicPattern::new(pattern).expect("bench patterns are valid");
        pairs.push((p, next_sub));
        next_sub += 1;
    };
    for global in GLOBALS {
        add(&mut pairs, global);
    }
    for i in 0..tenant_count(n) {
        for j in 0..4 {
            add(&mut pairs, &format!("tenant{i}/build/{j}/status"));
        }
        for _ in 0..3 {
            add(&mut pairs, &format!("tenant{i}/build/+/status"));
        }
        add(&mut pairs, &format!("tenant{i}/build/0/+"));
        add(&mut pairs, &format!("tenant{i}/build/#"));
        add(&mut pairs, &format!("tenant{i}/+/logs"));
        add(&mut pairs, &format!("tenant{i}/deploy/+/status"));
        add(&mut pairs, &format!("tenant{i}/#"));
    }
    pairs
}

/// Topics of one kind spread over the tenants of a workload of about `n` pairs.
fn topics(n: usize, shape: &str) -> Vec<String> {
    let tenants = tenant_count(n);
    (0..TOPICS_PER_KIND)
        .map(|k| {
            let tenant = k * tenants / TOPICS_PER_KIND;
            shape.replace("{k}", &tenant.to_string())
        })
        .collect()
}

/// The topic kinds measured, with the number of subscribers each topic matches.
const KINDS: [(&str, &str, usize); 3] = [
    ("hit1", "tenant{k}/alerts/disk", 1),
    ("hit10", "tenant{k}/build/0/status", 10),
    ("miss", "nobody/build/x/y", 0),
];

/// The baseline: try every pattern, then dedupe subscribers like the trie does.
fn naive_matches(pairs: &[(TopicPattern, u64)], topic: &str, out: &mut Vec<u64>) {
    for (pattern, sub) in pairs {
        if pattern.matches(topic) {
            out.push(*sub);
        }
    }
    out.sort_unstable();
    out.dedup();
}

fn bench_trie(c: &mut Criterion) {
    let mut group = c.benchmark_group("topic_match");
    for n in [1_000usize, 10_000, 100_000] {
        let pairs = workload(n);
        let mut trie = TopicTrie::new();
        for (p, s) in &pairs {
            trie.insert(p, *s);
        }
        for (kind, shape, expected) in KINDS {
            let topics = topics(n, shape);
            let mut out = Vec::new();
            for t in &topics {
                out.clear();
                trie.matches(t, &mut out);
                assert_eq!(out.len(), expected, "workload check for {t}");
            }
            group.bench_with_input(BenchmarkId::new(format!("trie/{kind}"), n), &n, |b, _| {
                let mut i = 0;
                b.iter(|| {
                    out.clear();
                    trie.matches(black_box(&topics[i % TOPICS_PER_KIND]), &mut out);
                    i += 1;
                    black_box(out.len())
                })
            });
            if n <= 10_000 && kind != "miss" {
                group.bench_with_input(BenchmarkId::new(format!("naive/{kind}"), n), &n, |b, _| {
                    let mut i = 0;
                    b.iter(|| {
                        out.clear();
                        naive_matches(&pairs, black_box(&topics[i % TOPICS_PER_KIND]), &mut out);
                        i += 1;
                        black_box(out.len())
                    })
                });
            }
        }
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_secs(1))
}

/// Holds the generated group function (private, so it needs no docs).
mod group {
    criterion::criterion_group! {
        name = benches;
        config = super::config();
        targets = super::bench_trie
    }
}
criterion_main!(group::benches);
