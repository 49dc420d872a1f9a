//! `array::update` over member devices in memory: every member updated alike (superblock and
//! bitmap header), the array assembles with the change, a mix of arrays or an update the
//! metadata does not understand writes nothing, and zeroing leaves no superblock.

mod common;

use mdraid::array::update::{update_members, zero_superblocks, Update};
use mdraid::array::{Array, AssembleOptions, CreateOptions, CreateSlot};
use mdraid::device::{BlockDevice, MemDevice};
use mdraid::format::geometry::BitmapRequest;
use mdraid::format::probe::probe;
use mdraid::format::MetadataVersion;

fn array(v: MetadataVersion, uuid: u8, tag: &str) -> Vec<(String, MemDevice)> {
    let slots = (0..3)
        .map(|i| CreateSlot::Device {
            name: format!("{tag}{i}"),
            dev: MemDevice::new(8 << 20),
            write_mostly: false,
            failfast: false,
        })
        .collect();
    let opts = CreateOptions {
        bitmap: BitmapRequest::Internal { chunk_bytes: None },
        name: "data".into(),
        homehost: Some("box".into()),
        now: 1_900_000_000,
        uuid: [uuid; 16],
        seed: 3,
        ..common::create_options(v, 2)
    };
    let a: Array<MemDevice> = Array::create(slots, &opts).unwrap();
    a.stop()
        .unwrap()
        .into_iter()
        .map(|m| (m.name, m.dev))
        .collect()
}

fn assemble(devs: Vec<(String, MemDevice)>) -> Array<MemDevice> {
    let opts = AssembleOptions {
        run: false,
        force: false,
        readonly: false,
    };
    Array::assemble(devs, &opts).unwrap().0
}

const ALL: [MetadataVersion; 4] = [
    MetadataVersion::V0_90,
    MetadataVersion::V1_0,
    MetadataVersion::V1_1,
    MetadataVersion::V1_2,
];

#[test]
fn every_member_and_its_bitmap_take_the_new_uuid() {
    for v in ALL {
        let mut devs = array(v, 1, "m");
        let uuid = [0xa5u8, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
        let events: Vec<u64> = devs
            .iter_mut()
            .map(|(_, d)| probe(d, None).unwrap().sb.events())
            .collect();
        update_members(&mut devs, &Update::Uuid { uuid, given: true }, Some("box")).unwrap();
        for ((name, d), ev) in devs.iter_mut().zip(&events) {
            let f = probe(d, None).unwrap();
            assert_eq!(f.sb.uuid(), uuid, "{v} {name}");
            assert!(f.sb.checksum_ok(), "{v} {name}: checksum");
            assert_eq!(f.sb.events(), *ev, "{v} {name}: events moved");
        }
        // The bitmap is trusted with the new uuid (a mismatch would drop it at assembly).
        let a = assemble(devs);
        assert!(a.bitmap().is_some(), "{v}: bitmap lost");
        assert_eq!(a.lead_superblock().uuid(), uuid, "{v}");
    }
}

#[test]
fn resync_and_no_bitmap_reach_the_assembled_array() {
    for v in ALL {
        let mut devs = array(v, 2, "r");
        update_members(&mut devs, &Update::Resync, None).unwrap();
        let a = assemble(devs);
        assert!(a.needs_resync(), "{v}: resync not owed");
        let devs: Vec<(String, MemDevice)> =
            a.abandon().into_iter().map(|m| (m.name, m.dev)).collect();
        let mut devs = devs;
        update_members(&mut devs, &Update::NoBitmap, None).unwrap();
        let a = assemble(devs);
        assert!(a.bitmap().is_none(), "{v}: bitmap kept");
    }
}

#[test]
fn refusals_write_nothing() {
    let mut mixed = array(MetadataVersion::V1_2, 3, "a");
    mixed.extend(array(MetadataVersion::V1_2, 4, "b"));
    let before: Vec<Vec<u8>> = mixed.iter().map(|(_, d)| d.as_slice().to_vec()).collect();
    let e = update_members(&mut mixed, &Update::Resync, None).unwrap_err();
    assert!(e.to_string().contains("b0"), "{e}");
    for ((_, d), b) in mixed.iter().zip(&before) {
        assert!(d.as_slice() == b.as_slice(), "a refused update wrote");
    }
    for (v, u) in [
        (MetadataVersion::V0_90, Update::Name("x".into())),
        (MetadataVersion::V0_90, Update::DeviceSize),
        (MetadataVersion::V1_0, Update::DeviceSize),
        (MetadataVersion::V1_2, Update::Homehost),
    ] {
        let mut devs = array(v, 5, "n");
        let before: Vec<Vec<u8>> = devs.iter().map(|(_, d)| d.as_slice().to_vec()).collect();
        let e = update_members(&mut devs, &u, None).unwrap_err();
        assert!(e.to_string().contains("not understood"), "{v} {u:?}: {e}");
        for ((_, d), b) in devs.iter().zip(&before) {
            assert!(d.as_slice() == b.as_slice(), "{v} {u:?}: written");
        }
    }
}

#[test]
fn zeroing_leaves_no_superblock() {
    for v in ALL {
        let mut devs = array(v, 6, "z");
        let (_, d) = &mut devs[0];
        assert_eq!(zero_superblocks(d).unwrap(), 1, "{v}");
        assert!(probe(d, None).is_err(), "{v}: a superblock is left");
        assert_eq!(zero_superblocks(d).unwrap(), 0, "{v}");
        assert!(d.size() > 0);
    }
}
