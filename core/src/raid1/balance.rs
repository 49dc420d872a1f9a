//! Mirror bookkeeping, bad-block ranges and md's read balancing (6.9+ `read_balance`).

use super::{BadBlockTable, MemberCounters, PositionState, BB_ENTRY_MAX_SECTORS};
use alloc::vec::Vec;

/// The engine's view of one slot.
#[derive(Debug)]
pub(crate) struct Mirror {
    pub state: PositionState,
    pub write_mostly: bool,
    pub failfast: bool,
    pub rotational: bool,
    /// Bad ranges (sorted, merged) and the entry capacity; `None` without a log.
    pub bb: Option<(Vec<(u64, u64)>, usize)>,
    pub head_position: u64,
    pub next_seq_sect: u64,
    pub seq_start: u64,
    pub counters: MemberCounters,
    pub last_read_error: Option<u64>,
    /// The slot (md role) this member fills; `None` for spares, faulty and missing members.
    pub slot: Option<usize>,
    /// Bumped when the member is removed or replaced: older I/Os complete as stale.
    pub epoch: u32,
    /// While recovering: below this sector recovery copies only chunks whose bitmap bit is
    /// set (a re-add, md's `saved_raid_disk >= 0`); from it on, every block (0: a full copy).
    pub bitmap_below: u64,
}

/// Log entries a range needs.
fn entries_for(len: u64) -> usize {
    let n = len.div_ceil(BB_ENTRY_MAX_SECTORS);
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// Validates a configured table: sorted, non-empty, non-overlapping ranges within capacity.
pub(crate) fn check_table(t: &BadBlockTable) -> bool {
    let mut prev_end = 0u64;
    let mut entries = 0usize;
    for (i, &(s, l)) in t.ranges.iter().enumerate() {
        if l == 0 || (i > 0 && s < prev_end) {
            return false;
        }
        match s.checked_add(l) {
            Some(e) => prev_end = e,
            None => return false,
        }
        entries = entries.saturating_add(entries_for(l));
    }
    entries <= t.capacity
}

impl Mirror {
    /// Readable for a range ending at `end`: working and current there.
    pub fn current_below(&self, end: u64) -> bool {
        match self.state {
            PositionState::InSync => true,
            PositionState::Recovering { recovery_offset } => recovery_offset >= end,
            _ => false,
        }
    }

    pub fn is_in_sync(&self) -> bool {
        self.state == PositionState::InSync
    }

    /// First bad range overlapping `[s, s+len)`.
    pub fn first_bad(&self, s: u64, len: u64) -> Option<(u64, u64)> {
        let (ranges, _) = self.bb.as_ref()?;
        let end = s.saturating_add(len);
        // Ranges are sorted and disjoint: find the first whose end is past `s`.
        let i = ranges.partition_point(|&(bs, bl)| bs.saturating_add(bl) <= s);
        match ranges.get(i) {
            Some(&(bs, bl)) if bs < end => Some((bs, bl)),
            _ => None,
        }
    }

    /// md's `raid1_check_read_range`: how many sectors from `s` are readable (0 when `s` is bad).
    pub fn good_prefix(&self, s: u64, len: u64) -> u64 {
        match self.first_bad(s, len) {
            None => len,
            Some((bs, _)) if bs <= s => 0,
            Some((bs, _)) => bs - s,
        }
    }

    /// The next good segment of `[from, end)` at or after `from`.
    pub fn next_good_segment(&self, from: u64, end: u64) -> Option<(u64, u64)> {
        let mut pos = from;
        while pos < end {
            match self.first_bad(pos, end - pos) {
                None => return Some((pos, end - pos)),
                Some((bs, bl)) if bs <= pos => pos = bs.saturating_add(bl),
                Some((bs, _)) => return Some((pos, bs - pos)),
            }
        }
        None
    }

    /// Records `[s, s+len)` as bad. `false` when there is no table or no room (table unchanged).
    pub fn add_bad(&mut self, s: u64, len: u64) -> bool {
        let Some((ranges, cap)) = self.bb.as_mut() else {
            return false;
        };
        if len == 0 {
            return true;
        }
        let Some(mut end) = s.checked_add(len) else {
            return false;
        };
        let mut start = s;
        // Ranges touching or overlapping [start, end) merge into one.
        let lo = ranges.partition_point(|&(bs, bl)| bs.saturating_add(bl) < start);
        let mut hi = lo;
        while let Some(&(bs, bl)) = ranges.get(hi) {
            if bs > end {
                break;
            }
            start = start.min(bs);
            end = end.max(bs.saturating_add(bl));
            hi += 1;
        }
        let before: usize = ranges.iter().map(|&(_, l)| entries_for(l)).sum();
        let removed: usize = ranges
            .get(lo..hi)
            .map(|r| r.iter().map(|&(_, l)| entries_for(l)).sum())
            .unwrap_or(0);
        let after = before - removed + entries_for(end - start);
        // The Vec was reserved to `cap + 1` ranges, so the insert never reallocates.
        if after > *cap || ranges.len() - (hi - lo) + 1 > ranges.capacity() {
            return false;
        }
        ranges.drain(lo..hi);
        ranges.insert(lo, (start, end - start));
        true
    }
}

/// The outcome of a balancing decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Choice {
    pub member: usize,
    pub sectors: u64,
    /// At least two mirrors were readable: failfast may fail the member on error.
    pub failfast: bool,
}

/// md's `read_balance` for `[s, s+len)`, skipping members in `blocked`. Updates the sequential
/// tracking of the chosen mirror (md's `update_read_sectors`); the caller counts it pending.
pub(crate) fn read_balance(
    mirrors: &mut [Mirror],
    resync_offset: u64,
    s: u64,
    len: u64,
    blocked: u64,
) -> Option<Choice> {
    let choice = balance_choice(mirrors, resync_offset, s, len, blocked)?;
    note_choice(mirrors, s, choice);
    Some(choice)
}

/// [`read_balance`]'s decision without its bookkeeping (the read fast path decides first and
/// records only a read it takes).
pub(crate) fn balance_choice(
    mirrors: &[Mirror],
    resync_offset: u64,
    s: u64,
    len: u64,
    blocked: u64,
) -> Option<Choice> {
    let end = s.saturating_add(len);
    if end > resync_offset {
        choose_first(mirrors, s, len, blocked)
    } else {
        choose_best(mirrors, s, len, blocked)
            .or_else(|| choose_bb(mirrors, s, len, blocked))
            .or_else(|| choose_slow(mirrors, s, len, blocked))
    }
}

/// [`read_balance`]'s bookkeeping for a read of `choice` from `s` (md's `update_read_sectors`).
pub(crate) fn note_choice(mirrors: &mut [Mirror], s: u64, choice: Choice) {
    if let Some(m) = mirrors.get_mut(choice.member) {
        if m.next_seq_sect != s {
            m.seq_start = s;
        }
        m.next_seq_sect = s.saturating_add(choice.sectors);
    }
}

fn is_blocked(blocked: u64, i: usize) -> bool {
    i < 64 && blocked & (1u64 << i) != 0
}

/// The region may differ between mirrors: the first mirror current there, bad blocks or not.
fn choose_first(mirrors: &[Mirror], s: u64, len: u64, blocked: u64) -> Option<Choice> {
    let end = s.saturating_add(len);
    for (i, m) in mirrors.iter().enumerate() {
        if is_blocked(blocked, i) || !m.current_below(end) {
            continue;
        }
        let n = m.good_prefix(s, len);
        if n > 0 {
            return Some(Choice {
                member: i,
                sectors: n,
                failfast: false,
            });
        }
    }
    None
}

fn choose_best(mirrors: &[Mirror], s: u64, len: u64, blocked: u64) -> Option<Choice> {
    let end = s.saturating_add(len);
    let mut closest: Option<(u64, usize)> = None;
    let mut min_pending: Option<(u32, usize)> = None;
    let mut readable = 0u32;
    let mut any_nonrot = false;
    for (i, m) in mirrors.iter().enumerate() {
        if is_blocked(blocked, i)
            || !m.current_below(end)
            || m.write_mostly
            || m.first_bad(s, len).is_some()
        {
            continue;
        }
        readable += 1;
        if !m.rotational {
            any_nonrot = true;
        }
        if m.next_seq_sect == s || m.head_position == s {
            // Sequential affinity. md moves a stream on once a non-rotational mirror has read
            // its optimal I/O size; without that size the stream stays put.
            return Some(Choice {
                member: i,
                sectors: len,
                failfast: readable > 1,
            });
        }
        let pending = m.counters.pending;
        if min_pending.is_none_or(|(p, _)| p > pending) {
            min_pending = Some((pending, i));
        }
        let dist = m.head_position.abs_diff(s);
        if closest.is_none_or(|(d, _)| d > dist) {
            closest = Some((dist, i));
        }
    }
    let pick = match (min_pending, closest) {
        (Some((p, i)), _) if any_nonrot || p == 0 => i,
        (_, Some((_, i))) => i,
        _ => return None,
    };
    Some(Choice {
        member: pick,
        sectors: len,
        failfast: readable > 1,
    })
}

/// The non-write-mostly mirror with the longest good prefix.
fn choose_bb(mirrors: &[Mirror], s: u64, len: u64, blocked: u64) -> Option<Choice> {
    let end = s.saturating_add(len);
    let mut best: Option<(u64, usize)> = None;
    for (i, m) in mirrors.iter().enumerate() {
        if is_blocked(blocked, i) || !m.current_below(end) || m.write_mostly {
            continue;
        }
        let n = m.good_prefix(s, len);
        if n > 0 && best.is_none_or(|(b, _)| n > b) {
            best = Some((n, i));
        }
    }
    best.map(|(n, i)| Choice {
        member: i,
        sectors: n,
        failfast: false,
    })
}

/// Write-mostly mirrors: the first clean one, else the longest good prefix.
fn choose_slow(mirrors: &[Mirror], s: u64, len: u64, blocked: u64) -> Option<Choice> {
    let end = s.saturating_add(len);
    let mut best: Option<(u64, usize)> = None;
    for (i, m) in mirrors.iter().enumerate() {
        if is_blocked(blocked, i) || !m.current_below(end) || !m.write_mostly {
            continue;
        }
        let n = m.good_prefix(s, len);
        if n == len {
            return Some(Choice {
                member: i,
                sectors: n,
                failfast: false,
            });
        }
        if n > 0 && best.is_none_or(|(b, _)| n > b) {
            best = Some((n, i));
        }
    }
    best.map(|(n, i)| Choice {
        member: i,
        sectors: n,
        failfast: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn mirror(bad: Option<Vec<(u64, u64)>>, cap: usize) -> Mirror {
        Mirror {
            state: PositionState::InSync,
            write_mostly: false,
            failfast: false,
            rotational: false,
            bb: bad.map(|mut r| {
                r.reserve(cap + 1);
                (r, cap)
            }),
            head_position: 0,
            next_seq_sect: u64::MAX,
            seq_start: u64::MAX,
            counters: MemberCounters::default(),
            last_read_error: None,
            slot: Some(0),
            epoch: 0,
            bitmap_below: 0,
        }
    }

    #[test]
    fn bad_ranges_merge_and_respect_capacity() {
        let mut m = mirror(Some(vec![]), 3);
        assert!(m.add_bad(10, 5));
        assert!(m.add_bad(20, 5));
        assert!(m.add_bad(15, 5)); // bridges both
        assert_eq!(m.bb.as_ref().unwrap().0, vec![(10, 15)]);
        assert!(m.add_bad(100, 1));
        assert!(m.add_bad(200, 1));
        assert!(!m.add_bad(300, 1), "a fourth entry does not fit");
        assert!(
            m.add_bad(99, 2),
            "merging into an existing entry needs no room"
        );
        assert!(!m.add_bad(1000, 1024), "1024 sectors need two entries");
        assert_eq!(m.bb.as_ref().unwrap().0, vec![(10, 15), (99, 2), (200, 1)]);
        assert!(!mirror(None, 0).add_bad(0, 1), "no table, no room");
        assert!(!m.add_bad(u64::MAX, 2), "overflow refused");
    }

    #[test]
    fn prefixes_and_segments() {
        let m = mirror(Some(vec![(10, 2), (20, 4)]), 8);
        assert_eq!(m.good_prefix(0, 8), 8);
        assert_eq!(m.good_prefix(4, 8), 6);
        assert_eq!(m.good_prefix(10, 8), 0);
        assert_eq!(m.next_good_segment(8, 30), Some((8, 2)));
        assert_eq!(m.next_good_segment(10, 30), Some((12, 8)));
        assert_eq!(m.next_good_segment(20, 24), None);
        assert_eq!(m.first_bad(12, 8), None);
        assert_eq!(m.first_bad(12, 9), Some((20, 4)));
        assert!(check_table(&BadBlockTable {
            ranges: vec![(1, 1), (2, 1)],
            capacity: 2
        }));
        assert!(!check_table(&BadBlockTable {
            ranges: vec![(1, 2), (2, 1)],
            capacity: 2
        }));
        assert!(!check_table(&BadBlockTable {
            ranges: vec![(1, 0)],
            capacity: 2
        }));
        assert!(!check_table(&BadBlockTable {
            ranges: vec![(1, 1), (5, 1)],
            capacity: 1
        }));
    }

    #[test]
    fn balance_order_of_preference() {
        // Unsynced region: first current mirror, even write-mostly, even with a later bad block.
        let mut ms = vec![mirror(Some(vec![(6, 1)]), 8), mirror(None, 0)];
        ms[0].write_mostly = true;
        let c = read_balance(&mut ms, 0, 0, 8, 0).unwrap();
        assert_eq!((c.member, c.sectors), (0, 6));
        // Synced: the write-mostly mirror is skipped.
        let c = read_balance(&mut ms, u64::MAX, 100, 8, 0).unwrap();
        assert_eq!(c.member, 1);
        // Blocked: only the write-mostly one is left; it serves its good prefix.
        let c = read_balance(&mut ms, u64::MAX, 0, 8, 0b10).unwrap();
        assert_eq!((c.member, c.sectors), (0, 6));
        // Nothing readable.
        assert_eq!(read_balance(&mut ms, u64::MAX, 6, 1, 0b10), None);
        // Sequential affinity beats pending counts.
        let mut ms = vec![mirror(None, 0), mirror(None, 0)];
        ms[1].next_seq_sect = 50;
        ms[1].counters.pending = 9;
        assert_eq!(read_balance(&mut ms, u64::MAX, 50, 8, 0).unwrap().member, 1);
        assert_eq!(ms[1].next_seq_sect, 58);
        // Least pending otherwise.
        ms[0].counters.pending = 3;
        ms[1].counters.pending = 1;
        assert_eq!(
            read_balance(&mut ms, u64::MAX, 500, 8, 0).unwrap().member,
            1
        );
        // All rotational and busy: closest head.
        ms[0].rotational = true;
        ms[1].rotational = true;
        ms[0].head_position = 990;
        ms[1].head_position = 10;
        assert_eq!(
            read_balance(&mut ms, u64::MAX, 1000, 8, 0).unwrap().member,
            0
        );
        // Recovering mirrors read only below their recovery offset.
        ms[0].state = PositionState::Recovering {
            recovery_offset: 500,
        };
        assert_eq!(
            read_balance(&mut ms, u64::MAX, 1000, 8, 0).unwrap().member,
            1
        );
        ms[1].state = PositionState::Faulty;
        assert_eq!(read_balance(&mut ms, u64::MAX, 1000, 8, 0), None);
        assert_eq!(
            read_balance(&mut ms, u64::MAX, 100, 8, 0).unwrap().member,
            0
        );
    }
}
