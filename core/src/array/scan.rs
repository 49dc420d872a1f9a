//! `mdadm --assemble --scan` without a config file: which devices make up which array.

use crate::format::probe::Superblock;
use crate::format::MetadataVersion;
use alloc::vec::Vec;

/// Groups devices by the array their superblock names (metadata version and array UUID, as
/// mdadm's `compare_super` tells arrays apart), in the order each array is first seen.
/// `sbs` holds (device index, superblock) for the devices that carry one; the result lists
/// device indices per array.
pub fn group_by_array(sbs: &[(usize, &Superblock)]) -> Vec<Vec<usize>> {
    let mut keys: Vec<(MetadataVersion, [u8; 16])> = Vec::new();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, sb) in sbs {
        let key = (sb.version(), sb.uuid());
        match keys.iter().position(|k| *k == key) {
            Some(g) => groups[g].push(*i),
            None => {
                keys.push(key);
                groups.push(alloc::vec![*i]);
            }
        }
    }
    groups
}
