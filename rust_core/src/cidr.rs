//! IPv4/IPv6 prefix sets with longest-prefix lookup, each prefix tagged with the list it came from.
//!
//! Every address lives in one 128-bit space: IPv4 `a.b.c.d/n` is stored as the IPv4-mapped IPv6
//! prefix `::ffff:a.b.c.d/(96+n)`. An IPv4-mapped IPv6 address (`::ffff:1.2.3.4`) therefore matches
//! the IPv4 entries. IPv4 addresses are looked up among the prefixes inside `::ffff:0:0/96` only:
//! as in Python's `ipaddress`, an IPv6 prefix around that block (`::/0`, the bogon `::/8`) does
//! not cover IPv4, or an IPv6 bogon list would flag every IPv4 client.
//!
//! The prefixes are flattened once into sorted, disjoint ranges, each carrying the list id of the
//! longest prefix covering it; a lookup is one binary search. Prefixes are laminar (two are either
//! nested or disjoint), so one sweep with a stack of open prefixes builds the ranges in
//! O(n log n) for the sort.
//!
//! Parsing follows Python's `ipaddress` (`ip_network(s, strict=False)` for entries, `ip_address`
//! for lookups): leading zeros in IPv4 octets and surrounding whitespace are rejected, host bits
//! under the prefix length are cleared. Not accepted (Python accepts them): netmask prefixes
//! (`1.2.3.0/255.255.255.0`) and IPv6 scope ids (`fe80::1%eth0`).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

use crate::error::{CoreError, Result};

/// Where IPv4 addresses sit in the 128-bit space: `::ffff:0:0/96`.
const V4_MAPPED: u128 = 0xffff_0000_0000;

/// A prefix in the unified 128-bit space: `start` has no bits set below `len`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Prefix {
    pub start: u128,
    pub len: u8,
}

impl Prefix {
    /// The last address inside the prefix.
    pub fn last(&self) -> u128 {
        self.start | host_mask(self.len)
    }
}

/// The bits under a prefix of length `len` (all of them for /0, none for /128).
fn host_mask(len: u8) -> u128 {
    u128::MAX.checked_shr(u32::from(len)).unwrap_or(0)
}

/// Parse one address, IPv4 or IPv6, to the unified space.
pub fn parse_addr(text: &str) -> Option<u128> {
    if let Ok(v4) = text.parse::<Ipv4Addr>() {
        return Some(V4_MAPPED | u128::from(u32::from(v4)));
    }
    // Rust accepts only the forms Python accepts here, except that neither takes whitespace.
    text.parse::<Ipv6Addr>().ok().map(u128::from)
}

/// Parse an address given as bytes (an Arrow string value); non-UTF-8 is invalid.
pub fn parse_addr_bytes(text: &[u8]) -> Option<u128> {
    // The longest textual address is 45 bytes (IPv6 with an embedded IPv4 tail).
    if text.len() > 64 {
        return None;
    }
    // Every IPv6 spelling holds a ':'; without one only the dotted quad can parse, read here
    // without the generic parser (rule flags test an address column on every row).
    if !text.contains(&b':') {
        return parse_ipv4(text).map(|v4| V4_MAPPED | u128::from(v4));
    }
    std::str::from_utf8(text).ok().and_then(parse_addr)
}

/// The dotted quad as `Ipv4Addr::from_str` reads it: four decimal octets of one to three
/// digits, at most 255, no leading zero.
fn parse_ipv4(text: &[u8]) -> Option<u32> {
    let mut addr = 0u32;
    let mut parts = 0;
    for part in text.split(|&b| b == b'.') {
        parts += 1;
        if parts > 4 || part.is_empty() || part.len() > 3 || (part.len() > 1 && part[0] == b'0') {
            return None;
        }
        let mut octet = 0u32;
        for &d in part {
            if !d.is_ascii_digit() {
                return None;
            }
            octet = octet * 10 + u32::from(d - b'0');
        }
        if octet > 255 {
            return None;
        }
        addr = addr << 8 | octet;
    }
    (parts == 4).then_some(addr)
}

/// Parse `addr` or `addr/len` (decimal length, as `ipaddress.ip_network(strict=False)`), clearing
/// host bits. The error is the reason, for the caller to wrap with the entry's position.
pub fn parse_prefix(text: &str) -> std::result::Result<Prefix, String> {
    let (addr_text, len_text) = match text.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (text, None),
    };
    let (addr, bits, base) = if let Ok(v4) = addr_text.parse::<Ipv4Addr>() {
        (V4_MAPPED | u128::from(u32::from(v4)), 32u32, 96u32)
    } else if let Ok(v6) = addr_text.parse::<Ipv6Addr>() {
        (u128::from(v6), 128u32, 0u32)
    } else {
        return Err(format!("{addr_text:?} is not an IPv4 or IPv6 address"));
    };
    let len = match len_text {
        None => bits,
        Some(l) => {
            if l.is_empty() || !l.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("prefix length {l:?} is not a decimal number"));
            }
            match l.parse::<u32>() {
                Ok(n) if n <= bits => n,
                _ => return Err(format!("prefix length {l} is out of range 0..={bits}")),
            }
        }
    };
    let len = (base + len) as u8;
    let start = addr & !host_mask(len);
    Ok(Prefix { start, len })
}

/// Prefixes with their list ids, collected before the lookup table is built.
#[derive(Clone, Debug, Default)]
pub struct IpSetBuilder {
    entries: Vec<(Prefix, u32)>,
}

/// Largest list id: ids are returned as int32 with -1 meaning "no match".
pub const MAX_LIST_ID: u32 = i32::MAX as u32;

impl IpSetBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of prefixes added.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Take over every prefix of `other` (a file loaded on the side, say).
    pub fn extend(&mut self, other: IpSetBuilder) {
        self.entries.extend(other.entries);
    }

    fn check_list_id(list_id: u32) -> Result<()> {
        if list_id > MAX_LIST_ID {
            return Err(CoreError::invalid(format!(
                "list id {list_id} is out of range 0..={MAX_LIST_ID}"
            )));
        }
        Ok(())
    }

    /// Add every entry of one list. Strict: the first bad entry is an error naming its index and
    /// nothing of this call is added. Not strict: bad entries are skipped and counted.
    pub fn add<S: AsRef<str>>(
        &mut self,
        entries: &[S],
        list_id: u32,
        strict: bool,
    ) -> Result<usize> {
        Self::check_list_id(list_id)?;
        let mut parsed = Vec::with_capacity(entries.len());
        let mut skipped = 0;
        for (i, entry) in entries.iter().enumerate() {
            match parse_prefix(entry.as_ref()) {
                Ok(p) => parsed.push((p, list_id)),
                Err(_) if !strict => skipped += 1,
                Err(reason) => {
                    return Err(CoreError::invalid(format!(
                    "entry {i} ({:?}) of list {list_id} is not a valid address or CIDR: {reason}",
                    entry.as_ref()
                )))
                }
            }
        }
        self.entries.extend(parsed);
        Ok(skipped)
    }

    /// Add a netset/ipset text file: one entry per line, `#` starts a comment, blank lines are
    /// ignored, surrounding whitespace is trimmed. Errors name the file and line.
    pub fn add_netset(&mut self, path: &Path, list_id: u32, strict: bool) -> Result<usize> {
        Self::check_list_id(list_id)?;
        let shown = path.display().to_string();
        let raw = std::fs::read(path).map_err(|e| CoreError::io(&shown, e))?;
        let mut parsed = Vec::new();
        let mut skipped = 0;
        for (i, line) in raw.split(|&b| b == b'\n').enumerate() {
            let line = match line.iter().position(|&b| b == b'#') {
                Some(hash) => &line[..hash],
                None => line,
            };
            let result = match std::str::from_utf8(line) {
                Ok(text) => {
                    let text = text.trim();
                    if text.is_empty() {
                        continue;
                    }
                    parse_prefix(text).map_err(|reason| {
                        format!("{text:?} is not a valid address or CIDR: {reason}")
                    })
                }
                Err(_) => Err(format!(
                    "{:?} is not UTF-8 text",
                    String::from_utf8_lossy(line)
                )),
            };
            match result {
                Ok(p) => parsed.push((p, list_id)),
                Err(_) if !strict => skipped += 1,
                Err(reason) => {
                    return Err(CoreError::invalid(format!("{shown}:{}: {reason}", i + 1)))
                }
            }
        }
        self.entries.extend(parsed);
        Ok(skipped)
    }

    /// Flatten to the lookup table. On an exact tie (the same prefix in two lists) the smaller
    /// list id wins, so the answer does not depend on the order lists were added.
    pub fn build(&self) -> IpTable {
        let mut entries = self.entries.clone();
        entries.sort_unstable_by_key(|&(p, list)| (p.start, p.len, list));
        entries.dedup_by(|later, earlier| later.0 == earlier.0);

        let (bounds, ids) = sweep(&entries);
        let mut table = IpTable { bounds, ids, v4: Vec::new(), v4_block_start: Vec::new() };
        // IPv4 as 32-bit (start, id) pairs, from the prefixes inside the IPv4 block only: a
        // lookup touches one small array, and IPv6 prefixes around the block stay out of it.
        let inside: Vec<(Prefix, u32)> = entries
            .iter()
            .copied()
            .filter(|(p, _)| p.len >= 96 && p.start & !host_mask(96) == V4_MAPPED)
            .collect();
        let (v4_bounds, v4_ids) = sweep(&inside);
        let first = v4_bounds.partition_point(|&b| b <= V4_MAPPED) - 1;
        table.v4.push((0, v4_ids[first]));
        for (&b, &id) in v4_bounds.iter().zip(&v4_ids).skip(first + 1) {
            if b >= V4_MAPPED + (1 << 32) {
                break;
            }
            table.v4.push(((b - V4_MAPPED) as u32, id));
        }
        table.v4_block_start = (0..=V4_BLOCKS as u64)
            .map(|k| {
                table
                    .v4
                    .partition_point(|&(start, _)| u64::from(start) < k << 16)
                    as u32
            })
            .collect();
        table
    }
}

/// Flatten laminar prefixes (sorted by start, then length) into sorted disjoint ranges, each with
/// the list id of the longest prefix covering it.
fn sweep(entries: &[(Prefix, u32)]) -> (Vec<u128>, Vec<i32>) {
    let mut table = IpTable { bounds: vec![0], ids: vec![-1], v4: Vec::new(), v4_block_start: Vec::new() };
    // Open prefixes, outermost first: (last address, list id).
    let mut open: Vec<(u128, i32)> = Vec::new();
    for &(prefix, list) in entries {
        while let Some(&(last, _)) = open.last() {
            if last >= prefix.start {
                break;
            }
            open.pop();
            table.emit(last + 1, open.last().map_or(-1, |o| o.1));
        }
        table.emit(prefix.start, list as i32);
        open.push((prefix.last(), list as i32));
    }
    while let Some((last, _)) = open.pop() {
        if last < u128::MAX {
            table.emit(last + 1, open.last().map_or(-1, |o| o.1));
        }
    }
    (table.bounds, table.ids)
}

/// Sorted disjoint ranges: range i is `[bounds[i], bounds[i+1])` and belongs to list `ids[i]`
/// (-1: none). `bounds[0]` is 0, so every address falls in exactly one range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpTable {
    bounds: Vec<u128>,
    ids: Vec<i32>,
    /// The ranges inside IPv4 (`::ffff:0:0/96`) as (start within IPv4, list id), the first one
    /// starting at 0. Nearly every address looked up is IPv4, and a million prefixes make the
    /// 128-bit table far larger than the caches: this copy is a quarter of its size and keeps
    /// each start next to its id.
    v4: Vec<(u32, i32)>,
    /// For IPv4 /16 block k, the index in `v4` of the first range starting at or after the
    /// block's start (one more entry for the end of IPv4): a lookup binary-searches only its
    /// block's ranges.
    v4_block_start: Vec<u32>,
}

/// IPv4 /16 blocks.
const V4_BLOCKS: usize = 1 << 16;

impl IpTable {
    /// Start a range of `id` at `pos`, replacing a range that would be empty and merging with the
    /// previous range when the id is the same.
    fn emit(&mut self, pos: u128, id: i32) {
        let n = self.bounds.len();
        if self.bounds[n - 1] == pos {
            self.ids[n - 1] = id;
            if n >= 2 && self.ids[n - 2] == id {
                self.bounds.pop();
                self.ids.pop();
            }
        } else if self.ids[n - 1] != id {
            self.bounds.push(pos);
            self.ids.push(id);
        }
    }

    /// Number of ranges (a measure of the table's size).
    pub fn ranges(&self) -> usize {
        self.bounds.len()
    }

    /// The list id of the longest prefix containing `addr`, or -1.
    pub fn lookup(&self, addr: u128) -> i32 {
        if addr >> 32 == V4_MAPPED >> 32 {
            let a = addr as u32;
            let block = (a >> 16) as usize;
            let lo = self.v4_block_start[block] as usize;
            let hi = self.v4_block_start[block + 1] as usize;
            // The range holding `a` starts inside the block, or before it (at `lo - 1`); in
            // block 0, v4[0] starts at 0, so the index below is at least one.
            let i = lo + self.v4[lo..hi].partition_point(|&(start, _)| start <= a);
            return self.v4[i - 1].1;
        }
        let i = self.bounds.partition_point(|&b| b <= addr);
        self.ids[i - 1]
    }

    /// Look up textual addresses: `None` items (nulls) give -1 and are not counted as invalid;
    /// unparsable ones give -1 and are counted. Returns (ids, invalid count).
    pub fn lookup_all<'a, I>(&self, items: I) -> (Vec<i32>, usize)
    where
        I: IntoIterator<Item = Option<&'a [u8]>>,
    {
        let mut invalid = 0;
        let ids = items
            .into_iter()
            .map(|item| match item {
                None => -1,
                Some(text) => match parse_addr_bytes(text) {
                    Some(addr) => self.lookup(addr),
                    None => {
                        invalid += 1;
                        -1
                    }
                },
            })
            .collect();
        (ids, invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::XorShift;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn dotted_quads_parse_like_the_standard_parser() {
        // Regression guard for the fast IPv4 path of `parse_addr_bytes`: every text without a
        // ':' must read as `Ipv4Addr::from_str` reads it (or not at all).
        let mut texts: Vec<String> = [
            "0.0.0.0", "255.255.255.255", "256.0.0.1", "01.2.3.4", "0.01.0.0", "1.2.3", "1.2.3.4.5", "", ".", "1..2.3",
            "1.2.3.4.", ".1.2.3.4", "+1.2.3.4", "1.2.3.-4", " 1.2.3.4", "1.2.3.4 ", "1.2.3.0004", "999.1.1.1", "1.2.3.٣",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let pieces = ["0", "1", "25", "255", "256", "00", "07", "199", "1000", ".", ".", ".", "a", " "];
        for _ in 0..50_000 {
            let mut t = String::new();
            for _ in 0..rng.below(9) {
                t.push_str(pieces[rng.below(pieces.len())]);
            }
            texts.push(t);
        }
        for t in &texts {
            let want = t.parse::<Ipv4Addr>().ok().map(|v4| V4_MAPPED | u128::from(u32::from(v4)));
            assert_eq!(parse_addr_bytes(t.as_bytes()), want, "{t:?}");
        }
    }

    #[test]
    fn public_types_are_send_and_sync() {
        assert_send_sync::<IpSetBuilder>();
        assert_send_sync::<IpTable>();
    }

    fn table(lists: &[&[&str]]) -> IpTable {
        let mut b = IpSetBuilder::new();
        for (i, list) in lists.iter().enumerate() {
            b.add(list, i as u32, true).unwrap();
        }
        b.build()
    }

    fn look(t: &IpTable, addr: &str) -> i32 {
        t.lookup(parse_addr(addr).unwrap_or_else(|| panic!("bad test address {addr}")))
    }

    // (lists, address, expected list id)
    const CASES: &[(&[&[&str]], &str, i32)] = &[
        (&[&["10.0.0.0/8"]], "10.1.2.3", 0),
        (&[&["10.0.0.0/8"]], "11.0.0.0", -1),
        (&[&["10.0.0.0/8"]], "9.255.255.255", -1),
        (&[&["10.0.0.0/8"], &["10.1.0.0/16"]], "10.1.2.3", 1),
        (&[&["10.0.0.0/8"], &["10.1.0.0/16"]], "10.2.0.0", 0),
        (&[&["10.1.0.0/16"], &["10.0.0.0/8"]], "10.1.255.255", 0),
        (&[&["10.0.0.0/8"], &["10.0.0.0/8"]], "10.0.0.1", 0),
        (&[&["1.2.3.4"]], "1.2.3.4", 0),
        (&[&["1.2.3.4"]], "1.2.3.5", -1),
        (&[&["1.2.3.4"]], "::ffff:1.2.3.4", 0),
        (&[&["0.0.0.0/0"]], "255.255.255.255", 0),
        (&[&["0.0.0.0/0"]], "::1", -1),
        (&[&["::/0"]], "1.2.3.4", -1),
        (&[&["::/8"]], "10.0.0.1", -1),
        (&[&["::/8"]], "::1", 0),
        (&[&["::/0"], &["10.0.0.0/8"]], "10.0.0.1", 1),
        (&[&["::/0"], &["10.0.0.0/8"]], "::ffff:11.0.0.1", -1),
        (&[&["::/0"], &["2001:db8::/32"]], "2001:db8::1", 1),
        (&[&["::/0"], &["2001:db8::/32"]], "2001:db9::1", 0),
        (
            &[&["ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"]],
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            0,
        ),
        (
            &[&["::/0"], &["ffff::/16"]],
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            1,
        ),
        (&[&["1.2.3.77/24"]], "1.2.3.1", 0),
        (
            &[&["10.0.0.0/8", "10.0.0.0/24"], &["10.0.0.0/16"]],
            "10.0.0.5",
            0,
        ),
        (
            &[&["10.0.0.0/8", "10.0.0.0/24"], &["10.0.0.0/16"]],
            "10.0.1.5",
            1,
        ),
        (
            &[&["10.0.0.0/8", "10.0.0.0/24"], &["10.0.0.0/16"]],
            "10.1.0.5",
            0,
        ),
        (&[&[]], "1.1.1.1", -1),
    ];

    #[test]
    fn table_of_lookups() {
        for (i, &(lists, addr, expected)) in CASES.iter().enumerate() {
            assert_eq!(
                look(&table(lists), addr),
                expected,
                "case {i}: {lists:?} {addr}"
            );
        }
    }

    #[test]
    fn parsing_rejects_what_python_ipaddress_rejects() {
        for bad in [
            "01.2.3.4",
            " 1.2.3.4",
            "1.2.3.4 ",
            "1.2.3",
            "1.2.3.256",
            "",
            "::g",
            "1.2.3.4/33",
            "::/129",
            "1.2.3.4/",
            "1.2.3.4/+8",
            "1.2.3.4/ 8",
        ] {
            assert!(parse_prefix(bad).is_err(), "{bad:?} should be rejected");
        }
        for bad in [
            "01.2.3.4",
            " 1.2.3.4",
            "1.2.3.4/32",
            "fe80::1%eth0",
            "",
            "1.2.3.4\n",
        ] {
            assert!(parse_addr(bad).is_none(), "{bad:?} should be rejected");
        }
        assert_eq!(
            parse_prefix("1.2.3.0/024").unwrap(),
            parse_prefix("1.2.3.0/24").unwrap()
        );
    }

    #[test]
    fn strict_add_names_the_entry_and_adds_nothing() {
        let mut b = IpSetBuilder::new();
        let err = b.add(&["10.0.0.0/8", "10.0.0.0/99"], 3, true).unwrap_err();
        assert_eq!(
            err.to_string(),
            "entry 1 (\"10.0.0.0/99\") of list 3 is not a valid address or CIDR: prefix length 99 is out of range 0..=32"
        );
        assert!(b.is_empty());
        assert_eq!(b.add(&["10.0.0.0/8", "x", "y"], 3, false).unwrap(), 2);
        assert_eq!(b.len(), 1);
    }

    /// The obvious twin: every prefix, keep the longest containing one (smallest list on ties).
    fn naive(entries: &[(Prefix, u32)], addr: u128) -> i32 {
        let mut best: Option<(u8, u32)> = None;
        let ipv4 = addr >> 32 == V4_MAPPED >> 32;
        for &(p, list) in entries {
            let in_v4_block = p.len >= 96 && p.start & !host_mask(96) == V4_MAPPED;
            if ipv4 && !in_v4_block {
                continue; // IPv6 prefixes never cover IPv4 addresses
            }
            if p.start <= addr && addr <= p.last() {
                let better = match best {
                    None => true,
                    Some((len, l)) => p.len > len || (p.len == len && list < l),
                };
                if better {
                    best = Some((p.len, list));
                }
            }
        }
        best.map_or(-1, |(_, l)| l as i32)
    }

    #[test]
    fn random_prefix_sets_agree_with_the_naive_twin() {
        let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
        let mut next = move || rng.next_u64();
        for round in 0..200 {
            let mut b = IpSetBuilder::new();
            // Addresses drawn from a tiny pool of high bits so prefixes nest and collide often.
            // Half the rounds inside the IPv4 space (its /16 block index), half anywhere.
            let v4 = round % 2 == 0;
            let base = |r: u64| -> u128 {
                if v4 {
                    V4_MAPPED | ((r % 4) as u128) << 30 | ((r >> 2) % 4) as u128
                } else {
                    ((r % 4) as u128) << 126 | ((r >> 2) % 4) as u128
                }
            };
            let mut entries = Vec::new();
            for _ in 0..(next() % 12) {
                let r = next();
                let len = if v4 {
                    [0u8, 96, 97, 98, 112, 126, 127, 128][(r >> 8) as usize % 8]
                } else {
                    [0u8, 1, 2, 64, 126, 127, 128][(r >> 8) as usize % 7]
                };
                let addr = base(r) | ((r >> 16) as u128 % 3) << if v4 { 16 } else { 60 };
                let start = addr & !host_mask(len);
                entries.push((Prefix { start, len }, (next() % 3) as u32));
            }
            b.entries = entries.clone();
            let t = b.build();
            for _ in 0..50 {
                let r = next();
                let addr = base(r)
                    | ((r >> 16) as u128 % 3) << if v4 { 16 } else { 60 }
                    | ((r >> 30) % 2) as u128;
                assert_eq!(
                    t.lookup(addr),
                    naive(&entries, addr),
                    "round {round}: {entries:?} addr {addr:x}"
                );
            }
            for &(p, _) in &entries {
                for addr in [
                    p.start,
                    p.last(),
                    p.start.wrapping_sub(1),
                    p.last().wrapping_add(1),
                ] {
                    assert_eq!(
                        t.lookup(addr),
                        naive(&entries, addr),
                        "round {round}: edge {addr:x}"
                    );
                }
            }
        }
    }
}
