//! Event ids and `Last-Event-ID` handling of the in-memory event store
//! (`mcpbus::store::MemoryEventStore`), through its public API only.
//!
//! The input is text. The first line is the number of events kept per stream (modulo 8; the
//! store keeps at least one). Every other line is one operation:
//! `a SESSION STREAM` appends a message, `p SESSION STREAM` a priming event (no message),
//! `l SESSION ID` locates an id, `r SESSION STREAM ID MAX` reads after an id (`-`: from the
//! start), `t SESSION STREAM` asks for the last id, `b ID ID` counts the events between two ids,
//! `x SESSION` forgets a session. An `ID` of `$K` is the K-th id the store issued and `@K…` is
//! that id's epoch followed by the rest of the word, so the fuzzer can forge ids of live
//! sessions; anything else is taken literally.
//!
//! A model keeps what the store must hold. Properties: issued ids have the documented form
//! `EPOCH-STREAM-SEQ` (epoch fixed per session, stream numbered by first use, sequence numbers
//! contiguous per stream); every answer is exactly the model's: `Malformed` for an id that is
//! not three numbers, `Unknown` for an id this session never issued (another session's, a
//! forgotten one's, or one past the end), `Expired` when events after it were trimmed, and
//! otherwise exactly the stored events after it, so no read ever returns another session's
//! events. Nothing panics.
#![no_main]

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;
use futures::executor::block_on;
use libfuzzer_sys::fuzz_target;
use mcpbus::store::{EventStore, MemoryEventStore, MemoryEventStoreConfig, StoreError};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.lines();
    let keep = lines
        .next()
        .and_then(|l| l.trim().parse::<usize>().ok())
        .unwrap_or(3)
        % 8;
    let mut run = Run::new(keep);
    for line in lines.take(64) {
        run.step(line);
    }
});

/// One stream as the store must hold it.
struct StreamModel {
    name: String,
    /// Kept events: sequence number and message.
    events: VecDeque<(u64, Option<Bytes>)>,
    next_seq: u64,
    /// The highest sequence number dropped to respect the bound.
    trimmed_through: Option<u64>,
}

/// One session: its epoch (learned from the first id) and streams, numbered by first use.
#[derive(Default)]
struct SessionModel {
    epoch: Option<u32>,
    streams: Vec<StreamModel>,
}

struct Run {
    store: MemoryEventStore,
    keep: usize,
    sessions: HashMap<String, SessionModel>,
    issued: Vec<String>,
}

/// Parses one number of an id the way the documented id form allows: an optional `+` (as
/// Rust's integer parsing accepts), then digits of the radix.
fn number(part: &str, radix: u32, max: u128) -> Option<u128> {
    let digits = part.strip_prefix('+').unwrap_or(part);
    if digits.is_empty() {
        return None;
    }
    digits.chars().try_fold(0u128, |acc, c| {
        let d = u128::from(c.to_digit(radix)?);
        acc.checked_mul(u128::from(radix))?
            .checked_add(d)
            .filter(|v| *v <= max)
    })
}

/// `EPOCH-STREAM-SEQ`: hex `u32`, decimal index, decimal `u64`.
fn parse_id(id: &str) -> Option<(u32, usize, u64)> {
    let mut parts = id.splitn(3, '-');
    let epoch = number(parts.next()?, 16, u32::MAX.into())?;
    let stream = number(parts.next()?, 10, usize::MAX as u128)?;
    let seq = number(parts.next()?, 10, u64::MAX.into())?;
    Some((epoch as u32, stream as usize, seq as u64))
}

/// What the store must answer for an id: an error, or the session's stream it names.
enum Verdict {
    Malformed,
    Unknown,
    Stream(usize, u64),
}

impl Run {
    fn new(keep: usize) -> Self {
        let config = MemoryEventStoreConfig {
            max_events_per_stream: keep,
            ..MemoryEventStoreConfig::default()
        };
        Run {
            store: MemoryEventStore::new(config),
            keep: keep.max(1),
            sessions: HashMap::new(),
            issued: Vec::new(),
        }
    }

    /// Resolves `$K` and `@K…` references to issued ids.
    fn id(&self, word: &str) -> String {
        let pick = |digits: &str| {
            let k: usize = digits.parse().ok()?;
            (!self.issued.is_empty()).then(|| &self.issued[k % self.issued.len()])
        };
        if let Some(id) = word.strip_prefix('$').and_then(pick) {
            return id.clone();
        }
        if let Some(rest) = word.strip_prefix('@') {
            let split = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            if let Some(id) = pick(&rest[..split]) {
                let epoch = id.split('-').next().unwrap_or_default();
                return format!("{epoch}{}", &rest[split..]);
            }
        }
        word.to_owned()
    }

    fn step(&mut self, line: &str) {
        let words: Vec<&str> = line.split(' ').collect();
        match words.as_slice() {
            ["a", session, stream] => {
                self.append(session, stream, Some(Bytes::from(line.to_owned())))
            }
            ["p", session, stream] => self.append(session, stream, None),
            ["l", session, id] => self.locate(session, &self.id(id)),
            ["r", session, stream, id, max] => {
                let after = (*id != "-").then(|| self.id(id));
                let max = max.parse::<usize>().unwrap_or(10) % 16;
                self.read(session, stream, after.as_deref(), max);
            }
            ["t", session, stream] => self.last(session, stream),
            ["b", a, b] => self.between(&self.id(a), &self.id(b)),
            ["x", session] => {
                block_on(self.store.remove_session(session));
                self.sessions.remove(*session);
            }
            _ => {}
        }
    }

    fn append(&mut self, session: &str, stream: &str, message: Option<Bytes>) {
        let id = block_on(self.store.append(session, stream, message.clone())).expect("appends");
        let model = self.sessions.entry(session.to_owned()).or_default();
        let (epoch, index, seq) = parse_id(&id).unwrap_or_else(|| panic!("issued {id:?}"));
        assert_eq!(
            *model.epoch.get_or_insert(epoch),
            epoch,
            "epoch of {session:?} changed"
        );
        let at = match model.streams.iter().position(|s| s.name == stream) {
            Some(at) => at,
            None => {
                model.streams.push(StreamModel {
                    name: stream.to_owned(),
                    events: VecDeque::new(),
                    next_seq: 1,
                    trimmed_through: None,
                });
                model.streams.len() - 1
            }
        };
        let s = &mut model.streams[at];
        assert_eq!((index, seq), (at, s.next_seq), "issued {id:?}");
        assert_eq!(
            id,
            format!("{epoch:08x}-{index}-{seq}"),
            "not in canonical form"
        );
        s.next_seq += 1;
        s.events.push_back((seq, message));
        while s.events.len() > self.keep {
            s.trimmed_through = s.events.pop_front().map(|(q, _)| q);
        }
        self.issued.push(id);
    }

    /// What an id means for `session`, per the documented rules.
    fn verdict(&self, session: &str, id: &str) -> Verdict {
        let Some((epoch, index, seq)) = parse_id(id) else {
            return Verdict::Malformed;
        };
        let Some(model) = self.sessions.get(session) else {
            return Verdict::Unknown;
        };
        match model.streams.get(index) {
            // Sequence numbers start at 1: 0 was never issued.
            Some(s) if model.epoch == Some(epoch) && seq >= 1 && seq < s.next_seq => {
                Verdict::Stream(index, seq)
            }
            _ => Verdict::Unknown,
        }
    }

    fn locate(&self, session: &str, id: &str) {
        let got = block_on(self.store.locate(session, id));
        match (self.verdict(session, id), got) {
            (Verdict::Malformed, Err(StoreError::Malformed(e)))
            | (Verdict::Unknown, Err(StoreError::Unknown(e))) => assert_eq!(e, id),
            (Verdict::Stream(index, _), Ok(position)) => {
                let model = &self.sessions[session];
                assert_eq!(position.stream, model.streams[index].name);
                assert_eq!(position.event_id, id);
            }
            (_, got) => panic!("locate({session:?}, {id:?}): {got:?}"),
        }
    }

    fn read(&self, session: &str, stream: &str, after: Option<&str>, max: usize) {
        let got = block_on(self.store.read_after(session, stream, after, max));
        let model = self.sessions.get(session);
        let at = model.and_then(|m| m.streams.iter().position(|s| s.name == stream));
        let expected = match (after, at) {
            (Some(id), _) if parse_id(id).is_none() => Err(Verdict::Malformed),
            (None, None) => Ok(Vec::new()),
            (Some(_), None) => Err(Verdict::Unknown),
            (after, Some(at)) => self.expected_read(session, at, after, max),
        };
        match (expected, got) {
            (Ok(events), Ok(got)) => {
                let got: Vec<_> = got.into_iter().map(|e| (e.id, e.message)).collect();
                assert_eq!(
                    got, events,
                    "read_after({session:?}, {stream:?}, {after:?})"
                );
            }
            (Err(Verdict::Malformed), Err(StoreError::Malformed(e)))
            | (Err(Verdict::Unknown), Err(StoreError::Unknown(e)))
            | (Err(Verdict::Stream(..)), Err(StoreError::Expired(e))) => {
                assert_eq!(Some(e.as_str()), after)
            }
            (_, got) => panic!("read_after({session:?}, {stream:?}, {after:?}): {got:?}"),
        }
    }

    /// The events of stream `at` after `after`; `Err(Stream(..))` stands for `Expired`.
    fn expected_read(
        &self,
        session: &str,
        at: usize,
        after: Option<&str>,
        max: usize,
    ) -> Result<Vec<(String, Option<Bytes>)>, Verdict> {
        let model = &self.sessions[session];
        let s = &model.streams[at];
        let from = match after.map(|id| self.verdict(session, id)) {
            None => 0,
            Some(Verdict::Stream(index, seq)) if index == at => {
                if s.trimmed_through.is_some_and(|t| t > seq) {
                    return Err(Verdict::Stream(index, seq));
                }
                seq
            }
            Some(Verdict::Malformed) => return Err(Verdict::Malformed),
            Some(_) => return Err(Verdict::Unknown),
        };
        let epoch = model.epoch.expect("a session with streams has an epoch");
        Ok(s.events
            .iter()
            .filter(|(seq, _)| *seq > from)
            .take(max)
            .map(|(seq, m)| (format!("{epoch:08x}-{at}-{seq}"), m.clone()))
            .collect())
    }

    fn last(&self, session: &str, stream: &str) {
        let got = block_on(self.store.last_id(session, stream)).expect("in memory");
        let expected = self.sessions.get(session).and_then(|m| {
            let (at, s) = m
                .streams
                .iter()
                .enumerate()
                .find(|(_, s)| s.name == stream)?;
            let (seq, _) = s.events.back()?;
            Some(format!("{:08x}-{at}-{seq}", m.epoch?))
        });
        assert_eq!(got, expected, "last_id({session:?}, {stream:?})");
    }

    fn between(&self, a: &str, b: &str) {
        let expected = match (parse_id(a), parse_id(b)) {
            (Some((ea, sa, qa)), Some((eb, sb, qb))) if (ea, sa) == (eb, sb) && qb > qa => {
                Some(qb - qa - 1)
            }
            _ => None,
        };
        assert_eq!(
            self.store.events_between(a, b),
            expected,
            "between {a:?} and {b:?}"
        );
    }
}
