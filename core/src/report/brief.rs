//! mdadm's one-line `ARRAY` descriptions: `--examine --brief` (from members' superblocks) and
//! `--detail --brief` (from a running array), the lines mdadm.conf takes.
//!
//! The layouts are mdadm 4.2's (`brief_examine_super1/0`, `brief_detail_super1/0`, Examine.c's
//! grouping by array and Detail.c's brief branch): note the two spaces mdadm prints around
//! `metadata=` for 1.x superblocks.

use crate::format::probe::Superblock;
use crate::format::sb0;
use crate::format::uuid::format_bytes;
use crate::format::MetadataVersion;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;

/// The C string in a fixed-size name field (up to its first NUL).
fn c_str(b: &[u8]) -> &[u8] {
    let n = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    &b[..n]
}

/// mdadm's `print_escape`: a name fit for a device path (blanks become `_`, `/` becomes `-`).
fn escape(name: &[u8], out: &mut String) {
    for &c in name {
        out.push(match c {
            b' ' | b'\t' => '_',
            b'/' => '-',
            c => char::from(c),
        });
    }
}

/// mdadm's `print_quoted`: the string as is unless it holds a blank or a quote; then quoted,
/// switching quote characters whenever the current one appears inside.
fn quoted(s: &[u8], out: &mut String) {
    let mut first = None;
    for &c in s {
        match c {
            b'\'' | b'"' => {
                first = Some(c);
                break;
            }
            b' ' | b'\t' => first = Some(c),
            _ => {}
        }
    }
    let Some(first) = first else {
        s.iter().for_each(|&c| out.push(char::from(c)));
        return;
    };
    let mut q = if first == b'"' { b'\'' } else { b'"' };
    out.push(char::from(q));
    for &c in s {
        if c == q {
            out.push(char::from(q));
            q ^= b'"' ^ b'\'';
            out.push(char::from(q));
        }
        out.push(char::from(c));
    }
    out.push(char::from(q));
}

/// The `ARRAY` line of one superblock, without spares or devices (mdadm's
/// `brief_examine_super`, not verbose).
pub fn examine_brief_line(sb: &Superblock) -> String {
    let mut s = String::from("ARRAY ");
    match sb {
        Superblock::V1(sb1, _) => {
            let name = c_str(&sb1.set_name);
            let short = match name.iter().position(|&c| c == b':') {
                Some(i) => Some(&name[i + 1..]),
                None if !name.is_empty() => Some(name),
                None => None,
            };
            if let Some(n) = short {
                s.push_str("/dev/md/");
                escape(n, &mut s);
                s.push(' ');
            }
            // mdadm tells the minor version from where the superblock sits.
            let minor = match sb1.super_offset {
                0..=4 => 1,
                5..=8 => 2,
                _ => 0,
            };
            let _ = write!(
                s,
                " metadata=1.{minor} UUID={}",
                format_bytes(&sb1.set_uuid)
            );
            if !name.is_empty() {
                s.push_str(" name=");
                quoted(name, &mut s);
            }
        }
        Superblock::V0(sb0) => {
            let _ = write!(s, "/dev/md{}", sb0.md_minor);
            if sb0.minor_version >= 90 {
                let u = sb0.set_uuid;
                let _ = write!(
                    s,
                    " UUID={:08x}:{:08x}:{:08x}:{:08x}",
                    u[0], u[1], u[2], u[3]
                );
            } else {
                let _ = write!(s, " UUID={:08x}", sb0.set_uuid[0]);
            }
        }
    }
    s
}

/// Whether this member counts as a spare in mdadm's brief listing (its disk state lacks the
/// in-sync bit: spares and faulty devices alike).
fn counts_as_spare(sb: &Superblock) -> bool {
    match sb {
        Superblock::V1(s, _) => matches!(s.role(), None | Some(0xfffd..)),
        Superblock::V0(s) => s.this_disk.state & sb0::DISK_SYNC == 0,
    }
}

/// Which array a superblock belongs to (0.90 or not, array UUID).
type ArrayKey = (bool, [u8; 16]);

/// Which array a superblock belongs to, as mdadm's `compare_super` groups them.
fn array_key(sb: &Superblock) -> ArrayKey {
    (sb.version() == MetadataVersion::V0_90, sb.uuid())
}

/// `mdadm --examine --brief` over the superblocks found on the devices examined, in the
/// order given: one line per array (mdadm lists the arrays last-seen first), followed by a
/// `   spares=N` line when some members are not in sync. Devices without a superblock are
/// left out, as mdadm leaves them.
pub fn examine_brief(sbs: &[&Superblock]) -> String {
    let mut arrays: Vec<(ArrayKey, &Superblock, u32)> = Vec::new();
    for sb in sbs {
        let key = array_key(sb);
        let spare = u32::from(counts_as_spare(sb));
        match arrays.iter_mut().find(|(k, _, _)| *k == key) {
            Some(a) => a.2 += spare,
            None => arrays.push((key, sb, spare)),
        }
    }
    let mut out = String::new();
    for (_, sb, spares) in arrays.iter().rev() {
        out.push_str(&examine_brief_line(sb));
        // mdadm ends the ARRAY line, then puts the spare count on a line of its own.
        out.push('\n');
        if *spares > 0 {
            let _ = writeln!(out, "   spares={spares}");
        }
    }
    out
}

/// `mdadm --detail --brief` of a running array named `device` (e.g. `/dev/md/data`): its
/// metadata version, the spare count when there are spares, then the name (1.x) and UUID
/// from the lead superblock.
pub fn detail_brief(device: &str, lead: &Superblock, spares: u32) -> String {
    let mut s = String::new();
    let _ = write!(s, "ARRAY {device} metadata={}", lead.version().as_str());
    if spares > 0 {
        let _ = write!(s, " spares={spares}");
    }
    match lead {
        Superblock::V1(sb1, _) => {
            let name = c_str(&sb1.set_name);
            if !name.is_empty() {
                s.push_str(" name=");
                quoted(name, &mut s);
            }
            let _ = write!(s, " UUID={}", format_bytes(&sb1.set_uuid));
        }
        Superblock::V0(sb0) => {
            let u = sb0.set_uuid;
            let _ = write!(
                s,
                " UUID={:08x}:{:08x}:{:08x}:{:08x}",
                u[0], u[1], u[2], u[3]
            );
        }
    }
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::{escape, quoted};
    use alloc::string::String;

    fn q(s: &str) -> String {
        let mut o = String::new();
        quoted(s.as_bytes(), &mut o);
        o
    }

    #[test]
    fn quoting_follows_mdadm() {
        assert_eq!(q("host:data"), "host:data");
        assert_eq!(q("my data"), "\"my data\"");
        assert_eq!(q("it's"), "\"it's\"");
        assert_eq!(q("say \"hi\""), "'say \"hi\"'");
        assert_eq!(q("a b\"c"), "'a b\"c'");
        let mut o = String::new();
        escape(b"a b/c", &mut o);
        assert_eq!(o, "a_b-c");
    }
}
