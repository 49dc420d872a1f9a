#!/usr/bin/env bash
# `mdraid grow` against the kernel's md and mdadm 4.2 doing the same grow: arrays created by
# mdraid on raw images are copied; the kernel's md (Debian 6.1 under QEMU, mdadm --grow in the
# guest) grows one copy, `mdraid grow` the other on the host; then `mdraid examine` and
# `examine --examine-bitmap` of both must agree on everything but times, events and checksums
# (and the device numbers 0.90 records). Cases: bitmap added on 1.2, 1.1, 1.0, 0.90; bitmap
# removed; size grown to max and to a given size (a full bitmap's chunk doubling), shrunk;
# raid-devices grown onto a spare.
#
#   scripts/md-grow-check.sh        (needs kmod-shim/qemu/fetch.sh's cache; ~1 min under TCG)
#
# Environment: MDR_QEMU_CACHE (default <repo>/.cache/qemu).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
source "$HERE/lib.sh"
ROOT=$(repo_root)
CACHE=${MDR_QEMU_CACHE:-$ROOT/.cache/qemu}
"$ROOT/kmod-shim/qemu/fetch.sh"
R=$CACHE/root
export LD_LIBRARY_PATH=$R/usr/lib/x86_64-linux-gnu:$R/lib/x86_64-linux-gnu
export QEMU_MODULE_DIR=$R/usr/lib/x86_64-linux-gnu/qemu
QEMU=("$R/usr/bin/qemu-system-x86_64" -L "$R/usr/share/qemu" -L "$R/usr/share/seabios"
	-L "$R/usr/lib/ipxe/qemu" -nographic -no-reboot -m 512 -smp 1 -cpu max -accel tcg)
K=$CACHE/k-6.1
KIMG=$K/vmlinux.boot
[[ -f $KIMG ]] || die "no $KIMG (run kmod-shim/qemu/run.sh once)"
cargo build -q -p mdraid-cli
MDRAID=$ROOT/target/debug/mdraid
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

# case NAME METADATA DEVICES CREATE-OPTIONS GROW-OPTIONS
CASES=(
	"bm12 1.2 2 --bitmap=none --bitmap=internal"
	"bm11 1.1 2 --bitmap=none --bitmap=internal"
	"bm10 1.0 2 --bitmap=none --bitmap=internal"
	"bm090 0.90 2 --bitmap=none --bitmap=internal"
	"nobm12 1.2 2 --bitmap=internal --bitmap=none"
	"nobm10 1.0 2 --bitmap=internal --bitmap=none"
	"szmax12 1.2 2 --bitmap=none,--size=20000 --size=max"
	"szmax10 1.0 2 --bitmap=internal,--size=20000 --size=max"
	"sz090 0.90 2 --bitmap=none,--size=20000 --size=30000"
	"sz12 1.2 2 --bitmap=internal,--size=20000 --size=30000"
	"sz11 1.1 2 --bitmap=internal,--bitmap-chunk=4K,--size=1024 --size=16M"
	"shrink12 1.2 2 --bitmap=internal --size=10000"
	"shrink10 1.0 2 --bitmap=none --size=10000"
	"rd12 1.2 3 --bitmap=internal,--spare-devices=1 --raid-devices=3"
	"rd090 0.90 3 --bitmap=none,--spare-devices=1 --raid-devices=3"
)

# The guest: busybox, mdadm and its libraries, md's modules.
d=$W/initrd
mkdir -p "$d"/{bin,lib,lib64,proc,sys,dev,tmp,modules}
cp "$R/bin/busybox" "$d/bin/"
for t in sh mount cat echo sleep grep poweroff insmod ls; do ln -sf busybox "$d/bin/$t"; done
cp "$R/sbin/mdadm" "$d/bin/"
while read -r lib; do cp -L "$lib" "$d/lib/"; done < <(ldd "$R/sbin/mdadm" |
	awk '$2 == "=>" && $3 ~ /^\// {print $3}')
cp -L /lib64/ld-linux-x86-64.so.2 "$d/lib64/"
mods=$K/lib/modules
for m in virtio virtio_ring virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk \
	md-mod raid1; do
	f=$(find "$mods" -name "$m.ko*" -o -name "${m//-/_}.ko*" | head -1)
	if [[ -z $f ]]; then
		grep -qE "/($m|${m//-/_})\.ko" "$mods"/*/modules.builtin && continue
		die "no module $m"
	fi
	if [[ $f == *.xz ]]; then xz -dc "$f" >"$d/modules/$m.ko"; else cp "$f" "$d/modules/$m.ko"; fi
	echo "$m.ko" >>"$d/modules/order"
done
boot_batch() { # the guest runs mdadm --grow for the cases collected so far
	((n > 0)) || return 0
	cat >"$d/init" <<-EOF
	#!/bin/busybox sh
	export PATH=/bin
	mount -t proc proc /proc
	mount -t sysfs sys /sys
	mount -t devtmpfs dev /dev
	for m in \$(cat /modules/order); do insmod /modules/\$m; done
	run() {
		name=\$1; grow=\$2; shift 2
		mdadm --assemble /dev/md0 --run "\$@" >/tmp/out 2>&1 || { echo "MDG-FAIL \$name assemble: \$(cat /tmp/out)"; return; }
		mdadm --grow /dev/md0 \$grow >/tmp/out 2>&1 || { echo "MDG-FAIL \$name grow: \$(cat /tmp/out)"; }
		mdadm --wait /dev/md0 >/dev/null 2>&1
		mdadm --stop /dev/md0 >/tmp/out 2>&1 || echo "MDG-FAIL \$name stop: \$(cat /tmp/out)"
		echo "MDG-DONE \$name"
	}
	$guest_cmds
	echo MDG-ALL-DONE
	poweroff -f
	EOF
	chmod +x "$d/init"
	(cd "$d" && find . | "$R/bin/busybox" cpio -o -H newc 2>/dev/null) >"$W/initrd.cpio"

	say "booting 6.1 under TCG: mdadm --grow on the kernel's md"
	timeout 600 "${QEMU[@]}" -kernel "$KIMG" -initrd "$W/initrd.cpio" "${drives[@]}" \
		-append "console=ttyS0 panic=-1 quiet" </dev/null >"$W/console-$batch.log" 2>&1 || true
	grep -q '^MDG-ALL-DONE' "$W/console-$batch.log" || { tail -40 "$W/console-$batch.log"; die "the guest did not finish"; }
	if grep -a '^MDG-FAIL' "$W/console-$batch.log"; then die "mdadm in the guest failed"; fi
	drives=()
	guest_cmds=""
	n=0
	batch=$((batch + 1))
}

# The images: created by mdraid, a copy for each side (at most 24 disks per boot).
batch=0
drives=()
guest_cmds=""
letters=(a b c d e f g h i j k l m n o p q r s t u v w x y z)
n=0
for c in "${CASES[@]}"; do
	read -r name meta devs create grow <<<"$c"
	((n + devs <= 24)) || boot_batch
	imgs=()
	for ((i = 0; i < devs; i++)); do
		truncate -s 40M "$W/$name-$i.md"
		imgs+=("$W/$name-$i.md")
	done
	raid=2
	# shellcheck disable=SC2086
	"$MDRAID" create --level=1 --raid-devices=$raid --metadata="$meta" --assume-clean \
		--homehost=mdlab ${create//,/ } "${imgs[@]}" >/dev/null 2>&1 ||
		die "$name: mdraid create failed"
	gdevs=""
	for ((i = 0; i < devs; i++)); do
		cp --sparse=always "$W/$name-$i.md" "$W/$name-$i.ours"
		drives+=(-drive "file=$W/$name-$i.md,format=raw,if=virtio,cache=unsafe")
		gdevs+=" /dev/vd${letters[$n]}"
		n=$((n + 1))
	done
	guest_cmds+="run $name '$grow'$gdevs
"
done
boot_batch

# What both sides must agree on.
norm() {
	grep -vE '^/.*:$' | sed -E 's#/[^ ]*\.(md|ours)#DEV#g' | grep -vE '^ *(Update Time|Checksum|Events|Events Cleared|Filename) :' |
		grep -vE '^ *(this +)?[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+ ' || true
}
rc=0
for c in "${CASES[@]}"; do
	read -r name meta devs create grow <<<"$c"
	ours=()
	for ((i = 0; i < devs; i++)); do ours+=("$W/$name-$i.ours"); done
	# shellcheck disable=SC2086
	"$MDRAID" grow --run $grow "${ours[@]}" >/dev/null 2>"$W/err" ||
		{ cat "$W/err"; warn "$name: mdraid grow failed"; rc=1; continue; }
	same=1
	for ((i = 0; i < devs; i++)); do
		for x in "" --examine-bitmap; do
			# shellcheck disable=SC2086
			a=$("$MDRAID" examine $x --homehost=mdlab "$W/$name-$i.md" 2>&1 | norm || true)
			# shellcheck disable=SC2086
			b=$("$MDRAID" examine $x --homehost=mdlab "$W/$name-$i.ours" 2>&1 | norm || true)
			if [[ $a != "$b" ]]; then
				warn "$name member $i examine $x: the kernel's md and mdraid differ"
				diff <(echo "$a") <(echo "$b") || true
				rc=1
				same=0
			fi
		done
	done
	[[ $same == 0 ]] || say "$name ($meta, mdadm --grow $grow): md and mdraid agree"
done
exit $rc
