//! Measurement helpers: latency histograms, samples of a process from `/proc`, the open-files
//! limit, and the parsing of durations and rates given on the command line.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{Value, json};

/// Clock ticks per second of `/proc/<pid>/stat` times (`USER_HZ`, 100 on every Linux ABI).
const CLOCK_TICKS_PER_SEC: f64 = 100.0;

/// A latency histogram in nanoseconds, 1 µs to 60 s, 3 significant digits.
pub(crate) fn latency_histogram() -> Histogram<u64> {
    // The bounds are constants that `new_with_bounds` accepts.
    Histogram::new_with_bounds(1_000, 60_000_000_000, 3)
        .unwrap_or_else(|_| unreachable!("valid histogram bounds"))
}

/// Records a latency, clamped into the histogram's range.
pub(crate) fn record(histogram: &mut Histogram<u64>, nanos: u64) {
    histogram.saturating_record(nanos.max(1));
}

/// Percentiles of a latency histogram, in microseconds.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Latency {
    /// Values recorded.
    pub count: u64,
    /// Mean.
    pub mean_us: f64,
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// Largest value.
    pub max_us: f64,
}

impl Latency {
    /// Summarizes a histogram of nanoseconds.
    pub(crate) fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Latency::default();
        }
        let us = |ns: u64| ns as f64 / 1_000.0;
        Latency {
            count: h.len(),
            mean_us: h.mean() / 1_000.0,
            p50_us: us(h.value_at_quantile(0.50)),
            p90_us: us(h.value_at_quantile(0.90)),
            p99_us: us(h.value_at_quantile(0.99)),
            max_us: us(h.max()),
        }
    }

    /// As a JSON object.
    pub(crate) fn to_json(self) -> Value {
        json!({
            "count": self.count,
            "mean_us": round(self.mean_us),
            "p50_us": round(self.p50_us),
            "p90_us": round(self.p90_us),
            "p99_us": round(self.p99_us),
            "max_us": round(self.max_us),
        })
    }
}

/// Rounds to one decimal, for readable JSON.
pub(crate) fn round(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Rounds to two decimals (seconds in JSON).
pub(crate) fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// A figure's values over runs (the runs that have it, `pointer` being its JSON pointer),
/// sorted.
pub(crate) fn sorted_values(runs: &[&Value], pointer: &str) -> Vec<f64> {
    let mut v: Vec<f64> = runs
        .iter()
        .filter_map(|r| r.pointer(pointer).and_then(Value::as_f64))
        .collect();
    v.sort_by(f64::total_cmp);
    v
}

/// The median of a figure over runs (the upper middle one of an even count).
pub(crate) fn median(runs: &[&Value], pointer: &str) -> Option<f64> {
    let v = sorted_values(runs, pointer);
    v.get(v.len() / 2).copied()
}

/// Formats microseconds for a table: `850 µs`, `1.25 ms`, `2.10 s`.
pub(crate) fn fmt_us(us: f64) -> String {
    if us < 1_000.0 {
        format!("{us:.0} µs")
    } else if us < 1_000_000.0 {
        format!("{:.2} ms", us / 1_000.0)
    } else {
        format!("{:.2} s", us / 1_000_000.0)
    }
}

/// What `/proc` says about a process at one moment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProcSample {
    /// Resident set size (`VmRSS`), KiB.
    pub rss_kib: u64,
    /// Peak resident set size (`VmHWM`), KiB.
    pub hwm_kib: u64,
    /// User plus system CPU time, seconds.
    pub cpu_secs: f64,
}

impl ProcSample {
    /// Samples `pid` (or this process for `None`); `None` if `/proc` cannot tell.
    pub(crate) fn read(pid: Option<u32>) -> Option<Self> {
        let dir = match pid {
            Some(p) => format!("/proc/{p}"),
            None => "/proc/self".to_string(),
        };
        let status = std::fs::read_to_string(format!("{dir}/status")).ok()?;
        let stat = std::fs::read_to_string(format!("{dir}/stat")).ok()?;
        Some(ProcSample {
            rss_kib: status_kib(&status, "VmRSS:")?,
            hwm_kib: status_kib(&status, "VmHWM:")?,
            cpu_secs: stat_cpu_ticks(&stat)? as f64 / CLOCK_TICKS_PER_SEC,
        })
    }
}

/// A `Name:   1234 kB` line of `/proc/<pid>/status`.
fn status_kib(status: &str, name: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// `utime + stime` (fields 14 and 15) of `/proc/<pid>/stat`, in clock ticks. The command name
/// (field 2) is in parentheses and may contain spaces, so fields are counted after the last `)`.
fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The soft limit on open files of this process (`/proc/self/limits`), if known.
pub(crate) fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .next()?;
    if soft == "unlimited" {
        Some(u64::MAX)
    } else {
        soft.parse().ok()
    }
}

/// Parses `10s`, `500ms`, `2m` or a bare number of seconds (`1.5`).
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, unit) = match t.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: expected e.g. 10s, 500ms, 2m"))?;
    let secs = match unit {
        "ms" => value / 1_000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("invalid duration unit in {text:?}: use ms, s or m")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("invalid duration {text:?}: {e}"))
}

/// Parses a rate per second: `50/s`, `50` or `3000/m`.
pub(crate) fn parse_rate(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let (number, per) = t.split_once('/').unwrap_or((t, "s"));
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid rate {text:?}: expected e.g. 50/s"))?;
    let per_sec = match per {
        "s" => value,
        "m" => value / 60.0,
        _ => return Err(format!("invalid rate {text:?}: use /s or /m")),
    };
    if per_sec.is_finite() && per_sec > 0.0 {
        Ok(per_sec)
    } else {
        Err(format!("invalid rate {text:?}: must be positive"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_rates_parse() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("10h").is_err());
        assert!(parse_duration("s").is_err());
        assert_eq!(parse_rate("50/s").unwrap(), 50.0);
        assert_eq!(parse_rate("50").unwrap(), 50.0);
        assert_eq!(parse_rate("120/m").unwrap(), 2.0);
        assert!(parse_rate("0/s").is_err());
        assert!(parse_rate("5/h").is_err());
    }

    #[test]
    fn proc_files_are_parsed() {
        let stat = "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0";
        assert_eq!(stat_cpu_ticks(stat), Some(300));
        assert_eq!(
            status_kib("Name:\tx\nVmRSS:\t  5120 kB\n", "VmRSS:"),
            Some(5120)
        );
        let me = ProcSample::read(None).unwrap();
        assert!(me.rss_kib > 0 && me.hwm_kib >= me.rss_kib);
        assert!(open_files_limit().unwrap() > 0);
    }

    #[test]
    fn latencies_are_summarized_in_microseconds() {
        let mut h = latency_histogram();
        for us in 1..=100 {
            record(&mut h, us * 1_000);
        }
        let l = Latency::of(&h);
        assert_eq!(l.count, 100);
        assert!((l.p50_us - 50.0).abs() < 0.5, "{l:?}");
        assert!((l.p99_us - 99.0).abs() < 1.0, "{l:?}");
        assert_eq!(fmt_us(850.0), "850 µs");
        assert_eq!(fmt_us(1250.0), "1.25 ms");
        assert_eq!(fmt_us(2_100_000.0), "2.10 s");
    }
}
