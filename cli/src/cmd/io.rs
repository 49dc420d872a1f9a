//! `cat` and `write`: array bytes to standard output, standard input into the array.
//!
//! Both stream through the array machine on the io_uring driver: `--queue-depth` requests of
//! `--request-size` bytes in flight, real metadata (dirty marking, bitmap pages) as ring
//! entries, and a clean stop at the end (also after an error). Where io_uring is refused they
//! fall back, saying so, to the blocking `Array` path, one request at a time (unless
//! `MDRAID_REQUIRE_URING=1`, which makes that an error).

use super::AssembleArgs;
use crate::common::{assemble, parse_md_sectors, CliError, CliResult};
use clap::Args;
use mdraid::array::machine::Machine;
use mdraid::array::Array;
use mdraid::device::FileDevice;
use mdraid::driver::uring::{BufId, DriverError, UringConfig, UringDriver};
use mdraid::raid1::ReqId;
use std::collections::{HashMap, VecDeque};
use std::io::{Read, Write};

/// How `cat` and `write` stream.
#[derive(Args, Debug, Clone)]
pub struct StreamArgs {
    /// Array requests in flight (1..=128).
    #[arg(long, default_value_t = 32)]
    pub queue_depth: u32,
    /// Bytes per request: mdadm's units (a bare number is KiB; K, M, G, s suffixes), a
    /// multiple of 4 KiB, at most 16M.
    #[arg(long, default_value = "1M", value_parser = parse_request_size)]
    pub request_size: u64,
    /// Open the members with O_DIRECT (bypass the page cache); `write`'s default, the faster
    /// here for writes (BENCHMARKS.md).
    #[arg(long, conflicts_with = "buffered")]
    pub direct: bool,
    /// Go through the page cache; `cat`'s default, the faster here for reads (readahead).
    #[arg(long)]
    pub buffered: bool,
}

impl StreamArgs {
    fn direct(&self, default: bool) -> bool {
        self.direct || (default && !self.buffered)
    }
}

fn parse_request_size(s: &str) -> Result<u64, String> {
    let bytes = parse_md_sectors(s)? * 512;
    if bytes % 4096 != 0 || bytes > 16 << 20 {
        return Err(format!(
            "invalid request size '{s}': a multiple of 4K, at most 16M"
        ));
    }
    Ok(bytes)
}

const SECTOR: u64 = 512;

/// An array under the io_uring driver, or the blocking array where io_uring is refused.
enum Streamer {
    Uring(Box<UringDriver>),
    Blocking(Box<Array<FileDevice>>),
}

fn start(a: &AssembleArgs, readonly: bool, s: &StreamArgs) -> CliResult<(Streamer, u64)> {
    // Writes go O_DIRECT unless told otherwise, reads through the page cache.
    let direct = s.direct(!readonly);
    if !(1..=128).contains(&s.queue_depth) {
        return Err(CliError(format!(
            "invalid queue depth {}: 1 to 128",
            s.queue_depth
        )));
    }
    let uring = mdraid::driver::uring::probe();
    let (array, _) = assemble(&a.members, &a.options(readonly))?;
    let size = array.size();
    if let Err(e) = uring {
        if std::env::var("MDRAID_REQUIRE_URING").as_deref() == Ok("1") {
            return Err(CliError(format!("{e} (MDRAID_REQUIRE_URING=1)")));
        }
        eprintln!("mdraid: {e}: one request at a time through the blocking path");
        return Ok((Streamer::Blocking(Box::new(array)), size));
    }
    let (machine, mut devs) = array.into_machine(mdraid::driver::now())?;
    if direct {
        for i in 0..devs.len() {
            if let Err(e) = devs[i].set_direct(true) {
                let name = devs[i].path().display().to_string();
                if s.direct {
                    return Err(CliError(format!("cannot use O_DIRECT on {name}: {e}")));
                }
                // Not asked for: the page cache it is, for every member.
                for d in &mut devs[..i] {
                    d.set_direct(false).map_err(|e| CliError(e.to_string()))?;
                }
                break;
            }
        }
    }
    let qd = s.queue_depth;
    // One buffer per request in flight.
    let cfg = UringConfig::new(qd.max(4), qd as usize, s.request_size as usize);
    let drv = UringDriver::new(machine, devs, cfg).map_err(drv_err)?;
    Ok((Streamer::Uring(Box::new(drv)), size))
}

fn drv_err(e: DriverError) -> CliError {
    CliError(e.to_string())
}

/// Stops the machine (its superblocks end clean); `Ok` carries the machine for reports.
fn stop(drv: Box<UringDriver>) -> CliResult<Machine> {
    let (m, _devs) = drv.stop().map_err(drv_err)?;
    Ok(m)
}

fn check_range(offset: u64, len: Option<u64>, size: u64) -> CliResult<u64> {
    if offset > size {
        return Err(CliError(format!(
            "offset {offset} is beyond the array's {size} bytes"
        )));
    }
    let len = len.unwrap_or(size - offset);
    if len > size - offset {
        return Err(CliError(format!(
            "{len} bytes at offset {offset} run past the array's {size} bytes"
        )));
    }
    Ok(len)
}

/// The pieces a byte range is cut into: each within one `unit`-aligned window of the array, so
/// the sectors covering it fit one buffer. Yields (byte offset, bytes).
fn pieces(offset: u64, len: u64, unit: u64) -> impl Iterator<Item = (u64, u64)> {
    let mut pos = offset;
    let end = offset + len;
    std::iter::from_fn(move || {
        if pos >= end {
            return None;
        }
        let n = ((pos / unit + 1) * unit).min(end) - pos;
        let p = (pos, n);
        pos += n;
        Some(p)
    })
}

/// The covering blocks of a piece (`blk`: the array's block size, a multiple of the sector),
/// as (first sector, sectors), and where the piece starts in them.
fn covering(pos: u64, n: u64, blk: u64) -> (u64, u64, usize) {
    let first = pos / blk;
    let last = (pos + n).div_ceil(blk);
    let spb = blk / SECTOR;
    (first * spb, (last - first) * spb, (pos % blk) as usize)
}

fn out_write(out: &mut impl Write, bytes: &[u8]) -> CliResult<bool> {
    match out.write_all(bytes) {
        Ok(()) => Ok(true),
        // A closed pipe (`| head`) ends the copy quietly, as cat does.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e.into()),
    }
}

pub fn cat(a: &AssembleArgs, offset: u64, length: Option<u64>, s: &StreamArgs) -> CliResult {
    let (st, size) = start(a, true, s)?;
    let len = match check_range(offset, length, size) {
        Ok(l) => l,
        Err(e) => {
            if let Streamer::Uring(d) = st {
                stop(d)?;
            }
            return Err(e);
        }
    };
    let mut out = std::io::stdout().lock();
    let mut drv = match st {
        Streamer::Uring(d) => d,
        Streamer::Blocking(mut array) => {
            let mut buf = vec![0u8; s.request_size as usize];
            for (pos, n) in pieces(offset, len, s.request_size) {
                array.read(pos, &mut buf[..n as usize])?;
                if !out_write(&mut out, &buf[..n as usize])? {
                    return Ok(());
                }
            }
            return flush_out(&mut out);
        }
    };
    let qd = s.queue_depth as usize;
    let blk = drv.machine().block_size();
    let mut free: Vec<BufId> = (0..qd).rev().map(BufId).collect();
    // In submission order: (request, buffer, skip, bytes).
    let mut order: VecDeque<(ReqId, BufId, usize, usize)> = VecDeque::with_capacity(qd);
    let mut done: HashMap<ReqId, ()> = HashMap::with_capacity(qd);
    let mut todo = pieces(offset, len, s.request_size).peekable();
    let mut result = Ok(());
    'run: while todo.peek().is_some() || !order.is_empty() {
        while let (Some(&(pos, n)), Some(&b)) = (todo.peek(), free.last()) {
            let (first, count, lead) = covering(pos, n, blk);
            match drv.submit_read(first, count, b) {
                Ok(id) => {
                    free.pop();
                    todo.next();
                    order.push_back((id, b, lead, n as usize));
                }
                Err(DriverError::Submit(mdraid::raid1::SubmitError::Busy { .. })) => break,
                Err(e) => {
                    result = Err(drv_err(e));
                    break 'run;
                }
            }
        }
        // Write out, in order, whatever is finished at the front.
        while let Some(&(id, b, lead, n)) = order.front() {
            if done.remove(&id).is_none() {
                break;
            }
            order.pop_front();
            let bytes = &drv.buffer(b).unwrap_or_default()[lead..lead + n];
            match out_write(&mut out, bytes) {
                Ok(true) => {}
                Ok(false) => break 'run,
                Err(e) => {
                    result = Err(e);
                    break 'run;
                }
            }
            free.push(b);
        }
        if order.front().is_some_and(|f| !done.contains_key(&f.0)) {
            match drv.next_completion() {
                Ok(Some((id, Ok(())))) => {
                    done.insert(id, ());
                }
                Ok(Some((_, Err(e)))) => {
                    result = Err(CliError(e.to_string()));
                    break 'run;
                }
                Ok(None) => {}
                Err(e) => {
                    result = Err(drv_err(e));
                    break 'run;
                }
            }
        }
    }
    report_failures(&mut drv);
    stop(drv)?;
    result?;
    flush_out(&mut out)
}

fn flush_out(out: &mut impl Write) -> CliResult {
    match out.flush() {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// Tells the user about members that failed while streaming (the array went on degraded).
fn report_failures(drv: &mut UringDriver) {
    while let Some(n) = drv.poll_event() {
        if let mdraid::array::machine::Notice::MemberFailed { member } = n {
            let name = drv
                .machine()
                .members()
                .get(member)
                .map_or("?", |m| m.name.as_str());
            eprintln!("mdraid: {name} failed: the array continues degraded");
        }
    }
}

pub fn write(a: &AssembleArgs, offset: u64, json: bool, s: &StreamArgs) -> CliResult {
    let (st, size) = start(a, false, s)?;
    let mut input = std::io::stdin().lock();
    let written = match st {
        Streamer::Blocking(array) => write_blocking(*array, &mut input, offset, size, s)?,
        Streamer::Uring(mut drv) => {
            let r = stream_in(&mut drv, &mut input, offset, size, s);
            report_failures(&mut drv);
            stop(drv)?;
            r?
        }
    };
    if json {
        println!(
            "{}",
            serde_json::json!({ "offset": offset, "bytes_written": written })
        );
    } else {
        eprintln!("mdraid: wrote {written} bytes at offset {offset}");
    }
    Ok(())
}

fn overrun(size: u64, pos: u64) -> CliError {
    CliError(format!(
        "input runs past the end of the array ({size} bytes) at offset {pos}"
    ))
}

/// Streams `input` into the array at `offset`; returns the bytes written. Every write is
/// complete (and flushed) when it returns Ok.
fn stream_in(
    drv: &mut UringDriver,
    input: &mut impl Read,
    offset: u64,
    size: u64,
    s: &StreamArgs,
) -> CliResult<u64> {
    let qd = s.queue_depth as usize;
    let unit = s.request_size;
    let blk = drv.machine().block_size();
    let mut free: Vec<BufId> = (0..qd).rev().map(BufId).collect();
    let mut held: HashMap<ReqId, BufId> = HashMap::with_capacity(qd);
    let mut tmp = vec![0u8; unit as usize];
    let mut pos = offset;
    // Pieces up to the array's end; past it, any input byte is an overrun.
    let end = size.max(offset);
    for (p, n) in pieces(offset, end - offset, unit).chain(std::iter::once((end, 1))) {
        debug_assert_eq!(p, pos);
        while free.is_empty() {
            wait_one(drv, &mut held, &mut free)?;
        }
        let Some(b) = free.pop() else { break };
        let (first, count, lead) = covering(p, n, blk);
        let aligned = lead == 0 && n % blk == 0;
        let got = if aligned {
            read_full(
                input,
                &mut drv.buffer_mut(b).unwrap_or_default()[..n as usize],
            )?
        } else {
            read_full(input, &mut tmp[..n as usize])?
        };
        if got == 0 {
            free.push(b);
            break;
        }
        if p >= size {
            free.push(b);
            wait_all(drv, &mut held, &mut free)?;
            return Err(overrun(size, pos));
        }
        let (count, whole) = if aligned && got as u64 % blk == 0 {
            (got as u64 / SECTOR, true)
        } else {
            (covering(p, got as u64, blk).1.min(count), false)
        };
        if !whole {
            // Partial sectors: read the covering sectors first (ordered after every earlier
            // overlapping write), then lay the input over them.
            if aligned {
                tmp[..got].copy_from_slice(&drv.buffer(b).unwrap_or_default()[..got]);
            }
            let id = drv.submit_read(first, count, b).map_err(drv_err)?;
            held.insert(id, b);
            wait_for(drv, id, &mut held, &mut free)?;
            free.retain(|f| *f != b);
            let buf = drv.buffer_mut(b).unwrap_or_default();
            buf[lead..lead + got].copy_from_slice(&tmp[..got]);
        }
        let id = drv.submit_write(first, count, b, false).map_err(drv_err)?;
        held.insert(id, b);
        // Into the kernel before blocking on the input.
        drv.poll().map_err(drv_err)?;
        pos += got as u64;
        if (got as u64) < n {
            break;
        }
    }
    let id = drv.submit_flush().map_err(drv_err)?;
    wait_for(drv, id, &mut held, &mut free)?;
    wait_all(drv, &mut held, &mut free)?;
    Ok(pos - offset)
}

/// Reaps one completion; a failed request is an error.
fn wait_one(
    drv: &mut UringDriver,
    held: &mut HashMap<ReqId, BufId>,
    free: &mut Vec<BufId>,
) -> CliResult<Option<ReqId>> {
    match drv.next_completion().map_err(drv_err)? {
        Some((id, r)) => {
            if let Some(b) = held.remove(&id) {
                free.push(b);
            }
            r.map_err(|e| CliError(e.to_string()))?;
            Ok(Some(id))
        }
        None => Ok(None),
    }
}

fn wait_for(
    drv: &mut UringDriver,
    want: ReqId,
    held: &mut HashMap<ReqId, BufId>,
    free: &mut Vec<BufId>,
) -> CliResult {
    while let Some(id) = wait_one(drv, held, free)? {
        if id == want {
            return Ok(());
        }
    }
    Ok(())
}

fn wait_all(
    drv: &mut UringDriver,
    held: &mut HashMap<ReqId, BufId>,
    free: &mut Vec<BufId>,
) -> CliResult {
    while wait_one(drv, held, free)?.is_some() {}
    Ok(())
}

/// The blocking fallback: one request at a time through `Array`.
fn write_blocking(
    mut array: Array<FileDevice>,
    input: &mut impl Read,
    offset: u64,
    size: u64,
    s: &StreamArgs,
) -> CliResult<u64> {
    let mut buf = vec![0u8; s.request_size as usize];
    let mut pos = offset;
    loop {
        let n = read_full(input, &mut buf)?;
        if n == 0 {
            break;
        }
        if pos.checked_add(n as u64).is_none_or(|end| end > size) {
            // Stop cleanly (what was written stays written) before reporting the overrun.
            array.flush()?;
            array.stop()?;
            return Err(overrun(size, pos));
        }
        array.write(pos, &buf[..n])?;
        pos += n as u64;
    }
    array.flush()?;
    array.stop()?;
    Ok(pos - offset)
}

/// Fills `buf` from `r` unless the input ends first; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> CliResult<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(n)
}
