//! Every call into the core's blocking `Array` facade, in one place: the clock the bindings
//! feed it and the shape of each call. When the facade's signatures change (its `now: u64`
//! seconds become a clock), this is the file to adapt.
//!
//! Nothing here holds RAID or metadata logic: each function forwards to the core.

use crate::device::Dev;
use mdraid::array::{
    AddOptions, AddOutcome, Array, AssembleOptions, AssembleReport, CreateOptions, CreateSlot,
    Member, SyncKind, SyncReport,
};
use mdraid::Result;

/// The array type the bindings drive.
pub type Arr = Array<Dev>;

/// Wall-clock seconds since the epoch: what the facade stamps into superblocks.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Makes the engine's speed limits real: when it waits for a deadline (ns on its clock), sleep
/// until that much real time has passed since the first wait, and report the time reached.
fn real_time_waiter() -> impl FnMut(u64) -> Option<u64> {
    let mut origin: Option<(std::time::Instant, u64)> = None;
    move |deadline| {
        let (t0, c0) = *origin.get_or_insert((std::time::Instant::now(), deadline));
        let target = std::time::Duration::from_nanos(deadline.saturating_sub(c0));
        let elapsed = t0.elapsed();
        if target > elapsed {
            std::thread::sleep(target - elapsed);
        }
        Some(c0 + t0.elapsed().as_nanos() as u64)
    }
}

/// Options of a new array, `now` filled in here.
pub fn create(slots: Vec<CreateSlot<Dev>>, mut opts: CreateOptions) -> Result<Arr> {
    opts.now = now();
    Array::create(slots, &opts)
}

pub fn assemble(
    devs: Vec<(String, Dev)>,
    opts: &AssembleOptions,
) -> Result<(Arr, AssembleReport<Dev>)> {
    Array::assemble(devs, opts)
}

pub fn read(a: &mut Arr, offset: u64, buf: &mut [u8]) -> Result<()> {
    a.read(offset, buf)
}

pub fn write(a: &mut Arr, offset: u64, data: &[u8], fua: bool) -> Result<()> {
    if fua {
        a.write_fua(offset, data, now())
    } else {
        a.write(offset, data, now())
    }
}

pub fn flush(a: &mut Arr) -> Result<()> {
    a.flush()
}

pub fn set_speed_limits(a: &mut Arr, min_kib: u64, max_kib: u64) {
    a.set_speed_limits(min_kib, max_kib)
}

/// Runs a sync action to its end, at the speed limits' pace in real time.
pub fn run_sync(
    a: &mut Arr,
    action: SyncKind,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<SyncReport> {
    a.run_sync_with(action, now(), &mut real_time_waiter(), progress)
}

pub fn fail(a: &mut Arr, name: &str) -> Result<()> {
    a.fail_member(name, now())
}

pub fn remove(a: &mut Arr, name: &str, dev: Option<Dev>) -> Result<Option<Dev>> {
    a.remove_member(name, dev, now())
}

pub fn add(
    a: &mut Arr,
    name: String,
    dev: Dev,
    opts: &AddOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<AddOutcome> {
    a.add_member(name, dev, opts, now(), progress)
}

/// A clean stop: superblocks written clean; the devices come back (and are dropped).
pub fn stop(a: Arr) -> Result<Vec<Member<Dev>>> {
    a.stop(now())
}

/// As a power cut leaves it: nothing more is written.
pub fn abandon(a: Arr) -> Vec<Member<Dev>> {
    a.abandon()
}
