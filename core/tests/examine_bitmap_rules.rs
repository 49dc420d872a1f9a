//! Rules of `mdadm --examine-bitmap` text (`core/src/report/bitmap.rs`) for headers the
//! fixtures do not hold: mdadm 4.2's `ExamineBitmap` / `bitmap_fd_read` rules applied to one
//! fixture's text. Written for the mutants cargo-mutants found surviving the `report` group
//! (scripts/mutants.sh, TESTING.md); each test names its mutants.

use mdraid::format::bitmap::{BitmapSuper, BITMAP_HEADER_BYTES};
use mdraid::report::bitmap::examine_bitmap_bytes_text;
use mdraid::testutil::fixture_text;

/// The r1-v1.2-bitmap fixture's vda bitmap header, rebuilt from the fields its text shows
/// (mdadm printed it from this header).
fn fixture_header() -> BitmapSuper {
    let uuid = [
        0x2e, 0x3e, 0x6b, 0xd8, 0xa2, 0xb1, 0x67, 0xc1, 0xc4, 0xba, 0x16, 0x42, 0x62, 0x02, 0x9d,
        0xd7,
    ];
    let mut h = BitmapSuper::new(uuid, 63488, 64 << 20);
    h.events = 19;
    h.events_cleared = 18;
    h.daemon_sleep = 5;
    h
}

fn fixture() -> String {
    fixture_text("r1-v1.2-bitmap", "bitmap-vda.txt")
}

/// `text` with its line starting with `key` replaced by `line`.
fn with_line(text: &str, key: &str, line: &str) -> String {
    let mut n = 0;
    let out: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with(key) {
                n += 1;
                line.to_string()
            } else {
                l.to_string()
            }
        })
        .collect();
    assert_eq!(n, 1, "one {key:?} line in {text}");
    out.join("\n") + "\n"
}

/// The header's bytes followed by `bits`, as mdadm reads them from the device.
fn raw(h: &BitmapSuper, bits: &[u8]) -> Vec<u8> {
    let mut v = h.to_bytes().to_vec();
    assert_eq!(v.len(), BITMAP_HEADER_BYTES);
    v.extend_from_slice(bits);
    v
}

#[test]
fn the_rebuilt_header_prints_as_the_fixture() {
    // One 64 MB chunk (bit clear), and whatever follows on the device.
    assert_eq!(
        examine_bitmap_bytes_text("/dev/vda", &raw(&fixture_header(), &[0; 4096])),
        fixture()
    );
}

/// mdadm's `bitmap_states` table: 0 is "OK", 2 "Out of date", any other value "Unknown".
/// (Mutant: `bitmap_state_name`'s arm 2 deleted, which printed "Unknown" for 2.)
#[test]
fn the_state_is_named_by_mdadms_table() {
    for (state, name) in [
        (0, "OK"),
        (1, "Unknown"),
        (2, "Out of date"),
        (3, "Unknown"),
    ] {
        let mut h = fixture_header();
        h.state = state;
        let want = with_line(
            &fixture(),
            "           State :",
            &format!("           State : {name}"),
        );
        assert_eq!(
            examine_bitmap_bytes_text("/dev/vda", &raw(&h, &[0; 4096])),
            want,
            "state {state}"
        );
    }
}

/// mdadm counts `bitmap_bits(sync_size, chunksize)` bits from what it could read, and warns
/// only when it read fewer (`read_bits < total_bits`): bits exactly as long as the array's
/// chunks are enough, one byte fewer is not; bits past the last chunk are ignored. Here 2 MB
/// chunks over 31744 KiB: 16 bits. (Mutant: `have < want` → `<=` in bytes_text warned with
/// the bits exactly long enough.)
#[test]
fn the_short_bitmap_warning_is_for_fewer_bits_than_chunks() {
    let mut h = fixture_header();
    h.chunksize = 2 << 20;
    let base = with_line(&fixture(), "       Chunksize :", "       Chunksize : 2 MB");
    let line = |bits: u64, dirty: u64, pct: &str| {
        with_line(
            &base,
            "          Bitmap :",
            &format!("          Bitmap : {bits} bits (chunks), {dirty} dirty ({pct}%)"),
        )
    };
    // Exactly 16 bits, 12 set.
    assert_eq!(
        examine_bitmap_bytes_text("/dev/vda", &raw(&h, &[0xff, 0x0f])),
        line(16, 12, "75.0")
    );
    // Trailing bytes are not bits of this array.
    assert_eq!(
        examine_bitmap_bytes_text("/dev/vda", &raw(&h, &[0xff, 0x0f, 0xff, 0xff])),
        line(16, 12, "75.0")
    );
    // One byte: 8 bits read of 16, all set; the warning and a blank line come first.
    assert_eq!(
        examine_bitmap_bytes_text("/dev/vda", &raw(&h, &[0xff])),
        "mdadm: WARNING: bitmap file is not large enough for array size 63488!\n\n".to_string()
            + &line(8, 8, "100.0")
    );
}
