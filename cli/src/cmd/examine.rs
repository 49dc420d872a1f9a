//! `examine`: a member's superblock, bitmap or bad-block log in mdadm's words.

use crate::common::{open_locked, CliError, CliResult};
use crate::devnames::DevNames;
use clap::Args;
use mdraid::device::{BlockDevice, FileDevice};
use mdraid::format::badblocks::{log_location, BadBlockLog};
use mdraid::format::bitmap::{location_sb1, offset_sb0};
use mdraid::format::probe::{probe, Found, Superblock};
use mdraid::format::sb0;
use mdraid::report::bitmap::{examine_badblocks_text, examine_member_bitmap_text};
use mdraid::report::{examine_sb0, examine_sb1, ExamineOpts, Report};
use serde_json::{json, Map, Value};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct ExamineArgs {
    /// Show the write-intent bitmap instead (mdadm --examine-bitmap / -X).
    #[arg(long, short = 'X')]
    pub examine_bitmap: bool,
    /// Show the bad-block log instead.
    #[arg(long)]
    pub examine_badblocks: bool,
    /// The local host name for "(local to host ...)" (default: this machine's).
    #[arg(long)]
    pub homehost: Option<String>,
    /// One mdadm.conf `ARRAY` line per array found on the devices (mdadm --examine --brief).
    #[arg(long, short = 'b', conflicts_with_all = ["examine_bitmap", "examine_badblocks", "json"])]
    pub brief: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Devices or image files.
    #[arg(required = true, value_name = "DEVICE")]
    pub devices: Vec<PathBuf>,
}

/// Reads up to `len` bytes at `offset`, fewer at the end of the device.
fn read_upto(dev: &mut FileDevice, offset: u64, len: u64) -> Vec<u8> {
    let n = dev.size().saturating_sub(offset).min(len) as usize;
    let mut buf = vec![0u8; n];
    match dev.read_at(offset, &mut buf) {
        Ok(()) => buf,
        Err(_) => Vec::new(),
    }
}

/// The bytes where the bitmap lives (header and enough bits for any md bitmap reach: mdadm reads
/// at most the bitmap space, which never exceeds a few MiB for internal bitmaps).
fn bitmap_bytes(dev: &mut FileDevice, found: &Found) -> Option<Vec<u8>> {
    let off = match &found.sb {
        Superblock::V1(s, _) => location_sb1(s)?,
        Superblock::V0(s) if s.state & sb0::STATE_BITMAP_PRESENT != 0 => {
            offset_sb0(found.dev_sectors)?
        }
        Superblock::V0(_) => return None,
    };
    Some(read_upto(dev, off, 4 << 20))
}

pub fn homehost_or_local(h: &Option<String>) -> String {
    h.clone().unwrap_or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .or_else(|_| std::fs::read_to_string("/etc/hostname"))
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    })
}

fn report_json(path: &str, r: &Report) -> Value {
    let mut fields = Map::new();
    for (k, v) in r.fields() {
        fields.insert(k.to_string(), Value::String(v.to_string()));
    }
    let rows: Vec<Value> = r
        .rows()
        .map(|cells| {
            Value::Object(
                cells
                    .iter()
                    .map(|(k, v)| (k.to_string(), Value::String(v.clone())))
                    .collect(),
            )
        })
        .collect();
    json!({ "device": path, "fields": fields, "devices": rows })
}

/// `--brief`: the superblocks of every device given, grouped by array; devices without one
/// are passed over in silence, as mdadm does.
fn run_brief(a: &ExamineArgs) -> CliResult {
    let mut found = Vec::new();
    for p in &a.devices {
        let mut dev = open_locked(p, true, mdraid::device::Lock::Unlocked)?;
        if let Ok(f) = probe(&mut dev, None) {
            found.push(f.sb);
        }
    }
    let sbs: Vec<&Superblock> = found.iter().collect();
    print!("{}", mdraid::report::brief::examine_brief(&sbs));
    Ok(())
}

pub fn run(a: ExamineArgs) -> CliResult {
    if a.brief {
        return run_brief(&a);
    }
    let homehost = homehost_or_local(&a.homehost);
    let names = DevNames::load();
    let mut failures = Vec::new();
    let mut json_out = Vec::new();
    for p in &a.devices {
        let path = p.display().to_string();
        match examine_one(&a, p, &path, &homehost, &names) {
            Ok((text, v)) => {
                if a.json {
                    json_out.push(v);
                } else {
                    print!("{text}");
                }
            }
            Err(e) => {
                eprintln!("mdraid: {e}");
                failures.push(path);
            }
        }
    }
    if a.json {
        let v = if json_out.len() == 1 {
            json_out.remove(0)
        } else {
            Value::Array(json_out)
        };
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    }
    match failures.len() {
        0 => Ok(()),
        // Each failure was reported on its own line; with one device that line says it all.
        _ if a.devices.len() == 1 => Err(CliError(String::new())),
        _ => Err(CliError(format!(
            "could not examine {}",
            failures.join(", ")
        ))),
    }
}

fn examine_one(
    a: &ExamineArgs,
    p: &std::path::Path,
    path: &str,
    homehost: &str,
    names: &DevNames,
) -> CliResult<(String, Value)> {
    // No lock: examine works on a member another command is using, as mdadm -E does.
    let mut dev = open_locked(p, true, mdraid::device::Lock::Unlocked)?;
    let found = probe(&mut dev, None).map_err(|e| match e {
        mdraid::Error::Format(_) => CliError(format!("No md superblock detected on {path}.")),
        e => CliError(format!("{path}: {e}")),
    })?;
    if a.examine_bitmap {
        let Some(bytes) = bitmap_bytes(&mut dev, &found) else {
            return Err(CliError(format!("{path} doesn't have bitmap")));
        };
        let text = examine_member_bitmap_text(path, &bytes, found.sb.version());
        let mut fields = Map::new();
        for line in text.lines() {
            if let Some((k, v)) = line.split_once(" : ") {
                fields.insert(k.trim().to_string(), Value::String(v.to_string()));
            }
        }
        return Ok((text, json!({ "device": path, "bitmap": fields })));
    }
    if a.examine_badblocks {
        let Superblock::V1(sb, _) = &found.sb else {
            return Err(CliError(format!(
                "{path}: metadata 0.90 has no bad-block log"
            )));
        };
        let log = log_location(sb).and_then(|(off, len)| {
            let raw = read_upto(&mut dev, off, len as u64);
            BadBlockLog::parse_for(sb, &raw).ok()
        });
        let text = examine_badblocks_text(path, sb, log.as_ref());
        let entries: Vec<Value> = log
            .iter()
            .flat_map(|l| l.entries.iter())
            .map(|e| json!({ "sector": e.start_sector, "sectors": e.len_sectors }))
            .collect();
        return Ok((text, json!({ "device": path, "badblocks": entries })));
    }
    let bitmap = bitmap_bytes(&mut dev, &found);
    let lookup = |maj: u32, min: u32| names.name_of(maj, min);
    let opts = ExamineOpts {
        device: Some(path),
        homehost: Some(homehost),
        dev_sectors: found.dev_sectors,
        bitmap_header: bitmap.as_deref(),
        dev_name: Some(&lookup),
    };
    let report = match &found.sb {
        Superblock::V1(s, _) => examine_sb1(s, &opts),
        Superblock::V0(s) => examine_sb0(s, &opts),
    };
    Ok((report.to_text(), report_json(path, &report)))
}
