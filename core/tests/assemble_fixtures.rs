//! Assembly of every fixture by md's rules, and its data against the fixture's pattern.

use mdraid::array::{Array, ArrayError, AssembleOptions, KickReason, MemberState};
use mdraid::device::FileDevice;
use mdraid::testutil::*;
use mdraid::Error;

/// The array bytes the fixture's writes produced (zeros elsewhere), for `len` bytes.
fn expected_array(fx: &str, len: usize) -> Vec<u8> {
    let meta: serde_json::Value = serde_json::from_str(&fixture_text(fx, "fixture.json")).unwrap();
    let mut v = vec![0u8; len];
    for w in meta["writes"].as_array().unwrap() {
        let gen = w["gen"].as_u64().unwrap() as u32;
        let off = w["array_offset"].as_u64().unwrap() as usize;
        let bytes = w["bytes"].as_u64().unwrap() as usize;
        let scen = w["scenario"].as_str().unwrap();
        v[off..off + bytes].copy_from_slice(&pattern(scen, gen, bytes));
    }
    v
}

fn open_all(fx: &str, tmp: &TempDir) -> Vec<(String, FileDevice)> {
    fixture_members(fx)
        .into_iter()
        .map(|d| {
            let p = fixture_image_copy(fx, &d, tmp.path());
            (format!("/dev/{d}"), FileDevice::open(&p).unwrap())
        })
        .collect()
}

#[test]
fn every_fixture_assembles_and_reads_its_pattern() {
    for fx in fixture_names() {
        let tmp = TempDir::new("asm");
        let opts = AssembleOptions {
            readonly: true,
            ..Default::default()
        };
        let (mut array, report) =
            Array::assemble(open_all(&fx, &tmp), &opts).unwrap_or_else(|e| panic!("{fx}: {e}"));
        let mut got = vec![0u8; array.size() as usize];
        array.read(0, &mut got).unwrap();
        let want = expected_array(&fx, got.len());
        assert!(
            got == want,
            "{fx}: array data differs from the fixture pattern"
        );
        match fx.as_str() {
            "r1-degraded-stale" => {
                assert_eq!(report.kicked.len(), 1, "{fx}");
                assert_eq!(report.kicked[0].name, "/dev/vdb");
                assert!(report.degraded);
            }
            "r1-missing" => assert!(report.degraded && report.kicked.is_empty()),
            "r1-unclean" => assert!(report.unclean),
            "r1-3way-spare" => {
                assert_eq!(array.raid_disks(), 3);
                let spares = array
                    .members()
                    .iter()
                    .filter(|m| m.state == MemberState::Spare)
                    .count();
                assert_eq!(spares, 1);
                assert!(!report.degraded);
            }
            _ => assert!(!report.degraded && report.kicked.is_empty(), "{fx}"),
        }
    }
}

/// mdadm's start rule (Assemble.c: okcnt + rebuilding_cnt >= the freshest superblock's working
/// count, counted by getinfo_super1/getinfo_super0 from the role table / disk records).
#[test]
fn degraded_start_follows_mdadms_working_count() {
    // r1-missing: created with `missing`, its superblock records one working disk ("A."):
    // mdadm 4.2 starts it without --run.
    // r1-degraded-stale: vda (events 22) records vdb failed and removed ("A."), so one
    // working disk; vdb (events 18) is non-fresh and left out. mdadm starts it with vda alone.
    for fx in ["r1-missing", "r1-degraded-stale"] {
        let tmp = TempDir::new("asm-run");
        let opts = AssembleOptions {
            readonly: true,
            ..Default::default()
        };
        let (a, rep) = Array::assemble(open_all(fx, &tmp), &opts)
            .unwrap_or_else(|e| panic!("{fx} refused: {e}"));
        assert_eq!(a.in_sync_count(), 1, "{fx}");
        assert!(rep.degraded, "{fx}");
    }
    // One member of an array whose superblocks record two working ("AA"): mdadm refuses
    // ("need all 2 to start it"), for 1.2 and 0.90 alike; --force/--run start it.
    for fx in ["r1-v1.2-bitmap", "r1-v0.90"] {
        let tmp = TempDir::new("asm-one");
        let one: Vec<_> = open_all(fx, &tmp).into_iter().take(1).collect();
        let err = Array::assemble(one, &AssembleOptions::default()).unwrap_err();
        assert!(
            matches!(
                &err,
                Error::Array(ArrayError::NotEnough {
                    have: 1,
                    need: 2,
                    working: 2,
                    ..
                })
            ),
            "{fx}: {err}"
        );
        let one: Vec<_> = open_all(fx, &tmp).into_iter().take(1).collect();
        let forced = AssembleOptions {
            force: true,
            ..Default::default()
        };
        Array::assemble(one, &forced).unwrap();
    }
}

#[test]
fn stale_member_is_kicked_as_non_fresh() {
    let tmp = TempDir::new("asm-stale");
    let opts = AssembleOptions {
        run: true,
        readonly: true,
        ..Default::default()
    };
    let (_, report) = Array::assemble(open_all("r1-degraded-stale", &tmp), &opts).unwrap();
    // vdb still claims slot 1 but missed 4 events: the kernel kicks it as non-fresh.
    assert_eq!(
        report.kicked[0].reason,
        KickReason::NonFresh {
            events: 18,
            freshest: 22
        }
    );
    // The report hands the kicked vdb back, still open (and locked: FileDevice holds its
    // members exclusively by default); let it go before opening vdb again.
    drop(report);
    // Alone, vdb is an array of its own past: it assembles and shows gen 1 only.
    let vdb = vec![(
        "/dev/vdb".to_string(),
        FileDevice::open(fixture_image_copy("r1-degraded-stale", "vdb", tmp.path())).unwrap(),
    )];
    let (mut a, _) = Array::assemble(vdb, &opts).unwrap();
    let mut buf = vec![0u8; 512];
    a.read(4 << 20, &mut buf).unwrap();
    assert_eq!(buf[..], pattern_sector("r1-degraded-stale", 1, 8192)[..]);
}

#[test]
fn write_then_stop_leaves_clean_superblocks_and_data() {
    let tmp = TempDir::new("asm-write");
    let (mut a, _) = Array::assemble(
        open_all("r1-v1.2-bitmap", &tmp),
        &AssembleOptions::default(),
    )
    .unwrap();
    let ev = a.events();
    let data = pattern("test", 3, 8192);
    a.write(1 << 20, &data).unwrap();
    assert!(a.is_dirty());
    assert_eq!(a.events(), ev + 1);
    let members = a.stop().unwrap();
    let devs: Vec<_> = members.into_iter().map(|m| (m.name, m.dev)).collect();
    let (mut b, report) = Array::assemble(devs, &AssembleOptions::default()).unwrap();
    assert!(!report.unclean);
    assert_eq!(b.events(), ev + 2);
    let mut got = vec![0u8; 8192];
    b.read(1 << 20, &mut got).unwrap();
    assert_eq!(got, data);
    for m in b.members() {
        assert!(m.sb.checksum_ok() && m.sb.is_clean());
    }
}

/// md's crash contract on our write path: dirty superblocks and the touched bitmap chunk are on
/// disk before the data; a clean stop with all mirrors clears the bits; a degraded array keeps
/// them for a later re-add.
#[test]
fn writes_set_bitmap_bits_before_data_and_clean_stop_clears_them() {
    use mdraid::device::MemDevice;
    let load = |fx: &str| -> Vec<(String, MemDevice)> {
        fixture_members(fx)
            .into_iter()
            .map(|d| {
                (
                    d.clone(),
                    MemDevice::from_vec(std::fs::read(fixture_image(fx, &d)).unwrap()),
                )
            })
            .collect()
    };
    // r1-unclean has 64 KiB chunks: a write at 8 MiB touches chunk 128 only.
    let (mut a, rep) = Array::assemble(load("r1-unclean"), &AssembleOptions::default()).unwrap();
    assert!(rep.unclean && a.needs_resync());
    let before = a.bitmap().unwrap().dirty_chunks();
    assert_eq!(before, 16);
    a.write(8 << 20, &[7u8; 4096]).unwrap();
    assert_eq!(a.bitmap().unwrap().dirty_chunks(), 17);
    assert!(a.bitmap().unwrap().bitmap.get(128));
    // "Crash": drop the array without stopping; what is on disk must show the dirty state.
    let devs: Vec<(String, MemDevice)> = {
        a.members()
            .iter()
            .zip(a.devices())
            .map(|(m, d)| (m.name.clone(), d.clone()))
            .collect()
    };
    let (b, rep) = Array::assemble(devs, &AssembleOptions::default()).unwrap();
    assert!(rep.unclean);
    assert!(
        b.bitmap().unwrap().bitmap.get(128),
        "bit for the in-flight write is on disk"
    );
    // A resync is still owed (r1-unclean never resynced), so a clean stop keeps the bits.
    let members = b.stop().unwrap();
    let devs: Vec<_> = members.into_iter().map(|m| (m.name, m.dev)).collect();
    let (c, _) = Array::assemble(devs, &AssembleOptions::default()).unwrap();
    assert_eq!(c.bitmap().unwrap().dirty_chunks(), 17);

    // A clean, complete array: bits set by a write are cleared at stop, events_cleared follows.
    let (mut a, _) = Array::assemble(load("r1-v1.2-bitmap"), &AssembleOptions::default()).unwrap();
    a.write(0, &[1u8; 512]).unwrap();
    assert_eq!(a.bitmap().unwrap().dirty_chunks(), 1);
    let members = a.stop().unwrap();
    let devs: Vec<_> = members.into_iter().map(|m| (m.name, m.dev)).collect();
    let (c, _) = Array::assemble(devs, &AssembleOptions::default()).unwrap();
    let bm = c.bitmap().unwrap();
    assert_eq!(bm.dirty_chunks(), 0);
    assert_eq!(bm.bitmap.header.events, c.events());
    assert_eq!(bm.bitmap.header.events_cleared, c.events());

    // Degraded: the bits stay for the missing mirror's re-add.
    let opts = AssembleOptions {
        run: true,
        ..Default::default()
    };
    let (mut a, _) = Array::assemble(load("r1-missing"), &opts).unwrap();
    a.write(20 << 20, &[2u8; 512]).unwrap();
    let members = a.stop().unwrap();
    let devs: Vec<_> = members.into_iter().map(|m| (m.name, m.dev)).collect();
    let (c, _) = Array::assemble(devs, &opts).unwrap();
    assert!(c.bitmap().unwrap().dirty_chunks() >= 1);
}
