//! The user report: a rebuild killed part way (its superblock says role active with a
//! recovery offset short of the end) must never later be taken as complete. The interrupted
//! state is written by hand: a finished rebuild whose data above the offset is wiped and whose
//! superblock says recovery stopped there, exactly what md (and mdraid) leave after a kill.

use mdraid::format::sb1::{Superblock1, FEATURE_RECOVERY_OFFSET};
use mdraid::testutil::TempDir;
use serde_json::Value;
use std::io::{Read, Seek, SeekFrom, Write};
use std::process::{Command, Output, Stdio};

const MIB: u64 = 1 << 20;

fn mdraid(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mdraid"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = c.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or(&[])).unwrap();
    drop(input);
    c.wait_with_output().unwrap()
}

fn ok(o: Output) -> Output {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    o
}

fn json(o: Output) -> Value {
    let o = ok(o);
    serde_json::from_slice(&o.stdout).unwrap()
}

fn data(len: u64) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 4096) as u8 | 1).collect()
}

/// A 1.2 superblock at sector 8 of `img`: edits it and fixes its checksum.
fn edit_sb(img: &str, f: impl FnOnce(&mut Superblock1)) -> Superblock1 {
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(img)
        .unwrap();
    let mut raw = vec![0u8; 4096];
    file.seek(SeekFrom::Start(4096)).unwrap();
    file.read_exact(&mut raw).unwrap();
    let mut sb = Superblock1::parse(&raw).unwrap();
    f(&mut sb);
    sb.update_checksum();
    file.seek(SeekFrom::Start(4096)).unwrap();
    file.write_all(&sb.to_bytes()).unwrap();
    sb
}

/// a + c, where c's rebuild was killed at `r` sectors: returns (a, c, array bytes, r).
fn interrupted(tmp: &TempDir) -> (String, String, Vec<u8>, u64) {
    let p = |n: &str| tmp.path().join(n).to_str().unwrap().to_string();
    let (a, b, c) = (p("a.img"), p("b.img"), p("c.img"));
    for img in [&a, &b, &c] {
        std::fs::File::create(img)
            .unwrap()
            .set_len(16 * MIB)
            .unwrap();
    }
    ok(mdraid(
        &[
            "create",
            "--level=1",
            "--raid-devices=2",
            "--metadata=1.2",
            "--bitmap=internal",
            "--assume-clean",
            &a,
            &b,
        ],
        None,
    ));
    let v = json(mdraid(&["detail", "--json", &a, &b], None));
    let size = v["array_size_kib"].as_u64().unwrap() * 1024;
    let content = data(size);
    ok(mdraid(&["write", "--offset", "0", &a, &b], Some(&content)));
    ok(mdraid(&["fail", &a, &b, "--device", &b], None));
    ok(mdraid(&["remove", "--run", &a, "--device", &b], None));
    let v = json(mdraid(
        &["add", "--run", "--json", &a, "--device", &c],
        None,
    ));
    assert!(v["result"].as_str().unwrap().starts_with("rebuilt"), "{v}");
    // Cut: recovery reached r; nothing past it was written.
    let r = size / 512 / 3 + 5;
    let sb = edit_sb(&c, |s| {
        s.feature_map |= FEATURE_RECOVERY_OFFSET;
        s.recovery_offset = r;
    });
    let mut f = std::fs::OpenOptions::new().write(true).open(&c).unwrap();
    let from = (sb.data_offset + r) * 512;
    f.seek(SeekFrom::Start(from)).unwrap();
    f.write_all(&vec![0u8; (16 * MIB - from) as usize]).unwrap();
    let ex = String::from_utf8_lossy(&ok(mdraid(&["examine", &c], None)).stdout).into_owned();
    assert!(
        ex.contains(&format!("Recovery Offset : {r} sectors")),
        "{ex}"
    );
    (a, c, content, r)
}

fn finishes_from_the_offset(verb: &str) {
    let tmp = TempDir::new(&format!("cli-interrupted-{verb}"));
    let (a, c, content, r) = interrupted(&tmp);
    let sectors = content.len() as u64 / 512;
    let v = json(mdraid(&[verb, "--run", "--json", &a, "--device", &c], None));
    // Recovery goes on from the offset to the end: never "0 sectors copied".
    assert_eq!(
        v["result"].as_str().unwrap(),
        format!("re-added ({} sectors copied)", sectors - r),
        "{v}"
    );
    let v = json(mdraid(&["check", "--json", &a, &c], None));
    assert_eq!(v["mismatch_cnt"], 0, "{v}");
    let ex = String::from_utf8_lossy(&ok(mdraid(&["examine", &c], None)).stdout).into_owned();
    assert!(!ex.contains("Recovery Offset"), "{ex}");
    // c alone returns the data.
    let o = ok(mdraid(
        &[
            "cat",
            "--run",
            "--offset",
            "0",
            "--length",
            &content.len().to_string(),
            &c,
        ],
        None,
    ));
    assert!(o.stdout == content, "c alone reads back what was written");
}

#[test]
fn add_of_an_interrupted_rebuild_continues_it_from_the_recovery_offset() {
    finishes_from_the_offset("add");
}

#[test]
fn re_add_of_an_interrupted_rebuild_continues_it_from_the_recovery_offset() {
    finishes_from_the_offset("re-add");
}

#[test]
fn an_interrupted_rebuild_is_never_assembled_as_in_sync() {
    let tmp = TempDir::new("cli-interrupted-asm");
    let (a, c, _, _) = interrupted(&tmp);
    let d = json(mdraid(&["detail", "--json", &a, &c], None));
    let members = d["members"].as_array().unwrap();
    let cm = members.iter().find(|m| m["path"] == c.as_str()).unwrap();
    assert_eq!(cm["in_sync"], false, "{d}");
}
