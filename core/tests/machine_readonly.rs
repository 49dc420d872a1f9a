//! md's read-only array at the machine level: whatever happens to it (reads, a read error, a
//! member past its read-error limit, refused writes/flushes/discards, sync actions, fail and
//! remove, time passing, stop), the machine never hands out an I/O that writes: no data
//! write, no superblock, no bitmap page, no bad-block log, no flush. Reads still return the
//! data, also when a mirror fails them. The array under test is owed a resync and has dirty
//! bitmap bits and dirty superblocks (a power cut after writes), so that a writable array
//! would write at once on stop or on its first idle pass.

mod common;

use mdraid::array::machine::{Io, IoBuffer, IoKind, Machine, Now};
use mdraid::array::{Array, AssembleOptions, CreateOptions};
use mdraid::device::{BlockDevice, MemDevice};
use mdraid::format::geometry::BitmapRequest;
use mdraid::format::MetadataVersion;
use mdraid::raid1::{ArrayRequest, BufRef, MemberError, SyncAction};

const DEV_BYTES: usize = 4 << 20;

fn pattern(sector: u64) -> [u8; 512] {
    let mut b = [0u8; 512];
    for (i, x) in b.iter_mut().enumerate() {
        *x = (sector as u8).wrapping_mul(31) ^ i as u8;
    }
    b
}

/// A 2-way array of `v` with an internal bitmap, written to and then cut off (dirty
/// superblocks, dirty bits, resync owed): the members' bytes.
fn crashed_array(v: MetadataVersion) -> Vec<Vec<u8>> {
    let slots = common::mem_slots(2, DEV_BYTES);
    let opts = CreateOptions {
        bitmap: BitmapRequest::Internal {
            chunk_bytes: Some(64 << 10),
        },
        name: "ro".into(),
        assume_clean: false,
        now: 1_900_000_000,
        ..common::create_options(v, 2)
    };
    let mut a: Array<MemDevice> = Array::create(slots, &opts).unwrap();
    for s in 0..64u64 {
        a.write(s * 4096, &[pattern(s).as_slice(); 8].concat())
            .unwrap();
    }
    a.abandon()
        .into_iter()
        .map(|m| m.dev.as_slice().to_vec())
        .collect()
}

struct Driver {
    m: Machine,
    devs: Vec<MemDevice>,
    now: Now,
    /// Member 0 fails every read at or after this byte offset.
    bad_from: u64,
    ios: Vec<Io>,
}

impl Driver {
    /// Carries out every I/O the machine hands out (all must be reads) until it is idle.
    fn run(&mut self, buf: &mut [u8]) {
        for _ in 0..100_000 {
            let Some(io) = self.m.poll_io() else {
                if !self.m.is_busy() {
                    return;
                }
                self.now.mono_ns += 50_000_000;
                self.m.handle_timeout(self.now);
                continue;
            };
            self.ios.push(io);
            assert_eq!(
                io.kind,
                IoKind::Read,
                "a read-only machine handed out {io:?}"
            );
            let mut data = vec![0u8; io.len as usize];
            let res = if io.member == 0 && io.offset >= self.bad_from {
                Err(MemberError::Io(5))
            } else {
                self.devs[io.member].read_at(io.offset, &mut data).unwrap();
                Ok(())
            };
            if res.is_ok() {
                match io.buf {
                    IoBuffer::Caller { offset, .. } => {
                        let o = offset as usize;
                        buf[o..o + data.len()].copy_from_slice(&data);
                    }
                    IoBuffer::Machine { index, offset } => {
                        let b = self.m.buffer_mut(index).expect("a machine read buffer");
                        b[offset..offset + data.len()].copy_from_slice(&data);
                    }
                    IoBuffer::None => panic!("a read without a buffer: {io:?}"),
                }
            }
            self.m.handle_io_completion(io.id, res).unwrap();
        }
        panic!("the machine never went idle");
    }

    fn read(&mut self, sector: u64, sectors: u64) -> Vec<u8> {
        let mut buf = vec![0u8; (sectors * 512) as usize];
        let id = self
            .m
            .handle_submit(ArrayRequest::read(sector, sectors, BufRef(0)))
            .unwrap();
        self.run(&mut buf);
        let (done, res) = self.m.poll_completion().expect("the read completes");
        assert_eq!(done, id);
        res.expect("a read served by the other mirror");
        buf
    }
}

#[test]
fn a_read_only_machine_never_hands_out_a_write() {
    for v in [
        MetadataVersion::V0_90,
        MetadataVersion::V1_0,
        MetadataVersion::V1_1,
        MetadataVersion::V1_2,
    ] {
        let images = crashed_array(v);
        let devs: Vec<(String, MemDevice)> = images
            .iter()
            .enumerate()
            .map(|(i, b)| (format!("m{i}"), MemDevice::from_vec(b.clone())))
            .collect();
        let opts = AssembleOptions {
            run: false,
            force: false,
            readonly: true,
        };
        let (a, _) = Array::assemble(devs, &opts).unwrap();
        assert!(a.needs_resync(), "{v}: the cut array owes a resync");
        assert!(
            a.bitmap().is_some_and(|b| b.dirty_chunks() > 0),
            "{v}: the cut array has dirty bits"
        );
        let now = Now {
            mono_ns: 1_000_000_000,
            wall_secs: 1_900_000_100,
        };
        let (m, devs) = a.into_machine(now).unwrap();
        assert!(m.is_readonly());
        let data_offset = m.members()[0].sb.data_offset() * 512;
        let mut d = Driver {
            m,
            devs,
            now,
            bad_from: u64::MAX,
            ios: Vec::new(),
        };
        // Reads work.
        let got = d.read(8, 16);
        for (i, s) in got.chunks(512).enumerate() {
            assert_eq!(s, pattern((8 + i as u64) / 8), "{v}: sector {}", 8 + i);
        }
        // Member 0 fails reads from the array's sector 64 on: served by member 1, with no
        // repair write, even once member 0 is past md's read-error limit.
        d.bad_from = data_offset + 64 * 512;
        for k in 0..30u64 {
            let s = 64 + 8 * k;
            let got = d.read(s, 8);
            assert_eq!(&got[..512], &pattern(s / 8)[..], "{v}: sector {s}");
        }
        // Writes, flushes and discards are refused at submission.
        for req in [
            ArrayRequest::write(0, 8, BufRef(0)),
            ArrayRequest::flush(),
            ArrayRequest::discard(0, 8),
        ] {
            assert!(
                d.m.handle_submit(req).is_err(),
                "{v}: {req:?} accepted by a read-only machine"
            );
        }
        // No sync action starts, no spare recovery, no fail/remove.
        for action in [
            SyncAction::Resync,
            SyncAction::Check,
            SyncAction::Repair,
            SyncAction::Recovery,
        ] {
            assert!(d.m.start_sync(action).is_err(), "{v}: {action:?} started");
        }
        // md's `idle` starts nothing either (its recovery check leaves a read-only array
        // alone), though the array owes a resync.
        d.m.stop_sync(false);
        d.run(&mut []);
        assert!(
            d.m.engine().sync_status().is_none(),
            "{v}: idle started a sync action on a read-only array"
        );
        assert!(!d.m.check_recovery(), "{v}: recovery started");
        assert!(d.m.fail_member(1).is_err(), "{v}: fail accepted");
        // Time passes (md's safe-mode and bitmap daemon passes), then the array stops.
        for _ in 0..20 {
            d.now.mono_ns += 1_000_000_000;
            d.m.handle_timeout(d.now);
            d.run(&mut []);
        }
        d.m.stop();
        d.run(&mut []);
        assert!(d.m.is_stopped(), "{v}: stop never finished");
        assert!(
            d.ios.iter().all(|io| io.kind == IoKind::Read),
            "{v}: a write was handed out"
        );
        assert!(d.ios.len() >= 31, "{v}: the reads went nowhere");
        // And the member bytes are those of the cut (nothing was written behind our back).
        for (dev, img) in d.devs.iter().zip(&images) {
            assert!(dev.as_slice() == img.as_slice(), "{v}: a member changed");
        }
    }
}
