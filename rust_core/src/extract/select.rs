//! Some rows and columns of an [`Extracted`] batch, copied out into buffers of their own.
//!
//! Why: a rule pack keeps about half the events of a busy log and reads a handful of the paths it
//! extracted (the rest only decide flags). Filtering the whole table in Polars gathered every
//! column, and the kept strings still pointed into the text buffers of every row: holding a few
//! rows held the whole chunk's text, so the engine copied them out again through an in-memory
//! Arrow IPC round trip (measured at 1M events: 0.24 s for that copy alone). Gathering here
//! copies each kept string once, only for the columns asked for.

use std::sync::Arc;

use super::{view_of, Column, ColumnValues, Extracted, Strings, VIEW_LIMIT};
use crate::predicate::Flag;

/// Status of a row the extractor reproduced exactly (`__status` 0).
const STATUS_OK: u8 = 0;

impl Extracted {
    /// Rows of status ok for which some flag is set, ascending.
    pub fn matched_rows(&self) -> Vec<u32> {
        let mut any = vec![0u8; self.lines.len().div_ceil(8)];
        for flag in &self.flags {
            for (a, b) in any.iter_mut().zip(&flag.bits) {
                *a |= b;
            }
        }
        (0..self.lines.len())
            .filter(|&r| self.status[r] == STATUS_OK && any[r / 8] & (1 << (r % 8)) != 0)
            .map(|r| r as u32)
            .collect()
    }

    /// Rows `rows` (in that order, each less than the row count) of the path columns `columns`
    /// and the flags `flags` (indices into `self.columns` / `self.flags`), with their lines and
    /// statuses.
    pub fn select(&self, rows: &[u32], columns: &[usize], flags: &[usize]) -> Extracted {
        Extracted {
            columns: columns.iter().map(|&c| self.columns[c].gather(rows)).collect(),
            lines: rows.iter().map(|&r| self.lines[r as usize]).collect(),
            status: rows.iter().map(|&r| self.status[r as usize]).collect(),
            flags: flags
                .iter()
                .map(|&f| {
                    let flag = &self.flags[f];
                    Flag { name: flag.name.clone(), bits: gather_bits(&flag.bits, rows) }
                })
                .collect(),
        }
    }
}

/// Bit `rows[k]` of `bits` as bit `k` (Arrow's LSB-first bitmaps). Eight rows make one output
/// byte, without a branch per bit (a flag's bits are as unpredictable as its matches).
fn gather_bits(bits: &[u8], rows: &[u32]) -> Vec<u8> {
    let bit = |r: u32| (bits[r as usize / 8] >> (r % 8)) & 1;
    rows.chunks(8).map(|eight| eight.iter().enumerate().fold(0u8, |byte, (k, &r)| byte | (bit(r) << k))).collect()
}

impl Column {
    /// Rows `rows` of this column, the text copied into new buffers.
    fn gather(&self, rows: &[u32]) -> Column {
        let validity = self.validity.as_ref().map(|bits| gather_bits(bits, rows));
        let null_count = rows.iter().filter(|&&r| !self.is_valid(r as usize)).count();
        let validity = validity.filter(|_| null_count > 0);
        let values = match &self.values {
            ColumnValues::Scalar(strings) => {
                // A null row's value is the empty string (what the extractor leaves there too).
                let items = || rows.iter().map(|&r| if self.is_valid(r as usize) { strings.bytes(r as usize) } else { b"" });
                ColumnValues::Scalar(Strings::gathered(items))
            }
            ColumnValues::List { list_offsets, items } => {
                let mut offsets = Vec::with_capacity(rows.len() + 1);
                offsets.push(0i32);
                let mut count = 0i32;
                for &r in rows {
                    let r = r as usize;
                    count += list_offsets[r + 1] - list_offsets[r];
                    offsets.push(count);
                }
                let item_rows = || rows.iter().flat_map(|&r| list_offsets[r as usize]..list_offsets[r as usize + 1]);
                ColumnValues::List { list_offsets: offsets, items: Strings::gathered(|| item_rows().map(|k| items.bytes(k as usize))) }
            }
        };
        Column { name: self.name.clone(), rows: rows.len(), null_count, validity, values }
    }
}

impl Strings {
    /// The strings `items()` gives, in one buffer of their own (views while their text fits a
    /// view's offset; `items` is called twice: once to size the buffer).
    fn gathered<'a, I: Iterator<Item = &'a [u8]>>(items: impl Fn() -> I) -> Strings {
        let (count, text) = items().fold((0usize, 0usize), |(n, t), s| (n + 1, t + if s.len() > 12 { s.len() } else { 0 }));
        if text <= VIEW_LIMIT {
            let mut views = Vec::with_capacity(count);
            let mut data = Vec::with_capacity(text);
            for s in items() {
                if s.len() <= 12 {
                    views.push(view_of(s, 0, s.len(), 0));
                } else {
                    let start = data.len();
                    data.extend_from_slice(s);
                    views.push(view_of(&data, start, data.len(), 0));
                }
            }
            let buffers = if data.is_empty() { Vec::new() } else { vec![data] };
            let sizes = buffers.iter().map(|b| b.len() as i64).collect();
            Strings::View { views: Arc::new(views), buffers, sizes }
        } else {
            let mut offsets = Vec::with_capacity(count + 1);
            offsets.push(0i64);
            let mut data = Vec::new();
            for s in items() {
                data.extend_from_slice(s);
                offsets.push(data.len() as i64);
            }
            Strings::Large { offsets, data }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::{extract_fields, FieldPaths, Threads};
    use crate::test_rng::XorShift;

    /// The slow twin: row `r` of every column, read through `Column::row`.
    fn rows_of(batch: &Extracted, rows: &[u32], columns: &[usize]) -> Vec<Vec<Option<Vec<String>>>> {
        rows.iter()
            .map(|&r| columns.iter().map(|&c| batch.columns[c].row(r as usize).map(|v| v.iter().map(|s| s.to_string()).collect())).collect())
            .collect()
    }

    fn flag(name: &str, bits: &[bool]) -> Flag {
        let mut packed = vec![0u8; bits.len().div_ceil(8)];
        for (k, &b) in bits.iter().enumerate() {
            packed[k / 8] |= (b as u8) << (k % 8);
        }
        Flag { name: name.into(), bits: packed }
    }

    #[test]
    fn selected_rows_read_as_the_rows_they_were() {
        // Short (inline) and long strings, lists, nulls, a malformed line and a blank one.
        let mut text = Vec::new();
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let mut next = || rng.next_u64();
        for i in 0..3000 {
            let long = "x".repeat((next() % 40) as usize);
            match next() % 6 {
                0 => text.extend_from_slice(format!("{{\"a\": \"{long}{i}\", \"b\": [\"{long}\", \"s{i}\"]}}\n").as_bytes()),
                1 => text.extend_from_slice(format!("{{\"b\": \"only b {i}\"}}\n").as_bytes()),
                2 => text.extend_from_slice(b"{not json\n"),
                3 => text.extend_from_slice(b"\n"),
                4 => text.extend_from_slice(format!("{{\"a\": {i}, \"c\": {{\"d\": \"{long}\"}}}}\n").as_bytes()),
                _ => text.extend_from_slice(format!("{{\"a\": \"é{long}\", \"b\": []}}\n").as_bytes()),
            }
        }
        let paths = FieldPaths::new(["a", "b", "c.d"]).unwrap();
        let mut batch = extract_fields(&text, b'\n', &paths, None, Threads::Exactly(2)).unwrap();
        let n = batch.lines.len();
        let bits: Vec<bool> = (0..n).map(|_| next() % 3 == 0).collect();
        batch.flags = vec![flag("f0", &bits), flag("f1", &(0..n).map(|r| r % 7 == 0).collect::<Vec<_>>())];

        let matched = batch.matched_rows();
        let expected: Vec<u32> =
            (0..n).filter(|&r| batch.status[r] == STATUS_OK && (bits[r] || r % 7 == 0)).map(|r| r as u32).collect();
        assert_eq!(matched, expected);

        // Any rows in any order (repeats too), and the matched ones.
        let mut shuffled: Vec<u32> = (0..n as u32).filter(|_| next() % 2 == 0).collect();
        shuffled.extend((0..50).map(|_| (next() % n as u64) as u32));
        for rows in [matched, shuffled, Vec::new()] {
            let columns = [2, 0, 1];
            let picked = batch.select(&rows, &columns, &[1]);
            assert_eq!(rows_of(&picked, &(0..rows.len() as u32).collect::<Vec<_>>(), &[0, 1, 2]), rows_of(&batch, &rows, &columns));
            for (k, &r) in rows.iter().enumerate() {
                assert_eq!(picked.lines[k], batch.lines[r as usize]);
                assert_eq!(picked.status[k], batch.status[r as usize]);
                assert_eq!(picked.flags[0].is_set(k), batch.flags[1].is_set(r as usize));
            }
            for (c, &from) in picked.columns.iter().zip(&columns) {
                let nulls = rows.iter().filter(|&&r| !batch.columns[from].is_valid(r as usize)).count();
                assert_eq!(c.null_count, nulls);
                assert_eq!(c.validity.is_some(), nulls > 0);
                assert_eq!(c.rows, rows.len());
            }
        }
    }
}
