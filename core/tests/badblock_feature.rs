//! Feature bit 8 ("bad blocks present") of a 1.x member describes that member's own log: md's
//! super_1_sync sets it on every superblock write exactly when the member's table has entries.
//! Checked on disk after every membership change around r1-badblocks (entry 4096+8 on vda).

use mdraid::array::{AddOptions, Array, AssembleOptions};
use mdraid::device::MemDevice;
use mdraid::format::badblocks::{log_location, BadBlockLog};
use mdraid::format::probe::{probe, Superblock};
use mdraid::format::sb1::FEATURE_BAD_BLOCKS;
use mdraid::testutil::fixture_image;

const FX: &str = "r1-badblocks";

fn load(dev: &str) -> MemDevice {
    MemDevice::from_vec(std::fs::read(fixture_image(FX, dev)).unwrap())
}

/// (feature bit 8 set, entries in the member's own on-disk log).
fn bit_and_entries(dev: &mut MemDevice) -> (bool, usize) {
    let found = probe(dev, None).unwrap();
    let Superblock::V1(s, _) = found.sb else {
        panic!("not 1.x")
    };
    let (off, len) = log_location(&s).unwrap();
    let raw = dev.as_slice()[off as usize..off as usize + len].to_vec();
    // Parse the log regardless of the bit: what is really on disk.
    let mut probe_sb = s.clone();
    probe_sb.feature_map |= FEATURE_BAD_BLOCKS;
    let log = BadBlockLog::parse_for(&probe_sb, &raw).unwrap();
    // Zero words (an area never written) are no entries for md.
    let n = log.entries.iter().filter(|e| e.len_sectors > 0).count();
    (s.feature_map & FEATURE_BAD_BLOCKS != 0, n)
}

fn run() -> AssembleOptions {
    AssembleOptions {
        run: true,
        ..Default::default()
    }
}

#[test]
fn a_bit_without_entries_is_cleared_on_the_next_write() {
    // vdb's log is empty; give it the bit anyway (as a member that copied another's map would).
    let mut vdb = load("vdb");
    let found = probe(&mut vdb, None).unwrap();
    let Superblock::V1(mut s, _) = found.sb else {
        panic!()
    };
    s.feature_map |= FEATURE_BAD_BLOCKS;
    s.update_checksum();
    let b = s.to_bytes();
    let at = found.sector as usize * 512;
    vdb.as_mut_slice()[at..at + b.len()].copy_from_slice(&b);

    let devs = vec![("vda".into(), load("vda")), ("vdb".into(), vdb)];
    let (mut a, _) = Array::assemble(devs, &AssembleOptions::default()).unwrap();
    a.write(8 << 20, &[1; 4096]).unwrap();
    let mut m = a.stop().unwrap();
    assert_eq!(
        bit_and_entries(&mut m[0].dev),
        (true, 1),
        "vda keeps its entry"
    );
    assert_eq!(
        bit_and_entries(&mut m[1].dev),
        (false, 0),
        "vdb: no entries, no bit"
    );
}

#[test]
fn added_and_re_added_members_carry_the_bit_of_their_own_log() {
    let devs = vec![("vda".into(), load("vda")), ("vdb".into(), load("vdb"))];
    let (mut a, _) = Array::assemble(devs, &AssembleOptions::default()).unwrap();
    let size = a.members()[0].dev_sectors as usize * 512;
    // A spare next to the full array: nothing copied, empty log.
    a.add_member(
        "spare".into(),
        MemDevice::new(size),
        &AddOptions::default(),
        &mut |_, _| {},
    )
    .unwrap();
    let mut m = a.stop().unwrap();
    for m in m.iter_mut() {
        let (bit, n) = bit_and_entries(&mut m.dev);
        assert_eq!(
            bit,
            n > 0,
            "{}: bit 8 follows its own log ({n} entries)",
            m.name
        );
    }
    assert_eq!(bit_and_entries(&mut m[2].dev), (false, 0), "the spare");

    // vda, the member with the entry, fails and comes back by re-add: it keeps its own log
    // and bit; the others keep theirs.
    let spare = m.pop().unwrap();
    let devs = m.into_iter().map(|m| (m.name, m.dev)).collect();
    let (mut a, _) = Array::assemble(devs, &run()).unwrap();
    a.fail_member("vda").unwrap();
    let vda = a.remove_member("vda", None).unwrap().unwrap();
    a.add_member(
        "vda".into(),
        vda,
        &AddOptions {
            re_add_only: true,
            ..Default::default()
        },
        &mut |_, _| {},
    )
    .unwrap();
    let mut m = a.stop().unwrap();
    for m in m.iter_mut() {
        let (bit, n) = bit_and_entries(&mut m.dev);
        assert_eq!(
            bit,
            n > 0,
            "{}: bit 8 follows its own log ({n} entries)",
            m.name
        );
        assert_eq!(n, usize::from(m.name == "vda"), "{}: entries", m.name);
    }

    // vdb fails with the spare present: the spare is rebuilt from vda alone, and md marks the
    // range vda cannot supply bad on the target (raid1 sync_request), so there the bit is set.
    let mut devs: Vec<_> = m.into_iter().map(|m| (m.name, m.dev)).collect();
    devs.push((spare.name, spare.dev));
    let (mut a, _) = Array::assemble(devs, &run()).unwrap();
    a.fail_member("vdb").unwrap();
    let mut m = a.stop().unwrap();
    for m in m.iter_mut() {
        let (bit, n) = bit_and_entries(&mut m.dev);
        assert_eq!(
            bit,
            n > 0,
            "{}: bit 8 follows its own log ({n} entries)",
            m.name
        );
    }
    assert_eq!(
        bit_and_entries(&mut m[2].dev),
        (true, 1),
        "the rebuilt spare"
    );
}
