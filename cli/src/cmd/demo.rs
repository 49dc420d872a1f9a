//! `demo`: the README's main job — a RAID1 over two image files, end to end.

use crate::common::{now, open_all, CliError, CliResult};
use clap::Args;
use mdraid::array::{
    AddOptions, AddOutcome, Array, AssembleOptions, CreateOptions, CreateSlot, SyncAction,
};
use mdraid::device::FileDevice;
use mdraid::format::geometry::BitmapRequest;
use mdraid::format::MetadataVersion;
use mdraid::report::detail_array;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Folder for the image files (default: a new temporary folder, removed afterwards).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Size of each image file (K/M/G suffixes).
    #[arg(long, default_value = "64M", value_parser = crate::common::parse_size)]
    pub size: u64,
}

fn step(n: u32, what: &str) {
    println!("\n== {n}. {what}");
}

/// Deterministic demo data: each 512-byte sector names itself.
fn demo_data(len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    for (s, chunk) in v.chunks_mut(512).enumerate() {
        let line = format!("mdraid demo sector {s:09}\n");
        for (i, b) in chunk.iter_mut().enumerate() {
            *b = line.as_bytes()[i % line.len()];
        }
    }
    v
}

pub fn run(a: DemoArgs) -> CliResult {
    let (dir, temporary) = match &a.dir {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!("mdraid-demo-{}", std::process::id())),
            true,
        ),
    };
    std::fs::create_dir_all(&dir)?;
    let result = demo(&dir, a.size);
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

fn show_detail(array: &Array<FileDevice>) {
    print!(
        "{}",
        detail_array(&array.detail_info("/dev/md/demo", Some("mdraid".into()))).to_text()
    );
}

fn demo(dir: &std::path::Path, size: u64) -> CliResult {
    let paths: Vec<PathBuf> = ["a.img", "b.img", "c.img"]
        .iter()
        .map(|n| dir.join(n))
        .collect();
    step(
        1,
        &format!(
            "three blank {} MiB image files in {}",
            size >> 20,
            dir.display()
        ),
    );
    for p in &paths {
        std::fs::File::create(p)?.set_len(size)?;
        println!("   {}", p.display());
    }

    step(2, "create a RAID1 over a.img and b.img (metadata 1.2, internal bitmap; blank members are identical, so --assume-clean)");
    let devs = open_all(&paths[..2], false)?;
    let slots = devs
        .into_iter()
        .map(|(name, dev)| CreateSlot::Device {
            name,
            dev,
            write_mostly: false,
            failfast: false,
        })
        .collect();
    let t = now();
    let opts = CreateOptions {
        version: MetadataVersion::V1_2,
        raid_disks: 2,
        bitmap: BitmapRequest::Internal { chunk_bytes: None },
        name: "demo".into(),
        homehost: Some("mdraid".into()),
        assume_clean: true,
        size_kib: None,
        now: t,
        uuid: super::create::random_bytes(),
        seed: u64::from_le_bytes(super::create::random_bytes()),
        md_minor: 0,
    };
    let mut array: Array<FileDevice> = Array::create(slots, &opts)?;
    println!(
        "   array size {} KiB, events {}",
        array.size() / 1024,
        array.events()
    );

    let data = demo_data(1 << 20);
    step(3, "write 1 MiB at array offset 4 MiB (superblocks go dirty and bitmap bits are set first, as md does)");
    array.write(4 << 20, &data)?;
    array.flush()?;
    println!(
        "   written; superblocks dirty: {}, events {}",
        array.is_dirty(),
        array.events()
    );

    step(4, "read it back");
    let mut back = vec![0u8; data.len()];
    array.read(4 << 20, &mut back)?;
    if back != data {
        return Err(CliError("read-back differs from what was written".into()));
    }
    println!("   1 MiB read back, identical");

    step(5, "b.img fails: the array runs degraded on a.img");
    array.fail_member(&paths[1].display().to_string())?;
    array.read(4 << 20, &mut back)?;
    println!(
        "   degraded: {}, data still identical: {}",
        array.is_degraded(),
        back == data
    );
    show_detail(&array);

    step(
        6,
        "add c.img: it becomes a spare and is rebuilt into the empty slot",
    );
    let (name, dev) = open_all(&paths[2..3], false)?.remove(0);
    let mut bar = None;
    let add = AddOptions {
        device_uuid: Some(super::create::random_bytes()),
        ..Default::default()
    };
    let out = array.add_member(name, dev, &add, &mut |done, total| {
        let pb = bar.get_or_insert_with(|| {
            super::sync::progress_bar("recover", total)
                .unwrap_or_else(indicatif::ProgressBar::hidden)
        });
        pb.set_position(done * 512);
    })?;
    if let Some(pb) = bar {
        pb.finish_and_clear();
    }
    match out {
        AddOutcome::Rebuilt(r) => println!("   rebuilt: {} sectors copied", r.sectors_copied),
        other => println!("   {other:?}"),
    }
    println!("   degraded: {}", array.is_degraded());

    step(7, "check: compare the mirrors");
    let r = array.run_sync(SyncAction::Check, &mut |_, _| {})?;
    println!("   mismatch_cnt = {} (sectors)", r.mismatch_cnt);
    if r.mismatch_cnt != 0 {
        return Err(CliError("the mirrors differ after the rebuild".into()));
    }
    show_detail(&array);

    step(
        8,
        "stop (clean superblocks), then assemble again from the image files",
    );
    array.stop()?;
    let (mut again, report) = Array::assemble(
        open_all(&paths, true)?,
        &AssembleOptions {
            readonly: true,
            ..Default::default()
        },
    )?;
    println!(
        "   assembled from {} drives, clean: {}, events {}",
        again.in_sync_count(),
        !report.unclean,
        again.events()
    );
    for k in &report.kicked {
        println!("   left out: {} ({})", k.name, k.reason);
    }
    again.read(4 << 20, &mut back)?;
    if back != data {
        return Err(CliError("data differs after reassembly".into()));
    }
    println!("   data intact after reassembly");
    println!("\nmdraid demo: ok");
    Ok(())
}
