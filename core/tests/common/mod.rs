//! Helpers shared by the core's integration tests: members' superblocks edited in place, and
//! what the engine's simulator reported (`mod common;` in a test file). Not every test file
//! uses every helper.
#![allow(dead_code)]

use mdraid::array::setup::DeviceInfo;
use mdraid::array::{Array, CreateOptions, CreateSlot};
use mdraid::device::MemDevice;
use mdraid::format::geometry::BitmapRequest;
use mdraid::format::probe::{probe, Superblock};
use mdraid::format::sb1;
use mdraid::format::MetadataVersion;
use mdraid::raid1::sim::Sim;
use mdraid::raid1::{Event, SyncAction};

/// When [`new_array`] creates its arrays (wall-clock seconds).
pub const CREATED: u64 = 1_800_000_000;

/// Options for a clean `raid_disks`-way array of `version` without a bitmap, created at
/// [`CREATED`]; tests change the fields they care about (`CreateOptions { .., ..opts }`).
pub fn create_options(version: MetadataVersion, raid_disks: u32) -> CreateOptions {
    CreateOptions {
        version,
        raid_disks,
        bitmap: BitmapRequest::None,
        name: "rules".into(),
        homehost: None,
        assume_clean: true,
        size_kib: None,
        now: CREATED,
        uuid: [7; 16],
        seed: 1,
        md_minor: 0,
    }
}

/// `n` memory devices "m0".. of `bytes` each, as `Array::create` takes them.
pub fn mem_slots(n: usize, bytes: usize) -> Vec<CreateSlot<MemDevice>> {
    (0..n)
        .map(|i| CreateSlot::Device {
            name: format!("m{i}"),
            dev: MemDevice::new(bytes),
            write_mostly: false,
            failfast: false,
        })
        .collect()
}

/// `n` devices "m0".. of `size` bytes (512-byte blocks, no device number) as a caller-driven
/// front describes them to `setup::create`.
pub fn info_slots(n: usize, size: u64) -> Vec<CreateSlot<DeviceInfo>> {
    (0..n)
        .map(|i| CreateSlot::Device {
            name: format!("m{i}"),
            dev: DeviceInfo {
                name: format!("m{i}"),
                size,
                device_number: None,
                block_size: 512,
            },
            write_mostly: false,
            failfast: false,
        })
        .collect()
}

/// The members of a clean `n`-way array of `version` without a bitmap, made and stopped here
/// (8 MiB memory devices).
pub fn new_array(n: usize, version: MetadataVersion) -> Vec<MemDevice> {
    let a = Array::create(mem_slots(n, 8 << 20), &create_options(version, n as u32)).unwrap();
    a.stop().unwrap().into_iter().map(|m| m.dev).collect()
}

/// Rewrites a 1.x member's superblock through `f` (checksum fixed).
pub fn edit_sb1(dev: &mut MemDevice, f: impl FnOnce(&mut sb1::Superblock1)) {
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

/// The devices named m0, m1, ... in order, as assembly takes them.
pub fn named(devs: Vec<MemDevice>) -> Vec<(String, MemDevice)> {
    devs.into_iter()
        .enumerate()
        .map(|(i, d)| (format!("m{i}"), d))
        .collect()
}

/// The update time a superblock records, in seconds.
pub fn utime_secs(sb: &Superblock) -> u64 {
    match sb {
        Superblock::V1(s, _) => sb1::Superblock1::time_secs(s.utime),
        Superblock::V0(s) => u64::from(s.utime),
    }
}

/// The sync actions' ends the simulated engine reported, in order: (action, interrupted).
pub fn sync_done(s: &Sim) -> Vec<(SyncAction, bool)> {
    s.events
        .iter()
        .filter_map(|(_, e)| match *e {
            Event::SyncDone {
                action,
                interrupted,
                ..
            } => Some((action, interrupted)),
            _ => None,
        })
        .collect()
}
