//! Device numbers to names, as mdadm's map_dev does: scan /dev for block devices.
//!
//! `MDRAID_DEVNAMES="254:0=/dev/vda,254:16=/dev/vdb"` overrides the scan, so that reports of
//! images made on another machine can name the devices they were made on (the fixture tests use
//! it).

use std::collections::HashMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

pub struct DevNames {
    map: HashMap<(u32, u32), String>,
}

impl DevNames {
    pub fn load() -> Self {
        let mut map = HashMap::new();
        if let Ok(spec) = std::env::var("MDRAID_DEVNAMES") {
            for item in spec.split(',') {
                let Some((num, name)) = item.split_once('=') else {
                    continue;
                };
                let Some((ma, mi)) = num.split_once(':') else {
                    continue;
                };
                if let (Ok(ma), Ok(mi)) = (ma.trim().parse(), mi.trim().parse()) {
                    map.insert((ma, mi), name.trim().to_string());
                }
            }
            return DevNames { map };
        }
        if let Ok(rd) = std::fs::read_dir("/dev") {
            for e in rd.flatten() {
                let Ok(md) = e.metadata() else { continue };
                if md.file_type().is_block_device() {
                    let key = mdraid::device::split_dev_t(md.rdev());
                    map.entry(key)
                        .or_insert_with(|| e.path().display().to_string());
                }
            }
        }
        DevNames { map }
    }

    pub fn name_of(&self, major: u32, minor: u32) -> Option<String> {
        self.map.get(&(major, minor)).cloned()
    }
}
