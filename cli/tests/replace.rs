//! Hot replace through the CLI and the io_uring driver, read by the real mdadm: `mdadm
//! --examine` and `--examine-bitmap` of every member print exactly what `mdraid examine`
//! prints mid-copy (the replace killed) and after it, for 1.2, 1.0 and 0.90; a replace under a
//! concurrent workload with the replaced member or another one failing mid-copy loses nothing
//! and leaves identical mirrors.
//!
//! Needs Debian's mdadm binary: `MDADM_BIN` (scripts/test.sh unpacks it into .cache/mdadm).
//! Without it the test says so and passes, unless `MDRAID_REQUIRE_MDADM=1` (as in CI).

use mdraid::testutil::TempDir;
use std::path::Path;
use std::process::{Command, Stdio};

mod support;
use support::*;

fn img(tmp: &TempDir, n: &str, bytes: u64) -> String {
    let p = tmp.path().join(format!("{n}.img"));
    std::fs::File::create(&p).unwrap().set_len(bytes).unwrap();
    p.to_str().unwrap().to_string()
}

fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The first `len` bytes of the member's data area.
fn data_of(img: &str, len: usize) -> Vec<u8> {
    use mdraid::device::{FileDevice, Lock, OpenOptions};
    let mut d = FileDevice::open_with(
        img,
        OpenOptions {
            read_only: true,
            lock: Lock::Unlocked,
            ..Default::default()
        },
    )
    .unwrap();
    let found = mdraid::format::probe::probe(&mut d, None).unwrap();
    let off = (found.sb.data_offset() * 512) as usize;
    std::fs::read(img).unwrap()[off..off + len].to_vec()
}

fn examine_text(img: &str) -> String {
    String::from_utf8_lossy(&mdraid(&["examine", "--homehost", "mdlab", img]).stdout).into_owned()
}

fn field(text: &str, key: &str) -> Option<String> {
    text.lines()
        .find(|l| l.trim_start().starts_with(key))
        .and_then(|l| l.split_once(" : "))
        .map(|(_, v)| v.trim().to_string())
}

fn compare_all(bin: &Path, imgs: &[&str], what: &str) {
    for img in imgs {
        compare(bin, img, what);
        compare_bitmap(bin, img, what);
    }
}

/// `mdraid replace` over image files: killed mid-copy (1.x: the replacement's superblock says
/// "Replacement device 0" with a recovery offset, Array State `RA`; 0.90: a spare, as md
/// writes it), refused removal of the active replacement, then run again to the end (1.x
/// resumes, 0.90 starts over): mdadm 4.2 prints exactly what mdraid prints at both points,
/// the replacement holds every byte written and check finds no mismatch.
#[test]
fn mdadm_reads_a_replace_mid_copy_and_after() {
    let Some(bin) = mdadm_bin() else { return };
    for md in ["1.2", "1.0", "0.90"] {
        let what = format!("{md} replace");
        let tmp = TempDir::new("replace-cli");
        let (a, b, c) = (
            img(&tmp, "a", 20 << 20),
            img(&tmp, "b", 20 << 20),
            img(&tmp, "c", 20 << 20),
        );
        let meta = format!("--metadata={md}");
        mdraid_ok(
            &[
                "create",
                "--level=1",
                "--raid-devices=2",
                &meta,
                "--homehost=mdlab",
                "--bitmap=internal",
                "--assume-clean",
                &a,
                &b,
            ],
            &what,
        );
        let model = random_bytes(8 << 20, 5);
        let mut w = Command::new(env!("CARGO_BIN_EXE_mdraid"))
            .args(["write", &a, &b])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        {
            use std::io::Write;
            w.stdin.take().unwrap().write_all(&model).unwrap();
        }
        assert!(w.wait().unwrap().success(), "{what}: write");

        // Slow enough (1 MB/s over 19 MiB) to be caught mid-copy.
        let mut child = Command::new(env!("CARGO_BIN_EXE_mdraid"))
            .args([
                "replace",
                &a,
                &b,
                "--device",
                &a,
                "--with",
                &c,
                "--speed-min=100",
                "--speed-max=1000",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let t0 = std::time::Instant::now();
        loop {
            assert!(
                t0.elapsed().as_secs() < 120,
                "{what}: the replace never showed"
            );
            assert!(
                child.try_wait().unwrap().is_none(),
                "{what}: the replace ended before it could be observed"
            );
            let text = examine_text(&c);
            let seen = if md == "0.90" {
                // 0.90 has no replacement on disk: the spare's superblock is all there is.
                field(&text, "this").is_some() || text.contains("spare")
            } else {
                field(&text, "Recovery Offset")
                    .and_then(|v| v.split(' ').next().and_then(|n| n.parse::<u64>().ok()))
                    .is_some_and(|n| n > 0)
            };
            if seen {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        child.kill().unwrap();
        let _ = child.wait();
        let text = examine_text(&c);
        if md == "0.90" {
            assert!(text.contains("spare"), "{what}: mid-copy c: {text}");
        } else {
            assert_eq!(
                field(&text, "Device Role").as_deref(),
                Some("Replacement device 0"),
                "{what}: {text}"
            );
            assert!(
                field(&text, "Array State").is_some_and(|s| s.starts_with("RA ")),
                "{what}: {text}"
            );
            assert!(
                field(&text, "Feature Map").is_some_and(|f| {
                    u32::from_str_radix(f.trim_start_matches("0x"), 16).unwrap() & 0x12 == 0x12
                }),
                "{what}: replacement and recovery-offset bits: {text}"
            );
        }
        compare_all(&bin, &[&a, &b, &c], &format!("{what}: mid-copy"));

        if md != "0.90" {
            // The replacement cannot be removed while it is active.
            let o = mdraid(&["remove", "--run", &a, &b, "--device", &c]);
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(
                !o.status.success(),
                "{what}: removed the active replacement"
            );
            assert!(
                err.contains("active replacement") && err.contains("cannot be removed"),
                "{what}: {err}"
            );
        }

        let out = mdraid_ok(
            &["replace", "--run", "--json", &a, &b, &c, "--device", &a],
            &what,
        );
        assert!(
            out.contains(&format!("\"replacement\":\"{c}\"")),
            "{what}: {out}"
        );
        let (tb, tc) = (examine_text(&b), examine_text(&c));
        if md == "0.90" {
            // The own record ("this"): RaidDevice and State columns.
            let this = |t: &str| {
                let l = t.lines().find(|l| l.starts_with("this")).unwrap_or("");
                let w: Vec<&str> = l.split_whitespace().collect();
                (
                    w.get(4).copied().unwrap_or("").to_string(),
                    w[5..].join(" "),
                )
            };
            assert_eq!(
                this(&tc),
                ("0".into(), "active sync".into()),
                "{what}: {tc}"
            );
            assert_eq!(
                this(&tb),
                ("1".into(), "active sync".into()),
                "{what}: {tb}"
            );
        } else {
            assert_eq!(
                field(&tc, "Device Role").as_deref(),
                Some("Active device 0"),
                "{what}"
            );
            assert_eq!(
                field(&tb, "Device Role").as_deref(),
                Some("Active device 1"),
                "{what}"
            );
            for t in [&tb, &tc] {
                assert!(
                    field(t, "Array State").is_some_and(|s| s.starts_with("AA ")),
                    "{what}: {t}"
                );
                assert_eq!(
                    field(t, "Feature Map").as_deref(),
                    Some("0x1"),
                    "{what}: {t}"
                );
            }
        }
        compare_all(&bin, &[&a, &b, &c], &format!("{what}: after"));
        assert!(
            data_of(&c, model.len()) == model,
            "{what}: c holds every write"
        );
        assert!(
            data_of(&b, model.len()) == model,
            "{what}: b holds every write"
        );
        let check = mdraid_ok(&["check", "--json", &b, &c], &what);
        assert!(check.contains("\"mismatch_cnt\":0"), "{what}: {check}");
        // The replaced member is out: the survivors list it faulty and assemble without it.
        let o = mdraid(&["detail", &a, &b, &c]);
        let d = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "{what}: detail: {d}");
    }
}

/// A replace run through the array machine on the io_uring driver with 32 random 4 KiB
/// writes and reads in flight (reads checked against a model), the replaced member
/// (`fail_original`) or another in-sync member failing by command mid-copy: every read returns
/// the model, and afterwards every in-sync member holds exactly the model. `None` when
/// io_uring is unavailable. Returns the in-sync members' images.
fn uring_replace(imgs: &[String], model: &mut [u8], fail_original: bool, seed: u64) -> Option<()> {
    use mdraid::array::machine::Notice;
    use mdraid::array::{Array, AssembleOptions, MemberState};
    use mdraid::device::FileDevice;
    use mdraid::driver::uring::{BufId, UringDriver};
    let devs = imgs
        .iter()
        .map(|p| (p.clone(), FileDevice::open(p).unwrap()))
        .collect();
    let (mut a, _) = Array::assemble(devs, &AssembleOptions::default()).unwrap();
    // Slow enough for the workload to run inside the copy.
    a.set_speed_limits(1000, 8000).unwrap();
    let (m, devs) = a.into_machine(mdraid::driver::now()).unwrap();
    let mut drv = uring_or_skip(m, devs, "the concurrent replace")?;
    let name = |drv: &UringDriver, i: usize| drv.machine().members()[i].name.clone();
    let spare = drv
        .machine()
        .members()
        .iter()
        .position(|m| m.state == MemberState::Spare)
        .expect("a spare");
    let (orig, other) = (0, 1);
    let blocks = (model.len() / 4096) as u64;
    let mut x = seed | 1;
    let mut rng = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut free: Vec<usize> = (0..32).collect();
    let mut pending = std::collections::HashMap::new();
    let reap = |drv: &mut UringDriver,
                pending: &mut std::collections::HashMap<_, (usize, Option<Vec<u8>>)>,
                free: &mut Vec<usize>| {
        let (id, r) = drv.next_completion().unwrap().unwrap();
        r.unwrap();
        let (b, want) = pending.remove(&id).unwrap();
        if let Some(want) = want {
            assert!(drv.buffer(BufId(b)).unwrap() == &want[..], "read back");
        }
        free.push(b);
    };
    let mut struck = false;
    let mut i = 0u64;
    // The workload runs until the copy is over (at least 3000 requests).
    while i < 3000 || drv.machine().engine().sync_status().is_some() {
        assert!(i < 2_000_000, "the copy never ended");
        if free.is_empty() {
            reap(&mut drv, &mut pending, &mut free);
        }
        if i == 200 {
            let r = drv.replace_member(orig, Some(spare)).unwrap();
            assert_eq!(r, spare);
            assert!(drv.machine().is_replacement(spare));
        }
        let copied = drv
            .machine()
            .engine()
            .sync_status()
            .map_or(0, |st| st.done_sectors);
        if !struck && i > 200 && copied > 0 {
            // Mid-copy: part copied, part not.
            let st = drv.machine().engine().sync_status().unwrap();
            assert!(st.done_sectors < st.total_sectors);
            drv.fail_member(if fail_original { orig } else { other })
                .unwrap();
            struck = true;
        }
        let b = free.pop().unwrap();
        let blk = rng() % blocks;
        let range = (blk * 4096) as usize..((blk + 1) * 4096) as usize;
        if rng() % 4 == 0 {
            let id = drv.submit_read(blk * 8, 8, BufId(b)).unwrap();
            pending.insert(id, (b, Some(model[range].to_vec())));
        } else {
            let d: Vec<u8> = (0..4096).map(|k| (rng() >> (k % 7)) as u8).collect();
            drv.buffer_mut(BufId(b)).unwrap().copy_from_slice(&d);
            model[range].copy_from_slice(&d);
            let id = drv.submit_write(blk * 8, 8, BufId(b), i % 64 == 0).unwrap();
            pending.insert(id, (b, None));
        }
        i += 1;
        if i % 64 == 0 {
            drv.tick().unwrap();
        }
    }
    while !pending.is_empty() {
        reap(&mut drv, &mut pending, &mut free);
    }
    drv.run_until_idle().unwrap();
    assert!(struck, "the failure struck mid-copy");
    let mut failed = Vec::new();
    while let Some(n) = drv.poll_event() {
        if let Notice::MemberFailed { member } = n {
            failed.push(member);
        }
    }
    failed.sort_unstable();
    failed.dedup();
    let want: Vec<usize> = if fail_original {
        vec![orig]
    } else {
        vec![orig, other]
    };
    assert_eq!(failed, want, "failed members");
    let members = drv.machine().members();
    assert_eq!(
        members[spare].state,
        MemberState::InSync(0),
        "{}",
        name(&drv, spare)
    );
    assert_eq!(members[orig].state, MemberState::Faulty);
    let (m, devs) = drv.stop().unwrap();
    assert!(!m.is_dirty(), "stopped clean");
    drop(devs);
    Some(())
}

/// The concurrent replace with a failure mid-copy (the replaced member, then another one),
/// for 1.2 and 0.90 with a bitmap: mdadm 4.2 prints every member as mdraid does, the
/// surviving mirrors are identical and hold every write, and check finds no mismatch.
#[test]
fn replace_under_concurrent_io_with_a_failure_mid_copy() {
    let Some(bin) = mdadm_bin() else { return };
    for md in ["1.2", "0.90"] {
        for fail_original in [true, false] {
            let what = format!("{md} concurrent replace, original fails: {fail_original}");
            let tmp = TempDir::new("replace-uring");
            let imgs: Vec<String> = ["a", "b", "c", "s"]
                .iter()
                .map(|n| img(&tmp, n, 12 << 20))
                .collect();
            let meta = format!("--metadata={md}");
            let mut args = vec![
                "create",
                "--level=1",
                "--raid-devices=3",
                "--spare-devices=1",
                &meta,
                "--homehost=mdlab",
                "--bitmap=internal",
                "--bitmap-chunk=1M",
                "--assume-clean",
            ];
            args.extend(imgs.iter().map(|s| s.as_str()));
            mdraid_ok(&args, &what);
            let mut model = vec![0u8; 4 << 20];
            if uring_replace(&imgs, &mut model, fail_original, 17).is_none() {
                return;
            }
            let refs: Vec<&str> = imgs.iter().map(|s| s.as_str()).collect();
            compare_all(&bin, &refs, &what);
            // a was replaced by s; b failed too unless a failed first.
            let survivors: Vec<&str> = if fail_original {
                vec![&imgs[1], &imgs[2], &imgs[3]]
            } else {
                vec![&imgs[2], &imgs[3]]
            };
            for s in &survivors {
                assert!(
                    data_of(s, model.len()) == model,
                    "{what}: {s} holds every write"
                );
            }
            let mut check = vec!["check", "--json"];
            check.extend(&survivors);
            let out = mdraid_ok(&check, &what);
            assert!(out.contains("\"mismatch_cnt\":0"), "{what}: {out}");
            let t = examine_text(&imgs[3]);
            if md != "0.90" {
                assert_eq!(
                    field(&t, "Device Role").as_deref(),
                    Some("Active device 0"),
                    "{what}"
                );
            }
        }
    }
}

/// SIGINT or SIGTERM stops a replace's copy at its checkpoint (md's `frozen`): the command
/// fails saying so, the array is stopped with the replacement's recovery offset recorded,
/// and the next `replace` resumes the copy from there (copying less than the whole member)
/// to identical mirrors. Needs no mdadm.
#[test]
fn a_signal_stops_a_replace_at_its_checkpoint_and_the_next_replace_resumes_it() {
    for (sig, name) in [("-INT", "SIGINT"), ("-TERM", "SIGTERM")] {
        let tmp = TempDir::new("cli-replace-signal");
        let (a, b, c) = (
            img(&tmp, "a", 64 << 20),
            img(&tmp, "b", 64 << 20),
            img(&tmp, "c", 64 << 20),
        );
        mdraid_ok(
            &[
                "create",
                "--level=1",
                "--raid-devices=2",
                "--metadata=1.2",
                "--bitmap=none",
                "--assume-clean",
                &a,
                &b,
            ],
            name,
        );
        // Paced at 2 MB/s: the 64 MiB copy would take half a minute.
        let o = mdraid_signalled(
            &[
                "replace",
                &a,
                &b,
                "--device",
                &a,
                "--with",
                &c,
                "--speed-min=1000",
                "--speed-max=2000",
            ],
            sig,
            1500,
        );
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(1), "{name}: {err}");
        assert!(err.contains("copy was interrupted"), "{name}: {err}");
        // Stopped cleanly with the copy recorded: c is a's replacement part way.
        let text = String::from_utf8_lossy(&mdraid(&["examine", &c]).stdout).into_owned();
        assert!(
            text.contains("Device Role : Replacement device 0"),
            "{name}: {text}"
        );
        let off = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("Recovery Offset : "))
            .and_then(|v| v.split(' ').next()?.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{name}: no recovery offset: {text}"));
        assert!(off > 0, "{name}: {text}");
        let ex_a = String::from_utf8_lossy(&mdraid(&["examine", &a]).stdout).into_owned();
        assert!(ex_a.contains("          State : clean"), "{name}: {ex_a}");
        // The next replace resumes at the offset.
        let out = mdraid_ok(&["replace", "--json", &a, &b, &c, "--device", &a], name);
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        let copied = v["sectors_copied"].as_u64().unwrap();
        assert!(
            copied > 0 && copied + off <= (64 << 20) / 512,
            "{name}: copied {copied} after offset {off}: {v}"
        );
        let out = mdraid_ok(&["check", "--json", &b, &c], name);
        assert!(out.contains("\"mismatch_cnt\":0"), "{name}: {out}");
    }
}
