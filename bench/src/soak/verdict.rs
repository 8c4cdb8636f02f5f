//! The soak run's samples, the growth checks that judge them, and how both are printed: a
//! Markdown table, a CSV file, and the checks' table.

use crate::stats::{Latency, fmt_us};

/// One replica at one moment, from `/proc/PID` (`None`: not readable).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ReplicaSample {
    /// Resident set size (`VmRSS`), KiB.
    pub rss_kib: Option<u64>,
    /// Open file descriptors (entries of `/proc/PID/fd`).
    pub fds: Option<u64>,
    /// User plus system CPU time so far, seconds.
    pub cpu_secs: Option<f64>,
}

/// Everything sampled at one moment, and what happened in the window that ended then.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sample {
    /// Seconds since the first publish.
    pub t_secs: f64,
    /// Whether it falls in the warm-up (shown, not judged).
    pub warmup: bool,
    /// Each replica, in the order of `--replica`.
    pub replicas: Vec<ReplicaSample>,
    /// Redis `used_memory`, bytes.
    pub redis_used: Option<u64>,
    /// Redis `DBSIZE`.
    pub redis_keys: Option<u64>,
    /// Publishes acknowledged in the window.
    pub published: u64,
    /// Deliveries to the long-lived subscribers in the window.
    pub delivered: u64,
    /// Deliveries they should have had: `published` × long-lived subscribers.
    pub expected: u64,
    /// Publish → arrival on the long-lived streams (GET and push), in the window.
    pub latency: Latency,
    /// Churn operations completed in the window.
    pub churn: u64,
    /// Errors so far: publishes, long-lived subscribers and churn.
    pub errors: u64,
}

/// The bounds of the growth checks, from the end of the warm-up to the end of the run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    /// RSS of each replica may grow by this share of its value at the end of the warm-up...
    pub rss_pct: f64,
    /// ...plus this many MiB.
    pub rss_mib: f64,
    /// Open fds of each replica may grow by this many.
    pub fds: u64,
    /// Redis `used_memory` may grow by this share...
    pub redis_pct: f64,
    /// ...plus this many MiB.
    pub redis_mib: f64,
    /// Redis keys may grow by this share...
    pub keys_pct: f64,
    /// ...plus this many.
    pub keys: u64,
    /// The long-lived streams' p99 may become this many times its value...
    pub p99_factor: f64,
    /// ...or its value plus this many µs, whichever is larger.
    pub p99_floor_us: f64,
}

/// What a judged figure measures, for its formatting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    /// MiB.
    Mib,
    /// A count (fds, keys).
    Count,
    /// Microseconds.
    Micros,
}

impl Unit {
    fn show(self, value: f64) -> String {
        match self {
            Unit::Mib => format!("{value:.1} MiB"),
            Unit::Count => format!("{value:.0}"),
            Unit::Micros => fmt_us(value),
        }
    }
}

/// One judged figure: its value at the end of the warm-up and at the end, and the largest
/// end value its bound allows.
#[derive(Debug, Clone)]
pub(crate) struct Check {
    /// What it is, e.g. "RSS of replica A".
    pub name: String,
    /// At the end of the warm-up: the highest of the first judged samples.
    pub base: f64,
    /// At the end: the lowest of the last samples.
    pub end: f64,
    /// The largest `end` allowed.
    pub limit: f64,
    /// Its unit.
    pub unit: Unit,
}

impl Check {
    /// Whether the figure stayed within its bound.
    pub(crate) fn ok(&self) -> bool {
        self.end <= self.limit
    }

    /// A sentence for the verdict: `RSS of replica A: 20.1 -> 31.0 MiB (limit 30.1 MiB)`.
    pub(crate) fn describe(&self) -> String {
        format!(
            "{}: {} -> {} (limit {})",
            self.name,
            self.unit.show(self.base),
            self.unit.show(self.end),
            self.unit.show(self.limit)
        )
    }
}

/// The name of replica `i` in tables: A, B, C...
pub(crate) fn letter(i: usize) -> char {
    char::from(b'A' + (i % 26) as u8)
}

/// How many samples at each end of the judged span are compared: three (30 s at the default
/// interval) once there are 15 judged samples, fewer in short runs. The highest of the first
/// ones is the base and the lowest of the last ones the end, so a figure fails only when it
/// stayed beyond its bound for the whole end span, measured from the highest it was at the
/// start: a moment's allocations, churn in flight or a stall of the shared machine at either
/// end (a stall lowers the churned sessions' key count, say) decides nothing, while a steady
/// leak still passes any bound in time.
fn edge(judged: usize) -> usize {
    (judged / 5).clamp(1, 3)
}

/// The largest and the smallest of `values`; `None` when empty.
fn extremes(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((hi, lo)) => Some((hi.max(v), lo.min(v))),
    })
}

/// The growth checks over the samples after the warm-up; an error when there are fewer than
/// two of them. Figures that were never readable (no Redis given, no latency recorded) are
/// left out.
pub(crate) fn checks(samples: &[Sample], b: &Bounds) -> Result<Vec<Check>, String> {
    let judged: Vec<&Sample> = samples.iter().filter(|s| !s.warmup).collect();
    if judged.len() < 2 {
        return Err(format!(
            "{} sample(s) after the warm-up: too few to judge growth (run longer)",
            judged.len()
        ));
    }
    let k = edge(judged.len());
    let (first, last) = (&judged[..k], &judged[judged.len() - k..]);
    let ends = |f: &dyn Fn(&Sample) -> Option<f64>| -> Option<(f64, f64)> {
        let first = first.iter().map(|s| f(s)).collect::<Option<Vec<_>>>()?;
        let last = last.iter().map(|s| f(s)).collect::<Option<Vec<_>>>()?;
        let (base, _) = extremes(first.into_iter())?;
        let (_, end) = extremes(last.into_iter())?;
        Some((base, end))
    };
    let mut out = Vec::new();
    let mut push = |name: String, unit, figure: Option<(f64, f64)>, limit: &dyn Fn(f64) -> f64| {
        if let Some((base, end)) = figure {
            out.push(Check {
                name,
                base,
                end,
                limit: limit(base),
                unit,
            });
        }
    };
    for r in 0..judged[0].replicas.len() {
        let name = letter(r);
        let rss = ends(&|s| Some(s.replicas.get(r)?.rss_kib? as f64 / 1024.0));
        let grown = |base: f64| base * (1.0 + b.rss_pct / 100.0) + b.rss_mib;
        push(format!("RSS of replica {name}"), Unit::Mib, rss, &grown);
        let fds = ends(&|s| Some(s.replicas.get(r)?.fds? as f64));
        let more = |base: f64| base + b.fds as f64;
        push(
            format!("open fds of replica {name}"),
            Unit::Count,
            fds,
            &more,
        );
    }
    let used = ends(&|s| Some(s.redis_used? as f64 / (1024.0 * 1024.0)));
    let grown = |base: f64| base * (1.0 + b.redis_pct / 100.0) + b.redis_mib;
    push("Redis used_memory".into(), Unit::Mib, used, &grown);
    let keys = ends(&|s| Some(s.redis_keys? as f64));
    let grown = |base: f64| base * (1.0 + b.keys_pct / 100.0) + b.keys as f64;
    push("Redis keys".into(), Unit::Count, keys, &grown);
    let p99 = ends(&|s| (s.latency.count > 0).then_some(s.latency.p99_us));
    let drift = |base: f64| (base * b.p99_factor).max(base + b.p99_floor_us);
    push("p99 publish -> deliver".into(), Unit::Micros, p99, &drift);
    Ok(out)
}

/// The header of the samples table, for `replicas` replicas.
pub(crate) fn header(replicas: usize) -> String {
    let mut head = "| t | phase |".to_string();
    let mut rule = "|--:|---|".to_string();
    for r in 0..replicas {
        let name = letter(r);
        head += &format!(" RSS {name} | fds {name} |");
        rule += "--:|--:|";
    }
    head += " Redis used | keys | published | delivered / expected | p50 | p99 | churn | errors |";
    rule += "--:|--:|--:|--:|--:|--:|--:|--:|";
    format!("{head}\n{rule}\n")
}

/// One row of the samples table.
pub(crate) fn row(s: &Sample) -> String {
    let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    let mib = |bytes: u64| format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0));
    let mut out = format!(
        "| {:.0} s | {} |",
        s.t_secs,
        if s.warmup { "warm-up" } else { "judged" }
    );
    for r in &s.replicas {
        let rss = opt(r.rss_kib.map(|k| mib(k * 1024)));
        out += &format!(" {rss} | {} |", opt(r.fds.map(|f| f.to_string())));
    }
    let (p50, p99) = match s.latency.count {
        0 => ("-".into(), "-".into()),
        _ => (fmt_us(s.latency.p50_us), fmt_us(s.latency.p99_us)),
    };
    out += &format!(
        " {} | {} | {} | {} / {} | {p50} | {p99} | {} | {} |",
        opt(s.redis_used.map(mib)),
        opt(s.redis_keys.map(|k| k.to_string())),
        s.published,
        s.delivered,
        s.expected,
        s.churn,
        s.errors
    );
    out
}

/// The samples as a Markdown table.
pub(crate) fn table(samples: &[Sample], max_rows: usize) -> String {
    let replicas = samples.first().map_or(0, |s| s.replicas.len());
    let mut out = header(replicas);
    for i in shown(samples, max_rows) {
        out += &row(&samples[i]);
        out.push('\n');
    }
    out
}

/// The samples a table of at most about `max_rows` rows shows: every one when they fit, else
/// every n-th, plus the last of the warm-up (where judging starts) and the last one.
pub(crate) fn shown(samples: &[Sample], max_rows: usize) -> Vec<usize> {
    let n = samples.len();
    let step = n.div_ceil(max_rows.max(1)).max(1);
    let boundary = samples.iter().rposition(|s| s.warmup);
    (0..n)
        .filter(|&i| (i + 1) % step == 0 || i + 1 == n || Some(i) == boundary)
        .collect()
}

/// The samples as CSV, one line each after a header; empty fields where nothing was read.
pub(crate) fn csv(samples: &[Sample]) -> String {
    let replicas = samples.first().map_or(0, |s| s.replicas.len());
    let mut out = "t_s,warmup".to_string();
    for r in 0..replicas {
        let n = letter(r);
        out += &format!(",rss_kib_{n},fds_{n},cpu_s_{n}");
    }
    out += ",redis_used_bytes,redis_keys,published,delivered,expected,p50_us,p99_us,max_us,churn,errors\n";
    let opt = |v: Option<String>| v.unwrap_or_default();
    for s in samples {
        out += &format!("{:.1},{}", s.t_secs, s.warmup);
        for r in &s.replicas {
            out += &format!(
                ",{},{},{}",
                opt(r.rss_kib.map(|v| v.to_string())),
                opt(r.fds.map(|v| v.to_string())),
                opt(r.cpu_secs.map(|v| format!("{v:.2}")))
            );
        }
        let l = &s.latency;
        out += &format!(
            ",{},{},{},{},{},{:.0},{:.0},{:.0},{},{}\n",
            opt(s.redis_used.map(|v| v.to_string())),
            opt(s.redis_keys.map(|v| v.to_string())),
            s.published,
            s.delivered,
            s.expected,
            l.p50_us,
            l.p99_us,
            l.max_us,
            s.churn,
            s.errors
        );
    }
    out
}

/// The checks as a Markdown table.
pub(crate) fn checks_table(checks: &[Check]) -> String {
    let mut out =
        "| figure | start (highest) | end (lowest) | limit | within |\n|---|--:|--:|--:|---|\n"
            .to_string();
    for c in checks {
        out += &format!(
            "| {} | {} | {} | {} | {} |\n",
            c.name,
            c.unit.show(c.base),
            c.unit.show(c.end),
            c.unit.show(c.limit),
            if c.ok() { "yes" } else { "**no**" }
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: Bounds = Bounds {
        rss_pct: 10.0,
        rss_mib: 8.0,
        fds: 8,
        redis_pct: 20.0,
        redis_mib: 4.0,
        keys_pct: 25.0,
        keys: 20,
        p99_factor: 3.0,
        p99_floor_us: 10_000.0,
    };

    fn sample(t: f64, warmup: bool, rss_mib: u64, fds: u64, p99_us: f64) -> Sample {
        Sample {
            t_secs: t,
            warmup,
            replicas: vec![ReplicaSample {
                rss_kib: Some(rss_mib * 1024),
                fds: Some(fds),
                cpu_secs: Some(1.0),
            }],
            redis_used: Some(10 << 20),
            redis_keys: Some(100),
            latency: Latency {
                count: 10,
                p99_us,
                ..Latency::default()
            },
            ..Sample::default()
        }
    }

    #[test]
    fn growth_is_judged_from_the_end_of_the_warm_up() {
        // A large RSS during the warm-up does not count; 40 -> 45 MiB is within 10 % + 8 MiB.
        let mut samples = vec![sample(10.0, true, 5, 20, 1_000.0)];
        samples.extend((0..10).map(|i| sample(20.0 + i as f64, false, 40 + i / 2, 30, 2_000.0)));
        let checks = checks(&samples, &BOUNDS).unwrap();
        let names: Vec<_> = checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "RSS of replica A",
                "open fds of replica A",
                "Redis used_memory",
                "Redis keys",
                "p99 publish -> deliver"
            ]
        );
        assert!(checks.iter().all(Check::ok), "{checks:?}");
        // Two samples at each end (10 judged): the highest of (40, 40), the lowest of (44, 44).
        assert_eq!(checks[0].base, 40.0);
        assert_eq!(checks[0].end, 44.0);
        assert!((checks[0].limit - 52.0).abs() < 1e-9);
    }

    #[test]
    fn growth_beyond_a_bound_fails_and_says_so() {
        let mut samples: Vec<_> = (0..10)
            .map(|i| {
                sample(
                    i as f64,
                    false,
                    40 + 3 * i,
                    30 + 2 * i,
                    2_000.0 + 3_000.0 * i as f64,
                )
            })
            .collect();
        // One high sample at the end, or one low sample at the start, decides nothing.
        samples[9].redis_keys = Some(1_000);
        samples[0].redis_keys = Some(10);
        let judged = checks(&samples, &BOUNDS).unwrap();
        let failed = |checks: &[Check]| -> Vec<String> {
            checks
                .iter()
                .filter(|c| !c.ok())
                .map(|c| c.name.clone())
                .collect()
        };
        assert_eq!(
            failed(&judged),
            [
                "RSS of replica A",
                "open fds of replica A",
                "p99 publish -> deliver"
            ]
        );
        assert_eq!(
            judged[0].describe(),
            "RSS of replica A: 43.0 MiB -> 64.0 MiB (limit 55.3 MiB)"
        );
        // Both of the last two beyond the bound: keys grew.
        samples[8].redis_keys = Some(1_000);
        let judged = checks(&samples, &BOUNDS).unwrap();
        assert_eq!(judged[3].name, "Redis keys");
        assert!(!judged[3].ok());
        assert_eq!((judged[3].base, judged[3].end), (100.0, 1_000.0));
    }

    #[test]
    fn a_short_run_or_a_missing_figure_is_reported() {
        let samples = vec![
            sample(10.0, true, 5, 20, 1.0),
            sample(20.0, false, 5, 20, 1.0),
        ];
        assert!(checks(&samples, &BOUNDS).unwrap_err().contains("too few"));
        let mut samples: Vec<_> = (0..4)
            .map(|i| sample(i as f64, false, 5, 20, 1.0))
            .collect();
        for s in &mut samples {
            s.redis_used = None;
            s.redis_keys = None;
        }
        samples[0].latency.count = 0;
        let names: Vec<_> = checks(&samples, &BOUNDS)
            .unwrap()
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(names, ["RSS of replica A", "open fds of replica A"]);
    }

    #[test]
    fn long_runs_show_every_nth_sample() {
        let samples: Vec<_> = (0..360)
            .map(|i| sample(10.0 * (i + 1) as f64, i < 54, 14, 20, 1.0))
            .collect();
        let rows = shown(&samples, 36);
        assert_eq!(rows.len(), 37);
        assert_eq!(&rows[..7], [9, 19, 29, 39, 49, 53, 59]);
        assert_eq!(rows.last(), Some(&359));
        assert_eq!(shown(&samples[..30], 36), (0..30).collect::<Vec<_>>());
        assert_eq!(table(&samples, 36).lines().count(), 2 + 37);
    }

    #[test]
    fn samples_print_as_markdown_and_csv() {
        let s = sample(10.0, true, 5, 20, 1_500.0);
        assert_eq!(header(1).lines().count(), 2);
        let row = row(&s);
        assert!(
            row.starts_with("| 10 s | warm-up | 5.0 MiB | 20 |"),
            "{row}"
        );
        assert!(row.contains("10.0 MiB | 100 |"), "{row}");
        assert!(row.contains("1.50 ms"), "{row}");
        let csv = csv(&[s]);
        let lines: Vec<_> = csv.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].split(',').count(), lines[1].split(',').count());
        assert!(
            lines[1].starts_with("10.0,true,5120,20,1.00,10485760,100,"),
            "{csv}"
        );
        assert_eq!(letter(1), 'B');
    }
}
