//! Bad input never panics: every single-byte corruption of every fixture superblock gives a typed
//! error or a still-valid parse, and probing/assembling the corrupted member stays an error path.

use mdraid::array::{Array, AssembleOptions};
use mdraid::device::{BlockDevice, MemDevice};
use mdraid::format::probe::probe;
use mdraid::format::{sb0, sb1, FormatError};
use mdraid::testutil::*;
use mdraid::Error;

/// Byte values tried at each position: flip all bits, zero, one, all ones, and a rotating value.
fn variants(orig: u8, pos: usize) -> [u8; 5] {
    [
        orig ^ 0xff,
        0,
        1,
        0xff,
        orig.wrapping_add(1 + (pos % 250) as u8),
    ]
}

#[test]
fn every_single_byte_corruption_of_every_superblock_is_handled() {
    let mut cases = 0u64;
    let mut rejected = 0u64;
    for fx in fixture_names() {
        for devname in fixture_members(&fx) {
            let img = std::fs::read(fixture_image(&fx, &devname)).unwrap();
            let mut dev = MemDevice::from_vec(img);
            let found = probe(&mut dev, None).unwrap();
            let (start, len) = match &found.sb {
                mdraid::format::probe::Superblock::V1(s, _) => {
                    (found.sector as usize * 512, s.byte_len())
                }
                mdraid::format::probe::Superblock::V0(_) => {
                    (found.sector as usize * 512, sb0::SB0_BYTES)
                }
            };
            for pos in 0..len {
                let orig = dev.as_slice()[start + pos];
                for v in variants(orig, pos) {
                    if v == orig {
                        continue;
                    }
                    dev.as_mut_slice()[start + pos] = v;
                    cases += 1;
                    let raw = &dev.as_slice()[start..start + 4096];
                    // Direct parse + validate: typed errors only.
                    let ok1 = sb1::Superblock1::parse(raw)
                        .map(|s| s.validate(found.sector, found.dev_sectors));
                    let ok0 = sb0::Superblock0::parse(raw).map(|s| s.validate(found.dev_sectors));
                    let valid = matches!(ok1, Ok(Ok(()))) || matches!(ok0, Ok(Ok(())));
                    // Any change inside the checksummed area must be caught by something.
                    if valid {
                        panic!("{fx}/{devname}: byte {pos} = {v:#x} still validates");
                    }
                    rejected += 1;
                    // Probe and assemble must fail or succeed cleanly, never panic.
                    let _ = probe(&mut dev, None);
                    let opts = AssembleOptions {
                        run: true,
                        readonly: true,
                        ..Default::default()
                    };
                    match Array::assemble(vec![("m".to_string(), &mut dev)], &opts) {
                        Ok((a, _)) => {
                            let mut b = [0u8; 512];
                            let _ = {
                                let mut a = a;
                                a.read(0, &mut b)
                            };
                        }
                        Err(Error::Array(_) | Error::Format(_) | Error::Device(_)) => {}
                        Err(e) => panic!("unexpected error kind {e}"),
                    }
                }
                dev.as_mut_slice()[start + pos] = orig;
            }
        }
    }
    assert!(cases > 50_000, "{cases} cases");
    assert_eq!(cases, rejected);
}

fn v12_member() -> MemDevice {
    MemDevice::from_vec(std::fs::read(fixture_image("r1-v1.2-bitmap", "vda")).unwrap())
}

fn fix_csum(dev: &mut MemDevice) {
    let raw = dev.as_slice()[4096..8192].to_vec();
    let mut s = sb1::Superblock1::parse(&raw).unwrap();
    s.update_checksum();
    let b = s.to_bytes();
    dev.as_mut_slice()[4096..4096 + b.len()].copy_from_slice(&b);
}

fn validate_v12(dev: &MemDevice) -> Result<(), sb1::Sb1Error> {
    let s = sb1::Superblock1::parse(&dev.as_slice()[4096..8192])?;
    s.validate(8, dev.size() / 512)
}

#[test]
fn specific_bad_inputs_are_reported_clearly() {
    // Unknown feature bits (checksum fixed so the feature check is what fails).
    let mut d = v12_member();
    d.as_mut_slice()[4096 + 8..4096 + 12].copy_from_slice(&0x8000_0001u32.to_le_bytes());
    fix_csum(&mut d);
    assert_eq!(
        validate_v12(&d),
        Err(sb1::Sb1Error::UnknownFeatures(0x8000_0000))
    );

    // max_dev > 1920.
    let mut d = v12_member();
    d.as_mut_slice()[4096 + 220..4096 + 224].copy_from_slice(&1921u32.to_le_bytes());
    assert_eq!(validate_v12(&d), Err(sb1::Sb1Error::MaxDevTooLarge(1921)));

    // Wrong magic.
    let mut d = v12_member();
    d.as_mut_slice()[4096] ^= 1;
    assert!(matches!(validate_v12(&d), Err(sb1::Sb1Error::BadMagic(_))));

    // Data area beyond the device.
    let mut d = v12_member();
    d.as_mut_slice()[4096 + 136..4096 + 144].copy_from_slice(&(1u64 << 40).to_le_bytes());
    fix_csum(&mut d);
    assert!(matches!(
        validate_v12(&d),
        Err(sb1::Sb1Error::BadLayout {
            what: "data area",
            ..
        })
    ));

    // Bad-block log outside the device.
    let mut d = v12_member();
    d.as_mut_slice()[4096 + 188..4096 + 192].copy_from_slice(&(-100i32).to_le_bytes());
    fix_csum(&mut d);
    assert!(matches!(
        validate_v12(&d),
        Err(sb1::Sb1Error::BadLayout {
            what: "bad-block log",
            ..
        })
    ));

    // Bitmap offset outside the device.
    let mut d = v12_member();
    d.as_mut_slice()[4096 + 96..4096 + 100].copy_from_slice(&i32::MAX.to_le_bytes());
    fix_csum(&mut d);
    assert!(matches!(
        validate_v12(&d),
        Err(sb1::Sb1Error::BadLayout { what: "bitmap", .. })
    ));

    // Truncated buffers.
    assert!(matches!(
        sb1::Superblock1::parse(&[0u8; 100]),
        Err(sb1::Sb1Error::Truncated {
            need: 256,
            have: 100
        })
    ));
    assert!(matches!(
        sb0::Superblock0::parse(&[0u8; 100]),
        Err(sb0::Sb0Error::Truncated(100))
    ));

    // Devices too small for any superblock, and blank devices.
    let mut tiny = MemDevice::new(4096);
    assert!(matches!(
        probe(&mut tiny, None),
        Err(Error::Format(FormatError::Probe(_)))
    ));
    let mut blank = MemDevice::new(1 << 20);
    let e = probe(&mut blank, None).unwrap_err();
    assert_eq!(e.to_string(), "no md superblock detected");

    // A truncated image file: the 1.2 superblock is there but the data area runs past the end.
    let img = std::fs::read(fixture_image("r1-v1.2-bitmap", "vda")).unwrap();
    let mut cut = MemDevice::from_vec(img[..1 << 20].to_vec());
    let opts = AssembleOptions {
        run: true,
        readonly: true,
        ..Default::default()
    };
    let err = Array::assemble(vec![("cut".to_string(), &mut cut)], &opts)
        .map(|_| ())
        .unwrap_err();
    // Its only member is refused (data area beyond the device), so nothing is left to run.
    assert!(
        matches!(err, Error::Array(mdraid::array::ArrayError::Refused { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("data area"), "{err}");
}

/// Every single-byte change of every fixture bitmap header (and its first bits) and bad-block log
/// parses to a typed error or a value that validates or fails validation cleanly and re-encodes.
#[test]
fn every_single_byte_corruption_of_bitmaps_and_logs_is_handled() {
    use mdraid::format::badblocks::{log_location, BadBlockLog};
    use mdraid::format::bitmap::{location_sb1, Bitmap};
    let mut bitmap_cases = 0u64;
    let mut log_cases = 0u64;
    for fx in fixture_names() {
        for devname in fixture_members(&fx) {
            let img = std::fs::read(fixture_image(&fx, &devname)).unwrap();
            let mut dev = MemDevice::from_vec(img);
            let found = probe(&mut dev, None).unwrap();
            let mdraid::format::probe::Superblock::V1(sb, _) = &found.sb else {
                continue;
            };
            if let Some(off) = location_sb1(sb) {
                let off = off as usize;
                let mut region = dev.as_slice()[off..off + 4096].to_vec();
                for pos in 0..512 {
                    let orig = region[pos];
                    for v in variants(orig, pos) {
                        region[pos] = v;
                        bitmap_cases += 1;
                        if let Ok(mut bm) = Bitmap::parse(&region) {
                            let _ = bm.header.validate();
                            assert_eq!(Bitmap::parse(&bm.to_bytes()).as_ref(), Ok(&bm));
                            bm.apply_stale_rule(sb.events);
                            let _ = bm.count_dirty();
                        }
                    }
                    region[pos] = orig;
                }
            }
            if let Some((off, len)) = log_location(sb) {
                let off = off as usize;
                let mut region = dev.as_slice()[off..off + len].to_vec();
                for pos in 0..len {
                    let orig = region[pos];
                    for v in variants(orig, pos) {
                        region[pos] = v;
                        log_cases += 1;
                        for shift in [sb.bblog_shift, 0, 9, 63, 255] {
                            if let Ok(mut log) = BadBlockLog::parse(&region, shift) {
                                let _ = log.validate();
                                if let Ok(b) = log.to_bytes(sb.bblog_size) {
                                    assert_eq!(
                                        BadBlockLog::parse(&b, shift).map(|l| l.entries),
                                        Ok(log.entries.clone())
                                    );
                                }
                                log.normalize();
                                let _ = log.is_bad(0, u64::MAX);
                                let _ = log.first_bad(u64::MAX - 1, 10);
                            }
                        }
                        let _ = BadBlockLog::parse_for(sb, &region);
                    }
                    region[pos] = orig;
                }
            }
        }
    }
    assert!(
        bitmap_cases > 10_000 && log_cases > 100_000,
        "{bitmap_cases} bitmap, {log_cases} log cases"
    );
}

/// Re-encodes the superblock at `start` with a fresh checksum, as a corruption that also fixed
/// the checksum would leave it. Returns false when the bytes no longer parse (magic, version,
/// max_dev), which the checksum cannot reach anyway.
fn recompute_checksum(img: &mut [u8], start: usize, v0: bool) -> bool {
    let raw = &img[start..start + 4096];
    if v0 {
        let Ok(mut s) = sb0::Superblock0::parse(raw) else {
            return false;
        };
        s.update_checksum();
        let b = s.to_bytes();
        img[start..start + b.len()].copy_from_slice(&b);
    } else {
        let Ok(mut s) = sb1::Superblock1::parse(raw) else {
            return false;
        };
        s.update_checksum();
        let b = s.to_bytes();
        img[start..start + b.len()].copy_from_slice(&b);
    }
    true
}

/// The same sweep with the checksum recomputed after each change, so that the field and layout
/// checks behind the checksum are what a corruption meets: each is reached, nothing panics, and a
/// superblock that still validates assembles (alone and beside its untouched sibling) or fails
/// with a typed error, and reads stay on the error paths.
#[test]
fn corruptions_with_a_fixed_checksum_reach_the_field_and_layout_checks() {
    use std::collections::BTreeMap;
    let mut outcomes: BTreeMap<String, u64> = BTreeMap::new();
    let mut cases = 0u64;
    let mut assembled = 0u64;
    for fx in fixture_names() {
        let members = fixture_members(&fx);
        for devname in &members {
            let img = std::fs::read(fixture_image(&fx, devname)).unwrap();
            // Read-only assembly writes nothing, so one sibling serves every case.
            let mut sibling = members
                .iter()
                .find(|m| *m != devname)
                .map(|m| MemDevice::from_vec(std::fs::read(fixture_image(&fx, m)).unwrap()));
            let mut dev = MemDevice::from_vec(img);
            let found = probe(&mut dev, None).unwrap();
            let v0 = matches!(found.sb, mdraid::format::probe::Superblock::V0(_));
            let start = found.sector as usize * 512;
            let (len, csum_at) = match &found.sb {
                mdraid::format::probe::Superblock::V1(s, _) => (s.byte_len(), 216),
                mdraid::format::probe::Superblock::V0(_) => (sb0::SB0_BYTES, 152),
            };
            let pristine = dev.as_slice()[start..start + 4096].to_vec();
            for pos in 0..len {
                if (csum_at..csum_at + 4).contains(&pos) {
                    continue;
                }
                let orig = pristine[pos];
                for v in variants(orig, pos) {
                    if v == orig {
                        continue;
                    }
                    dev.as_mut_slice()[start..start + 4096].copy_from_slice(&pristine);
                    dev.as_mut_slice()[start + pos] = v;
                    if !recompute_checksum(dev.as_mut_slice(), start, v0) {
                        *outcomes.entry("unparsable".into()).or_default() += 1;
                        continue;
                    }
                    cases += 1;
                    let raw = &dev.as_slice()[start..start + 4096];
                    let verdict = if v0 {
                        sb0::Superblock0::parse(raw)
                            .unwrap()
                            .validate(found.dev_sectors)
                            .map_err(|e| variant_name(&format!("{e:?}")))
                    } else {
                        sb1::Superblock1::parse(raw)
                            .unwrap()
                            .validate(found.sector, found.dev_sectors)
                            .map_err(|e| variant_name(&format!("{e:?}")))
                    };
                    let key = match &verdict {
                        Ok(()) => "valid".to_string(),
                        Err(kind) => kind.clone(),
                    };
                    assert!(
                        !key.contains("Checksum"),
                        "{fx}/{devname} byte {pos} = {v:#x}: checksum still rejected"
                    );
                    *outcomes.entry(key).or_default() += 1;
                    if std::env::var_os("CORRUPTION_TRACE").is_some() {
                        eprintln!("{fx}/{devname} byte {pos} = {v:#x}");
                    }
                    let _ = probe(&mut dev, None);
                    let opts = AssembleOptions {
                        run: true,
                        readonly: true,
                        ..Default::default()
                    };
                    let mut alone = vec![("m".to_string(), &mut dev as &mut dyn BlockDevice)];
                    if let Some(s) = sibling.as_mut() {
                        alone.push(("sibling".to_string(), s as &mut dyn BlockDevice));
                    }
                    match Array::assemble(alone, &opts) {
                        Ok((mut a, _)) => {
                            assembled += 1;
                            let mut b = [0u8; 4096];
                            let _ = a.read(0, &mut b);
                            let last = a.size().saturating_sub(4096);
                            let _ = a.read(last, &mut b);
                            if a.in_sync_count() > 0 {
                                let _ = a.detail_info("m", None);
                            }
                        }
                        Err(Error::Array(_) | Error::Format(_) | Error::Device(_)) => {}
                        Err(e) => panic!("unexpected error kind {e}"),
                    }
                }
            }
        }
    }
    eprintln!("{cases} cases, {assembled} assembled: {outcomes:?}");
    // Every load check behind the checksum is met by some corruption.
    for kind in [
        "UnknownFeatures",
        "NonZeroPad",
        "WrongSuperOffset",
        "DataTooSmall",
        "BadLayout",
        "BadBlockLog",
        "BadSize",
        "BadDisk",
    ] {
        assert!(
            outcomes.get(kind).copied().unwrap_or(0) > 0,
            "no corruption reached {kind}: {outcomes:?}"
        );
    }
    assert!(outcomes["valid"] > 10_000, "{outcomes:?}");
    assert!(assembled > 10_000, "{assembled} assembled");
}

/// `Foo { .. }` / `Foo(..)` → `Foo`.
fn variant_name(debug: &str) -> String {
    debug
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or_default()
        .to_string()
}
