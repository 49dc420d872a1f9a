//! `create`: write a new array's superblocks (mdadm --create --level=1).

use crate::common::{
    check_distinct, now, open_dev, parse_bitmap_chunk, parse_md_size_kib, CliError, CliResult,
    MdSize,
};
use clap::Args;
use mdraid::array::{Array, CreateOptions, CreateSlot};
use mdraid::device::FileDevice;
use mdraid::format::geometry::BitmapRequest;
use mdraid::format::probe::probe;
use mdraid::format::MetadataVersion;
use std::io::Read;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// RAID level: only 1 (also "raid1", "mirror").
    #[arg(long, short = 'l')]
    pub level: String,
    /// Number of mirrors ('missing' devices count).
    #[arg(long = "raid-devices", short = 'n')]
    pub raid_devices: u32,
    /// Number of spares (devices listed after the mirrors).
    #[arg(long = "spare-devices", short = 'x', default_value_t = 0)]
    pub spare_devices: u32,
    /// Metadata version: 1.2 (default), 1.1, 1.0, 0.90.
    #[arg(long, short = 'e', default_value = "1.2")]
    pub metadata: String,
    /// Write-intent bitmap: internal or none (default: mdadm's rule, internal above 100 GiB).
    #[arg(long, short = 'b')]
    pub bitmap: Option<String>,
    /// Bitmap chunk size, in mdadm's units: a bare number is KiB; K/M/G/T suffixes (e.g. 64M).
    #[arg(long = "bitmap-chunk", value_parser = parse_bitmap_chunk, value_name = "SIZE")]
    pub bitmap_chunk: Option<u64>,
    /// Array name (1.x).
    #[arg(long, short = 'N')]
    pub name: Option<String>,
    /// Home host recorded with the name (default: this machine's).
    #[arg(long)]
    pub homehost: Option<String>,
    /// Mark the mirrors in sync: no resync is owed.
    #[arg(long = "assume-clean")]
    pub assume_clean: bool,
    /// Space to use on each member, in mdadm's units: a bare number is KiB; K/M/G/T suffixes;
    /// 'max' (the default) for all the space the members offer.
    #[arg(long, short = 'z', value_parser = parse_md_size_kib, value_name = "SIZE")]
    pub size: Option<MdSize>,
    /// Devices listed after this flag are write-mostly.
    #[arg(long = "write-mostly", short = 'W')]
    pub write_mostly: bool,
    /// Devices listed after this flag are failfast.
    #[arg(long)]
    pub failfast: bool,
    /// Overwrite devices that already carry md superblocks.
    #[arg(long, short = 'R')]
    pub run: bool,
    /// Same as --run for create.
    #[arg(long, short = 'f')]
    pub force: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Member devices or image files; 'missing' leaves a mirror slot empty.
    #[arg(required = true, value_name = "DEVICE")]
    pub devices: Vec<String>,
}

/// Positions (argv indices) that decide which devices the per-device flags apply to.
#[derive(Debug, Default)]
pub struct FlagPositions {
    pub devices: Vec<usize>,
    pub write_mostly: Option<usize>,
    pub failfast: Option<usize>,
}

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_err()
    {
        // No urandom: mix the clock and pid (uniqueness, not secrecy, is what UUIDs need).
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let seed = t.as_nanos() as u64 ^ (u64::from(std::process::id()) << 32);
        for (i, x) in b.iter_mut().enumerate() {
            *x = (seed.rotate_left((i * 7) as u32) >> 8) as u8 ^ i as u8;
        }
    }
    b
}

/// The bitmap asked for by `--bitmap` and `--bitmap-chunk` (bytes).
pub fn parse_bitmap(
    bitmap: Option<&str>,
    chunk_bytes: Option<u64>,
) -> Result<BitmapRequest, String> {
    match (bitmap, chunk_bytes) {
        (Some("none"), Some(_)) => Err("--bitmap-chunk needs an internal bitmap".into()),
        (Some("none"), None) => Ok(BitmapRequest::None),
        (Some("internal"), c) | (None, c @ Some(_)) => {
            Ok(BitmapRequest::Internal { chunk_bytes: c })
        }
        (None, None) => Ok(BitmapRequest::Auto),
        (Some(other), _) => Err(format!(
            "--bitmap={other}: only 'internal' and 'none' are supported"
        )),
    }
}

/// The layout's errors count devices among those given (missing slots left out); the user
/// named them by path, so the message does too.
fn name_device(e: mdraid::Error, names: &[String]) -> CliError {
    use mdraid::format::{FormatError, GeometryError as G};
    let index = match &e {
        mdraid::Error::Format(FormatError::Geometry(
            G::DeviceTooSmall { index, .. }
            | G::NoFreeSpace { index, .. }
            | G::SizeTooLarge { index, .. }
            | G::DeviceTooLarge { index, .. },
        )) => Some(*index),
        _ => None,
    };
    let text = e.to_string();
    match index.and_then(|i| names.get(i).map(|n| (i, n))) {
        Some((i, n)) => CliError(text.replacen(&format!("device {i}"), n, 1)),
        None => CliError(text),
    }
}

pub fn run(a: CreateArgs, pos: FlagPositions) -> CliResult {
    if !matches!(a.level.as_str(), "1" | "raid1" | "mirror") {
        return Err(CliError(format!(
            "raid level {} is not supported: mdraid makes RAID1 only",
            a.level
        )));
    }
    let version = MetadataVersion::parse(&a.metadata)
        .ok_or_else(|| CliError(format!("unrecognised metadata version '{}'", a.metadata)))?;
    let bitmap = parse_bitmap(a.bitmap.as_deref(), a.bitmap_chunk).map_err(CliError)?;
    let size_kib = a.size.and_then(MdSize::kib);
    let want = a.raid_devices as usize + a.spare_devices as usize;
    if a.devices.len() != want {
        return Err(CliError(format!(
            "{} devices given, but --raid-devices={} and --spare-devices={} need {want}",
            a.devices.len(),
            a.raid_devices,
            a.spare_devices
        )));
    }
    check_distinct(
        a.devices
            .iter()
            .filter(|d| *d != "missing")
            .map(std::path::Path::new),
    )?;
    let mut slots = Vec::new();
    for (i, d) in a.devices.iter().enumerate() {
        if d == "missing" {
            slots.push(CreateSlot::Missing);
            continue;
        }
        let path = PathBuf::from(d);
        let mut dev: FileDevice = open_dev(&path, false)?;
        // mdadm's check_raid finds the old superblock and asks "Continue creating array?";
        // with no answer (no terminal, stdin at EOF) it aborts. We never ask: --run or
        // --force is the "yes".
        if let Ok(found) = probe(&mut dev, None) {
            if !(a.run || a.force) {
                return Err(CliError(format!(
                    "{d} appears to be part of a raid array (metadata {}): use --run to overwrite it",
                    found.sb.version()
                )));
            }
        }
        let after = |flag: Option<usize>| match (flag, pos.devices.get(i)) {
            (Some(f), Some(&at)) => at > f,
            (Some(_), None) => true,
            (None, _) => false,
        };
        slots.push(CreateSlot::Device {
            name: d.clone(),
            dev,
            write_mostly: after(pos.write_mostly),
            failfast: after(pos.failfast),
        });
    }
    let homehost = crate::cmd::examine::homehost_or_local(&a.homehost);
    let opts = CreateOptions {
        version,
        raid_disks: a.raid_devices,
        bitmap,
        name: a.name.clone().unwrap_or_else(|| "mdraid".into()),
        homehost: (!homehost.is_empty()).then_some(homehost),
        assume_clean: a.assume_clean,
        size_kib,
        now: now(),
        uuid: random_bytes(),
        seed: u64::from_le_bytes(random_bytes()),
        md_minor: 0,
    };
    let names: Vec<String> = slots
        .iter()
        .filter_map(|s| match s {
            CreateSlot::Device { name, .. } => Some(name.clone()),
            CreateSlot::Missing => None,
        })
        .collect();
    let array = Array::create(slots, &opts).map_err(|e| name_device(e, &names))?;
    let line = format!(
        "array created with {} mirror{} ({} KiB each), metadata {}{}",
        array.raid_disks(),
        if array.raid_disks() == 1 { "" } else { "s" },
        array.size() / 1024,
        version,
        if array.needs_resync() {
            "; resync pending"
        } else {
            ""
        }
    );
    if a.json {
        let uuid = mdraid::format::uuid::format_bytes(&array.lead_superblock().uuid());
        println!(
            "{}",
            serde_json::json!({
                "created": true,
                "metadata": version.as_str(),
                "uuid": uuid,
                "raid_devices": array.raid_disks(),
                "array_size_kib": array.size() / 1024,
                "resync_pending": array.needs_resync(),
                "members": crate::cmd::lifecycle::members_json(&array),
            })
        );
    } else {
        eprintln!("mdraid: {line}");
    }
    array.stop()?;
    Ok(())
}
