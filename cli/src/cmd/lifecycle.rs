//! `assemble`, `stop` and `detail`.

use super::AssembleArgs;
use crate::common::{assemble as assemble_members, CliResult};
use mdraid::array::{Array, AssembleReport, MemberState};
use mdraid::device::FileDevice;
use mdraid::format::probe::Superblock;
use mdraid::report::detail_array;
use serde_json::{json, Value};

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

pub fn assemble(a: &AssembleArgs, readonly: bool, json_out: bool) -> CliResult {
    let opts = a.options(readonly);
    let (array, report) = assemble_members(&a.members, &opts)?;
    if json_out {
        print_json(&array_json(&array, &report));
    } else {
        eprintln!("mdraid: {}", started_line(&array));
    }
    array.stop()?;
    Ok(())
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

pub fn detail(a: &AssembleArgs, json_out: bool) -> CliResult {
    let opts = a.options(true);
    let (array, report) = assemble_members(&a.members, &opts)?;
    if json_out {
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
