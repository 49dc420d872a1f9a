//! Superblock updates on assembly (`mdadm --assemble --update=...`) and `--zero-superblock`.
//!
//! mdadm 4.2 updates the superblock of every device it assembles from before the kernel
//! sees it (Assemble.c: `update_super` on each chosen device, then `store_super`, which also
//! rewrites the bitmap header when the superblock has a bitmap). The event count is left
//! as it is: the update is not an md event. The meanings, per metadata (super1.c and super0.c
//! `update_super`):
//!
//! | update | 1.x | 0.90 |
//! |---|---|---|
//! | `uuid` | set_uuid and the bitmap's uuid | the four uuid words and the bitmap's uuid; without an explicit `--uuid`, words 2-3 are the homehost's hash |
//! | `name` | set_name = `homehost:name` when that fits in 31 bytes and name has no ':' | not understood |
//! | `homehost` | a name update keeping the name after ':' | uuid words 2-3 = SHA-1(homehost) |
//! | `resync` | resync_offset = 0 | clean bit off, recovery_cp = 0 |
//! | `devicesize` | 1.1/1.2: data_size = device size - data_offset; 1.0: not understood | not understood |
//! | `no-bitmap` | feature bit 0 off | state bit 8 off |
//!
//! The bitmap itself stays where it was (mdadm does not zero it); only its header's uuid moves
//! with the array's.

use super::ArrayError;
use crate::device::BlockDevice;
use crate::format::bitmap::{location_sb1, offset_sb0, BITMAP_MAGIC};
use crate::format::probe::{probe, Found, Superblock};
use crate::format::sb0;
use crate::format::MetadataVersion;
use crate::Result;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// An update mdadm's `--update=` names.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Update {
    /// A new array UUID (in the order mdadm prints it); `given` says whether the user named it
    /// (`--uuid`) or it was drawn at random (then 0.90 takes words 2-3 from the homehost).
    Uuid {
        /// The UUID.
        uuid: [u8; 16],
        /// Named by the user.
        given: bool,
    },
    /// A new array name (1.x).
    Name(String),
    /// Tie the array to the homehost.
    Homehost,
    /// Mark the array as needing a resync.
    Resync,
    /// Let the member use the whole device (1.1/1.2).
    DeviceSize,
    /// Drop the write-intent bitmap.
    NoBitmap,
}

impl Update {
    /// mdadm's word for it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Update::Uuid { .. } => "uuid",
            Update::Name(_) => "name",
            Update::Homehost => "homehost",
            Update::Resync => "resync",
            Update::DeviceSize => "devicesize",
            Update::NoBitmap => "no-bitmap",
        }
    }
}

/// Why an update was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UpdateError {
    /// The update does not apply to this metadata (mdadm's wording).
    #[error("--update={update} not understood for {metadata} metadata")]
    NotUnderstood {
        /// The update.
        update: &'static str,
        /// "0.90" or "1.x".
        metadata: &'static str,
    },
    /// The update needs a value that was not given.
    #[error("--update={0} needs {1}")]
    Needs(&'static str, &'static str),
    /// A device holds no md superblock.
    #[error("{0}: no md superblock found")]
    NoSuperblock(String),
    /// The devices belong to different arrays.
    #[error(
        "{0}: superblock does not match the other members (array UUID differs) - not updating"
    )]
    UuidMismatch(String),
}

impl From<UpdateError> for crate::Error {
    fn from(e: UpdateError) -> Self {
        ArrayError::Invalid(e.to_string()).into()
    }
}

fn family(sb: &Superblock) -> &'static str {
    match sb {
        Superblock::V0(_) => "0.90",
        Superblock::V1(..) => "1.x",
    }
}

/// The first 8 bytes of SHA-1(homehost) as 0.90 uuid words 2 and 3 (mdadm copies the hash
/// bytes into the words' memory, which is little-endian).
fn homehost_words(homehost: &str) -> [u32; 2] {
    let h = crate::format::sha1::sha1(homehost.as_bytes());
    [
        u32::from_le_bytes([h[0], h[1], h[2], h[3]]),
        u32::from_le_bytes([h[4], h[5], h[6], h[7]]),
    ]
}

/// The 1.x set_name mdadm's name update stores for `name` under `homehost`.
fn set_name(name: &[u8], homehost: Option<&str>) -> [u8; 32] {
    let mut out = [0u8; 32];
    match homehost {
        Some(h) if !name.contains(&b':') && h.len() + 1 + name.len() < 32 => {
            let full = [h.as_bytes(), b":", name].concat();
            out[..full.len()].copy_from_slice(&full);
        }
        _ => {
            let n = name.len().min(31);
            out[..n].copy_from_slice(&name[..n]);
        }
    }
    out
}

/// Applies `update` to one member's superblock (`dev_sectors` long device) as mdadm's
/// `update_super` does, checksum included. `homehost` is mdadm's (the `--homehost` given, else
/// this machine's name; `None` for mdadm's `<none>`). Returns whether the bitmap header's
/// uuid must follow (the superblock has a bitmap and its uuid changed).
pub fn update_superblock(
    sb: &mut Superblock,
    dev_sectors: u64,
    update: &Update,
    homehost: Option<&str>,
) -> core::result::Result<bool, UpdateError> {
    let not_understood = |sb: &Superblock| UpdateError::NotUnderstood {
        update: update.as_str(),
        metadata: family(sb),
    };
    let mut uuid_moved = false;
    match sb {
        Superblock::V1(s, _) => match update {
            Update::Uuid { uuid, .. } => {
                s.set_uuid = *uuid;
                uuid_moved = true;
            }
            Update::Name(n) => {
                if n.is_empty() {
                    return Err(UpdateError::Needs("name", "--name"));
                }
                s.set_name = set_name(n.as_bytes(), homehost);
            }
            Update::Homehost => {
                let Some(h) = homehost else {
                    return Err(not_understood(sb));
                };
                let full = &s.set_name;
                let len = full.iter().position(|&c| c == 0).unwrap_or(32);
                let name: Vec<u8> = match full[..len].iter().position(|&c| c == b':') {
                    Some(i) => full[i + 1..len].to_vec(),
                    None => full[..len].to_vec(),
                };
                if name.is_empty() {
                    return Err(UpdateError::Needs("homehost", "a named array"));
                }
                s.set_name = set_name(&name, Some(h));
            }
            Update::Resync => s.resync_offset = 0,
            Update::DeviceSize => {
                if s.super_offset >= s.data_offset {
                    return Err(not_understood(sb));
                }
                s.data_size = dev_sectors.saturating_sub(s.data_offset);
            }
            Update::NoBitmap => s.feature_map &= !crate::format::sb1::FEATURE_BITMAP_OFFSET,
        },
        Superblock::V0(s) => match update {
            Update::Uuid { uuid, given } => {
                for (w, c) in s.set_uuid.iter_mut().zip(uuid.chunks_exact(4)) {
                    *w = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
                }
                if let (false, Some(h)) = (given, homehost) {
                    let [a, b] = homehost_words(h);
                    s.set_uuid[2] = a;
                    s.set_uuid[3] = b;
                }
                uuid_moved = true;
            }
            Update::Homehost => {
                let Some(h) = homehost else {
                    return Err(not_understood(sb));
                };
                let [a, b] = homehost_words(h);
                s.set_uuid[2] = a;
                s.set_uuid[3] = b;
                uuid_moved = true;
            }
            Update::Resync => {
                s.state &= !sb0::STATE_CLEAN;
                s.recovery_cp = 0;
            }
            Update::NoBitmap => s.state &= !sb0::STATE_BITMAP_PRESENT,
            Update::Name(_) | Update::DeviceSize => return Err(not_understood(sb)),
        },
    }
    sb.update_checksum();
    let has_bitmap = match sb {
        Superblock::V1(s, _) => location_sb1(s).is_some(),
        Superblock::V0(s) => s.state & sb0::STATE_BITMAP_PRESENT != 0,
    };
    Ok(uuid_moved && has_bitmap)
}

/// Where a member's bitmap header lives (bytes), if its superblock has one.
fn bitmap_offset(found: &Found) -> Option<u64> {
    match &found.sb {
        Superblock::V1(s, _) => location_sb1(s),
        Superblock::V0(s) if s.state & sb0::STATE_BITMAP_PRESENT != 0 => {
            offset_sb0(found.dev_sectors)
        }
        Superblock::V0(_) => None,
    }
}

/// Writes `bytes` at `offset`, padded to whole sectors with what the device holds there.
fn write_padded<D: BlockDevice + ?Sized>(dev: &mut D, offset: u64, bytes: &[u8]) -> Result<()> {
    let len = bytes.len().div_ceil(512) * 512;
    let mut buf = alloc::vec![0u8; len];
    dev.read_at(offset, &mut buf)?;
    buf[..bytes.len()].copy_from_slice(bytes);
    dev.write_at(offset, &buf)?;
    Ok(())
}

/// A bitmap header to write back: (byte offset, its 256 bytes).
type BitmapHeader = (u64, [u8; 256]);

/// `mdadm --assemble --update=...` before the assembly: every device's superblock gets
/// `update` (and the bitmap header its uuid when the uuid moves), each device flushed. All
/// devices must carry superblocks of one array (nothing is written otherwise). Events stay.
pub fn update_members<D: BlockDevice>(
    devs: &mut [(String, D)],
    update: &Update,
    homehost: Option<&str>,
) -> Result<()> {
    // Everything is read and checked first: a refusal or a read error writes nothing.
    let mut plans: Vec<(Found, Option<BitmapHeader>)> = Vec::with_capacity(devs.len());
    let mut array: Option<(MetadataVersion, [u8; 16])> = None;
    for (name, dev) in devs.iter_mut() {
        let Ok(mut found) = probe(dev, None) else {
            return Err(UpdateError::NoSuperblock(name.clone()).into());
        };
        let key = (found.sb.version(), found.sb.uuid());
        match array {
            None => array = Some(key),
            Some(k) if k == key => {}
            Some(_) => return Err(UpdateError::UuidMismatch(name.clone()).into()),
        }
        let bitmap_follows = update_superblock(&mut found.sb, found.dev_sectors, update, homehost)
            .map_err(|e| ArrayError::Invalid(alloc::format!("{name}: {e}")))?;
        let mut header = None;
        if let Some(off) = bitmap_offset(&found).filter(|_| bitmap_follows) {
            let mut head = [0u8; 256];
            dev.read_at(off, &mut head)?;
            // mdadm rewrites the header only when it is a bitmap's.
            if u32::from_le_bytes([head[0], head[1], head[2], head[3]]) == BITMAP_MAGIC {
                head[8..24].copy_from_slice(&found.sb.bitmap_uuid());
                header = Some((off, head));
            }
        }
        plans.push((found, header));
    }
    for ((_, dev), (found, header)) in devs.iter_mut().zip(plans) {
        if let Some((off, head)) = header {
            write_padded(dev, off, &head)?;
        }
        write_padded(dev, found.sector * 512, &found.sb.to_bytes())?;
        dev.flush()?;
    }
    Ok(())
}

/// What `mdadm --zero-superblock` overwrites with zeros for a superblock found at `found`:
/// (byte offset, length). mdadm stores an empty superblock of the same kind: 512 bytes for 1.x
/// (a header with no device roles), the whole 4 KiB for 0.90. Bitmap and data stay.
pub fn zero_area(found: &Found) -> (u64, usize) {
    let len = match found.sb {
        Superblock::V1(..) => 512,
        Superblock::V0(_) => sb0::SB0_BYTES,
    };
    (found.sector * 512, len)
}

/// `mdadm --zero-superblock` on one device: zeroes every md superblock found, newest first,
/// until none is left (mdadm repeats its Kill until it finds nothing). Returns how many were
/// zeroed; none means the device is not an md member (mdadm: "Unrecognised md component
/// device").
pub fn zero_superblocks<D: BlockDevice + ?Sized>(dev: &mut D) -> Result<usize> {
    let mut n = 0;
    // A device holds at most one superblock of each of the four kinds.
    while n < 4 {
        let Ok(found) = probe(dev, None) else {
            break;
        };
        let (off, len) = zero_area(&found);
        dev.write_at(off, &alloc::vec![0u8; len])?;
        dev.flush()?;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::set_name;

    #[test]
    fn names_as_mdadm_stores_them() {
        assert_eq!(&set_name(b"data", Some("box"))[..9], b"box:data\0");
        assert_eq!(&set_name(b"a:b", Some("box"))[..4], b"a:b\0");
        let long = [b'x'; 40];
        let n = set_name(&long, Some("box"));
        assert_eq!(&n[..31], &[b'x'; 31][..]);
        assert_eq!(n[31], 0);
        // "homehost:name" must stay under 32 bytes, else the bare name goes in.
        let n = set_name(&[b'y'; 28], Some("box"));
        assert_eq!(&n[..29], &[&[b'y'; 28][..], b"\0"].concat()[..]);
        assert_eq!(&set_name(&[b'y'; 27], Some("box"))[..5], b"box:y");
    }
}
