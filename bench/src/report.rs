//! `report`: turns the JSON lines of several runs into Markdown tables, one per scenario, with
//! one row per run (so runs against other servers, told apart by their label, sit side by side).

use serde_json::Value;

use crate::stats::fmt_us;

/// Renders every scenario found in `lines` (JSON objects, one a line; other lines are skipped).
pub fn render(lines: &str) -> String {
    let runs: Vec<Value> = lines
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
        .filter(|v| v.get("scenario").is_some())
        .collect();
    let mut out = String::new();
    let rps: Vec<&Value> = runs.iter().filter(|r| r["scenario"] == "rps").collect();
    if !rps.is_empty() {
        out += "tools/call over HTTP (one request in flight per client)\n\n";
        out += "| server | clients | req/s | p50 | p90 | p99 | max | errors | server CPU |\n";
        out += "|---|--:|--:|--:|--:|--:|--:|--:|--:|\n";
        for r in rps {
            let l = &r["latency"];
            out += &format!(
                "| {} | {} | {:.0} | {} | {} | {} | {} | {} | {} |\n",
                text(&r["label"]),
                r["clients"],
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
    let fanout: Vec<&Value> = runs.iter().filter(|r| r["scenario"] == "fanout").collect();
    if !fanout.is_empty() {
        out += "publish → deliver fan-out (GET stream per session)\n\n";
        out += "| server | sessions | events | deliveries/s | delivery p50 | delivery p99 | \
                to last p50 | to last p99 | delivered | server RSS idle / end | server CPU |\n";
        out += "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n";
        for r in fanout {
            let (d, l) = (&r["per_delivery"], &r["publish_to_last"]);
            out += &format!(
                "| {} | {} | {} at {}/s | {:.0} | {} | {} | {} | {} | {:.4} | {} / {} | {} |\n",
                text(&r["label"]),
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
    if out.is_empty() {
        out += "no results\n";
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
{"scenario":"rps","label":"mcpbus","clients":50,"rps":12345.6,"errors":0,"latency":{"p50_us":900.0,"p90_us":1500.0,"p99_us":2500.0,"max_us":9000.0},"server_cpu_s":9.5}
{"scenario":"fanout","label":"mcpbus","sessions":1000,"events":200,"published":200,"rate_per_s":50.0,"deliveries_per_s":50000.0,"per_delivery":{"p50_us":2000.0,"p99_us":8000.0},"publish_to_last":{"p50_us":4000.0,"p99_us":9000.0},"fraction_delivered":1.0,"server_idle":{"rss_kib":40960},"server_end":{"rss_kib":51200},"server_cpu_s":null}
"#;
        let out = render(lines);
        assert!(
            out.contains(
                "| mcpbus | 50 | 12346 | 900 µs | 1.50 ms | 2.50 ms | 9.00 ms | 0 | 9.50 s |"
            ),
            "{out}"
        );
        assert!(out.contains("| mcpbus | 1000 | 200 at 50.0/s | 50000 | 2.00 ms | 8.00 ms | 4.00 ms | 9.00 ms | 1.0000 | 40.0 MiB / 50.0 MiB | – |"), "{out}");
        assert_eq!(render(""), "no results\n");
    }
}
