//! `mdraid write` / `mdraid cat` streaming through the io_uring driver: many requests in
//! flight, odd offsets and lengths, both I/O modes, a member failing under `cat`, clean
//! superblocks after every command, one-line errors.

use mdraid::testutil::TempDir;
use std::io::Write;
use std::process::{Command, Output, Stdio};

fn run(args: &[&str], input: Option<&[u8]>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mdraid"))
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(i) = input {
        let mut stdin = c.stdin.take().unwrap();
        let _ = stdin.write_all(i);
    }
    c.wait_with_output().unwrap()
}

fn ok(args: &[&str], input: Option<&[u8]>) -> Vec<u8> {
    let o = run(args, input);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    o.stdout
}

fn data(seed: u64, n: usize) -> Vec<u8> {
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

fn clean(img: &str) {
    let ex = String::from_utf8(ok(&["examine", img], None)).unwrap();
    assert!(ex.contains("          State : clean"), "{img}: {ex}");
}

#[test]
fn write_and_cat_stream_with_many_in_flight() {
    let tmp = TempDir::new("cli-stream");
    let img = |n: &str| {
        let p = tmp.path().join(n);
        std::fs::File::create(&p)
            .unwrap()
            .set_len(16 << 20)
            .unwrap();
        p.to_str().unwrap().to_string()
    };
    let (a, b) = (img("a.img"), img("b.img"));
    ok(
        &[
            "create",
            "--level=1",
            "--raid-devices=2",
            "--bitmap=internal",
            "--bitmap-chunk=64K",
            "--assume-clean",
            // a is write-mostly: reads go to b first.
            &b,
            "--write-mostly",
            &a,
        ],
        None,
    );
    let input = data(5, (3 << 20) + 123);
    for (mode, rs, qd) in [("--direct", "64K", "8"), ("--buffered", "4K", "32")] {
        let out = ok(
            &[
                "write",
                "--offset",
                "1000",
                mode,
                "--request-size",
                rs,
                "--queue-depth",
                qd,
                "--json",
                &a,
                &b,
            ],
            Some(&input),
        );
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.contains(&format!("\"bytes_written\":{}", input.len())),
            "{out}"
        );
        clean(&a);
        clean(&b);
        for cat_mode in ["--direct", "--buffered"] {
            let len = input.len().to_string();
            let back = ok(
                &[
                    "cat",
                    "--offset",
                    "1000",
                    "--length",
                    &len,
                    cat_mode,
                    "--request-size",
                    rs,
                    "--queue-depth",
                    qd,
                    &a,
                    &b,
                ],
                None,
            );
            assert!(
                back == input,
                "{mode} {cat_mode} {rs}: cat gives back what was written"
            );
        }
    }
    // Bytes just before the write are untouched (the read-modify-write kept them).
    let head = ok(&["cat", "--length", "1000", &a, &b], None);
    assert!(head.iter().all(|&x| x == 0));
    // The mirrors are identical: each alone gives the same bytes.
    let len = (input.len() + 1000).to_string();
    let only_a = ok(&["cat", "--run", "--length", &len, &a], None);
    let only_b = ok(&["cat", "--run", "--length", &len, &b], None);
    assert!(only_a == only_b && only_a[1000..] == input[..]);

    // One-line errors, no panics, the array left clean.
    let o = run(&["write", "--offset", "16M", &a, &b], Some(&[1u8; 4096]));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("past the end"), "{err}");
    clean(&a);
    let o = run(&["cat", "--queue-depth", "0", &a, &b], None);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("queue depth"), "{err}");
    let o = run(&["cat", "--request-size", "5K", &a, &b], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("multiple of 4K"));

    // Member b loses the tail of its data area while cat streams (after assembly): reads there
    // fail on b (short reads, EIO), cat serves them from a, the data is right.
    let mut child = Command::new(env!("CARGO_BIN_EXE_mdraid"))
        .args([
            "cat",
            "--offset",
            "1000",
            "--length",
            &input.len().to_string(),
        ])
        .args(["--request-size", "4K", "--queue-depth", "2", &a, &b])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut back = vec![0u8; input.len()];
    use std::io::Read;
    out.read_exact(&mut back[..1 << 20]).unwrap();
    // cat is at most a pipe buffer and two requests ahead: cut b from 2 MiB into its data on.
    let data_offset = 2048 * 512; // 1.2 with a 16 MiB member: 1 MiB data offset
    std::fs::OpenOptions::new()
        .write(true)
        .open(&b)
        .unwrap()
        .set_len(data_offset + (2 << 20))
        .unwrap();
    out.read_exact(&mut back[1 << 20..]).unwrap();
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && !err.contains("panicked"), "{err}");
    assert!(back == input, "served from the good mirror: {err}");
    eprintln!("cat with b cut short said: {err}");
}
