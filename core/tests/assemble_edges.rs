//! Edges of `Array::assemble` that the assembly group of `scripts/mutants.sh` found untested
//! (TESTING.md): each test names the rule it holds.

use mdraid::array::{Array, AssembleOptions, CreateOptions, CreateSlot};
use mdraid::device::MemDevice;
use mdraid::format::geometry::BitmapRequest;
use mdraid::format::probe::{probe, Superblock};
use mdraid::format::sb1;
use mdraid::format::MetadataVersion;

const CREATED: u64 = 1_800_000_000;

fn new_array(n: usize, version: MetadataVersion) -> Vec<MemDevice> {
    let slots = (0..n)
        .map(|i| CreateSlot::Device {
            name: format!("m{i}"),
            dev: MemDevice::new(8 << 20),
            write_mostly: false,
            failfast: false,
        })
        .collect();
    let opts = CreateOptions {
        version,
        raid_disks: n as u32,
        bitmap: BitmapRequest::None,
        name: "edges".into(),
        homehost: None,
        assume_clean: true,
        size_kib: None,
        now: CREATED,
        uuid: [8; 16],
        seed: 2,
        md_minor: 0,
    };
    let a = Array::create(slots, &opts).unwrap();
    a.stop().unwrap().into_iter().map(|m| m.dev).collect()
}

/// Rewrites a 1.x member's superblock through `f` (checksum fixed).
fn edit_sb1(dev: &mut MemDevice, f: impl FnOnce(&mut sb1::Superblock1)) {
    let found = probe(dev, None).unwrap();
    let Superblock::V1(mut s, _) = found.sb else {
        panic!("not 1.x")
    };
    f(&mut s);
    s.update_checksum();
    let b = s.to_bytes();
    let at = found.sector as usize * 512;
    dev.as_mut_slice()[at..at + b.len()].copy_from_slice(&b);
}

fn named(devs: Vec<MemDevice>) -> Vec<(String, MemDevice)> {
    devs.into_iter()
        .enumerate()
        .map(|(i, d)| (format!("m{i}"), d))
        .collect()
}

fn utime_secs(sb: &Superblock) -> u64 {
    match sb {
        Superblock::V1(s, _) => sb1::Superblock1::time_secs(s.utime),
        Superblock::V0(s) => u64::from(s.utime),
    }
}

#[test]
fn the_clock_of_an_assembled_array_starts_at_the_leaders_last_update() {
    for v in [MetadataVersion::V0_90, MetadataVersion::V1_2] {
        let devs = new_array(2, v);
        let (mut a, _) = Array::assemble(named(devs), &AssembleOptions::default()).unwrap();
        a.write(0, &[1u8; 4096]).unwrap();
        let mut devs: Vec<MemDevice> = a.stop().unwrap().into_iter().map(|m| m.dev).collect();
        let sb = probe(&mut devs[0], None).unwrap().sb;
        let t = utime_secs(&sb);
        assert!(
            (CREATED..CREATED + 3600).contains(&t),
            "{v:?}: utime {t}, created at {CREATED}"
        );
    }
}

#[test]
fn the_largest_slot_count_the_engine_holds_assembles() {
    let max = mdraid::raid1::MAX_SLOTS as u32;
    for (raid_disks, ok) in [(max, true), (max + 1, false)] {
        let mut devs = new_array(1, MetadataVersion::V1_2);
        edit_sb1(&mut devs[0], |s| s.raid_disks = raid_disks);
        let opts = AssembleOptions {
            run: true,
            ..Default::default()
        };
        let r = Array::assemble(named(devs), &opts);
        assert_eq!(
            r.is_ok(),
            ok,
            "raid_disks {raid_disks}: {:?}",
            r.as_ref().err().map(|e| e.to_string())
        );
    }
}
