//! `assemble`, `stop` and `detail`.

use super::AssembleArgs;
use crate::common::{assemble as assemble_members, open_all, open_locked, CliError, CliResult};
use clap::Args;
use mdraid::array::scan::group_by_array;
use mdraid::array::update::{update_members, Update};
use mdraid::array::{Array, AssembleOptions, AssembleReport, MemberState};
use mdraid::device::{FileDevice, Lock};
use mdraid::format::probe::{probe, Superblock};
use mdraid::report::detail_array;
use serde_json::{json, Value};
use std::path::PathBuf;

/// What the array is called in reports: /dev/md/NAME for 1.x (the name without its homehost),
/// /dev/mdN for 0.90 (its preferred minor), as mdadm names arrays it assembles.
pub fn array_label(array: &Array<FileDevice>) -> String {
    match array.lead_superblock() {
        Superblock::V1(s, _) => {
            let full = String::from_utf8_lossy(s.name()).into_owned();
            let name = full.rsplit(':').next().unwrap_or("").to_string();
            format!(
                "/dev/md/{}",
                if name.is_empty() {
                    "mdraid".to_string()
                } else {
                    name
                }
            )
        }
        Superblock::V0(s) => format!("/dev/md{}", s.md_minor),
    }
}

fn plural(n: u32, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

/// mdadm's "has been started with 2 drives (out of 3) and 1 spare." wording.
fn started_line(array: &Array<FileDevice>) -> String {
    let in_sync = array.in_sync_count();
    let spares = array
        .members()
        .iter()
        .filter(|m| m.state == MemberState::Spare)
        .count() as u32;
    let mut s = format!("array has been started with {}", plural(in_sync, "drive"));
    if in_sync < array.raid_disks() {
        s += &format!(" (out of {})", array.raid_disks());
    }
    if spares > 0 {
        s += &format!(" and {}", plural(spares, "spare"));
    }
    s + "."
}

/// The facts `--json` prints about an array's members.
pub fn members_json(array: &Array<FileDevice>) -> Value {
    Value::Array(
        array
            .members()
            .iter()
            .map(|m| {
                let (role, slot) = match m.state {
                    MemberState::InSync(s) => ("active", Some(s)),
                    MemberState::Spare => ("spare", None),
                    MemberState::Faulty => ("faulty", None),
                };
                json!({ "path": m.name, "role": role, "slot": slot, "in_sync": matches!(m.state, MemberState::InSync(_)), "events": m.sb.events() })
            })
            .collect(),
    )
}

/// The array's facts for `--json`, with no assembly report at hand (after a change).
pub fn array_json_now(array: &Array<FileDevice>) -> Value {
    json!({
        "state": if array.is_degraded() { "clean, degraded" } else { "clean" },
        "metadata": array.version().as_str(),
        "raid_devices": array.raid_disks(),
        "array_size_kib": array.size() / 1024,
        "events": array.events(),
        "members": members_json(array),
    })
}

pub fn array_json(array: &Array<FileDevice>, report: &AssembleReport<FileDevice>) -> Value {
    json!({
        "state": state_word(array, report),
        "metadata": array.version().as_str(),
        "raid_devices": array.raid_disks(),
        "array_size_kib": array.size() / 1024,
        "events": array.events(),
        "degraded": report.degraded,
        "members": members_json(array),
        "kicked": report.kicked.iter().map(|k| json!({ "path": k.name, "reason": k.reason.to_string() })).collect::<Vec<_>>(),
    })
}

/// mdadm's array state words: clean/active, degraded.
pub fn state_word(array: &Array<FileDevice>, report: &AssembleReport<FileDevice>) -> String {
    let mut s = String::from(if array.is_dirty() { "active" } else { "clean" });
    if report.degraded {
        s += ", degraded";
    }
    if report.unclean {
        s += ", resync pending";
    }
    s
}

pub fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// `assemble`: AssembleArgs' options, members optional with `--scan`, and `--update`.
#[derive(Args, Debug)]
pub struct AssembleVerb {
    /// Start the array even if degraded.
    #[arg(long, short = 'R')]
    pub run: bool,
    /// Start the array even if degraded or dirty.
    #[arg(long, short = 'f')]
    pub force: bool,
    /// The local host name (default: this machine's; `<none>` for none), for
    /// `--update=homehost|name|uuid` as mdadm uses it.
    #[arg(long)]
    pub homehost: Option<String>,
    /// Start the array read-only (nothing is written, not even at stop).
    #[arg(long, short = 'o')]
    pub readonly: bool,
    /// Assemble every array found on the devices given, or on every block device in
    /// /proc/partitions when none is given (mdadm -A --scan without a config file).
    #[arg(long, short = 's')]
    pub scan: bool,
    /// Update every member's superblock before assembling (mdadm's meanings): uuid, name,
    /// homehost, resync, devicesize, no-bitmap.
    #[arg(long, short = 'U', value_parser = ["uuid", "name", "homehost", "resync", "devicesize", "no-bitmap"])]
    pub update: Option<String>,
    /// The new UUID for --update=uuid (default: a random one).
    #[arg(long, short = 'u', value_parser = parse_uuid)]
    pub uuid: Option<[u8; 16]>,
    /// The new name for --update=name.
    #[arg(long, short = 'N')]
    pub name: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Member devices or image files.
    #[arg(value_name = "MEMBER", required_unless_present = "scan")]
    pub members: Vec<PathBuf>,
}

fn parse_uuid(s: &str) -> Result<[u8; 16], String> {
    mdraid::format::uuid::parse(s).ok_or_else(|| format!("invalid UUID '{s}': 32 hex digits"))
}

impl AssembleVerb {
    fn options(&self) -> AssembleOptions {
        AssembleOptions {
            run: self.run,
            force: self.force,
            readonly: self.readonly,
        }
    }

    fn update(&self) -> CliResult<Option<Update>> {
        let Some(u) = self.update.as_deref() else {
            if self.uuid.is_some() || self.name.is_some() {
                return Err(CliError(
                    "--uuid and --name on assemble go with --update=uuid / --update=name".into(),
                ));
            }
            return Ok(None);
        };
        Ok(Some(match u {
            "uuid" => Update::Uuid {
                uuid: self.uuid.unwrap_or_else(crate::cmd::create::random_bytes),
                given: self.uuid.is_some(),
            },
            "name" => Update::Name(
                self.name
                    .clone()
                    .ok_or_else(|| CliError("--update=name needs --name".into()))?,
            ),
            "homehost" => Update::Homehost,
            "resync" => Update::Resync,
            "devicesize" => Update::DeviceSize,
            _ => Update::NoBitmap,
        }))
    }

    /// mdadm's homehost: `--homehost`, else this machine's name; `<none>` means none.
    fn homehost(&self) -> Option<String> {
        Some(crate::cmd::examine::homehost_or_local(&self.homehost)).filter(|h| h != "<none>")
    }
}

/// Every block device the kernel lists (mdadm's scan without a config file).
fn proc_partitions() -> Vec<PathBuf> {
    partitions_in(&std::fs::read_to_string("/proc/partitions").unwrap_or_default())
}

/// The devices a /proc/partitions text lists ("major minor #blocks name" rows after a header).
fn partitions_in(text: &str) -> Vec<PathBuf> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            match f[..] {
                [ma, mi, _, name] if ma.parse::<u32>().is_ok() && mi.parse::<u32>().is_ok() => {
                    Some(PathBuf::from(format!("/dev/{name}")))
                }
                _ => None,
            }
        })
        .collect()
}

/// One array: the devices opened, updated if asked, assembled, reported, stopped.
fn assemble_one(a: &AssembleVerb, paths: &[PathBuf], update: Option<&Update>) -> CliResult<Value> {
    let opts = a.options();
    if let Some(u) = update {
        // The update writes, so the members are held read-write (and exclusively) for it.
        let mut devs = open_all(paths, false)?;
        update_members(&mut devs, u, a.homehost().as_deref())?;
    }
    let (array, report) = assemble_members(paths, &opts)?;
    let v = array_json(&array, &report);
    if !a.json {
        let who = if a.scan {
            array_label(&array)
        } else {
            "array".to_string()
        };
        eprintln!(
            "mdraid: {}",
            started_line(&array).replacen("array", &who, 1)
        );
    }
    array.stop()?;
    Ok(v)
}

pub fn assemble(a: &AssembleVerb) -> CliResult {
    let update = a.update()?;
    if !a.scan {
        let v = assemble_one(a, &a.members, update.as_ref())?;
        if a.json {
            print_json(&v);
        }
        return Ok(());
    }
    let candidates = if a.members.is_empty() {
        proc_partitions()
    } else {
        a.members.clone()
    };
    // Look without a lock (as examine does); devices that cannot be read or carry no
    // superblock are no array's members.
    let mut found: Vec<(PathBuf, mdraid::format::probe::Superblock)> = Vec::new();
    for p in candidates {
        let Ok(mut dev) = open_locked(&p, true, Lock::Unlocked) else {
            continue;
        };
        if let Ok(f) = probe(&mut dev, None) {
            found.push((p, f.sb));
        }
    }
    let sbs: Vec<(usize, &mdraid::format::probe::Superblock)> = found
        .iter()
        .enumerate()
        .map(|(i, (_, sb))| (i, sb))
        .collect();
    let groups = group_by_array(&sbs);
    if groups.is_empty() {
        return Err(CliError("No arrays found in the devices scanned".into()));
    }
    let mut out = Vec::new();
    let mut failed = 0;
    for g in groups {
        let paths: Vec<PathBuf> = g.iter().map(|&i| found[i].0.clone()).collect();
        match assemble_one(a, &paths, update.as_ref()) {
            Ok(v) => out.push(v),
            Err(e) => {
                failed += 1;
                let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
                eprintln!("mdraid: {}: {e}", names.join(", "));
            }
        }
    }
    if a.json {
        print_json(&Value::Array(out));
    }
    match failed {
        0 => Ok(()),
        n => Err(CliError(format!(
            "{n} of the arrays found could not be assembled"
        ))),
    }
}

pub fn stop(a: &AssembleArgs, json_out: bool) -> CliResult {
    let opts = a.options(false);
    let (array, report) = assemble_members(&a.members, &opts)?;
    let v = array_json(&array, &report);
    array.stop()?;
    if json_out {
        println!("{}", serde_json::json!({ "stopped": true, "array": v }));
    } else {
        eprintln!("mdraid: stopped array");
    }
    Ok(())
}

pub fn detail(a: &AssembleArgs, json_out: bool, brief: bool) -> CliResult {
    let opts = a.options(true);
    let (array, report) = assemble_members(&a.members, &opts)?;
    if brief {
        // mdadm counts as spares the devices that are neither in sync nor faulty.
        let spares = array
            .members()
            .iter()
            .filter(|m| m.state == MemberState::Spare)
            .count() as u32;
        print!(
            "{}",
            mdraid::report::brief::detail_brief(
                &array_label(&array),
                array.lead_superblock(),
                spares
            )
        );
    } else if json_out {
        print_json(&array_json(&array, &report));
    } else {
        let _ = &report;
        let homehost = crate::cmd::examine::homehost_or_local(&a.homehost);
        print!(
            "{}",
            detail_array(&array.detail_info(&array_label(&array), Some(homehost))).to_text()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn proc_partitions_rows() {
        let text = "major minor  #blocks  name\n\n 254        0   10485760 vda\n 254        1    1048576 vda1\n   7        0      65536 loop0\n";
        let got: Vec<String> = super::partitions_in(text)
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        assert_eq!(got, ["/dev/vda", "/dev/vda1", "/dev/loop0"]);
    }
}
