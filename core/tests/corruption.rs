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
