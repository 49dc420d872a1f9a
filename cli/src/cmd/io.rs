//! `cat` and `write`: array bytes to standard output, standard input into the array.

use super::AssembleArgs;
use crate::common::{assemble, CliError, CliResult};
use std::io::{Read, Write};

const CHUNK: usize = 1 << 20;

pub fn cat(a: &AssembleArgs, offset: u64, length: Option<u64>) -> CliResult {
    let opts = a.options(true);
    let (mut array, _) = assemble(&a.members, &opts)?;
    let size = array.size();
    if offset > size {
        return Err(CliError(format!(
            "offset {offset} is beyond the array's {size} bytes"
        )));
    }
    let len = length.unwrap_or(size - offset);
    if len > size - offset {
        return Err(CliError(format!(
            "{len} bytes at offset {offset} run past the array's {size} bytes"
        )));
    }
    let mut out = std::io::stdout().lock();
    let mut buf = vec![0u8; CHUNK];
    let mut done = 0u64;
    while done < len {
        let n = (len - done).min(CHUNK as u64) as usize;
        array.read(offset + done, &mut buf[..n])?;
        match out.write_all(&buf[..n]) {
            Ok(()) => {}
            // A closed pipe (`| head`) ends the copy quietly, as cat does.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        done += n as u64;
    }
    match out.flush() {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

pub fn write(a: &AssembleArgs, offset: u64, json: bool) -> CliResult {
    let opts = a.options(false);
    let (mut array, _) = assemble(&a.members, &opts)?;
    let size = array.size();
    let mut input = std::io::stdin().lock();
    let mut buf = vec![0u8; CHUNK];
    let mut pos = offset;
    loop {
        let n = read_full(&mut input, &mut buf)?;
        if n == 0 {
            break;
        }
        if pos.checked_add(n as u64).is_none_or(|end| end > size) {
            // Stop cleanly (what was written stays written) before reporting the overrun.
            array.flush()?;
            array.stop()?;
            return Err(CliError(format!(
                "input runs past the end of the array ({size} bytes) at offset {pos}"
            )));
        }
        array.write(pos, &buf[..n])?;
        pos += n as u64;
    }
    array.flush()?;
    array.stop()?;
    let written = pos - offset;
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
