//! Every call into the core's blocking `Array` facade that does work, in one place: the clock
//! the bindings give it and the shape of each call. When the facade's signatures change, this
//! is the file to adapt (getters are called where they are used).
//!
//! Nothing here holds RAID or metadata logic: each function forwards to the core.

use crate::device::Dev;
use mdraid::array::{
    AddOptions, AddOutcome, Array, AssembleOptions, AssembleReport, CreateOptions, CreateSlot,
    Member, SyncAction, SyncReport, SyncStop, SystemClock,
};
use mdraid::Result;

/// The array type the bindings drive.
pub type Arr = Array<Dev>;

/// Wall-clock seconds since the epoch: the creation time stamped into new superblocks.
fn wall_secs() -> u64 {
    SystemClock::read().wall_secs
}

/// Every array the bindings make runs on the system clock: md's speed limits pace sync actions
/// in real time, and an open array goes clean ~200 ms after its last write (at the next call
/// or [`tick`]).
fn on_system_clock(mut a: Arr) -> Arr {
    a.set_clock(Box::new(SystemClock));
    a
}

pub fn create(slots: Vec<CreateSlot<Dev>>, mut opts: CreateOptions) -> Result<Arr> {
    opts.now = wall_secs();
    Array::create(slots, &opts).map(on_system_clock)
}

pub fn assemble(
    devs: Vec<(String, Dev)>,
    opts: &AssembleOptions,
) -> Result<(Arr, AssembleReport<Dev>)> {
    Array::assemble(devs, opts).map(|(a, r)| (on_system_clock(a), r))
}

pub fn read(a: &mut Arr, offset: u64, buf: &mut [u8]) -> Result<()> {
    a.read(offset, buf)
}

pub fn write(a: &mut Arr, offset: u64, data: &[u8], fua: bool) -> Result<()> {
    if fua {
        a.write_fua(offset, data)
    } else {
        a.write(offset, data)
    }
}

pub fn flush(a: &mut Arr) -> Result<()> {
    a.flush()
}

/// Lets the array's timers run (clean marking after the safe-mode delay, bitmap clearing).
pub fn tick(a: &mut Arr) -> Result<()> {
    a.tick()
}

pub fn set_speed_limits(a: &mut Arr, min_kib: u64, max_kib: u64) -> Result<()> {
    a.set_speed_limits(min_kib, max_kib)
}

/// Runs a sync action to its end, paced by the speed limits on the system clock.
pub fn run_sync(
    a: &mut Arr,
    action: SyncAction,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<SyncReport> {
    a.run_sync(action, progress)
}

/// [`run_sync`] that `stop` can stop from another thread (md's `idle` / `frozen`).
pub fn run_sync_stoppable(
    a: &mut Arr,
    action: SyncAction,
    progress: &mut dyn FnMut(u64, u64),
    stop: &SyncStop,
) -> Result<SyncReport> {
    a.run_sync_stoppable(action, progress, stop)
}

/// md's `sync_action` `idle` / `frozen` between calls.
pub fn stop_sync(
    a: &mut Arr,
    freeze: bool,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Option<SyncReport>> {
    a.stop_sync(freeze, progress)
}

pub fn fail(a: &mut Arr, name: &str) -> Result<()> {
    a.fail_member(name)
}

pub fn remove(a: &mut Arr, name: &str, dev: Option<Dev>) -> Result<Option<Dev>> {
    a.remove_member(name, dev)
}

pub fn add(
    a: &mut Arr,
    name: String,
    dev: Dev,
    opts: &AddOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<AddOutcome> {
    a.add_member(name, dev, opts, progress)
}

/// A clean stop: superblocks written clean; the devices come back (and are dropped).
pub fn stop(a: Arr) -> Result<Vec<Member<Dev>>> {
    a.stop()
}

/// As a power cut leaves it: nothing more is written.
pub fn abandon(a: Arr) -> Vec<Member<Dev>> {
    a.abandon()
}
