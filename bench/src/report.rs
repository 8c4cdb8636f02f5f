//! `report`: turns the JSON lines of several runs into Markdown tables, one per scenario, with
//! one row per run (so runs against other servers, told apart by their label, sit side by side),
//! with `--ratio A/B`, tables that put two servers' figures and their ratio on one row, and with
//! `--change A..B` one table of how build B's figures compare with build A's over several runs.

use serde_json::Value;

use crate::stats::{fmt_us, median, sorted_values};

/// The result lines of `lines` (JSON objects with a `scenario`; other lines are skipped).
fn scenario_runs(lines: &str) -> Vec<Value> {
    lines
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
        .filter(|v| v.get("scenario").is_some())
        .collect()
}

/// Renders every scenario found in `lines` (JSON objects, one a line; other lines are skipped).
pub(crate) fn render(lines: &str) -> String {
    let runs = scenario_runs(lines);
    let mut out = String::new();
    let rps: Vec<&Value> = runs.iter().filter(|r| r["scenario"] == "rps").collect();
    if !rps.is_empty() {
        out += "tools/call over HTTP (one request in flight per client)\n\n";
        out += "| server | era | clients | answers | req/s | p50 | p90 | p99 | max | errors | server CPU |\n";
        out += "|---|---|--:|---|--:|--:|--:|--:|--:|--:|--:|\n";
        for r in rps {
            let l = &r["latency"];
            out += &format!(
                "| {} | {} | {} | {} | {:.0} | {} | {} | {} | {} | {} | {} |\n",
                text(&r["label"]),
                r["era"].as_str().unwrap_or("legacy"),
                r["clients"],
                r["answer_mode"].as_str().unwrap_or("–"),
                num(&r["rps"]),
                us(&l["p50_us"]),
                us(&l["p90_us"]),
                us(&l["p99_us"]),
                us(&l["max_us"]),
                r["errors"],
                secs(&r["server_cpu_s"]),
            );
        }
        out += "\n";
    }
    out += &fanout_and_memory_tables(&runs);
    out += &polls_table(&runs);
    if out.is_empty() {
        out += "no results\n";
    }
    out
}

/// The tables of the `fanout` and `memory` runs (empty without any).
fn fanout_and_memory_tables(runs: &[Value]) -> String {
    let mut out = String::new();
    let fanout: Vec<&Value> = runs.iter().filter(|r| r["scenario"] == "fanout").collect();
    if !fanout.is_empty() {
        out += "publish → deliver fan-out (delivery: a session's GET stream, a push stream or a \
                webhook per subscriber)\n\n";
        out += "| server | delivery | subscribers | events | deliveries/s | delivery p50 | \
                delivery p99 | to last p50 | to last p99 | delivered | server RSS idle / end | \
                server CPU |\n";
        out += "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n";
        for r in fanout {
            let (d, l) = (&r["per_delivery"], &r["publish_to_last"]);
            out += &format!(
                "| {} | {} | {} | {} at {}/s | {:.0} | {} | {} | {} | {} | {:.4} | {} / {} | {} |\n",
                text(&r["label"]),
                r["delivery"].as_str().unwrap_or("get-stream"),
                r["sessions"],
                r["published"],
                r["rate_per_s"],
                num(&r["deliveries_per_s"]),
                us(&d["p50_us"]),
                us(&d["p99_us"]),
                us(&l["p50_us"]),
                us(&l["p99_us"]),
                num(&r["fraction_delivered"]),
                mib(&r["server_idle"]["rss_kib"]),
                mib(&r["server_end"]["rss_kib"]),
                secs(&r["server_cpu_s"]),
            );
        }
        out += "\n";
    }
    let memory: Vec<&Value> = runs.iter().filter(|r| r["scenario"] == "memory").collect();
    if !memory.is_empty() {
        out += "idle subscribers (a session with one subscription and its GET stream, or a push \
                stream)\n\n";
        out += "| server | delivery | subscribers | RSS before | RSS idle | per subscriber | \
                RSS after closing streams | setup |\n";
        out += "|---|---|--:|--:|--:|--:|--:|--:|\n";
        for r in memory {
            out += &format!(
                "| {} | {} | {} | {} | {} | {:.1} KiB | {} | {} |\n",
                text(&r["label"]),
                r["delivery"].as_str().unwrap_or("get-stream"),
                r["sessions"],
                mib(&r["server_before"]["rss_kib"]),
                mib(&r["server_idle"]["rss_kib"]),
                num(&r["rss_kib_per_session"]),
                mib(&r["server_after_close"]["rss_kib"]),
                secs(&r["setup_s"]),
            );
        }
        out += "\n";
    }
    out
}

/// The table of the `polls` runs (empty without any).
fn polls_table(runs: &[Value]) -> String {
    let polls: Vec<&Value> = runs.iter().filter(|r| r["scenario"] == "polls").collect();
    if polls.is_empty() {
        return String::new();
    }
    let mut out = "events/poll answers (one poll in flight per poller, events published \
                   meanwhile)\n\n"
        .to_string();
    out += "| server | pollers | published/s | answers/s | p50 | p90 | p99 | max | events/answer | \
            gaps | errors | server CPU / answer |\n";
    out += "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n";
    for r in polls {
        let l = &r["latency"];
        out += &format!(
            "| {} | {} | {} | {:.0} | {} | {} | {} | {} | {:.2} | {} | {} | {} |\n",
            text(&r["label"]),
            r["pollers"],
            r["publish_rate_per_s"],
            num(&r["answers_per_s"]),
            us(&l["p50_us"]),
            us(&l["p90_us"]),
            us(&l["p99_us"]),
            us(&l["max_us"]),
            num(&r["events_per_answer"]),
            r["gaps"],
            r["errors"],
            r["server_cpu_us_per_answer"]
                .as_f64()
                .map_or("–".into(), |v| format!("{v:.1} µs")),
        );
    }
    out + "\n"
}

/// One compared figure: its name, where it is in a run's JSON line, and how it is shown.
struct Figure {
    name: &'static str,
    pointer: &'static str,
    show: fn(&Value) -> String,
}

/// Renders, per scenario, one row per set of parameters that runs labelled `a` and `b` share,
/// with each figure of both and `a / b` (the last run wins when a label repeats).
pub(crate) fn render_ratio(lines: &str, a: &str, b: &str) -> String {
    let runs = scenario_runs(lines);
    let rps = [
        Figure {
            name: "req/s",
            pointer: "/rps",
            show: |v| format!("{:.0}", num(v)),
        },
        Figure {
            name: "p50",
            pointer: "/latency/p50_us",
            show: us,
        },
        Figure {
            name: "p99",
            pointer: "/latency/p99_us",
            show: us,
        },
        Figure {
            name: "CPU s / 1k req",
            pointer: "/server_cpu_ms_per_1k",
            show: |v| format!("{:.3}", num(v) / 1000.0),
        },
        Figure {
            name: "peak RSS",
            pointer: "/server_hwm_kib",
            show: mib,
        },
    ];
    let fanout = [
        Figure {
            name: "deliveries/s",
            pointer: "/deliveries_per_s",
            show: |v| format!("{:.0}", num(v)),
        },
        Figure {
            name: "delivery p50",
            pointer: "/per_delivery/p50_us",
            show: us,
        },
        Figure {
            name: "delivery p99",
            pointer: "/per_delivery/p99_us",
            show: us,
        },
        Figure {
            name: "to last p99",
            pointer: "/publish_to_last/p99_us",
            show: us,
        },
        Figure {
            name: "delivered",
            pointer: "/fraction_delivered",
            show: |v| format!("{:.4}", num(v)),
        },
        Figure {
            name: "CPU µs / delivery",
            pointer: "/server_cpu_us_per_delivery",
            show: |v| format!("{:.2}", num(v)),
        },
        Figure {
            name: "RSS idle",
            pointer: "/server_idle/rss_kib",
            show: mib,
        },
        Figure {
            name: "RSS / idle subscriber",
            pointer: "/server_rss_kib_per_idle_session",
            show: |v| format!("{:.1} KiB", num(v)),
        },
    ];
    let memory = [
        Figure {
            name: "RSS idle",
            pointer: "/server_idle/rss_kib",
            show: mib,
        },
        Figure {
            name: "per session",
            pointer: "/rss_kib_per_session",
            show: |v| format!("{:.1} KiB", num(v)),
        },
    ];
    let mut out = format!("{a} / {b}: each figure of both, then {a} / {b}\n\n");
    out += &ratio_table(&runs, a, b, "rps", &["era", "clients", "answer_mode"], &rps);
    out += &ratio_table(&runs, a, b, "fanout", &["sessions", "events"], &fanout);
    out += &ratio_table(&runs, a, b, "memory", &["sessions"], &memory);
    out
}

/// A run's parameter `k` as text; `–` when the run does not have it (lines written before
/// the parameter existed).
fn param(r: &Value, k: &str) -> String {
    match &r[k] {
        Value::Null => "–".into(),
        v => v.to_string(),
    }
}

fn ratio_table(
    runs: &[Value],
    a: &str,
    b: &str,
    scenario: &str,
    keys: &[&str],
    figures: &[Figure],
) -> String {
    let of = |label: &str| -> Vec<&Value> {
        runs.iter()
            .filter(|r| r["scenario"] == scenario && r["label"] == label)
            .collect()
    };
    let (runs_a, runs_b) = (of(a), of(b));
    let key = |r: &Value| -> Vec<String> { keys.iter().map(|k| param(r, k)).collect() };
    let mut rows: Vec<(Vec<String>, &Value, &Value)> = Vec::new();
    for ra in &runs_a {
        let k = key(ra);
        if let Some(rb) = runs_b.iter().rev().find(|rb| key(rb) == k) {
            rows.retain(|(existing, _, _)| *existing != k);
            rows.push((k, ra, rb));
        }
    }
    if rows.is_empty() {
        return String::new();
    }
    let mut out = format!("{scenario}\n\n|");
    for k in keys {
        out += &format!(" {k} |");
    }
    for f in figures {
        out += &format!(" {a} {n} | {b} {n} | ratio |", n = f.name);
    }
    out += "\n|";
    out += &"--:|".repeat(keys.len() + 3 * figures.len());
    out += "\n";
    for (k, ra, rb) in rows {
        out += "|";
        for v in &k {
            out += &format!(" {} |", v.trim_matches('"'));
        }
        for f in figures {
            let (va, vb) = (
                ra.pointer(f.pointer).unwrap_or(&Value::Null),
                rb.pointer(f.pointer).unwrap_or(&Value::Null),
            );
            let ratio = match (va.as_f64(), vb.as_f64()) {
                (Some(x), Some(y)) if y != 0.0 => format!("{:.2}×", x / y),
                _ => "–".into(),
            };
            out += &format!(" {} | {} | {ratio} |", (f.show)(va), (f.show)(vb));
        }
        out += "\n";
    }
    out += "\n";
    out
}

/// Renders how a build `b` compares with a build `a` of the same server (the runs labelled `a`
/// and `b`, e.g. by `bench/ab.sh`): per scenario and set of parameters both ran, one row per
/// figure with the median over each label's runs, `b / a` of the medians and each label's range
/// (lowest – highest), so a change can be told from the spread between rounds.
pub(crate) fn render_change(lines: &str, a: &str, b: &str) -> String {
    let runs = scenario_runs(lines);
    let rps = [
        Figure {
            name: "req/s",
            pointer: "/rps",
            show: |v| format!("{:.0}", num(v)),
        },
        Figure {
            name: "p99 latency",
            pointer: "/latency/p99_us",
            show: us,
        },
    ];
    let fanout = [
        Figure {
            name: "deliveries/s",
            pointer: "/deliveries_per_s",
            show: |v| format!("{:.0}", num(v)),
        },
        Figure {
            name: "server CPU µs / delivery",
            pointer: "/server_cpu_us_per_delivery",
            show: |v| format!("{:.2}", num(v)),
        },
        Figure {
            name: "delivery p99",
            pointer: "/per_delivery/p99_us",
            show: us,
        },
        Figure {
            name: "publish → last p99",
            pointer: "/publish_to_last/p99_us",
            show: us,
        },
    ];
    let mut rows = String::new();
    rows += &change_rows(&runs, a, b, "rps", &["era", "clients", "answer_mode"], &rps);
    rows += &change_rows(&runs, a, b, "fanout", &["sessions", "events"], &fanout);
    if rows.is_empty() {
        return format!("no scenario ran on both {a} and {b}\n");
    }
    format!(
        "{a} → {b}: median of each figure over the runs of each, {b} / {a}, and the range of \
         each (lowest – highest)\n\n\
         | scenario | figure | {a} | {b} | {b} / {a} | {a} range | {b} range | runs {a} / {b} |\n\
         |---|---|--:|--:|--:|--:|--:|--:|\n{rows}\n"
    )
}

/// The rows of one scenario for `render_change`: one per figure and set of parameters (the
/// values of `keys`), in the order the runs of `a` first had them.
fn change_rows(
    runs: &[Value],
    a: &str,
    b: &str,
    scenario: &str,
    keys: &[&str],
    figures: &[Figure],
) -> String {
    let key = |r: &Value| -> Vec<String> { keys.iter().map(|k| param(r, k)).collect() };
    let mut params: Vec<Vec<String>> = Vec::new();
    for r in runs.iter().filter(|r| r["scenario"] == scenario) {
        if r["label"] == a && !params.contains(&key(r)) {
            params.push(key(r));
        }
    }
    let mut out = String::new();
    for p in params {
        let of = |label: &str| -> Vec<&Value> {
            runs.iter()
                .filter(|r| r["scenario"] == scenario && r["label"] == label && key(r) == p)
                .collect()
        };
        let (runs_a, runs_b) = (of(a), of(b));
        if runs_b.is_empty() {
            continue;
        }
        let what: Vec<String> = keys
            .iter()
            .zip(&p)
            .filter(|(_, v)| *v != "–")
            .map(|(k, v)| format!("{k} {}", v.trim_matches('"')))
            .collect();
        for f in figures {
            let (va, vb) = (
                sorted_values(&runs_a, f.pointer),
                sorted_values(&runs_b, f.pointer),
            );
            let (ma, mb) = (median(&runs_a, f.pointer), median(&runs_b, f.pointer));
            let show = |v: Option<f64>| v.map_or("–".into(), |x| (f.show)(&Value::from(x)));
            let range = |v: &[f64]| match (v.first(), v.last()) {
                (Some(lo), Some(hi)) => format!(
                    "{} – {}",
                    (f.show)(&Value::from(*lo)),
                    (f.show)(&Value::from(*hi))
                ),
                _ => "–".into(),
            };
            let ratio = match (ma, mb) {
                (Some(x), Some(y)) if x != 0.0 => format!("{:.2}×", y / x),
                _ => "–".into(),
            };
            out += &format!(
                "| {scenario}, {} | {} | {} | {} | {ratio} | {} | {} | {} / {} |\n",
                what.join(", "),
                f.name,
                show(ma),
                show(mb),
                range(&va),
                range(&vb),
                runs_a.len(),
                runs_b.len(),
            );
        }
    }
    out
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or("?").to_string()
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

fn us(v: &Value) -> String {
    v.as_f64().map(fmt_us).unwrap_or_else(|| "–".into())
}

fn secs(v: &Value) -> String {
    v.as_f64()
        .map(|s| format!("{s:.2} s"))
        .unwrap_or_else(|| "–".into())
}

fn mib(v: &Value) -> String {
    v.as_f64()
        .map(|k| format!("{:.1} MiB", k / 1024.0))
        .unwrap_or_else(|| "–".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_become_rows_of_their_scenario() {
        let lines = r#"noise
{"scenario":"rps","label":"mcpbus","clients":50,"answer_mode":"json","rps":12345.6,"errors":0,"latency":{"p50_us":900.0,"p90_us":1500.0,"p99_us":2500.0,"max_us":9000.0},"server_cpu_s":9.5}
{"scenario":"fanout","label":"mcpbus","sessions":1000,"events":200,"published":200,"rate_per_s":50.0,"deliveries_per_s":50000.0,"per_delivery":{"p50_us":2000.0,"p99_us":8000.0},"publish_to_last":{"p50_us":4000.0,"p99_us":9000.0},"fraction_delivered":1.0,"server_idle":{"rss_kib":40960},"server_end":{"rss_kib":51200},"server_cpu_s":null}
"#;
        let out = render(lines);
        assert!(
            out.contains(
                "| mcpbus | legacy | 50 | json | 12346 | 900 µs | 1.50 ms | 2.50 ms | 9.00 ms | 0 | 9.50 s |"
            ),
            "{out}"
        );
        assert!(out.contains("| mcpbus | get-stream | 1000 | 200 at 50.0/s | 50000 | 2.00 ms | 8.00 ms | 4.00 ms | 9.00 ms | 1.0000 | 40.0 MiB / 50.0 MiB | – |"), "{out}");
        assert_eq!(render(""), "no results\n");
        let polls = r#"{"scenario":"polls","label":"mcpbus","pollers":50,"publish_rate_per_s":50.0,"answers_per_s":8000.4,"latency":{"p50_us":5000.0,"p90_us":8000.0,"p99_us":12000.0,"max_us":30000.0},"events_per_answer":0.01,"gaps":0,"errors":0,"server_cpu_us_per_answer":110.04}"#;
        assert!(
            render(polls).contains(
                "| mcpbus | 50 | 50.0 | 8000 | 5.00 ms | 8.00 ms | 12.00 ms | 30.00 ms | 0.01 | 0 | 0 | 110.0 µs |"
            ),
            "{}",
            render(polls)
        );
    }

    #[test]
    fn two_servers_are_compared_run_by_run() {
        let lines = r#"{"scenario":"rps","label":"mcpbus","clients":50,"answer_mode":"json","rps":3000.0,"latency":{"p50_us":900.0,"p99_us":2000.0},"server_cpu_ms_per_1k":50.0,"server_hwm_kib":20480}
{"scenario":"rps","label":"rmcp","clients":50,"answer_mode":"json","rps":1000.0,"latency":{"p50_us":1800.0,"p99_us":4000.0},"server_cpu_ms_per_1k":100.0,"server_hwm_kib":40960}
{"scenario":"rps","label":"rmcp","clients":10,"answer_mode":"json","rps":1000.0}
{"scenario":"memory","label":"mcpbus","sessions":10000,"server_idle":{"rss_kib":102400},"rss_kib_per_session":8.0}
{"scenario":"memory","label":"rmcp","sessions":10000,"server_idle":{"rss_kib":204800},"rss_kib_per_session":16.0}
"#;
        let out = render_ratio(lines, "mcpbus", "rmcp");
        assert!(
            out.contains("| 50 | json | 3000 | 1000 | 3.00× | 900 µs | 1.80 ms | 0.50× |"),
            "{out}"
        );
        assert!(!out.contains("| 10 | json |"), "{out}");
        assert!(
            out.contains("| 10000 | 100.0 MiB | 200.0 MiB | 0.50× | 8.0 KiB | 16.0 KiB | 0.50× |"),
            "{out}"
        );
        assert!(!out.contains("fanout"), "{out}");
        assert!(render(lines).contains("| rmcp | get-stream | 10000 | – | 200.0 MiB | 16.0 KiB |"));
    }

    #[test]
    fn two_builds_are_compared_by_their_medians() {
        let rps = |label: &str, rps: f64, p99: f64| {
            format!(
                r#"{{"scenario":"rps","label":"{label}","clients":10,"answer_mode":"json","rps":{rps},"latency":{{"p99_us":{p99}}}}}"#
            )
        };
        let fanout = |label: &str, cpu: f64| {
            format!(
                r#"{{"scenario":"fanout","label":"{label}","sessions":1000,"events":200,"deliveries_per_s":50000.0,"server_cpu_us_per_delivery":{cpu},"publish_to_last":{{"p99_us":30000.0}}}}"#
            )
        };
        let lines = [
            rps("A", 1000.0, 300.0),
            rps("B", 1100.0, 250.0),
            rps("A", 3000.0, 200.0),
            rps("B", 900.0, 400.0),
            rps("A", 2000.0, 100.0),
            rps("B", 1050.0, 500.0),
            fanout("A", 16.0),
            fanout("B", 12.0),
            rps("A", 5.0, 1.0).replace("\"clients\":10", "\"clients\":1"),
        ]
        .join("\n");
        let out = render_change(&lines, "A", "B");
        assert!(
            out.contains(
                "| rps, clients 10, answer_mode json | req/s | 2000 | 1050 | 0.53× | 1000 – 3000 | 900 – 1100 | 3 / 3 |"
            ),
            "{out}"
        );
        assert!(
            out.contains("| p99 latency | 200 µs | 400 µs | 2.00× | 100 µs – 300 µs |"),
            "{out}"
        );
        assert!(
            out.contains(
                "| fanout, sessions 1000, events 200 | server CPU µs / delivery | 16.00 | 12.00 | 0.75× |"
            ),
            "{out}"
        );
        assert!(
            out.contains("| publish → last p99 | 30.00 ms | 30.00 ms | 1.00× |"),
            "{out}"
        );
        // Parameters only one build ran make no row.
        assert!(!out.contains("clients 1,"), "{out}");
        assert_eq!(
            render_change(&lines, "A", "C"),
            "no scenario ran on both A and C\n"
        );
    }
}
