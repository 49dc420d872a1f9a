#!/usr/bin/env python3
"""Sampling profile of a QEMU guest (run.sh --profile): where the vCPUs are during each phase.

Polls QEMU's monitor (`info registers -a`) and reads every vCPU's RIP, CPL and HLT; the phase
is the last `MDR-PROF-START <name>` / `MDR-PROF-END` line on the guest's console. After the
guest ends, the samples are named from the guest's /proc/kallsyms (the guest writes it to a
raw disk image, ended by MDR-KALLSYMS-END; boot with nokaslr so the addresses hold).
Under TCG a vCPU's RIP is kept at translation-block boundaries: a sample names the function
the vCPU is in, not the exact instruction.

    profile.py MONITOR_SOCKET CONSOLE_LOG KALLSYMS_IMAGE [TOP]
"""
import bisect
import collections
import re
import socket
import sys
import time

sock_path, console, image = sys.argv[1:4]
top = int(sys.argv[4]) if len(sys.argv) > 4 else 45


def connect():
    for _ in range(600):
        try:
            s = socket.socket(socket.AF_UNIX)
            s.connect(sock_path)
            return s
        except OSError:
            time.sleep(0.2)
    sys.exit("profile: no monitor socket")


def until_prompt(s, buf=b""):
    while b"(qemu) " not in buf:
        d = s.recv(65536)
        if not d:
            return None
        buf += d
    return buf


def phase_of(log):
    try:
        with open(log, "rb") as f:
            text = f.read().decode("latin-1")
    except OSError:
        return None, False
    cur = None
    for m in re.finditer(r"MDR-PROF-(START|END) (\S+)", text):
        cur = m.group(2) if m.group(1) == "START" else None
    return cur, "MDR-DONE" in text


s = connect()
until_prompt(s)
samples = collections.defaultdict(collections.Counter)  # phase -> (kind, rip) -> n
rip_re = re.compile(r"RIP=([0-9a-f]+) .*CPL=(\d).*HLT=(\d)")
last_check, phase, done = 0.0, None, False
while not done:
    now = time.monotonic()
    if now - last_check > 0.2:
        phase, done = phase_of(console)
        last_check = now
    if phase is None:
        time.sleep(0.05)
        continue
    try:
        s.sendall(b"info registers -a\n")
        out = until_prompt(s)
    except OSError:
        break
    if out is None:
        break
    for m in rip_re.finditer(out.decode("latin-1")):
        rip, cpl, hlt = int(m.group(1), 16), int(m.group(2)), int(m.group(3))
        kind = "idle" if hlt else "user" if cpl == 3 else "kernel"
        samples[phase][(kind, rip if kind == "kernel" else 0)] += 1
    time.sleep(0.002)

syms = []
with open(image, "rb") as f:
    for line in f.read(64 << 20).decode("latin-1").splitlines():
        if line.startswith("MDR-KALLSYMS-END"):
            break
        parts = line.split()
        if len(parts) >= 3 and parts[1] in "tTwW":
            syms.append((int(parts[0], 16), parts[2] + (" " + parts[3] if len(parts) > 3 else "")))
syms.sort()
addrs = [a for a, _ in syms]


def name(rip):
    i = bisect.bisect_right(addrs, rip) - 1
    return syms[i][1] if i >= 0 else hex(rip)


for ph, counter in samples.items():
    total = sum(counter.values())
    by = collections.Counter()
    for (kind, rip), n in counter.items():
        by[name(rip) if kind == "kernel" else "<" + kind + ">"] += n
    busy = total - by["<idle>"]
    print(f"== phase {ph}: {total} vCPU samples, {busy} busy ({by['<user>']} user)")
    print(f"{by.pop('<idle>', 0):7d} idle samples (not counted below)")
    for fn, n in by.most_common(top):
        print(f"{n:7d} {100.0 * n / max(busy, 1):6.2f}%  {fn}  (share of busy samples)")
