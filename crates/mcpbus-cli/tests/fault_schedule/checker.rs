//! The checker: what every subscriber received against what the publishers saw acknowledged.
//! Every acknowledged event reaches every subscriber (all of them subscribed before the first
//! publish) exactly once, in log order, with the event id and cursor the publisher was given;
//! an unacknowledged publish may arrive or not, but never twice; nothing else arrives.

use std::collections::{HashMap, HashSet};

use crate::clients::{Ack, Delivered};

/// The counts of one run; `ok()` when nothing was lost, repeated, reordered or invented.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    pub(crate) published: usize,
    pub(crate) acknowledged: usize,
    pub(crate) delivered: usize,
    /// Acknowledged events a subscriber never received (summed over subscribers).
    pub(crate) lost: usize,
    /// Receptions of an event a subscriber had already received.
    pub(crate) duplicated: usize,
    /// Events received after one that comes later in the log.
    pub(crate) out_of_order: usize,
    /// Events whose id or cursor differs from the acknowledgement, or that nobody published.
    pub(crate) mismatched: usize,
    /// Unacknowledged publishes that arrived anyway (allowed), summed over subscribers.
    pub(crate) unacked_delivered: usize,
    /// The first few problems, for the failure message.
    pub(crate) examples: Vec<String>,
}

impl Counts {
    pub(crate) fn ok(&self) -> bool {
        self.lost == 0 && self.duplicated == 0 && self.out_of_order == 0 && self.mismatched == 0
    }

    fn note(&mut self, what: String) {
        if self.examples.len() < 10 {
            self.examples.push(what);
        }
    }

    /// The line the acceptance asks for.
    pub(crate) fn line(&self) -> String {
        format!(
            "published={} acknowledged={} delivered={} lost={} duplicated={} out_of_order={} \
             mismatched={} unacked_delivered={}",
            self.published,
            self.acknowledged,
            self.delivered,
            self.lost,
            self.duplicated,
            self.out_of_order,
            self.mismatched,
            self.unacked_delivered
        )
    }
}

/// A cursor as numbers, for ordering (`MS-SEQ`).
pub(crate) fn cursor_key(cursor: &str) -> Vec<u64> {
    cursor
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap_or(u64::MAX))
        .collect()
}

/// Checks every subscriber's events (`(label, events)`) against the publishers' record.
pub(crate) fn check(
    attempted: &HashSet<String>,
    acked: &[Ack],
    subscribers: &[(String, Vec<Delivered>)],
) -> Counts {
    let by_key: HashMap<&str, &Ack> = acked.iter().map(|a| (a.key.as_str(), a)).collect();
    let mut counts = Counts {
        published: attempted.len(),
        acknowledged: acked.len(),
        ..Counts::default()
    };
    for (label, events) in subscribers {
        counts.delivered += events.len();
        check_one(label, events, attempted, &by_key, &mut counts);
    }
    counts
}

fn check_one(
    label: &str,
    events: &[Delivered],
    attempted: &HashSet<String>,
    by_key: &HashMap<&str, &Ack>,
    counts: &mut Counts,
) {
    let mut seen: HashSet<&str> = HashSet::new();
    let mut last: Option<(Vec<u64>, &str)> = None;
    for d in events {
        if !seen.insert(d.key.as_str()) {
            counts.duplicated += 1;
            counts.note(format!(
                "{label}: {} ({}) received twice",
                d.key, d.event_id
            ));
            continue;
        }
        let ack = by_key.get(d.key.as_str());
        match ack {
            Some(a) if a.event_id != d.event_id => {
                counts.mismatched += 1;
                counts.note(format!(
                    "{label}: {} has id {}, acked {}",
                    d.key, d.event_id, a.event_id
                ));
            }
            Some(a) if d.cursor.as_ref().is_some_and(|c| *c != a.cursor) => {
                counts.mismatched += 1;
                counts.note(format!(
                    "{label}: {} has cursor {:?}, acked {}",
                    d.key, d.cursor, a.cursor
                ));
            }
            Some(_) => {}
            None if attempted.contains(&d.key) => counts.unacked_delivered += 1,
            None => {
                counts.mismatched += 1;
                counts.note(format!("{label}: {} was never published", d.key));
            }
        }
        // The event's place in the log: its own cursor, else the acknowledged one.
        let place = d.cursor.as_deref().or(ack.map(|a| a.cursor.as_str()));
        if let Some(place) = place {
            let key = cursor_key(place);
            if let Some((prev, prev_key)) = &last
                && *prev >= key
            {
                counts.out_of_order += 1;
                counts.note(format!("{label}: {} ({place}) after {prev_key}", d.key));
            }
            last = Some((key, d.key.as_str()));
        }
    }
    for a in by_key.values() {
        if !seen.contains(a.key.as_str()) {
            counts.lost += 1;
            counts.note(format!(
                "{label}: lost {} ({} at {})",
                a.key, a.event_id, a.cursor
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(key: &str, cursor: &str) -> Ack {
        Ack {
            key: key.into(),
            event_id: format!("id-{key}"),
            cursor: cursor.into(),
        }
    }

    fn got(key: &str, cursor: Option<&str>) -> Delivered {
        Delivered {
            key: key.into(),
            event_id: format!("id-{key}"),
            cursor: cursor.map(str::to_owned),
        }
    }

    #[test]
    fn the_checker_sees_loss_repeats_disorder_and_strangers() {
        let attempted: HashSet<String> = ["a", "b", "c", "d"].map(String::from).into();
        let acked = [ack("a", "1-0"), ack("b", "1-1"), ack("c", "2-0")];
        let good = vec![
            got("a", Some("1-0")),
            got("d", None),
            got("b", None),
            got("c", None),
        ];
        let counts = check(&attempted, &acked, &[("good".into(), good)]);
        assert!(counts.ok(), "{counts:?}");
        assert_eq!(counts.unacked_delivered, 1);
        let bad = vec![
            got("b", Some("1-1")),
            got("a", None),
            got("b", None),
            got("x", None),
        ];
        let counts = check(&attempted, &acked, &[("bad".into(), bad)]);
        assert_eq!(
            (
                counts.lost,
                counts.duplicated,
                counts.out_of_order,
                counts.mismatched
            ),
            (1, 1, 1, 1),
            "{counts:?}"
        );
    }
}
