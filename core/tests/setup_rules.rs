//! Creating and assembling for caller-driven fronts (array/setup.rs), held to what the caller
//! describes: the device numbers it gives are the ones the machine's members carry and the
//! 0.90 disk records md rewrites at every update hold (super_90_sync: MAJOR/MINOR of the
//! member's block device); creation hands back writes in whole logical blocks whose bytes
//! are what the blocking create leaves on the same devices. Written for what the setup group
//! of `scripts/mutants.sh` missed (TESTING.md).

use mdraid::array::machine::Machine;
use mdraid::array::setup::{self, Assembly, DeviceInfo};
use mdraid::array::{Array, AssembleOptions, CreateOptions, CreateSlot, Now};
use mdraid::device::{BlockDevice, DeviceError, MemDevice};
use mdraid::format::geometry::BitmapRequest;
use mdraid::format::probe::Superblock;
use mdraid::format::MetadataVersion;
use mdraid::raid1::{ArrayRequest, BufRef};
use mdraid::testutil::*;

const NOW: Now = Now {
    mono_ns: 1_000_000_000,
    wall_secs: 1_900_000_000,
};

/// Assembles fixture `fx` from the caller's reads, its devices described with `numbers`.
fn assemble(fx: &str, numbers: &[Option<(u32, u32)>]) -> Machine {
    let mut devs: Vec<MemDevice> = fixture_members(fx)
        .into_iter()
        .map(|d| MemDevice::from_vec(std::fs::read(fixture_image(fx, &d)).unwrap()))
        .collect();
    let info = devs
        .iter()
        .enumerate()
        .map(|(i, d)| DeviceInfo {
            name: format!("d{i}"),
            size: d.size(),
            device_number: numbers[i],
            block_size: 512,
        })
        .collect();
    let mut asm = Assembly::new(info, AssembleOptions::default());
    while let Some(r) = asm.poll_read() {
        let mut buf = vec![0u8; r.len];
        devs[r.member].read_at(r.offset, &mut buf).unwrap();
        asm.handle_read(r, &buf).unwrap();
    }
    asm.finish(NOW).unwrap().0
}

/// Completes every I/O the machine hands out (the bytes go nowhere).
fn drain(m: &mut Machine) {
    while let Some(io) = m.poll_io() {
        m.handle_io_completion(io.id, Ok(())).unwrap();
    }
    while m.poll_completion().is_some() {}
}

// Catches setup.rs 106:9 (`Image::device_number` → None, Some((0, 0)), Some((0, 1)),
// Some((1, 0)), Some((1, 1))).
#[test]
fn the_device_numbers_the_caller_gives_reach_the_members_and_the_090_records() {
    // mdadm's fixture recorded 254:0 and 254:16; the caller's devices are 9:1 and 9:2 now.
    let given = [Some((9, 1)), Some((9, 2))];
    let mut m = assemble("r1-v0.90", &given);
    for (i, mem) in m.members().iter().enumerate() {
        assert_eq!(mem.dev.device_number, given[i], "member {i}");
    }
    // A write makes the array dirty and the stop clean again: two superblock updates.
    m.handle_submit(ArrayRequest::write(0, 8, BufRef(1)))
        .unwrap();
    drain(&mut m);
    m.stop();
    drain(&mut m);
    assert!(m.is_stopped());
    for (i, mem) in m.members().iter().enumerate() {
        let Superblock::V0(s) = &mem.sb else {
            panic!("a 0.90 superblock expected")
        };
        for (slot, want) in given.iter().enumerate() {
            let d = s.disks[slot];
            assert_eq!(
                Some((d.major, d.minor)),
                *want,
                "member {i}: record {slot} carries the device's number"
            );
        }
        assert_eq!(
            Some((s.this_disk.major, s.this_disk.minor)),
            given[i],
            "member {i}: this_disk"
        );
    }
    // Not given: the number the device's own record holds stays.
    let m = assemble("r1-v0.90", &[None, None]);
    assert!(m
        .members()
        .iter()
        .all(|mem| mem.dev.device_number.is_none()));
}

/// A memory device that reports `block`-byte logical blocks but takes any write (the
/// blocking create's reference image: it writes each piece where it belongs, padded to whole
/// blocks in length).
struct Lenient {
    mem: MemDevice,
    block: u32,
}

impl BlockDevice for Lenient {
    fn size(&self) -> u64 {
        self.mem.size()
    }
    fn logical_block_size(&self) -> u32 {
        self.block
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        self.mem.read_at(offset, buf)
    }
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), DeviceError> {
        self.mem.write_at(offset, buf)
    }
    fn flush(&mut self) -> Result<(), DeviceError> {
        Ok(())
    }
}

fn create_opts(version: MetadataVersion) -> CreateOptions {
    CreateOptions {
        version,
        raid_disks: 2,
        bitmap: BitmapRequest::Internal {
            chunk_bytes: Some(1 << 20),
        },
        name: "blocks".into(),
        homehost: None,
        assume_clean: false,
        size_kib: None,
        now: 1_900_000_000,
        uuid: [6; 16],
        seed: 6,
        md_minor: 0,
    }
}

/// Creation for a caller-driven front hands back whole-block writes whose bytes are what the
/// blocking create leaves on the same devices (4 KiB and 512-byte blocks, every version, a
/// 1.0 array on a size that is no whole number of 64 KiB); both refuse a device with larger
/// blocks than the 4 KiB md's layouts are aligned to, by name and before any write.
#[test]
fn creation_writes_whole_blocks_with_the_blocking_creates_bytes() {
    for (v, block, size) in [
        (MetadataVersion::V1_2, 4096, 32 << 20),
        (MetadataVersion::V1_1, 4096, 32 << 20),
        (MetadataVersion::V0_90, 4096, 32 << 20),
        (MetadataVersion::V1_0, 4096, (32 << 20) + 12288),
        (MetadataVersion::V1_2, 512, (32 << 20) + 1536),
    ] {
        let opts = create_opts(v);
        let slot = |i: usize, block: u32| CreateSlot::Device {
            name: format!("d{i}"),
            dev: Lenient {
                mem: MemDevice::new(size),
                block,
            },
            write_mostly: false,
            failfast: false,
        };
        let blocking = Array::create(vec![slot(0, block), slot(1, block)], &opts).unwrap();
        let want: Vec<Vec<u8>> = blocking
            .devices()
            .iter()
            .map(|d| d.mem.as_slice().to_vec())
            .collect();
        let info = |i: usize, block: u32| CreateSlot::Device {
            name: format!("d{i}"),
            dev: DeviceInfo {
                name: format!("d{i}"),
                size: size as u64,
                device_number: None,
                block_size: block,
            },
            write_mostly: false,
            failfast: false,
        };
        let (_, writes) = setup::create(vec![info(0, block), info(1, block)], &opts, NOW).unwrap();
        let mut devs = [MemDevice::new(size), MemDevice::new(size)];
        let b = u64::from(block);
        for w in &writes {
            let what = format!(
                "{v} ({block}-byte blocks): write at {} of {}",
                w.offset,
                w.data.len()
            );
            assert!(
                w.offset + w.data.len() as u64 <= size as u64,
                "{what}: past the device's end"
            );
            assert!(
                w.offset % b == 0 && w.data.len() as u64 % b == 0,
                "{what}: not whole blocks"
            );
            devs[w.member].write_at(w.offset, &w.data).unwrap();
        }
        for (i, d) in devs.iter().enumerate() {
            assert!(
                d.as_slice() == &want[i][..],
                "{v} ({block}-byte blocks): device {i} differs from the blocking create's"
            );
        }
        // 8 KiB blocks on the second device: refused by both, naming it.
        let e = match Array::create(vec![slot(0, block), slot(1, 8192)], &opts) {
            Ok(_) => panic!("{v}: created on 8 KiB blocks"),
            Err(e) => e.to_string(),
        };
        assert!(e.contains("d1 has 8192-byte logical blocks"), "{v}: {e}");
        let e = match setup::create(vec![info(0, block), info(1, 8192)], &opts, NOW) {
            Ok(_) => panic!("{v}: setup created on 8 KiB blocks"),
            Err(e) => e.to_string(),
        };
        assert!(e.contains("d1 has 8192-byte logical blocks"), "{v}: {e}");
    }
}
