//! The end of a soak run: what failed, the verdict line, the summary printed and written.

use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::verdict::{self, Check, Sample};
use super::{Outcome, PATTERN, SoakArgs, churn, subscribers};

/// The most rows (about) of the summary's samples table: a one-hour run samples 360 times.
const SUMMARY_ROWS: usize = 36;

/// Judges the run, prints the summary (the verdict on its last line) and writes the files
/// asked for; the exit status is the verdict's.
pub(super) fn finish(
    args: &SoakArgs,
    plan: subscribers::Plan,
    warmup: Duration,
    outcome: &Outcome,
) -> Result<ExitCode, String> {
    let (checks, mut failures) = match verdict::checks(&outcome.samples, &args.bounds.bounds()) {
        Ok(checks) => (checks, Vec::new()),
        Err(e) => (Vec::new(), vec![e]),
    };
    failures.extend(count_failures(outcome));
    failures.extend(checks.iter().filter(|c| !c.ok()).map(Check::describe));
    let line = match failures.is_empty() {
        true => format!("soak: PASS: {}", pass_summary(args, outcome, &checks)),
        false => format!("soak: FAIL: {}", failures.join("; ")),
    };
    let text = summary(args, plan, warmup, outcome, &checks, &line);
    print!("{text}");
    if let Some(path) = &args.csv {
        std::fs::write(path, verdict::csv(&outcome.samples))
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    if let Some(path) = &args.summary {
        std::fs::write(path, &text).map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    Ok(if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The failures that are counts: errors, losses, repeats, streams ended.
fn count_failures(o: &Outcome) -> Vec<String> {
    let mut out = Vec::new();
    let t = &o.tallies;
    let first = |e: Option<String>| e.map(|e| format!(" (first: {e})")).unwrap_or_default();
    if o.attempted == 0 {
        out.push("nothing was published".to_string());
    }
    let failed = t.publish.errors.count();
    if failed > 0 {
        out.push(format!(
            "{failed} publish(es) failed{}",
            first(t.publish.errors.first())
        ));
    }
    let missing: u64 = o
        .subscribers
        .iter()
        .map(|&(_, _, received)| o.attempted.saturating_sub(received))
        .sum();
    if missing > 0 {
        let short = o.subscribers.iter().filter(|s| s.2 < o.attempted).count();
        out.push(format!(
            "{missing} event(s) missed by {short} long-lived subscriber(s)"
        ));
    }
    let repeats = t.subscribers.repeats.load(Ordering::Relaxed);
    if repeats > 0 {
        out.push(format!(
            "{repeats} event(s) received twice or out of order by long-lived subscribers"
        ));
    }
    let errors = t.subscribers.errors.count();
    if errors > 0 {
        out.push(format!(
            "{errors} long-lived subscriber error(s){}",
            first(t.subscribers.errors.first())
        ));
    }
    let churn = t.churn.errors.count();
    if churn > 0 {
        out.push(format!(
            "{churn} churn error(s){}",
            first(t.churn.errors.first())
        ));
    }
    out
}

/// The growth of each judged figure, for the verdict line of a passing run.
fn pass_summary(args: &SoakArgs, o: &Outcome, checks: &[Check]) -> String {
    let growth: Vec<String> = checks
        .iter()
        .map(|c| {
            let d = c.end - c.base;
            match c.unit {
                verdict::Unit::Mib => format!("{} {d:+.1} MiB", c.name),
                verdict::Unit::Count => format!("{} {d:+.0}", c.name),
                verdict::Unit::Micros => format!(
                    "{} {} -> {}",
                    c.name,
                    crate::stats::fmt_us(c.base),
                    crate::stats::fmt_us(c.end)
                ),
            }
        })
        .collect();
    format!(
        "{} replicas, {:.1} min, {} events, each received by all {} long-lived subscribers; {}",
        args.replicas.len(),
        args.duration.as_secs_f64() / 60.0,
        o.attempted,
        o.subscribers.len(),
        growth.join(", ")
    )
}

/// The settings, samples, checks, totals and verdict, as Markdown.
fn summary(
    args: &SoakArgs,
    plan: subscribers::Plan,
    warmup: Duration,
    o: &Outcome,
    checks: &[Check],
    line: &str,
) -> String {
    let mut out = String::from("## mcpbus-bench soak\n\n");
    if let Some(c) = &args.conditions {
        out += &format!("{c}\n\n");
    }
    out += &settings(args, plan, warmup);
    out += "\n";
    let shown = verdict::shown(&o.samples, SUMMARY_ROWS).len();
    if shown < o.samples.len() {
        out += &format!(
            "{shown} of the {} samples (one in {}, the last of the warm-up and the last; all \
             of them in the CSV):\n\n",
            o.samples.len(),
            o.samples.len().div_ceil(SUMMARY_ROWS)
        );
    }
    out += &verdict::table(&o.samples, SUMMARY_ROWS);
    out += "\n";
    out += &verdict::checks_table(checks);
    out += "\n";
    out += &totals(o);
    out += &format!("\n{line}\n");
    out
}

/// What was run, in a paragraph.
fn settings(args: &SoakArgs, plan: subscribers::Plan, warmup: Duration) -> String {
    let b = &args.bounds;
    format!(
        "{} replicas, {:.1} min of publishing (the first {:.0} s a warm-up, shown but not \
         judged), a sample every {:.0} s. {} events/s over {} topics (`soak/t0`...), through \
         each replica in turn. Long-lived subscribers of `{PATTERN}` on each replica: {} \
         session(s) with their GET stream, {} push stream(s), {} poller(s). Churn on each \
         replica: one subscriber every {:?} (a session ended with DELETE, a session abandoned, \
         a push stream dropped, in turn), {} events each. Bounds from the end of the warm-up \
         to the end: RSS +{}% +{} MiB, fds +{}, Redis used_memory +{}% +{} MiB, Redis keys \
         +{}% +{}, p99 ×{} (or +{:?}).\n",
        args.replicas.len(),
        args.duration.as_secs_f64() / 60.0,
        warmup.as_secs_f64(),
        args.sample_every.as_secs_f64(),
        args.rate,
        args.topics,
        plan.sessions,
        plan.push_streams,
        plan.pollers,
        args.churn_every,
        args.churn_events,
        b.max_rss_growth_pct,
        b.max_rss_growth_mib,
        b.max_fd_growth,
        b.max_redis_growth_pct,
        b.max_redis_growth_mib,
        b.max_keys_growth_pct,
        b.max_keys_growth,
        b.max_p99_factor,
        b.p99_floor
    )
}

/// Totals: publishes, what each kind of long-lived subscriber received, churn, replica CPU.
fn totals(o: &Outcome) -> String {
    let t = &o.tallies;
    let mut out = format!(
        "Published {} events ({} acknowledged, {} failed).",
        o.attempted,
        t.publish.acked.load(Ordering::Relaxed),
        t.publish.errors.count()
    );
    for kind in [
        subscribers::Kind::GetStream,
        subscribers::Kind::PushStream,
        subscribers::Kind::Poller,
    ] {
        let of: Vec<u64> = o
            .subscribers
            .iter()
            .filter(|s| s.0 == kind)
            .map(|s| s.2)
            .collect();
        if let (Some(lo), Some(hi)) = (of.iter().min(), of.iter().max()) {
            out += &format!(
                " {} × {}: received {lo} to {hi} each.",
                of.len(),
                kind.name()
            );
        }
    }
    out += &format!(
        " Skipped {}, repeated {}, streams ended {}.",
        t.subscribers.skipped.load(Ordering::Relaxed),
        t.subscribers.repeats.load(Ordering::Relaxed),
        t.subscribers.ended.load(Ordering::Relaxed)
    );
    let churned: Vec<String> = churn::Kind::ALL
        .iter()
        .zip(&t.churn.done)
        .map(|(k, n)| format!("{} {}", n.load(Ordering::Relaxed), k.name()))
        .collect();
    out += &format!(
        " Churn: {}; {} error(s).",
        churned.join(", "),
        t.churn.errors.count()
    );
    out += &cpu(&o.samples);
    out.push('\n');
    out
}

/// Each replica's CPU over the judged span, as a share of one core.
fn cpu(samples: &[Sample]) -> String {
    let judged: Vec<&Sample> = samples.iter().filter(|s| !s.warmup).collect();
    let (Some(a), Some(b)) = (judged.first(), judged.last()) else {
        return String::new();
    };
    let span = b.t_secs - a.t_secs;
    if span <= 0.0 {
        return String::new();
    }
    let shares: Vec<String> = a
        .replicas
        .iter()
        .zip(&b.replicas)
        .enumerate()
        .filter_map(|(i, (x, y))| {
            let used = y.cpu_secs? - x.cpu_secs?;
            Some(format!(
                "{} {:.1} %",
                verdict::letter(i),
                used / span * 100.0
            ))
        })
        .collect();
    match shares.is_empty() {
        true => String::new(),
        false => format!(" Replica CPU over the judged span: {}.", shares.join(", ")),
    }
}
