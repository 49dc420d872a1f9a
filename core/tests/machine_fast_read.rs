//! md's read fast path, at the machine driven directly: a read on a healthy array is one
//! member read on the caller's buffer, handed out at submission and finished by that read's
//! success; anything else (a sync action, recovery, replace, bad blocks in the way, a degraded
//! array) takes the general path. A member error on a fast read is served by the other mirror
//! and counted exactly as the general path counts it, and fail, remove, stop and a sync start
//! while fast reads are in flight wait for them or order after them.

mod common;

use mdraid::array::machine::{Io, IoBuffer, IoKind, Machine, Notice, Now, ReadSubmit};
use mdraid::array::{Array, CreateOptions, CreateSlot};
use mdraid::device::{BlockDevice, MemDevice};
use mdraid::format::geometry::BitmapRequest;
use mdraid::format::MetadataVersion;
use mdraid::raid1::{
    ArrayIoError, ArrayRequest, BufRef, DirectDone, MemberError, ReqId, SyncAction,
};
use std::collections::HashMap;

const DEV_BYTES: usize = 4 << 20;
/// Sectors written with the pattern before the machine starts.
const WRITTEN: u64 = 2048;

fn pattern(sector: u64) -> [u8; 512] {
    let mut b = [0u8; 512];
    for (i, x) in b.iter_mut().enumerate() {
        *x = (sector as u8).wrapping_mul(37) ^ (sector >> 8) as u8 ^ i as u8;
    }
    b
}

fn expected(sector: u64, sectors: u64) -> Vec<u8> {
    (sector..sector + sectors).flat_map(pattern).collect()
}

struct Setup {
    active: usize,
    spares: usize,
    assume_clean: bool,
    write_mostly0: bool,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            active: 2,
            spares: 0,
            assume_clean: true,
            write_mostly0: false,
        }
    }
}

struct Driver {
    m: Machine,
    devs: Vec<MemDevice>,
    now: Now,
    /// Handed out, not carried out yet.
    pending: Vec<Io>,
    /// Caller buffers by token.
    bufs: HashMap<u64, Vec<u8>>,
    next_token: u64,
    done: HashMap<ReqId, Result<(), ArrayIoError>>,
    /// Direct reads (`submit_read`) finished at their completion, by buffer token.
    direct_done: HashMap<u64, Result<(), ArrayIoError>>,
    /// Direct reads whose member read failed and that went on as ordinary requests.
    continued: HashMap<u64, ReqId>,
    /// (member, first byte, end byte): reads there fail with EIO.
    bad_reads: Vec<(usize, u64, u64)>,
    /// (member, first byte, end byte): writes there fail with EIO.
    bad_writes: Vec<(usize, u64, u64)>,
    /// Bad reads fail only the first time at a (member, offset) (a sector that a rewrite
    /// fixes), else every time.
    transient: bool,
    failed_once: std::collections::HashSet<(usize, u64)>,
    notices: Vec<Notice>,
    /// Every I/O handed out, in order.
    log: Vec<Io>,
}

impl Driver {
    fn new(s: Setup) -> Driver {
        let slots = (0..s.active + s.spares)
            .map(|i| CreateSlot::Device {
                name: format!("m{i}"),
                dev: MemDevice::new(DEV_BYTES),
                write_mostly: i == 0 && s.write_mostly0,
                failfast: false,
            })
            .collect();
        let opts = CreateOptions {
            bitmap: BitmapRequest::Internal {
                chunk_bytes: Some(64 << 10),
            },
            name: "fast".into(),
            assume_clean: s.assume_clean,
            now: 1_900_000_000,
            uuid: [9; 16],
            seed: 3,
            ..common::create_options(MetadataVersion::V1_2, s.active as u32)
        };
        let mut a: Array<MemDevice> = Array::create(slots, &opts).unwrap();
        let data = expected(0, WRITTEN);
        for (k, c) in data.chunks(64 << 10).enumerate() {
            a.write(k as u64 * (64 << 10), c).unwrap();
        }
        a.flush().unwrap();
        let now = Now {
            mono_ns: 1_000_000_000,
            wall_secs: 1_900_000_100,
        };
        let (m, devs) = a.into_machine(now).unwrap();
        let mut d = Driver {
            m,
            devs,
            now,
            pending: Vec::new(),
            bufs: HashMap::new(),
            next_token: 1,
            done: HashMap::new(),
            direct_done: HashMap::new(),
            continued: HashMap::new(),
            bad_reads: Vec::new(),
            bad_writes: Vec::new(),
            transient: false,
            failed_once: Default::default(),
            notices: Vec::new(),
            log: Vec::new(),
        };
        d.settle();
        d
    }

    fn taken(&self) -> u64 {
        self.m.fast_read_stats().taken
    }

    fn submit(&mut self, req: ArrayRequest, data: Option<Vec<u8>>) -> ReqId {
        let token = self.next_token;
        self.next_token += 1;
        let len = (req.sectors * 512) as usize;
        self.bufs
            .insert(token, data.unwrap_or_else(|| vec![0u8; len]));
        let id = self
            .m
            .handle_submit(ArrayRequest {
                buf: BufRef(token),
                ..req
            })
            .expect("submitted");
        self.drain();
        id
    }

    fn read(&mut self, sector: u64, sectors: u64) -> ReqId {
        self.submit(ArrayRequest::read(sector, sectors, BufRef(0)), None)
    }

    fn write(&mut self, sector: u64, sectors: u64) -> ReqId {
        self.submit(
            ArrayRequest::write(sector, sectors, BufRef(0)),
            Some(expected(sector, sectors)),
        )
    }

    fn drain(&mut self) {
        while let Some(io) = self.m.poll_io() {
            self.log.push(io);
            self.pending.push(io);
        }
        while let Some((id, r)) = self.m.poll_completion() {
            assert!(self.done.insert(id, r).is_none(), "completed twice");
        }
        while let Some(n) = self.m.poll_event() {
            self.notices.push(n);
        }
    }

    fn fails(list: &[(usize, u64, u64)], io: &Io) -> bool {
        list.iter()
            .any(|&(m, a, b)| m == io.member && io.offset < b && a < io.offset + io.len)
    }

    /// Carries out pending I/O `k` (an injected error instead where one is set).
    fn complete(&mut self, k: usize) {
        let io = self.pending.remove(k);
        let res = self.perform(&io);
        self.report(&io, res);
    }

    /// Reports an I/O's outcome, a direct read's as the C driver does.
    fn report(&mut self, io: &Io, res: Result<(), MemberError>) {
        if io.id.is_direct_read() {
            match self.m.complete_direct_read(io.id, res).expect("known I/O") {
                DirectDone::Finished(buf, r) => {
                    assert!(
                        self.direct_done.insert(buf.0, r).is_none(),
                        "finished twice"
                    );
                }
                DirectDone::Continues(id, buf) => {
                    assert!(self.continued.insert(buf.0, id).is_none());
                }
            }
        } else {
            self.m.handle_io_completion(io.id, res).expect("known I/O");
        }
        self.drain();
    }

    /// A read through `submit_read` (the C driver's way): `true` when it was a direct read
    /// (its one member I/O is pending and nothing else was handed out).
    fn direct_read(&mut self, sector: u64, sectors: u64) -> (u64, bool) {
        let token = self.next_token;
        self.next_token += 1;
        self.bufs.insert(token, vec![0u8; (sectors * 512) as usize]);
        let before = self.pending.len();
        let r = self
            .m
            .submit_read(ArrayRequest::read(sector, sectors, BufRef(token)))
            .expect("submitted");
        match r {
            ReadSubmit::Direct(io) => {
                assert!(io.id.is_direct_read());
                assert!(self.m.is_drained(), "a direct read queued something");
                self.log.push(io);
                self.pending.push(io);
                self.drain();
                assert_eq!(self.pending.len(), before + 1);
                (token, true)
            }
            ReadSubmit::Queued(id) => {
                self.continued.insert(token, id);
                self.drain();
                (token, false)
            }
        }
    }

    /// The read with buffer `token` (direct or not) finished well with the pattern.
    fn check_direct(&mut self, token: u64, sector: u64, sectors: u64) {
        let r = match self.direct_done.remove(&token) {
            Some(r) => r,
            None => {
                let id = self
                    .continued
                    .remove(&token)
                    .expect("the read was submitted");
                self.done.remove(&id).expect("the read completed")
            }
        };
        r.expect("the read succeeded");
        assert!(
            self.bufs[&token] == expected(sector, sectors),
            "read at {sector} returned wrong data"
        );
    }

    /// Completes the pending I/O with this id with `res` (the device is not touched).
    fn complete_with(&mut self, io: &Io, res: Result<(), MemberError>) {
        let k = self.pending.iter().position(|p| p.id == io.id).unwrap();
        let io = self.pending.remove(k);
        if res.is_ok() {
            assert!(self.perform(&io).is_ok());
        }
        self.report(&io, res);
    }

    fn perform(&mut self, io: &Io) -> Result<(), MemberError> {
        let len = io.len as usize;
        match io.kind {
            IoKind::Read => {
                if Self::fails(&self.bad_reads, io)
                    && (!self.transient || self.failed_once.insert((io.member, io.offset)))
                {
                    return Err(MemberError::Io(5));
                }
                let mut data = vec![0u8; len];
                self.devs[io.member].read_at(io.offset, &mut data).unwrap();
                match io.buf {
                    IoBuffer::Caller { token, offset } => {
                        let o = offset as usize;
                        self.bufs.get_mut(&token.0).unwrap()[o..o + len].copy_from_slice(&data);
                    }
                    IoBuffer::Machine { index, offset } => {
                        self.m.buffer_mut(index).unwrap()[offset..offset + len]
                            .copy_from_slice(&data);
                    }
                    IoBuffer::None => panic!("a read without a buffer"),
                }
            }
            IoKind::Write => {
                if Self::fails(&self.bad_writes, io) {
                    return Err(MemberError::Io(5));
                }
                let data = match io.buf {
                    IoBuffer::Caller { token, offset } => {
                        let o = offset as usize;
                        self.bufs[&token.0][o..o + len].to_vec()
                    }
                    IoBuffer::Machine { index, offset } => {
                        self.m.buffer(index).unwrap()[offset..offset + len].to_vec()
                    }
                    IoBuffer::None => panic!("a write without a buffer"),
                };
                self.devs[io.member].write_at(io.offset, &data).unwrap();
            }
            _ => {}
        }
        Ok(())
    }

    /// Carries out everything, oldest first, until the machine is idle.
    fn settle(&mut self) {
        for _ in 0..1_000_000 {
            if self.pending.is_empty() {
                if !self.m.is_busy() {
                    return;
                }
                self.now.mono_ns += 10_000_000;
                self.m.handle_timeout(self.now);
                self.drain();
                continue;
            }
            self.complete(0);
        }
        panic!("the machine never settled");
    }

    /// The read `id` finished well with the pattern.
    fn check_read(&mut self, id: ReqId, token: u64, sector: u64, sectors: u64) {
        let r = self.done.remove(&id).expect("the read completed");
        r.expect("the read succeeded");
        assert!(
            self.bufs[&token] == expected(sector, sectors),
            "read at {sector} returned wrong data"
        );
    }

    fn token_of_last(&self) -> u64 {
        self.next_token - 1
    }
}

/// A healthy array: every read is one member read on the caller's buffer, counted as taken.
#[test]
fn healthy_reads_take_the_fast_path() {
    let mut d = Driver::new(Setup::default());
    let reads0: u64 = (0..2).map(|i| d.m.member_counters(i).unwrap().reads).sum();
    for (k, (s, n)) in [(0u64, 8u64), (8, 8), (512, 64), (100, 3), (2040, 8)]
        .into_iter()
        .enumerate()
    {
        let before = d.taken();
        let log0 = d.log.len();
        let id = d.read(s, n);
        let t = d.token_of_last();
        assert_eq!(d.taken(), before + 1, "read {k} took the general path");
        // Exactly one I/O, a read of the whole request into the caller's buffer at offset 0,
        // handed out at submission.
        let ios = &d.log[log0..];
        assert_eq!(ios.len(), 1, "read {k}: {ios:?}");
        let io = ios[0];
        assert_eq!(io.kind, IoKind::Read);
        assert_eq!(io.len, n * 512);
        assert_eq!(
            io.buf,
            IoBuffer::Caller {
                token: BufRef(t),
                offset: 0
            }
        );
        assert!(
            !d.done.contains_key(&id),
            "completed before its member read"
        );
        d.complete(0);
        d.check_read(id, t, s, n);
        assert!(!d.m.is_busy());
    }
    let reads1: u64 = (0..2).map(|i| d.m.member_counters(i).unwrap().reads).sum();
    assert_eq!(reads1 - reads0, 5, "member read counters");
    assert_eq!(d.m.fast_read_stats().fallbacks, 0);
    // Many in flight at once, completed in reverse order: all fast, all right.
    let before = d.taken();
    let mut reqs = Vec::new();
    for k in 0..32u64 {
        let s = (k * 61) % (WRITTEN - 8);
        reqs.push((d.read(s, 8), d.token_of_last(), s));
    }
    assert_eq!(d.taken(), before + 32);
    assert_eq!(d.pending.len(), 32);
    while !d.pending.is_empty() {
        let k = d.pending.len() - 1;
        d.complete(k);
    }
    for (id, t, s) in reqs {
        d.check_read(id, t, s, 8);
    }
    // Both mirrors served some (md balances by pending count on non-rotational members).
    for i in 0..2 {
        assert!(
            d.m.member_counters(i).unwrap().reads > 0,
            "member {i} never read"
        );
    }
    // Switched off: the general path, same data.
    d.m.set_fast_reads(false);
    let before = d.taken();
    let id = d.read(40, 16);
    let t = d.token_of_last();
    d.settle();
    d.check_read(id, t, 40, 16);
    assert_eq!(d.taken(), before);
}

/// Resync, check, recovery and replace running: reads take the general path (and still
/// return the data).
#[test]
fn sync_recovery_and_replace_take_the_general_path() {
    // A new array without assume-clean owes a resync, which starts by itself.
    let mut d = Driver::new(Setup {
        assume_clean: false,
        ..Setup::default()
    });
    // Owed and not yet run: the mirrors may differ anywhere, reads go to the first mirror on
    // the general path.
    assert!(d.m.needs_resync());
    let before = d.taken();
    let id = d.read(1000, 8);
    let t = d.token_of_last();
    assert_eq!(d.taken(), before, "fast read while a resync is owed");
    d.settle();
    d.check_read(id, t, 1000, 8);
    // The resync, then a check and a repair; reads while each runs.
    let mut ran = 0;
    for action in [SyncAction::Resync, SyncAction::Check, SyncAction::Repair] {
        d.m.start_sync(action).unwrap();
        d.drain();
        assert!(d.m.engine().sync_status().is_some(), "{action:?} runs");
        ran += 1;
        let before = d.taken();
        let id = d.read(1000, 8);
        let t = d.token_of_last();
        assert_eq!(
            d.taken(),
            before,
            "{action:?}: fast read during a sync action"
        );
        d.settle();
        d.check_read(id, t, 1000, 8);
        // Over: fast again.
        let before = d.taken();
        let id = d.read(1000, 8);
        let t = d.token_of_last();
        assert_eq!(
            d.taken(),
            before + 1,
            "{action:?}: not fast after the action"
        );
        d.settle();
        d.check_read(id, t, 1000, 8);
    }
    assert_eq!(ran, 3);
    assert!(!d.m.needs_resync());

    // Recovery onto a spare after a failure.
    let mut d = Driver::new(Setup {
        spares: 1,
        ..Setup::default()
    });
    d.m.fail_member(1).unwrap();
    d.drain();
    // Let the failure be recorded and the recovery start, but leave it running.
    for _ in 0..200 {
        if d.m.engine().sync_status().is_some() || d.pending.is_empty() {
            break;
        }
        d.complete(0);
    }
    assert!(
        d.m.engine().sync_status().is_some(),
        "a recovery runs onto the spare"
    );
    let before = d.taken();
    let id = d.read(64, 8);
    let t = d.token_of_last();
    assert_eq!(d.taken(), before, "fast read during recovery");
    d.settle();
    d.check_read(id, t, 64, 8);
    // Recovered: healthy again (member 1 faulty but its slot filled by the spare).
    let before = d.taken();
    let id = d.read(64, 8);
    let t = d.token_of_last();
    assert_eq!(d.taken(), before + 1, "not fast once recovered");
    d.settle();
    d.check_read(id, t, 64, 8);

    // Hot replace of member 0 by the spare.
    let mut d = Driver::new(Setup {
        spares: 1,
        ..Setup::default()
    });
    d.m.replace_member(0, None).unwrap();
    d.drain();
    for _ in 0..200 {
        if d.m.engine().sync_status().is_some() || d.pending.is_empty() {
            break;
        }
        d.complete(0);
    }
    assert!(d.m.engine().sync_status().is_some(), "the replace runs");
    let before = d.taken();
    let id = d.read(128, 8);
    let t = d.token_of_last();
    assert_eq!(d.taken(), before, "fast read during a replace");
    d.settle();
    d.check_read(id, t, 128, 8);
}

/// A degraded array (a member failed, no spare): general path.
#[test]
fn degraded_array_takes_the_general_path() {
    let mut d = Driver::new(Setup::default());
    d.m.fail_member(0).unwrap();
    d.settle();
    assert!(d.notices.contains(&Notice::MemberFailed { member: 0 }));
    let before = d.taken();
    for s in [0u64, 100, 1500] {
        let id = d.read(s, 8);
        let t = d.token_of_last();
        d.settle();
        d.check_read(id, t, s, 8);
    }
    assert_eq!(d.taken(), before, "fast read on a degraded array");
    assert!(d
        .log
        .iter()
        .rev()
        .take(3)
        .all(|io| io.member == 1 && io.kind == IoKind::Read));
}

/// Write-mostly: fast reads never go to the write-mostly member while another is readable.
#[test]
fn write_mostly_member_is_not_read() {
    let mut d = Driver::new(Setup {
        write_mostly0: true,
        ..Setup::default()
    });
    let r0 = d.m.member_counters(0).unwrap().reads;
    let before = d.taken();
    let mut reqs = Vec::new();
    for k in 0..16u64 {
        reqs.push((d.read(k * 100, 8), d.token_of_last(), k * 100));
    }
    assert_eq!(d.taken(), before + 16);
    d.settle();
    for (id, t, s) in reqs {
        d.check_read(id, t, s, 8);
    }
    assert_eq!(
        d.m.member_counters(0).unwrap().reads,
        r0,
        "write-mostly read"
    );
}

/// Bad blocks: a member with a bad block in the range is not the fast path's choice; with
/// bad blocks on both mirrors in the range (a split read) the general path serves it.
#[test]
fn bad_blocks_in_the_range() {
    let mut d = Driver::new(Setup::default());
    let data0 = d.m.members()[0].sb.data_offset() * 512;
    let data1 = d.m.members()[1].sb.data_offset() * 512;
    // Write errors record bad blocks: member 0 at sectors 200..208, member 1 at 216..224.
    d.bad_writes = vec![
        (0, data0 + 200 * 512, data0 + 208 * 512),
        (1, data1 + 216 * 512, data1 + 224 * 512),
    ];
    let w = d.write(200, 8);
    d.settle();
    d.done.remove(&w).unwrap().unwrap();
    let w = d.write(216, 8);
    d.settle();
    d.done.remove(&w).unwrap().unwrap();
    d.bad_writes.clear();
    assert!(d
        .notices
        .iter()
        .all(|n| !matches!(n, Notice::MemberFailed { .. })));
    assert!(!d.m.engine().bad_blocks(0).unwrap_or(&[]).is_empty());
    assert!(!d.m.engine().bad_blocks(1).unwrap_or(&[]).is_empty());
    // The range bad on member 0 only: fast, from member 1.
    let before = d.taken();
    let log0 = d.log.len();
    let id = d.read(200, 8);
    let t = d.token_of_last();
    assert_eq!(d.taken(), before + 1);
    assert_eq!(d.log[log0].member, 1);
    d.settle();
    d.check_read(id, t, 200, 8);
    // Bad on member 0 in one part, on member 1 in another: split, general path.
    let before = d.taken();
    let id = d.read(200, 24);
    let t = d.token_of_last();
    assert_eq!(d.taken(), before, "a split read on the fast path");
    d.settle();
    d.check_read(id, t, 200, 24);
    // Elsewhere: fast.
    let before = d.taken();
    let id = d.read(400, 8);
    let t = d.token_of_last();
    assert_eq!(d.taken(), before + 1);
    d.settle();
    d.check_read(id, t, 400, 8);
}

/// Runs the same read-error scenario with the fast path on or off: what the members' counters,
/// the notices and the data end up as.
fn read_error_scenario(
    fast: bool,
    transient: bool,
    reads: u64,
) -> (Vec<mdraid::raid1::MemberCounters>, Vec<Notice>, u64) {
    read_error_scenario_by(fast, false, transient, reads)
}

/// As [`read_error_scenario`], the reads submitted with `submit_read` when `direct`.
fn read_error_scenario_by(
    fast: bool,
    direct: bool,
    transient: bool,
    reads: u64,
) -> (Vec<mdraid::raid1::MemberCounters>, Vec<Notice>, u64) {
    let mut d = Driver::new(Setup::default());
    d.m.set_fast_reads(fast);
    d.transient = transient;
    let data0 = d.m.members()[0].sb.data_offset() * 512;
    let data1 = d.m.members()[1].sb.data_offset() * 512;
    // Every read of member 0 in sectors 0..1024 fails; member 1 is fine.
    d.bad_reads = vec![(0, data0, data0 + 1024 * 512)];
    let _ = data1;
    let mut n = 0;
    for k in 0..reads {
        let s = (k * 24) % 1000;
        if direct {
            let (t, _) = d.direct_read(s, 8);
            d.settle();
            d.check_direct(t, s, 8);
        } else {
            let id = d.read(s, 8);
            let t = d.token_of_last();
            d.settle();
            d.check_read(id, t, s, 8);
        }
        n += 1;
    }
    assert_eq!(n, reads);
    let counters = (0..2).map(|i| d.m.member_counters(i).unwrap()).collect();
    (counters, d.notices.clone(), d.m.fast_read_stats().fallbacks)
}

/// A member read error on the fast path: correct data from the other mirror, and counted,
/// repaired and failed exactly as the general path does (md's rules).
#[test]
fn read_error_on_the_fast_path_is_handled_like_the_general_path() {
    // A sector that a rewrite fixes: counted, repaired from the other mirror (md's
    // fix_read_error), the member stays.
    let (fast_c, fast_n, fallbacks) = read_error_scenario(true, true, 12);
    let (slow_c, slow_n, none) = read_error_scenario(false, true, 12);
    assert_eq!(none, 0);
    assert!(fallbacks > 0, "no fast read met the error");
    assert_eq!(fast_c, slow_c, "member counters differ");
    assert_eq!(fast_n, slow_n, "notices differ");
    assert!(
        fast_c[0].errors > 0 && fast_c[0].corrected > 0,
        "errors counted and repaired: {:?}",
        fast_c[0]
    );
    assert!(!fast_n.contains(&Notice::MemberFailed { member: 0 }));
    // A member that keeps failing: past md's limit of 20 read errors it is failed; every
    // read still returns the data from the other mirror.
    let (fast_c, fast_n, fallbacks) = read_error_scenario(true, false, 60);
    let (slow_c, slow_n, _) = read_error_scenario(false, false, 60);
    assert!(fallbacks > 0);
    assert_eq!(fast_c, slow_c, "member counters differ");
    assert_eq!(fast_n, slow_n, "notices differ");
    assert!(fast_c[0].read_errors > 20, "{:?}", fast_c[0]);
    assert!(fast_n.contains(&Notice::MemberFailed { member: 0 }));
}

/// Fail and remove with fast reads in flight on the member: the reads finish with the right
/// data (a failed completion is served by the other mirror), remove waits until they did.
#[test]
fn fail_and_remove_with_fast_reads_in_flight() {
    let mut d = Driver::new(Setup::default());
    let before = d.taken();
    let mut reqs = Vec::new();
    for k in 0..8u64 {
        reqs.push((d.read(k * 40, 8), d.token_of_last(), k * 40));
    }
    let on0: Vec<Io> = d
        .pending
        .iter()
        .copied()
        .filter(|i| i.member == 0)
        .collect();
    assert!(!on0.is_empty(), "no fast read on member 0");
    assert_eq!(d.taken(), before + 8);
    d.m.fail_member(0).unwrap();
    d.drain();
    // Not removable while its reads are in flight.
    assert!(
        d.m.remove_member(0).is_err(),
        "removed with reads in flight"
    );
    // Half of member 0's reads fail (the device went away), half succeed.
    for (k, io) in on0.iter().enumerate() {
        let res = if k % 2 == 0 {
            Err(MemberError::Io(5))
        } else {
            Ok(())
        };
        d.complete_with(io, res);
    }
    d.settle();
    for (id, t, s) in reqs {
        d.check_read(id, t, s, 8);
    }
    let removed = d.m.remove_member(0);
    assert!(removed.is_ok(), "remove once idle: {removed:?}");
    d.settle();
    let id = d.read(0, 8);
    let t = d.token_of_last();
    d.settle();
    d.check_read(id, t, 0, 8);
}

/// Stop with fast reads in flight: nothing of the stop (its clean superblocks) goes out before
/// the reads complete, then it finishes.
#[test]
fn stop_waits_for_fast_reads() {
    let mut d = Driver::new(Setup::default());
    // A write first, so that the array is dirty and stop has superblocks to write.
    let w = d.write(0, 8);
    d.settle();
    d.done.remove(&w).unwrap().unwrap();
    let mut reqs = Vec::new();
    for k in 0..4u64 {
        reqs.push((d.read(100 + k * 8, 8), d.token_of_last(), 100 + k * 8));
    }
    let reads = d.pending.len();
    assert_eq!(reads, 4);
    d.m.stop();
    d.drain();
    assert!(!d.m.is_stopped());
    assert_eq!(
        d.pending.len(),
        reads,
        "stop wrote before the reads completed"
    );
    // A new read is refused while stopping.
    assert!(d
        .m
        .handle_submit(ArrayRequest::read(0, 8, BufRef(999)))
        .is_err());
    while d.pending.len() > 1 {
        d.complete(0);
        assert!(!d.m.is_stopped());
        assert!(d.pending.iter().all(|io| io.kind == IoKind::Read));
    }
    d.complete(0);
    // The last read's completion alone moves the stop on (no timer needed): its metadata
    // round (a flush, then the clean superblocks) is out.
    assert!(
        !d.pending.is_empty(),
        "the stop did not go on after the last read"
    );
    d.settle();
    assert!(d.m.is_stopped(), "stop never finished");
    for (id, t, s) in reqs {
        d.check_read(id, t, s, 8);
    }
}

/// A sync action started with fast reads in flight: none of its I/O touches a range a fast read
/// is still reading (md's barrier waits for them); repair's writes come after the reads.
#[test]
fn sync_start_orders_after_fast_reads() {
    for action in [SyncAction::Check, SyncAction::Repair] {
        let mut d = Driver::new(Setup::default());
        let mut reqs = Vec::new();
        for k in 0..6u64 {
            reqs.push((d.read(k * 16, 16), d.token_of_last(), k * 16));
        }
        let reads: Vec<Io> = d.pending.clone();
        d.m.start_sync(action).unwrap();
        d.drain();
        // The sync's first window covers the reads' range: nothing of it may be out yet.
        // (Both members have the same data offset: device offsets compare as array sectors.)
        let sync_ios: Vec<Io> = d.pending[reads.len()..].to_vec();
        for r in &reads {
            for s in sync_ios.iter().filter(|s| s.kind != IoKind::Flush) {
                assert!(
                    !(s.offset < r.offset + r.len && r.offset < s.offset + s.len),
                    "{action:?}: sync I/O {s:?} over in-flight read {r:?}"
                );
            }
        }
        // Complete the reads one by one, then everything.
        for r in reads {
            d.complete_with(&r, Ok(()));
        }
        d.settle();
        for (id, t, s) in reqs {
            d.check_read(id, t, s, 16);
        }
        assert!(d
            .notices
            .iter()
            .any(|n| matches!(n, Notice::SyncDone(r) if r.action == action)));
        // Mirrors identical.
        let a = &d.devs[0].as_slice();
        let b = &d.devs[1].as_slice();
        let off = (d.m.members()[0].sb.data_offset() * 512) as usize;
        let len = (WRITTEN * 512) as usize;
        assert!(a[off..off + len] == b[off..off + len]);
    }
}

/// Reads and writes over the same range stay in submission order: a read behind an in-flight
/// write waits for it (general path), a write behind an in-flight fast read waits for the read.
#[test]
fn overlapping_writes_order_with_fast_reads() {
    let mut d = Driver::new(Setup::default());
    // Dirty the array and the bitmap chunk first, so the next writes need no metadata round
    // (the engine's own ordering is what is tested, not the machine's idle metadata).
    let w = d.write(300, 8);
    d.settle();
    d.done.remove(&w).unwrap().unwrap();
    // A write in flight, then a read of the same range: not fast, not out before the write.
    let w = d.write(300, 8);
    assert!(
        d.pending
            .iter()
            .all(|io| matches!(io.buf, IoBuffer::Caller { .. })),
        "a metadata write: the test needs a dirty array"
    );
    let before = d.taken();
    let id = d.read(300, 8);
    let t = d.token_of_last();
    assert_eq!(d.taken(), before, "a fast read past an in-flight write");
    let reads_out = |d: &Driver| {
        d.pending
            .iter()
            .filter(|io| io.kind == IoKind::Read && matches!(io.buf, IoBuffer::Caller { .. }))
            .count()
    };
    while !d.done.contains_key(&w) {
        assert_eq!(
            reads_out(&d),
            0,
            "the read went out before the write completed"
        );
        assert!(!d.pending.is_empty(), "stuck");
        d.complete(0);
    }
    d.settle();
    d.check_read(id, t, 300, 8);
    // A fast read elsewhere while a write is in flight: fast.
    let w = d.write(600, 8);
    let before = d.taken();
    let id = d.read(700, 8);
    let t = d.token_of_last();
    assert_eq!(d.taken(), before + 1);
    d.settle();
    d.check_read(id, t, 700, 8);
    d.done.remove(&w).unwrap().unwrap();
    // A fast read in flight, then a write over it: no member write until the read is done.
    let id = d.read(900, 8);
    let t = d.token_of_last();
    let read_io = d.pending[0];
    let w = d.write(900, 8);
    assert!(
        d.pending
            .iter()
            .all(|io| !(io.kind == IoKind::Write && matches!(io.buf, IoBuffer::Caller { .. }))),
        "a write went out over an in-flight fast read"
    );
    d.complete_with(&read_io, Ok(()));
    d.check_read(id, t, 900, 8);
    d.settle();
    d.done.remove(&w).unwrap().unwrap();
}

/// `is_drained` says when the one output a driver expected was all: after a fast read's
/// submission once its member read is taken, after that read's success once the completion
/// is taken; a write's several I/Os, a queued completion and a notice each keep it false.
#[test]
fn drained_after_the_one_output_of_a_fast_read() {
    let mut d = Driver::new(Setup::default());
    assert!(d.m.is_drained(), "settled");
    let token = 77;
    d.bufs.insert(token, vec![0u8; 8 * 512]);
    let id =
        d.m.handle_submit(ArrayRequest::read(16, 8, BufRef(token)))
            .unwrap();
    assert!(!d.m.is_drained(), "its member read waits to be taken");
    let io = d.m.poll_io().expect("the read's member I/O");
    assert!(d.m.is_drained(), "one I/O was all");
    let res = d.perform(&io);
    d.m.handle_io_completion(io.id, res).unwrap();
    assert!(!d.m.is_drained(), "its completion waits to be taken");
    let (done, r) = d.m.poll_completion().expect("the read finished");
    assert_eq!(done, id);
    r.unwrap();
    assert!(d.m.is_drained());
    assert!(d.bufs[&token] == expected(16, 8));
    // A write hands out more than one I/O (a mirror each, and the bitmap before them).
    let wt = 78;
    d.bufs.insert(wt, expected(32, 8));
    d.m.handle_submit(ArrayRequest::write(32, 8, BufRef(wt)))
        .unwrap();
    let first = d.m.poll_io().expect("a write's first I/O");
    assert!(!d.m.is_drained(), "the write has more I/O than {first:?}");
    d.pending.push(first);
    d.drain();
    assert!(d.m.is_drained());
    d.settle();
    // Through a member failure (a notice and its superblock round) and a write on the degraded
    // array: after every input, `is_drained` agrees with what there is to take.
    d.m.fail_member(1).unwrap();
    let mut outputs = drained_agrees(&mut d);
    assert!(d
        .notices
        .iter()
        .any(|n| matches!(n, Notice::MemberFailed { .. })));
    let wt = 79;
    d.bufs.insert(wt, expected(48, 8));
    d.m.handle_submit(ArrayRequest::write(48, 8, BufRef(wt)))
        .unwrap();
    for _ in 0..10_000 {
        if d.pending.is_empty() {
            if !d.m.is_busy() {
                break;
            }
            d.now.mono_ns += 10_000_000;
            d.m.handle_timeout(d.now);
        } else {
            let io = d.pending.remove(0);
            let res = d.perform(&io);
            d.m.handle_io_completion(io.id, res).unwrap();
        }
        outputs += drained_agrees(&mut d);
    }
    assert!(!d.m.is_busy());
    assert!(
        outputs > 3,
        "the failure and the write handed out {outputs} outputs"
    );
}

/// Asserts `is_drained` against the outputs, taking them; how many there were.
fn drained_agrees(d: &mut Driver) -> usize {
    let predicted = d.m.is_drained();
    let (mut ios, mut done, mut notices) = (0, 0, 0);
    while let Some(io) = d.m.poll_io() {
        d.pending.push(io);
        ios += 1;
    }
    while d.m.poll_completion().is_some() {
        done += 1;
    }
    while let Some(n) = d.m.poll_event() {
        d.notices.push(n);
        notices += 1;
    }
    assert_eq!(
        predicted,
        ios + done + notices == 0,
        "is_drained said {predicted}: {ios} I/Os, {done} completions, {notices} notices"
    );
    ios + done + notices
}

/// A read that met a read error and was served by the other mirror finishes before its repair
/// (md's fix_read_error rewrites the bad copy afterwards, as an internal request): while that
/// repair's I/Os are all that is in flight, the machine is still busy (a speed-limit change,
/// which rebuilds the engine, waits for it).
#[test]
fn busy_while_only_a_read_repair_is_in_flight() {
    let mut d = Driver::new(Setup::default());
    d.transient = true;
    let data0 = d.m.members()[0].sb.data_offset() * 512;
    d.bad_reads = vec![(0, data0, data0 + 1024 * 512)];
    let mut seen = 0;
    for k in 0..32u64 {
        let (s, t) = (k * 8, d.next_token);
        let id = d.read(s, 8);
        for _ in 0..1000 {
            if d.done.contains_key(&id) || d.pending.is_empty() {
                break;
            }
            d.complete(0);
        }
        assert!(d.done.contains_key(&id), "the read never completed");
        if d.m.engine().repairs_in_flight() > 0 {
            assert_eq!(d.m.engine().requests_in_flight(), 0);
            assert!(d.m.engine().member_ios_in_flight() > 0);
            assert!(
                d.m.is_busy(),
                "a repair in flight, and the machine says idle"
            );
            assert!(
                d.m.set_speed_limits(1000, 2000).is_err(),
                "the engine rebuilt under a repair"
            );
            seen += 1;
        }
        d.settle();
        d.check_read(id, t, s, 8);
    }
    assert!(seen > 0, "no read left a repair running");
}

// ---- direct reads (`Machine::submit_read`, the C driver's path) ----

/// A healthy array hands a read's one member I/O straight back; its success finishes the
/// read there and then (nothing through `poll_io` or `poll_completion`), and the machine is
/// busy exactly while one is out.
#[test]
fn direct_reads_are_handed_back_and_finish_at_their_completion() {
    let mut d = Driver::new(Setup::default());
    let before = d.taken();
    let mut reads = Vec::new();
    for k in 0..8u64 {
        let (t, direct) = d.direct_read(k * 64, 8);
        assert!(direct, "read {k} was not direct");
        reads.push((t, k * 64));
    }
    assert_eq!(d.taken(), before + 8);
    assert!(d.m.is_busy(), "idle with direct reads out");
    assert_eq!(d.m.engine().requests_in_flight(), 8);
    let members: std::collections::HashSet<usize> = d.pending.iter().map(|i| i.member).collect();
    assert_eq!(members.len(), 2, "read balancing used one mirror only");
    while !d.pending.is_empty() {
        d.complete(0);
        assert!(d.m.poll_completion().is_none());
    }
    assert!(!d.m.is_busy());
    for (t, s) in reads {
        d.check_direct(t, s, 8);
    }
    // With the fast path off, or stopping, `submit_read` is `handle_submit`.
    d.m.set_fast_reads(false);
    let (t, direct) = d.direct_read(8, 8);
    assert!(!direct, "direct with the fast path off");
    d.settle();
    d.check_direct(t, 8, 8);
    d.m.set_fast_reads(true);
    // A direct read's id is refused by the general completion call (and stays completable).
    let (t, direct) = d.direct_read(8, 8);
    assert!(direct);
    let io = d.pending[0];
    assert!(d.m.handle_io_completion(io.id, Ok(())).is_err());
    d.complete(0);
    d.check_direct(t, 8, 8);
}

/// A member error on a direct read: the read goes on as an ordinary one, served by the other
/// mirror, and the error is counted, repaired and (past md's limit) fails the member exactly
/// as on the general path.
#[test]
fn direct_read_errors_are_handled_like_the_general_path() {
    for transient in [true, false] {
        let reads = if transient { 12 } else { 60 };
        let (dc, dn, fallbacks) = read_error_scenario_by(true, true, transient, reads);
        let (gc, gn, _) = read_error_scenario(false, transient, reads);
        assert!(fallbacks > 0, "no direct read met the error");
        assert_eq!(dc, gc, "member counters differ (transient {transient})");
        assert_eq!(dn, gn, "notices differ (transient {transient})");
    }
}

/// What waits for direct reads: a stop writes nothing until they completed, a member with one
/// out cannot be removed, and a sync action hands out no I/O until they are done. A write over
/// an in-flight direct read goes out at once (md orders neither way), and a read over an
/// in-flight write is not direct.
#[test]
fn stop_remove_sync_and_writes_around_direct_reads() {
    // Stop.
    let mut d = Driver::new(Setup::default());
    let w = d.write(0, 8);
    d.settle();
    d.done.remove(&w).unwrap().unwrap();
    let (t, direct) = d.direct_read(100, 8);
    assert!(direct);
    d.m.stop();
    d.drain();
    assert_eq!(
        d.pending.len(),
        1,
        "stop wrote before the direct read completed"
    );
    assert!(!d.m.is_stopped());
    assert!(d
        .m
        .submit_read(ArrayRequest::read(0, 8, BufRef(999)))
        .is_err());
    d.complete(0);
    assert!(
        !d.pending.is_empty(),
        "the stop did not go on after the read"
    );
    d.settle();
    assert!(d.m.is_stopped());
    d.check_direct(t, 100, 8);

    // Remove: refused while a failed member still has a direct read out.
    let mut d = Driver::new(Setup::default());
    let mut on0 = None;
    let mut tokens = Vec::new();
    for k in 0..4u64 {
        let (t, direct) = d.direct_read(k * 200, 8);
        assert!(direct);
        tokens.push((t, k * 200));
        if on0.is_none() {
            on0 = d.pending.iter().copied().find(|i| i.member == 0);
        }
    }
    let io0 = on0.expect("a direct read on member 0");
    d.m.fail_member(0).unwrap();
    d.drain();
    assert!(d.m.remove_member(0).is_err(), "removed with a read out");
    d.complete_with(&io0, Err(MemberError::Io(5)));
    d.settle();
    for (t, s) in tokens {
        d.check_direct(t, s, 8);
    }
    assert!(d.m.remove_member(0).is_ok());

    // Sync: no sync I/O while a direct read is out.
    for action in [SyncAction::Check, SyncAction::Repair] {
        let mut d = Driver::new(Setup::default());
        let (t, direct) = d.direct_read(16, 16);
        assert!(direct);
        d.m.start_sync(action).unwrap();
        d.drain();
        // However long the read takes (the sync's timers firing meanwhile).
        for _ in 0..5 {
            assert_eq!(
                d.pending.len(),
                1,
                "{action:?}: sync I/O with a direct read out"
            );
            d.now.mono_ns += 10_000_000;
            d.m.handle_timeout(d.now);
            d.drain();
        }
        d.complete(0);
        d.settle();
        d.check_direct(t, 16, 16);
        assert!(d
            .notices
            .iter()
            .any(|n| matches!(n, Notice::SyncDone(r) if r.action == action)));
    }

    // Writes.
    let mut d = Driver::new(Setup::default());
    let w = d.write(300, 8);
    d.settle();
    d.done.remove(&w).unwrap().unwrap();
    let (t, direct) = d.direct_read(300, 8);
    assert!(direct);
    let w = d.write(300, 8);
    assert_eq!(
        d.pending.iter().filter(|i| i.kind == IoKind::Write).count(),
        2,
        "the write waited for the direct read"
    );
    // The read completes before the write (same data: the pattern is rewritten).
    let r = d
        .pending
        .iter()
        .position(|i| i.id.is_direct_read())
        .unwrap();
    d.complete(r);
    d.check_direct(t, 300, 8);
    let (t2, direct) = d.direct_read(300, 8);
    assert!(!direct, "a read over an in-flight write was direct");
    d.settle();
    d.done.remove(&w).unwrap().unwrap();
    d.check_direct(t2, 300, 8);
}
