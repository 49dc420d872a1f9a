//! The verbs and their options (mdadm's long option names).

mod bench;
mod create;
mod demo;
mod examine;
mod grow;
mod io;
mod lifecycle;
mod members;
mod replace;
mod sync;
mod zero;

use crate::common::{parse_size, CliResult};
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use std::path::PathBuf;

/// mdraid: Linux md-compatible RAID1 over image files and block devices.
#[derive(Parser, Debug)]
#[command(name = "mdraid", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

/// Options for verbs that assemble an array from its members.
#[derive(Args, Debug, Clone)]
pub struct AssembleArgs {
    /// Start the array even if degraded.
    #[arg(long, short = 'R')]
    pub run: bool,
    /// Start the array even if degraded or dirty.
    #[arg(long, short = 'f')]
    pub force: bool,
    /// The local host name for "(local to host ...)" (default: this machine's).
    #[arg(long)]
    pub homehost: Option<String>,
    /// Start the array read-only (md's read-only: no superblock, bitmap or bad-block-log
    /// write at all, not even at stop; reads work, writes are refused).
    #[arg(long, short = 'o', conflicts_with = "readwrite")]
    pub readonly: bool,
    /// Start the array read-write, also for verbs that only read (detail, cat): a read error
    /// is then repaired on the mirror that saw it, as md does on a writable array.
    #[arg(long, short = 'w')]
    pub readwrite: bool,
    /// Member devices or image files.
    #[arg(required = true, value_name = "MEMBER")]
    pub members: Vec<PathBuf>,
}

impl AssembleArgs {
    /// The assembly options these flags ask for; `readonly` is the verb's default, which
    /// `--readonly` / `--readwrite` override.
    pub fn options(&self, readonly: bool) -> mdraid::array::AssembleOptions {
        mdraid::array::AssembleOptions {
            run: self.run,
            force: self.force,
            readonly: !self.readwrite && (self.readonly || readonly),
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Create a new array (writes superblocks on every member).
    Create(create::CreateArgs),
    /// Print a member's superblock (mdadm --examine).
    Examine(examine::ExamineArgs),
    /// Assemble the array and print its state (mdadm --detail).
    Detail {
        #[command(flatten)]
        asm: AssembleArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// One mdadm.conf `ARRAY` line (mdadm --detail --brief).
        #[arg(long, short = 'b', conflicts_with = "json")]
        brief: bool,
    },
    /// Assemble the array by md's rules and report what was found.
    Assemble(lifecycle::AssembleVerb),
    /// Assemble and stop the array, leaving clean superblocks.
    Stop {
        #[command(flatten)]
        asm: AssembleArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Copy array bytes to standard output.
    Cat {
        #[command(flatten)]
        asm: AssembleArgs,
        /// First array byte: a bare number is bytes (unlike create's --size, which is KiB);
        /// K/M/G/T suffixes allowed.
        #[arg(long, default_value = "0", value_parser = parse_size)]
        offset: u64,
        /// Bytes to copy: a bare number is bytes; K/M/G/T suffixes allowed (default: to the end
        /// of the array).
        #[arg(long, value_parser = parse_size)]
        length: Option<u64>,
        #[command(flatten)]
        stream: io::StreamArgs,
    },
    /// Copy standard input into the array.
    Write {
        #[command(flatten)]
        asm: AssembleArgs,
        /// First array byte: a bare number is bytes (unlike create's --size, which is KiB);
        /// K/M/G/T suffixes allowed.
        #[arg(long, default_value = "0", value_parser = parse_size)]
        offset: u64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        stream: io::StreamArgs,
    },
    /// Resync the mirrors (copy the first over the others where a resync is owed).
    Resync(sync::SyncArgs),
    /// Compare the mirrors and count mismatched sectors (mismatch_cnt); write nothing.
    Check(sync::SyncArgs),
    /// Compare the mirrors and copy the first good one over those that differ.
    Repair(sync::SyncArgs),
    /// Mark a member faulty (mdadm --fail).
    Fail(members::MemberArgs),
    /// Remove a faulty or spare member (mdadm --remove).
    Remove(members::MemberArgs),
    /// Add a device: re-added if it left recently, else a spare, rebuilt into an empty slot.
    Add(members::MemberArgs),
    /// Re-add a recently removed member, copying only what changed (needs a bitmap).
    #[command(name = "re-add")]
    ReAdd(members::MemberArgs),
    /// Zero the md superblocks of devices that are no array's running members
    /// (mdadm --zero-superblock).
    #[command(name = "zero-superblock")]
    ZeroSuperblock(zero::ZeroArgs),
    /// Change the array's shape: bitmap, number of slots, component size (mdadm --grow).
    Grow(grow::GrowArgs),
    /// Hot-replace a member (mdadm --replace): a spare is rebuilt as its replacement while it
    /// serves I/O, then the member is faulty and the spare holds its slot.
    Replace(replace::ReplaceArgs),
    /// Show mdraid at work: a RAID1 over two image files in a temporary folder.
    Demo(demo::DemoArgs),
    /// End-to-end benchmarks, as ratios against a baseline measured in the same run.
    Bench(bench::BenchArgs),
}

/// Parses argv; also returns where create's per-device flags stood among its devices.
pub fn parse() -> (Cli, create::FlagPositions) {
    let matches: ArgMatches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let mut pos = create::FlagPositions::default();
    if let Some(("create", m)) = matches.subcommand() {
        pos.devices = m
            .indices_of("devices")
            .map(|i| i.collect())
            .unwrap_or_default();
        pos.write_mostly = m.indices_of("write_mostly").and_then(|mut i| i.next());
        pos.failfast = m.indices_of("failfast").and_then(|mut i| i.next());
    }
    (cli, pos)
}

pub fn run(cli: Cli, pos: create::FlagPositions) -> CliResult {
    match cli.cmd {
        Cmd::Create(a) => create::run(a, pos),
        Cmd::Examine(a) => examine::run(a),
        Cmd::Detail { asm, json, brief } => lifecycle::detail(&asm, json, brief),
        Cmd::Assemble(a) => lifecycle::assemble(&a),
        Cmd::Stop { asm, json } => lifecycle::stop(&asm, json),
        Cmd::Cat {
            asm,
            offset,
            length,
            stream,
        } => io::cat(&asm, offset, length, &stream),
        Cmd::Write {
            asm,
            offset,
            json,
            stream,
        } => io::write(&asm, offset, json, &stream),
        Cmd::Resync(a) => sync::run(mdraid::array::SyncAction::Resync, &a),
        Cmd::Check(a) => sync::run(mdraid::array::SyncAction::Check, &a),
        Cmd::Repair(a) => sync::run(mdraid::array::SyncAction::Repair, &a),
        Cmd::Fail(a) => members::run(members::Verb::Fail, &a),
        Cmd::Remove(a) => members::run(members::Verb::Remove, &a),
        Cmd::Add(a) => members::run(members::Verb::Add, &a),
        Cmd::ReAdd(a) => members::run(members::Verb::ReAdd, &a),
        Cmd::ZeroSuperblock(a) => zero::run(&a),
        Cmd::Grow(a) => grow::run(&a),
        Cmd::Replace(a) => replace::run(&a),
        Cmd::Demo(a) => demo::run(a),
        Cmd::Bench(a) => bench::run(a),
    }
}
