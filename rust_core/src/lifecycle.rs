//! The signal lifecycle of one rule, for all of its groups in one pass: triggers in, signal spans
//! out.
//!
//! A *trigger* is a moment `t` at which a rule's case matched for one group; it covers the
//! group's events in `[t - window, t]`. Triggers of a group join the open signal while each comes
//! within `keep_alive` of the previous one and within `max_duration` (0: no limit) of the signal's
//! first event; otherwise the open signal closes and a new one starts. A signal counts each
//! distinct event id covered by any of its triggers once, takes the most severe case any of its
//! triggers matched (the earlier one on equal severity), and keeps the first `max_samples`
//! distinct events (by row) as samples. This is the definition in
//! `secmon/detect/lifecycle.py`, whose Python walk is the twin tests compare this one with.
//!
//! Why it is fast: one forward walk over the triggers and events of all groups (both sorted by
//! group, then time), binary searches only to find where a merged interval starts and ends, and
//! one reused hash set for distinct ids. The Python walk it replaces cost ~0.8 s on 13,782
//! signals of a 200k-event scan, nearly all of it per-signal numpy calls.

use std::collections::HashSet;

use crate::error::CoreError;

/// A rule's events: parallel columns sorted by `group`, then `ts` (ties in any order).
#[derive(Clone, Copy, Debug)]
pub struct Events<'a> {
    pub group: &'a [i64],
    pub ts: &'a [i64],
    /// Event id: the same event appears once per query it matched, under one id.
    pub id: &'a [i64],
}

/// A rule's triggers: parallel columns sorted by `group`, then `ts`; ties are walked in the
/// order given.
#[derive(Clone, Copy, Debug)]
pub struct Triggers<'a> {
    pub group: &'a [i64],
    pub ts: &'a [i64],
    /// Index of the case that matched, into [`Lifecycle::case_rank`].
    pub case: &'a [i64],
}

/// The rule options the walk reads, in milliseconds.
#[derive(Clone, Debug)]
pub struct Lifecycle {
    pub window_ms: i64,
    pub keep_alive_ms: i64,
    /// 0: a signal never closes for its duration alone.
    pub max_duration_ms: i64,
    pub max_samples: usize,
    /// Severity rank per case index: a higher rank replaces the signal's case.
    pub case_rank: Vec<i64>,
}

/// Signals as parallel columns; the samples of signal `k` are
/// `sample_rows[sample_offsets[k]..sample_offsets[k + 1]]`, row indices into the events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Spans {
    pub group: Vec<i64>,
    pub case: Vec<i64>,
    pub first_seen: Vec<i64>,
    pub last_seen: Vec<i64>,
    pub event_count: Vec<i64>,
    pub sample_offsets: Vec<i64>,
    pub sample_rows: Vec<i64>,
}

impl Spans {
    pub fn len(&self) -> usize {
        self.group.len()
    }

    pub fn is_empty(&self) -> bool {
        self.group.is_empty()
    }
}

impl Lifecycle {
    /// The spans of every signal the triggers raise over the events, in (group, time) order.
    pub fn spans(&self, events: Events<'_>, triggers: Triggers<'_>) -> Result<Spans, CoreError> {
        self.validate(events, triggers)?;
        let mut spans = Spans { sample_offsets: vec![0], ..Spans::default() };
        let mut seen: HashSet<i64> = HashSet::new();
        let mut event_cursor = 0usize;
        let mut t_lo = 0usize;
        while t_lo < triggers.group.len() {
            let group = triggers.group[t_lo];
            let t_hi = t_lo + triggers.group[t_lo..].partition_point(|&g| g == group);
            // Both columns are sorted by group: the group's events start at or after the cursor.
            let e_lo = event_cursor + events.group[event_cursor..].partition_point(|&g| g < group);
            let e_hi = e_lo + events.group[e_lo..].partition_point(|&g| g == group);
            event_cursor = e_hi;
            let group_events = GroupEvents { base: e_lo, ts: &events.ts[e_lo..e_hi], id: &events.id[e_lo..e_hi] };
            self.walk_group(group, group_events, triggers, t_lo..t_hi, &mut seen, &mut spans)?;
            t_lo = t_hi;
        }
        Ok(spans)
    }

    fn validate(&self, events: Events<'_>, triggers: Triggers<'_>) -> Result<(), CoreError> {
        let n = events.group.len();
        if events.ts.len() != n || events.id.len() != n {
            return Err(CoreError::invalid(format!(
                "event columns differ in length: group {n}, ts {}, id {}",
                events.ts.len(),
                events.id.len()
            )));
        }
        let m = triggers.group.len();
        if triggers.ts.len() != m || triggers.case.len() != m {
            return Err(CoreError::invalid(format!(
                "trigger columns differ in length: group {m}, ts {}, case {}",
                triggers.ts.len(),
                triggers.case.len()
            )));
        }
        for (what, value) in [
            ("window_ms", self.window_ms),
            ("keep_alive_ms", self.keep_alive_ms),
            ("max_duration_ms", self.max_duration_ms),
        ] {
            if value < 0 {
                return Err(CoreError::invalid(format!("{what} is {value}; it must be >= 0")));
            }
        }
        check_sorted("events", events.group, events.ts)?;
        check_sorted("triggers", triggers.group, triggers.ts)?;
        let cases = self.case_rank.len();
        if let Some(k) = triggers.case.iter().position(|&c| c < 0 || c as u64 >= cases as u64) {
            return Err(CoreError::invalid(format!(
                "trigger {k} has case {}; the rule has {cases} case(s)",
                triggers.case[k]
            )));
        }
        Ok(())
    }

    fn walk_group(
        &self,
        group: i64,
        events: GroupEvents<'_>,
        triggers: Triggers<'_>,
        range: std::ops::Range<usize>,
        seen: &mut HashSet<i64>,
        spans: &mut Spans,
    ) -> Result<(), CoreError> {
        let mut open: Option<OpenSignal> = None;
        for k in range {
            let (t, case) = (triggers.ts[k], triggers.case[k] as usize);
            let start = t.saturating_sub(self.window_ms);
            if let Some(sig) = open.as_mut() {
                let alive = t.saturating_sub(sig.last_trigger) <= self.keep_alive_ms;
                let young = self.max_duration_ms == 0 || t.saturating_sub(sig.first_seen) <= self.max_duration_ms;
                if alive && young {
                    sig.last_trigger = t;
                    if self.case_rank[case] > self.case_rank[sig.case] {
                        sig.case = case;
                    }
                    sig.cover(start, t, &events, seen, self.max_samples);
                    continue;
                }
                let done = open.take().expect("checked above");
                done.close(group, &events, seen, self.max_samples, spans);
            }
            let first = events.ts.partition_point(|&ts| ts < start);
            if first == events.ts.len() || events.ts[first] > t {
                return Err(CoreError::invalid(format!(
                    "trigger {k} (group {group}, t {t}) covers no event in [{start}, {t}]"
                )));
            }
            let mut sig = OpenSignal::new(t, events.ts[first], case);
            sig.cover(start, t, &events, seen, self.max_samples);
            open = Some(sig);
        }
        if let Some(sig) = open {
            sig.close(group, &events, seen, self.max_samples, spans);
        }
        Ok(())
    }
}

/// (group, ts) ascending, or an error naming the first row out of order.
fn check_sorted(what: &str, group: &[i64], ts: &[i64]) -> Result<(), CoreError> {
    let pairs = group.iter().zip(ts);
    if let Some(k) = pairs.clone().zip(pairs.skip(1)).position(|(a, b)| a > b) {
        return Err(CoreError::invalid(format!(
            "{what} are not sorted by (group, time): row {} is (group {}, t {}) after (group {}, t {})",
            k + 1,
            group[k + 1],
            ts[k + 1],
            group[k],
            ts[k]
        )));
    }
    Ok(())
}

/// One group's events; `base` turns a row of the slice into a row of all events.
struct GroupEvents<'a> {
    base: usize,
    ts: &'a [i64],
    id: &'a [i64],
}

/// A signal being built. Trigger intervals arrive with ascending starts, so they are merged as
/// they come: a pending interval grows while the next one overlaps it, and its rows are counted
/// when a disjoint one arrives or the signal closes. Rows are thus visited once, in order, and
/// the first row of each distinct id is the one kept, as in the Python twin.
struct OpenSignal {
    last_trigger: i64,
    first_seen: i64,
    case: usize,
    pending: Option<(i64, i64)>,
    /// Rows before this one are counted already (merged intervals are disjoint and ascending).
    next_row: usize,
    count: i64,
    first_row: Option<usize>,
    last_row: usize,
    samples: Vec<i64>,
}

impl OpenSignal {
    fn new(t: i64, first_seen: i64, case: usize) -> Self {
        OpenSignal {
            last_trigger: t,
            first_seen,
            case,
            pending: None,
            next_row: 0,
            count: 0,
            first_row: None,
            last_row: 0,
            samples: Vec::new(),
        }
    }

    fn cover(&mut self, start: i64, end: i64, events: &GroupEvents<'_>, seen: &mut HashSet<i64>, max_samples: usize) {
        match self.pending {
            Some((lo, hi)) if start <= hi => self.pending = Some((lo, hi.max(end))),
            _ => {
                self.flush(events, seen, max_samples);
                self.pending = Some((start, end));
            }
        }
    }

    /// Count the rows of the pending interval.
    fn flush(&mut self, events: &GroupEvents<'_>, seen: &mut HashSet<i64>, max_samples: usize) {
        let Some((lo, hi)) = self.pending.take() else { return };
        let rest = &events.ts[self.next_row..];
        let first = self.next_row + rest.partition_point(|&ts| ts < lo);
        let end = self.next_row + rest.partition_point(|&ts| ts <= hi);
        for row in first..end {
            if seen.insert(events.id[row]) {
                self.count += 1;
                self.first_row.get_or_insert(row);
                self.last_row = row;
                if self.samples.len() < max_samples {
                    self.samples.push((events.base + row) as i64);
                }
            }
        }
        self.next_row = end.max(self.next_row);
    }

    fn close(mut self, group: i64, events: &GroupEvents<'_>, seen: &mut HashSet<i64>, max_samples: usize, spans: &mut Spans) {
        self.flush(events, seen, max_samples);
        seen.clear();
        // A trigger always covers an event (checked when the signal opened), so a row was counted.
        let first_row = self.first_row.expect("an open signal covers at least one event");
        spans.group.push(group);
        spans.case.push(self.case as i64);
        spans.first_seen.push(events.ts[first_row]);
        spans.last_seen.push(events.ts[self.last_row]);
        spans.event_count.push(self.count);
        spans.sample_rows.extend_from_slice(&self.samples);
        spans.sample_offsets.push(spans.sample_rows.len() as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lifecycle(window_ms: i64, keep_alive_ms: i64, max_duration_ms: i64) -> Lifecycle {
        Lifecycle { window_ms, keep_alive_ms, max_duration_ms, max_samples: 2, case_rank: vec![1, 3, 3] }
    }

    /// (events (group, ts, id), triggers (group, ts, case)) -> spans.
    fn run(l: &Lifecycle, events: &[(i64, i64, i64)], triggers: &[(i64, i64, i64)]) -> Result<Spans, CoreError> {
        let col = |rows: &[(i64, i64, i64)], k: usize| -> Vec<i64> {
            rows.iter().map(|r| [r.0, r.1, r.2][k]).collect()
        };
        let (eg, et, ei) = (col(events, 0), col(events, 1), col(events, 2));
        let (tg, tt, tc) = (col(triggers, 0), col(triggers, 1), col(triggers, 2));
        l.spans(Events { group: &eg, ts: &et, id: &ei }, Triggers { group: &tg, ts: &tt, case: &tc })
    }

    #[test]
    fn public_types_are_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Lifecycle>();
        assert_send_sync::<Spans>();
        assert_send_sync::<Events<'static>>();
        assert_send_sync::<Triggers<'static>>();
    }

    #[test]
    fn triggers_within_keep_alive_make_one_signal_and_count_each_event_once() {
        // Event 7 matched two queries (two rows); windows [0,10] and [5,15] overlap.
        let events = [(0, 0, 1), (0, 5, 7), (0, 5, 7), (0, 15, 9)];
        let spans = run(&lifecycle(10, 10, 0), &events, &[(0, 10, 0), (0, 15, 1)]).unwrap();
        assert_eq!(spans.group, vec![0]);
        assert_eq!(spans.case, vec![1]);
        assert_eq!((spans.first_seen[0], spans.last_seen[0], spans.event_count[0]), (0, 15, 3));
        assert_eq!(spans.sample_offsets, vec![0, 2]);
        assert_eq!(spans.sample_rows, vec![0, 1]);
    }

    #[test]
    fn keep_alive_exactly_equal_joins_one_past_it_splits() {
        let events = [(0, 0, 1), (0, 10, 2), (0, 21, 3)];
        let spans = run(&lifecycle(0, 10, 0), &events, &[(0, 0, 0), (0, 10, 0), (0, 21, 0)]).unwrap();
        assert_eq!(spans.first_seen, vec![0, 21]);
        assert_eq!(spans.event_count, vec![2, 1]);
    }

    #[test]
    fn max_duration_counts_from_the_first_event_not_the_first_trigger() {
        // Window 5: the first trigger at 10 covers the event at 5; 15 - 5 = 10 = max duration joins,
        // 16 - 5 = 11 starts a new signal.
        let events = [(0, 5, 1), (0, 10, 2), (0, 15, 3), (0, 16, 4)];
        let spans = run(&lifecycle(5, 100, 10), &events, &[(0, 10, 0), (0, 15, 0), (0, 16, 0)]).unwrap();
        assert_eq!(spans.first_seen, vec![5, 15]);
        assert_eq!(spans.event_count, vec![3, 2]);
    }

    #[test]
    fn equal_severity_keeps_the_earlier_case() {
        let events = [(0, 0, 1), (0, 1, 2)];
        let spans = run(&lifecycle(0, 10, 0), &events, &[(0, 0, 2), (0, 1, 1)]).unwrap();
        assert_eq!(spans.case, vec![2]);
    }

    #[test]
    fn groups_without_triggers_are_skipped_and_rows_stay_global() {
        let events = [(0, 0, 1), (1, 0, 2), (1, 3, 3), (2, 9, 4)];
        let spans = run(&lifecycle(5, 0, 0), &events, &[(1, 3, 0), (2, 9, 0)]).unwrap();
        assert_eq!(spans.group, vec![1, 2]);
        assert_eq!(spans.event_count, vec![2, 1]);
        assert_eq!(spans.sample_rows, vec![1, 2, 3]);
        assert_eq!(spans.sample_offsets, vec![0, 2, 3]);
    }

    #[test]
    fn bad_input_is_an_error_naming_the_value() {
        let l = lifecycle(0, 0, 0);
        let unsorted = run(&l, &[(0, 5, 1), (0, 1, 2)], &[(0, 5, 0)]).unwrap_err().to_string();
        assert!(unsorted.contains("events are not sorted") && unsorted.contains("row 1"), "{unsorted}");
        let case = run(&l, &[(0, 5, 1)], &[(0, 5, 3)]).unwrap_err().to_string();
        assert!(case.contains("case 3") && case.contains("3 case(s)"), "{case}");
        let uncovered = run(&l, &[(0, 5, 1)], &[(0, 6, 0)]).unwrap_err().to_string();
        assert!(uncovered.contains("covers no event in [6, 6]"), "{uncovered}");
        let negative = run(&lifecycle(-1, 0, 0), &[], &[]).unwrap_err().to_string();
        assert!(negative.contains("window_ms is -1"), "{negative}");
    }

    #[test]
    fn no_triggers_no_spans() {
        let spans = run(&lifecycle(0, 0, 0), &[(0, 1, 1)], &[]).unwrap();
        assert!(spans.is_empty());
        assert_eq!(spans.sample_offsets, vec![0]);
    }
}
