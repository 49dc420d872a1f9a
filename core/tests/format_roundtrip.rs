//! Every fixture superblock decodes, validates, and re-encodes byte for byte.

use mdraid::format::{sb0, sb1};
use mdraid::testutil::*;
use std::io::{Read, Seek, SeekFrom};

fn read_at(path: &std::path::Path, off: u64, len: usize) -> Vec<u8> {
    let mut f = std::fs::File::open(path).unwrap();
    f.seek(SeekFrom::Start(off)).unwrap();
    let mut b = vec![0u8; len];
    f.read_exact(&mut b).unwrap();
    b
}

#[test]
fn superblocks_roundtrip() {
    let mut seen = 0;
    for fx in fixture_names() {
        for dev in fixture_members(&fx) {
            let img = fixture_image(&fx, &dev);
            let size = std::fs::metadata(&img).unwrap().len();
            let sectors = size / 512;
            let mut found = false;
            for sector in [0, 8, (sectors - 16) & !7] {
                let raw = read_at(&img, sector * 512, 4096);
                if let Ok(sb) = sb1::Superblock1::parse(&raw) {
                    sb.validate(sector, sectors)
                        .unwrap_or_else(|e| panic!("{fx}/{dev}: {e}"));
                    let out = sb.to_bytes();
                    assert_eq!(out[..], raw[..out.len()], "{fx}/{dev}");
                    found = true;
                }
            }
            if let Some(loc) = sb0::location(sectors) {
                let raw = read_at(&img, loc * 512, 4096);
                if let Ok(sb) = sb0::Superblock0::parse(&raw) {
                    sb.validate(sectors)
                        .unwrap_or_else(|e| panic!("{fx}/{dev}: {e}"));
                    assert_eq!(sb.to_bytes(), raw, "{fx}/{dev}");
                    found = true;
                }
            }
            assert!(found, "{fx}/{dev}: no superblock");
            seen += 1;
        }
    }
    assert!(seen >= 20, "only {seen} members found");
}
