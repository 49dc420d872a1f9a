//! The engine's direct reads (`Raid1::submit_direct_read`): which reads may be one member
//! read handed straight back, and which must take the general path (`None`), condition by
//! condition and at each boundary.

use mdraid::raid1::{
    ArrayRequest, BadBlockTable, BufRef, DirectDone, MemberConfig, Raid1, Raid1Config, SyncAction,
    DIRECT_BIT,
};

const SECTORS: u64 = 1024;

fn engine(max_requests: usize) -> Raid1 {
    let mut cfg = Raid1Config::new(2, SECTORS);
    cfg.start_clean = true;
    cfg.max_requests = max_requests;
    Raid1::new(cfg).unwrap()
}

/// Submits a direct read; when taken, completes it at once (finished, nothing left).
fn direct(e: &mut Raid1, req: ArrayRequest) -> bool {
    let Some(io) = e.submit_direct_read(&req) else {
        return false;
    };
    assert!(io.id.raw() & DIRECT_BIT != 0);
    assert_eq!((io.sector, io.sectors), (req.sector, req.sectors));
    assert!(matches!(
        e.handle_direct_completion(io.id, Ok(())),
        Ok(DirectDone::Finished(b, Ok(()))) if b == req.buf
    ));
    true
}

fn read(sector: u64, sectors: u64) -> ArrayRequest {
    ArrayRequest::read(sector, sectors, BufRef(7))
}

#[test]
fn only_reads_in_range_and_below_the_resync_point_are_direct() {
    let mut e = engine(8);
    assert!(direct(&mut e, read(0, 8)));
    assert!(direct(&mut e, read(SECTORS - 8, 8)), "the last sectors");
    assert!(!direct(&mut e, read(SECTORS - 4, 8)), "past the end");
    assert!(!direct(&mut e, read(8, 0)), "zero sectors");
    assert!(!direct(&mut e, ArrayRequest::write(0, 8, BufRef(1))));
    assert!(!direct(&mut e, ArrayRequest::discard(0, 8)));
    assert!(!direct(&mut e, ArrayRequest::flush()));
    let overflowing = ArrayRequest {
        buf_offset: u64::MAX - 100,
        ..read(0, 8)
    };
    assert!(!direct(&mut e, overflowing), "buffer offset overflows");
    e.set_fast_reads(false);
    assert!(!direct(&mut e, read(0, 8)), "fast reads off");
    e.set_fast_reads(true);
    e.set_resync_offset(100);
    assert!(direct(&mut e, read(92, 8)), "ends at the resync point");
    assert!(!direct(&mut e, read(96, 8)), "crosses the resync point");
    e.set_resync_offset(u64::MAX);
    assert!(direct(&mut e, read(96, 8)));
    assert_eq!(e.requests_in_flight(), 0);
    assert_eq!(e.member_ios_in_flight(), 0);
}

/// The request limit counts direct reads in flight and finished requests not yet polled.
#[test]
fn the_request_limit_counts_direct_reads_and_unpolled_completions() {
    let mut e = engine(4);
    // One general read, finished but its completion not polled.
    e.handle_submit(read(0, 8)).unwrap();
    let io = e.poll_member_io().unwrap();
    e.handle_member_completion(io.id, Ok(())).unwrap();
    let mut out = Vec::new();
    for k in 0..3u64 {
        out.push(e.submit_direct_read(&read(16 + k * 8, 8)).expect("room"));
    }
    assert!(
        e.submit_direct_read(&read(64, 8)).is_none(),
        "past the limit"
    );
    assert_eq!(e.requests_in_flight(), 3);
    assert!(e.poll_completion().is_some());
    let io = e.submit_direct_read(&read(64, 8)).expect("room again");
    out.push(io);
    for io in out {
        e.handle_direct_completion(io.id, Ok(())).unwrap();
    }
    assert_eq!(e.requests_in_flight(), 0);
}

/// An in-flight write over any sector of the read keeps it off the direct path; writes next
/// to it do not.
#[test]
fn overlapping_writes_in_flight_keep_reads_off_the_direct_path() {
    let mut e = engine(8);
    e.handle_submit(ArrayRequest::write(200, 8, BufRef(1)))
        .unwrap();
    while let Some(ev) = e.poll_event() {
        e.handle_metadata_done(ev.token()).unwrap();
    }
    assert!(direct(&mut e, read(192, 8)), "adjacent below");
    assert!(direct(&mut e, read(208, 8)), "adjacent above");
    assert!(!direct(&mut e, read(196, 8)), "overlaps the start");
    assert!(!direct(&mut e, read(204, 8)), "overlaps the end");
    assert!(!direct(&mut e, read(200, 8)), "the same range");
}

/// A sync action running, or no single mirror able to serve the whole range (bad blocks on
/// both), keeps reads off the direct path.
#[test]
fn sync_and_bad_blocks_keep_reads_off_the_direct_path() {
    let mut e = engine(8);
    e.start_sync(SyncAction::Check, 0).unwrap();
    assert!(!direct(&mut e, read(0, 8)), "a check runs");

    let mut cfg = Raid1Config::new(2, SECTORS);
    cfg.start_clean = true;
    for (i, m) in cfg.members.iter_mut().enumerate() {
        *m = MemberConfig::in_sync();
        m.bad_blocks = Some(BadBlockTable {
            ranges: vec![(300 + 2 * i as u64, 1)],
            capacity: 8,
        });
    }
    let mut e = Raid1::new(cfg).unwrap();
    assert!(
        !direct(&mut e, read(296, 16)),
        "a bad block in the range on both mirrors"
    );
    assert!(direct(&mut e, read(280, 16)), "clear of them");
}

/// Completions with the wrong id are refused and change nothing: a general I/O's id (with or
/// without the direct bit), a direct read's id given to the general call, a second
/// completion of the same direct read.
#[test]
fn misrouted_and_repeated_completions_are_refused() {
    let mut e = engine(8);
    e.handle_submit(read(0, 8)).unwrap();
    let general = e.poll_member_io().unwrap();
    let io = e.submit_direct_read(&read(64, 8)).unwrap();
    assert!(e.handle_direct_completion(general.id, Ok(())).is_err());
    let forged = mdraid::raid1::MemberIoId::from_raw(general.id.raw() | DIRECT_BIT);
    assert!(
        e.handle_direct_completion(forged, Ok(())).is_err(),
        "a general I/O's slot"
    );
    assert!(e.handle_member_completion(io.id, Ok(())).is_err());
    let stale_gen = mdraid::raid1::MemberIoId::from_raw(io.id.raw() + (1 << 32));
    assert!(
        e.handle_direct_completion(stale_gen, Ok(())).is_err(),
        "another generation"
    );
    assert_eq!(e.requests_in_flight(), 2);
    assert!(matches!(
        e.handle_direct_completion(io.id, Ok(())),
        Ok(DirectDone::Finished(BufRef(7), Ok(())))
    ));
    assert!(
        e.handle_direct_completion(io.id, Ok(())).is_err(),
        "completed twice"
    );
    e.handle_member_completion(general.id, Ok(())).unwrap();
    assert!(e.poll_completion().is_some());
    assert_eq!(e.requests_in_flight(), 0);
    assert_eq!(e.member_ios_in_flight(), 0);
}
