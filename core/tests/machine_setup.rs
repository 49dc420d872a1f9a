//! Creating and assembling without a device (`array::setup`): the caller does every read and
//! write, as a kernel module or a C reactor would. Held against the blocking path over the
//! same bytes: the same decisions on every fixture made by real mdadm, the same bytes on disk
//! after creation.

use mdraid::array::machine::Machine;
use mdraid::array::setup::{self, Assembly, DeviceInfo};
use mdraid::array::{Array, AssembleOptions, CreateOptions, CreateSlot, MemberState, Now};
use mdraid::device::{BlockDevice, MemDevice};
use mdraid::format::geometry::BitmapRequest;
use mdraid::format::MetadataVersion;
use mdraid::testutil::*;

const NOW: Now = Now {
    mono_ns: 1_000_000_000,
    wall_secs: 1_900_000_000,
};

fn load(fx: &str) -> Vec<(String, MemDevice)> {
    fixture_members(fx)
        .into_iter()
        .map(|d| {
            let bytes = std::fs::read(fixture_image(fx, &d)).unwrap();
            (format!("/dev/{d}"), MemDevice::from_vec(bytes))
        })
        .collect()
}

/// Runs an [`Assembly`] to its end, reading from `devs`; returns the number of reads.
fn assemble_by_reads(
    devs: &mut [(String, MemDevice)],
    opts: AssembleOptions,
) -> (
    mdraid::Result<(Machine, mdraid::array::AssembleReport<usize>)>,
    usize,
) {
    let info = devs
        .iter()
        .map(|(name, d)| DeviceInfo {
            name: name.clone(),
            size: d.size(),
            device_number: None,
            block_size: 512,
        })
        .collect();
    let mut asm = Assembly::new(info, opts);
    let mut reads = 0;
    while let Some(r) = asm.poll_read() {
        reads += 1;
        assert!(reads < 100, "assembly keeps asking: {r:?}");
        let mut buf = vec![0u8; r.len];
        devs[r.member].1.read_at(r.offset, &mut buf).unwrap();
        asm.handle_read(r, &buf).unwrap();
    }
    (asm.finish(NOW), reads)
}

#[test]
fn every_fixture_assembles_the_same_from_the_callers_reads() {
    for fx in fixture_names() {
        for run in [false, true] {
            let opts = AssembleOptions {
                run,
                ..Default::default()
            };
            let blocking = Array::assemble(load(&fx), &opts);
            let mut devs = load(&fx);
            let (sansio, reads) = assemble_by_reads(&mut devs, opts);
            match (blocking, sansio) {
                (Ok((a, rep_a)), Ok((m, rep_m))) => {
                    assert!(reads >= devs.len(), "{fx}: {reads} reads");
                    assert_eq!(a.events(), m.events(), "{fx}");
                    assert_eq!(a.raid_disks(), m.raid_disks(), "{fx}");
                    assert_eq!(a.component_sectors(), m.component_sectors(), "{fx}");
                    assert_eq!(a.needs_resync(), m.needs_resync(), "{fx}");
                    assert_eq!(a.bitmap().is_some(), m.bitmap().is_some(), "{fx}");
                    let states = |ms: &[mdraid::array::Member<_>]| {
                        ms.iter()
                            .map(|m| (m.name.clone(), m.state, m.sb.events()))
                            .collect::<Vec<_>>()
                    };
                    assert_eq!(states(a.members()), states(m.members()), "{fx}");
                    let kicked_a: Vec<_> = rep_a.kicked.iter().map(|k| &k.name).collect();
                    let kicked_m: Vec<_> = rep_m.kicked.iter().map(|k| &k.name).collect();
                    assert_eq!(kicked_a, kicked_m, "{fx}");
                    for k in &rep_m.kicked {
                        assert_eq!(devs[k.dev].0, k.name, "{fx}: kicked index");
                    }
                    assert_eq!(rep_a.degraded, rep_m.degraded, "{fx}");
                }
                (Err(a), Err(m)) => assert_eq!(a.to_string(), m.to_string(), "{fx}"),
                (a, m) => panic!(
                    "{fx} run={run}: blocking {:?}, by reads {:?}",
                    a.map(|_| ()),
                    m.map(|_| ())
                ),
            }
        }
    }
}

#[test]
fn a_read_of_the_wrong_size_or_device_is_refused_and_finish_waits_for_reads() {
    let mut devs = load("r1-v1.2-bitmap");
    let info: Vec<DeviceInfo> = devs
        .iter()
        .map(|(name, d)| DeviceInfo {
            name: name.clone(),
            size: d.size(),
            device_number: None,
            block_size: 512,
        })
        .collect();
    let mut asm = Assembly::new(info.clone(), AssembleOptions::default());
    let r = asm.poll_read().expect("a first read");
    assert!(asm.handle_read(r, &vec![0; r.len + 1]).is_err());
    let mut bad = r;
    bad.member = 99;
    assert!(asm.handle_read(bad, &vec![0; r.len]).is_err());
    let mut past = r;
    past.offset = devs[0].1.size();
    assert!(asm.handle_read(past, &vec![0; r.len]).is_err());
    let err = Assembly::new(info, AssembleOptions::default())
        .finish(NOW)
        .unwrap_err();
    assert!(err.to_string().contains("needs"), "{err}");
    // Garbage where the superblocks are: the same refusal as the blocking path.
    let mut asm = Assembly::new(
        vec![DeviceInfo {
            name: "zero".into(),
            size: devs[0].1.size(),
            device_number: None,
            block_size: 512,
        }],
        AssembleOptions::default(),
    );
    while let Some(r) = asm.poll_read() {
        asm.handle_read(r, &vec![0; r.len]).unwrap();
    }
    let e = asm.finish(NOW).unwrap_err();
    assert!(e.to_string().contains("no md superblock"), "{e}");
    let _ = &mut devs;
}

fn create_opts(v: MetadataVersion) -> CreateOptions {
    CreateOptions {
        version: v,
        raid_disks: 2,
        bitmap: if v == MetadataVersion::V0_90 {
            BitmapRequest::None
        } else {
            BitmapRequest::Internal { chunk_bytes: None }
        },
        name: "setup".into(),
        homehost: None,
        assume_clean: false,
        size_kib: None,
        now: 1_900_000_000,
        uuid: [9; 16],
        seed: 9,
        md_minor: 0,
    }
}

#[test]
fn creation_by_the_caller_writes_what_the_blocking_create_writes() {
    const SIZE: usize = 48 << 20;
    for v in [
        MetadataVersion::V0_90,
        MetadataVersion::V1_0,
        MetadataVersion::V1_1,
        MetadataVersion::V1_2,
    ] {
        let opts = create_opts(v);
        fn slot<D>(i: usize, dev: D) -> CreateSlot<D> {
            CreateSlot::Device {
                name: format!("d{i}"),
                dev,
                write_mostly: i == 1,
                failfast: false,
            }
        }
        let blocking = Array::create(
            vec![slot(0, MemDevice::new(SIZE)), slot(1, MemDevice::new(SIZE))],
            &opts,
        )
        .unwrap();
        let want: Vec<Vec<u8>> = blocking
            .devices()
            .iter()
            .map(|d| d.as_slice().to_vec())
            .collect();
        let info = |i: usize| DeviceInfo {
            name: format!("d{i}"),
            size: SIZE as u64,
            device_number: None,
            block_size: 512,
        };
        let (machine, writes) =
            setup::create(vec![slot(0, info(0)), slot(1, info(1))], &opts, NOW).unwrap();
        assert!(!writes.is_empty());
        let mut devs = vec![MemDevice::new(SIZE), MemDevice::new(SIZE)];
        for w in &writes {
            devs[w.member].write_at(w.offset, &w.data).unwrap();
        }
        for (i, d) in devs.iter().enumerate() {
            assert!(d.as_slice() == &want[i][..], "{v}: device {i} differs");
        }
        assert_eq!(machine.events(), blocking.events());
        assert!(machine.needs_resync());
        // What the caller wrote assembles, by md's rules, on the blocking path.
        let (a, _) = Array::assemble(
            devs.into_iter()
                .enumerate()
                .map(|(i, d)| (format!("d{i}"), d))
                .collect(),
            &AssembleOptions::default(),
        )
        .unwrap();
        assert_eq!(a.in_sync_count(), 2);
        assert!(a
            .members()
            .iter()
            .all(|m| matches!(m.state, MemberState::InSync(_))));
    }
    // A missing slot is allowed, as mdadm's `missing`; writes name devices by index.
    let (m, writes) = setup::create(
        vec![
            CreateSlot::Missing,
            CreateSlot::Device {
                name: "only".into(),
                dev: DeviceInfo {
                    name: "only".into(),
                    size: 16 << 20,
                    device_number: None,
                    block_size: 512,
                },
                write_mostly: false,
                failfast: false,
            },
        ],
        &create_opts(MetadataVersion::V1_2),
        NOW,
    )
    .unwrap();
    assert!(writes.iter().all(|w| w.member == 0));
    assert_eq!(m.members().len(), 1);
}
