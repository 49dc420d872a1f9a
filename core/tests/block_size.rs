//! Members with 4 KiB logical blocks (a 4Kn disk, or O_DIRECT on one): every I/O the array
//! makes — creation's metadata, superblock and bitmap rounds, data, syncs, stop — is whole
//! 4 KiB blocks, as md rounds its metadata writes up to the device's block size. The test
//! device refuses anything else the way the kernel does (EINVAL), so one stray 1 KiB
//! superblock write fails a member and the test sees it. Requests that are not whole blocks
//! are refused by the array, not passed on; a device with larger blocks than the array's
//! cannot be added.

use mdraid::array::setup::{self, DeviceInfo};
use mdraid::array::{
    AddOptions, Array, AssembleOptions, CreateOptions, CreateSlot, Now, SyncAction,
};
use mdraid::device::{BlockDevice, DeviceError, IoOp, MemDevice};
use mdraid::format::geometry::BitmapRequest;
use mdraid::format::MetadataVersion;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

const MIB: usize = 1 << 20;
const BLOCK: u64 = 4096;

/// A memory device with `block`-byte logical blocks that refuses partial blocks and counts
/// every I/O it was asked for.
#[derive(Clone, Debug)]
struct Blocks {
    mem: MemDevice,
    block: u32,
    refused: Arc<AtomicU64>,
    ios: Arc<AtomicU64>,
}

impl Blocks {
    fn new(size: usize, block: u32) -> Self {
        Blocks {
            mem: MemDevice::new(size),
            block,
            refused: Arc::new(AtomicU64::new(0)),
            ios: Arc::new(AtomicU64::new(0)),
        }
    }
    fn check(&self, op: IoOp, offset: u64, len: usize) -> Result<(), DeviceError> {
        self.ios.fetch_add(1, Ordering::Relaxed);
        let b = u64::from(self.block);
        if offset % b != 0 || len as u64 % b != 0 {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(DeviceError::Misaligned {
                op,
                offset,
                len: len as u64,
                align: self.block,
            });
        }
        Ok(())
    }
}

impl BlockDevice for Blocks {
    fn size(&self) -> u64 {
        self.mem.size()
    }
    fn logical_block_size(&self) -> u32 {
        self.block
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        self.check(IoOp::Read, offset, buf.len())?;
        self.mem.read_at(offset, buf)
    }
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), DeviceError> {
        self.check(IoOp::Write, offset, buf.len())?;
        self.mem.write_at(offset, buf)
    }
    fn flush(&mut self) -> Result<(), DeviceError> {
        Ok(())
    }
}

fn opts(version: MetadataVersion, bitmap: bool, assume_clean: bool) -> CreateOptions {
    CreateOptions {
        version,
        raid_disks: 2,
        bitmap: if bitmap {
            BitmapRequest::Internal {
                chunk_bytes: Some(MIB as u64),
            }
        } else {
            BitmapRequest::None
        },
        name: "blocks".into(),
        homehost: None,
        assume_clean,
        size_kib: None,
        now: 1_900_000_000,
        uuid: [9; 16],
        seed: 9,
        md_minor: 0,
    }
}

/// An array created over `devs` (each member a handle on the same blocks as its `devs` entry).
fn create(devs: &[Blocks], opts: &CreateOptions) -> Array<Blocks> {
    Array::create(slots(devs), opts).unwrap()
}

/// Creation's slots over `devs`, named d0, d1, ...
fn slots(devs: &[Blocks]) -> Vec<CreateSlot<Blocks>> {
    devs.iter()
        .enumerate()
        .map(|(i, d)| CreateSlot::Device {
            name: format!("d{i}"),
            dev: d.clone(),
            write_mostly: false,
            failfast: false,
        })
        .collect()
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

const VERSIONS: [MetadataVersion; 4] = [
    MetadataVersion::V0_90,
    MetadataVersion::V1_0,
    MetadataVersion::V1_1,
    MetadataVersion::V1_2,
];

/// Create (with a resync), write, check, stop, reassemble, read, fail and re-add a member,
/// for every metadata version with and without a bitmap: no I/O is ever a partial block,
/// nothing fails, the data is what was written.
#[test]
fn every_io_on_4k_members_is_whole_blocks() {
    for v in VERSIONS {
        for bitmap in [false, true] {
            let what = format!("{v:?} bitmap={bitmap}");
            let devs: Vec<Blocks> = (0..2).map(|_| Blocks::new(64 * MIB, 4096)).collect();
            let mut a = create(&devs, &opts(v, bitmap, false));
            assert_eq!(a.block_size(), BLOCK, "{what}");
            a.resync().unwrap();
            let data = pattern(3 * MIB, 7);
            a.write(20 * BLOCK, &data).unwrap();
            // A partial block through the byte-addressed facade: read-modify-write of the
            // covering block (the machine itself refuses partial blocks, see below).
            a.write(20 * BLOCK + 512, &[1u8; 512]).unwrap();
            let mut data = data;
            data[512..1024].fill(1);
            let mut sub = [0u8; 700];
            a.read(20 * BLOCK + 300, &mut sub).unwrap();
            assert!(sub[..] == data[300..1000], "{what}: partial-block read");
            let r = a.run_sync(SyncAction::Check, &mut |_, _| {}).unwrap();
            assert_eq!(r.mismatch_cnt, 0, "{what}");
            assert_eq!(a.in_sync_count(), 2, "{what}: a member failed");
            let members = a.stop().unwrap();
            let devs2: Vec<_> = members.into_iter().map(|m| (m.name, m.dev)).collect();
            let (mut b, rep) = Array::assemble(devs2, &AssembleOptions::default()).unwrap();
            assert!(rep.kicked.is_empty(), "{what}: {:?}", rep.kicked.len());
            assert_eq!(b.in_sync_count(), 2, "{what}");
            let mut back = vec![0u8; data.len()];
            b.read(20 * BLOCK, &mut back).unwrap();
            assert!(back == data, "{what}: data differs after reassembly");
            // Fail, remove and bring back a member (a superblock round per step, a rebuild).
            b.fail_member("d1").unwrap();
            b.write(40 * BLOCK, &pattern(MIB, 3)).unwrap();
            let dev = b
                .remove_member("d1", None)
                .unwrap()
                .expect("removed device");
            b.add_member("d1".into(), dev, &AddOptions::default(), &mut |_, _| {})
                .unwrap();
            let r = b.run_sync(SyncAction::Check, &mut |_, _| {}).unwrap();
            assert_eq!(r.mismatch_cnt, 0, "{what}: after the rebuild");
            assert_eq!(b.in_sync_count(), 2, "{what}: after the rebuild");
            b.stop().unwrap();
            for (i, d) in devs.iter().enumerate() {
                assert!(d.ios.load(Ordering::Relaxed) > 0, "{what}: d{i} unused");
                assert_eq!(
                    d.refused.load(Ordering::Relaxed),
                    0,
                    "{what}: d{i} was sent partial blocks"
                );
            }
        }
    }
}

/// Device-less creation over two 32 MiB devices with 4 KiB blocks.
fn create_4k(
    v: MetadataVersion,
    bitmap: bool,
    assume_clean: bool,
) -> (mdraid::array::machine::Machine, Vec<setup::MetadataWrite>) {
    let slots = (0..2)
        .map(|i| CreateSlot::Device {
            name: format!("d{i}"),
            dev: DeviceInfo {
                name: format!("d{i}"),
                size: 32 * MIB as u64,
                device_number: None,
                block_size: 4096,
            },
            write_mostly: false,
            failfast: false,
        })
        .collect();
    let now = Now {
        mono_ns: 1,
        wall_secs: 1_900_000_000,
    };
    setup::create(slots, &opts(v, bitmap, assume_clean), now).unwrap()
}

/// The machine takes whole blocks only (the block layer's promise to md).
#[test]
fn the_machine_refuses_partial_blocks() {
    let (mut m, _) = create_4k(MetadataVersion::V1_2, false, true);
    assert_eq!(m.block_size(), BLOCK);
    use mdraid::raid1::{ArrayRequest, BufRef};
    for (sector, sectors) in [(1, 8), (0, 1), (8, 7), (4, 4)] {
        let e = m
            .handle_submit(ArrayRequest::write(sector, sectors, BufRef(1)))
            .unwrap_err();
        assert!(e.to_string().contains("logical block size"), "{e}");
        assert!(m
            .handle_submit(ArrayRequest::read(sector, sectors, BufRef(1)))
            .is_err());
    }
    assert!(m
        .handle_submit(ArrayRequest::read(8, 16, BufRef(1)))
        .is_ok());
    assert!(m.handle_submit(ArrayRequest::flush()).is_ok());
}

/// A device with 4 KiB blocks cannot join an array of 512-byte ones: the array's requests
/// would be refused by it.
#[test]
fn a_member_with_larger_blocks_is_refused() {
    let slots = (0..2)
        .map(|i| CreateSlot::Device {
            name: format!("d{i}"),
            dev: Blocks::new(32 * MIB, 512),
            write_mostly: false,
            failfast: false,
        })
        .collect();
    let mut a = Array::create(slots, &opts(MetadataVersion::V1_2, true, true)).unwrap();
    assert_eq!(a.block_size(), 512);
    a.fail_member("d1").unwrap();
    a.remove_member("d1", None).unwrap();
    let big = Blocks::new(32 * MIB, 4096);
    let e = a
        .add_member("big".into(), big, &AddOptions::default(), &mut |_, _| {})
        .unwrap_err();
    assert!(e.to_string().contains("logical block size"), "{e}");
    // The array still works degraded, with 512-byte requests.
    a.write(512, &[5u8; 512]).unwrap();
}

/// Device-less creation hands back whole-block writes for 4 KiB devices, and a machine
/// assembled from them hands out whole-block metadata I/O.
#[test]
fn setup_create_writes_whole_blocks() {
    for v in VERSIONS {
        let (mut m, writes) = create_4k(v, true, false);
        assert!(!writes.is_empty());
        for w in &writes {
            assert!(
                w.offset % BLOCK == 0 && w.data.len() as u64 % BLOCK == 0,
                "{v:?}: creation write at {} of {} bytes",
                w.offset,
                w.data.len()
            );
        }
        // The first write marks the array dirty: a superblock (and bitmap) round.
        m.handle_submit(mdraid::raid1::ArrayRequest::write(
            0,
            8,
            mdraid::raid1::BufRef(1),
        ))
        .unwrap();
        let mut seen = 0;
        while let Some(io) = m.poll_io() {
            seen += 1;
            assert!(
                io.offset % BLOCK == 0 && io.len % BLOCK == 0,
                "{v:?}: {:?} at {} of {} bytes",
                io.kind,
                io.offset,
                io.len
            );
            if let mdraid::array::machine::IoBuffer::Machine { index, offset } = io.buf {
                let b = m.buffer(index).expect("machine buffer");
                assert!(
                    offset as u64 + io.len <= b.len() as u64,
                    "{v:?}: buffer too short"
                );
            }
            m.handle_io_completion(io.id, Ok(())).unwrap();
        }
        assert!(
            seen >= 2,
            "{v:?}: expected a metadata round and the data writes"
        );
        assert!(m
            .handle_submit(mdraid::raid1::ArrayRequest::read(
                1,
                8,
                mdraid::raid1::BufRef(1)
            ))
            .is_err());
    }
}

/// A bitmap grown onto an array of 4 KiB-block members (mdadm --grow --bitmap=internal) is
/// written in whole blocks like every other metadata write: no member is sent a partial
/// block, none fails, and the array keeps its data across a stop and reassembly.
#[test]
fn a_bitmap_grown_on_4k_members_is_written_in_whole_blocks() {
    use mdraid::array::machine::{BitmapGrow, GrowRequest};
    for v in VERSIONS {
        let devs: Vec<Blocks> = (0..2).map(|_| Blocks::new(64 * MIB, 4096)).collect();
        let mut a = create(&devs, &opts(v, false, true));
        a.grow(
            GrowRequest::Bitmap(BitmapGrow::Internal { chunk_bytes: None }),
            &mut |_, _| {},
        )
        .unwrap();
        let data = pattern(MIB, 5);
        a.write(20 * BLOCK, &data).unwrap();
        assert_eq!(a.in_sync_count(), 2, "{v:?}: a member failed");
        let members = a.stop().unwrap();
        for (i, d) in devs.iter().enumerate() {
            assert_eq!(
                d.refused.load(Ordering::Relaxed),
                0,
                "{v:?}: d{i} was sent partial blocks"
            );
        }
        let devs2: Vec<_> = members.into_iter().map(|m| (m.name, m.dev)).collect();
        let (mut b, rep) = Array::assemble(devs2, &AssembleOptions::default()).unwrap();
        assert!(rep.kicked.is_empty(), "{v:?}");
        let mut back = vec![0u8; data.len()];
        b.read(20 * BLOCK, &mut back).unwrap();
        assert!(back == data, "{v:?}: data after reassembly");
    }
}

/// A 1.2 layout whose bitmap starts 1 KiB past the superblock (valid on 512-byte devices,
/// where md writes metadata in 512-byte blocks) cannot run on 4 KiB-block members: the
/// superblock's block-sized write would cover the bitmap's header and md's own bitmap I/O
/// there is refused by the device. Assembly refuses such members with the reason (and the
/// same images assemble on 512-byte devices, as md would).
#[test]
fn a_bitmap_inside_the_superblocks_block_is_refused_on_4k_members() {
    use mdraid::format::probe::{probe, Superblock};
    let blank: Vec<Blocks> = (0..2).map(|_| Blocks::new(32 * MIB, 512)).collect();
    let mut a = create(&blank, &opts(MetadataVersion::V1_2, true, true));
    a.write(0, &pattern(64 << 10, 3)).unwrap();
    let mut devs: Vec<Blocks> = a.stop().unwrap().into_iter().map(|m| m.dev).collect();
    for d in &mut devs {
        let found = probe(d, None).unwrap();
        let Superblock::V1(mut s, v) = found.sb else {
            panic!("1.2 expected")
        };
        assert_eq!(s.bitmap_offset, 8, "mdadm's place: the next 4 KiB");
        // Move the bitmap to 2 sectors past the superblock.
        let at = (found.sector + 8) * 512;
        let mut bm = vec![0u8; 8 << 10];
        d.mem.read_at(at, &mut bm).unwrap();
        d.mem.write_at((found.sector + 2) * 512, &bm).unwrap();
        s.bitmap_offset = 2;
        let sb = Superblock::V1(s, v);
        let mut sb = sb;
        sb.update_checksum();
        d.mem.write_at(found.sector * 512, &sb.to_bytes()).unwrap();
    }
    let on = |block: u32| -> Vec<(String, Blocks)> {
        devs.iter()
            .enumerate()
            .map(|(i, d)| {
                let mut b = d.clone();
                b.block = block;
                (format!("d{i}"), b)
            })
            .collect()
    };
    // 512-byte devices: the moved bitmap is md's layout still; the data reads back.
    let (mut b, rep) = Array::assemble(on(512), &AssembleOptions::default()).unwrap();
    assert!(rep.kicked.is_empty() && !rep.degraded);
    let mut got = vec![0u8; 64 << 10];
    b.read(0, &mut got).unwrap();
    assert_eq!(got, pattern(64 << 10, 3));
    drop(b.stop().unwrap());
    // 4 KiB blocks: refused, saying why, and nothing was written to the members.
    let ios_before: Vec<u64> = devs
        .iter()
        .map(|d| d.refused.load(Ordering::Relaxed))
        .collect();
    let e = Array::assemble(on(4096), &AssembleOptions::default()).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("bitmap at sector 10") && msg.contains("4096-byte block"),
        "{msg}"
    );
    let after: Vec<u64> = devs
        .iter()
        .map(|d| d.refused.load(Ordering::Relaxed))
        .collect();
    assert_eq!(ios_before, after, "no refused I/O: nothing was tried");
}

/// `Superblock1::validate_blocks` on each region of a 1.2 layout: misaligned or inside the
/// superblock's block is refused on 4 KiB blocks and accepted on 512-byte ones.
#[test]
fn each_region_of_a_layout_must_start_on_its_own_block() {
    use mdraid::format::probe::{probe, Superblock};
    let blank: Vec<Blocks> = (0..2).map(|_| Blocks::new(32 * MIB, 512)).collect();
    let a = create(&blank, &opts(MetadataVersion::V1_2, true, true));
    let mut d = a.stop().unwrap().remove(0).dev;
    let Superblock::V1(s, _) = probe(&mut d, None).unwrap().sb else {
        panic!("1.2 expected")
    };
    assert!(s.validate_blocks(4096).is_ok(), "mdraid's own 1.2 layout");
    assert!(s.validate_blocks(512).is_ok());
    type Change = fn(&mut mdraid::format::sb1::Superblock1);
    let cases: [(&str, Change); 5] = [
        ("bitmap", |s| s.bitmap_offset = 2),
        ("bitmap", |s| s.bitmap_offset = 12),
        ("bad-block log", |s| s.bblog_offset = 4),
        ("bad-block log", |s| s.bblog_offset = 17),
        ("data area", |s| s.data_offset += 1),
    ];
    for (what, change) in cases {
        let mut t = s.clone();
        change(&mut t);
        let e = t.validate_blocks(4096).unwrap_err();
        assert!(e.to_string().starts_with(what), "{what}: {e}");
        assert!(t.validate_blocks(512).is_ok(), "{what} on 512-byte blocks");
    }
}

/// A device coming back to a 4 KiB array (re-add) keeps its own superblock's layout: it is
/// held to the rule assembly applies (every region on a block of its own), so one whose bitmap
/// sits inside its superblock's block is refused by name before anything is written to it.
#[test]
fn a_comeback_whose_own_layout_is_misaligned_is_refused() {
    use mdraid::format::probe::{probe, Superblock};
    let blank: Vec<Blocks> = (0..2).map(|_| Blocks::new(32 * MIB, 4096)).collect();
    let mut a = create(&blank, &opts(MetadataVersion::V1_2, true, true));
    a.write(0, &pattern(64 << 10, 4)).unwrap();
    let mut devs: Vec<Blocks> = a.stop().unwrap().into_iter().map(|m| m.dev).collect();
    let mut d1 = devs.pop().unwrap();
    // d1's bitmap moved to 2 sectors past its superblock (written past the block checks).
    let found = probe(&mut d1.mem, None).unwrap();
    let Superblock::V1(mut s, v) = found.sb else {
        panic!("1.2 expected")
    };
    let mut bm = vec![0u8; 8 << 10];
    let from = (found.sector + s.bitmap_offset as u64) * 512;
    d1.mem.read_at(from, &mut bm).unwrap();
    d1.mem.write_at((found.sector + 2) * 512, &bm).unwrap();
    s.bitmap_offset = 2;
    let mut sb = Superblock::V1(s, v);
    sb.update_checksum();
    d1.mem.write_at(found.sector * 512, &sb.to_bytes()).unwrap();
    // The array without it, then d1 added back: a comeback to its slot, refused.
    let run = AssembleOptions {
        run: true,
        ..Default::default()
    };
    let (mut b, _) = Array::assemble(vec![("d0".to_string(), devs.pop().unwrap())], &run).unwrap();
    let ios = d1.ios.clone();
    let before = ios.load(Ordering::Relaxed);
    let e = b
        .add_member("d1".into(), d1, &AddOptions::default(), &mut |_, _| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("not on blocks of its own"), "{e}");
    // Only the probe's reads reached d1 (the superblock it was refused for).
    let after = ios.load(Ordering::Relaxed);
    assert!(
        after - before <= 4,
        "{} I/Os on the refused device",
        after - before
    );
    // The array goes on degraded.
    assert_eq!(b.members().len(), 1);
    let mut got = vec![0u8; 64 << 10];
    b.read(0, &mut got).unwrap();
    assert_eq!(got, pattern(64 << 10, 4));
}

/// Blocks larger than the metadata's 4 KiB alignment (8 KiB and 64 KiB, as a callback member
/// may declare): md's layouts put regions 4 KiB apart, so creation refuses such a member by
/// name before any I/O (it used to write a 1.2 superblock at 4 KiB into an 8 KiB block).
#[test]
fn creation_on_blocks_larger_than_4k_is_refused_before_any_io() {
    for block in [8192u32, 65536] {
        for v in VERSIONS {
            let devs = [Blocks::new(32 * MIB, 4096), Blocks::new(32 * MIB, block)];
            match Array::create(slots(&devs), &opts(v, true, true)) {
                Ok(_) => panic!("{block} {v:?}: created"),
                Err(e) => assert!(
                    e.to_string()
                        .contains(&format!("d1 has {block}-byte logical blocks")),
                    "{block} {v:?}: {e}"
                ),
            }
            for d in &devs {
                assert_eq!(
                    d.ios.load(Ordering::Relaxed),
                    0,
                    "{block} {v:?}: I/O before refusing"
                );
            }
        }
    }
}

/// Direct reads (`Machine::submit_read`, the C driver's reads) on 4 KiB-sector members: a
/// whole-block read is direct, whole blocks on the member; one that is not whole blocks of
/// the array's block size is refused, never handed out.
#[test]
fn direct_reads_on_4k_members_are_whole_blocks() {
    use mdraid::array::machine::{IoKind, Now, ReadSubmit};
    use mdraid::raid1::{ArrayRequest, BufRef};
    let devs: Vec<Blocks> = (0..2).map(|_| Blocks::new(32 * MIB, 4096)).collect();
    let a = create(&devs, &opts(MetadataVersion::V1_2, true, true));
    let now = Now {
        mono_ns: 1_000_000_000,
        wall_secs: 1_900_000_100,
    };
    let (mut m, _devs) = a.into_machine(now).unwrap();
    while let Some(io) = m.poll_io() {
        m.handle_io_completion(io.id, Ok(())).unwrap();
    }
    match m.submit_read(ArrayRequest::read(8, 8, BufRef(1))).unwrap() {
        ReadSubmit::Direct(io) => {
            assert_eq!(io.kind, IoKind::Read);
            assert!(io.offset % BLOCK == 0 && io.len == BLOCK, "{io:?}");
            assert!(m.complete_direct_read(io.id, Ok(())).is_ok());
        }
        other => panic!("a whole-block read was not direct: {other:?}"),
    }
    for (sector, sectors) in [(1, 8), (8, 1), (4, 8), (8, 12)] {
        let r = m.submit_read(ArrayRequest::read(sector, sectors, BufRef(2)));
        assert!(r.is_err(), "{sectors} sectors at {sector} accepted: {r:?}");
        assert!(m.poll_io().is_none());
    }
    assert!(!m.is_busy());
}
