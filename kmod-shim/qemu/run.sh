#!/usr/bin/env bash
# The kernel shim under QEMU, next to the kernel's md: builds mdraid_k.ko for each Debian
# kernel, boots each in QEMU with small raw virtio disks and a busybox initramfs, runs the
# guest scenarios (kmod-shim/qemu/guest.sh) and exits non-zero on any failure.
#
#   kmod-shim/qemu/run.sh                 every scenario on 6.1 and 6.12
#   kmod-shim/qemu/run.sh --kernel 6.12   one kernel
#   kmod-shim/qemu/run.sh --bench         also the fio head-to-head (shim vs md), one kernel
#   kmod-shim/qemu/run.sh --gdb           boot with QEMU's gdb stub and leave gdb interactive
#   kmod-shim/qemu/run.sh --gdb-test      the scripted gdb session (CI): breaks in the probe
#   kmod-shim/qemu/run.sh --profile       sampled vCPU profile of fio on md, then on the shim
#                                         (MDR_PROF_RW, MDR_PROF_BS, MDR_PROF_SECS; one kernel)
#
# Environment: MDR_QEMU_CACHE (default <repo>/.cache/qemu), MDR_ACCEL=kvm|tcg (default: KVM
# when a probe boot works, else TCG), MDR_SCENARIOS=probe,create,... (default all; `trace` and
# `tracew`, not in all, print ftrace's calls per 4 KiB random read, per 1 MiB write, for md and
# the shim as MDR-FN lines in
# $MDR_QEMU_CACHE/work/console-<kernel>.log).
# Everything comes from kmod-shim/qemu/fetch.sh (apt-get download + dpkg -x, no install).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
source "$HERE/../../scripts/lib.sh"
ROOT=$(repo_root)
CACHE=${MDR_QEMU_CACHE:-$ROOT/.cache/qemu}
KERNELS=(6.1 6.12)
BENCH=0
PROFILE=0
GDB=
while [[ $# -gt 0 ]]; do
	case $1 in
	--kernel) KERNELS=("$2"); shift ;;
	--bench) BENCH=1 ;;
	--gdb) GDB=interactive ;;
	--gdb-test) GDB=test ;;
	--profile) PROFILE=1 ;;
	*) die "unknown argument $1 (see the header of $0)" ;;
	esac
	shift
done

"$HERE/fetch.sh"
R=$CACHE/root
export LD_LIBRARY_PATH=$R/usr/lib/x86_64-linux-gnu:$R/lib/x86_64-linux-gnu
export QEMU_MODULE_DIR=$R/usr/lib/x86_64-linux-gnu/qemu
QEMU=("$R/usr/bin/qemu-system-x86_64" -L "$R/usr/share/qemu" -L "$R/usr/share/seabios"
	-L "$R/usr/lib/ipxe/qemu" -nographic -no-reboot -m 1024 -smp 2 -cpu max)

say "building the core for the kernel"
"$ROOT/scripts/kernel-build.sh" >/dev/null
CORE=$ROOT/target/kernel/mdraid-core.o

# build_module K: mdraid_k.ko against kernel K's headers, in $CACHE/build-K.
build_module() {
	local k=$1 b=$CACHE/build-$1
	mkdir -p "$b"
	cp "$ROOT"/kmod-shim/*.c "$ROOT"/kmod-shim/*.h "$ROOT"/kmod-shim/Kbuild "$b/"
	# BTF for modules needs pahole and the kernel's vmlinux: not wanted here.
	make -s -C "$CACHE/k-$k/build" M="$b" MDRAID_CORE_OBJ="$CORE" CC=gcc-12 \
		CONFIG_DEBUG_INFO_BTF_MODULES= -j2 modules 2>&1 | tee "$b/build.log" >&2
	[[ -f $b/mdraid_k.ko ]] || die "no mdraid_k.ko for $k"
	if grep -q 'objtool: ' "$b/build.log"; then
		warn "objtool warnings building for $k (see $b/build.log)"
	fi
}

# ko_depends FILE: the module's depends= list.
ko_depends() {
	local f=$1 tmp
	tmp=$(mktemp)
	objcopy -O binary --only-section=.modinfo "$f" "$tmp"
	tr '\0' '\n' <"$tmp" | sed -n 's/^depends=//p' | tr ',' '\n' | sed '/^$/d'
	rm -f "$tmp"
}

# initramfs K OUT: busybox, the tools with their libraries, the modules the scenarios need
# (in dependency order, decompressed), mdraid_k.ko, the guest script.
initramfs() {
	local k=$1 out=$2 d mods=$CACHE/k-$1/lib/modules
	d=$(mktemp -d)
	mkdir -p "$d"/{bin,sbin,lib,lib64,proc,sys,dev,mnt,tmp,modules,etc}
	cp "$R/bin/busybox" "$d/bin/"
	local t
	for t in sh ash mount umount mkdir cat echo sleep grep sed awk md5sum sha256sum dd head tail \
		ls mknod poweroff insmod rmmod cp rm sync seq wc tr cut dmesg find test xargs stat date \
		timeout uname printf expr truncate kill cmp; do ln -sf busybox "$d/bin/$t"; done
	# tools with their ldd closure
	local tools=("$R/sbin/mdadm" "$R/sbin/mke2fs" "$R/usr/bin/fio") lib
	cp "${tools[@]}" "$d/bin/"
	ln -sf mke2fs "$d/bin/mkfs.ext4"
	local libpath=$R/usr/lib/x86_64-linux-gnu:$R/lib/x86_64-linux-gnu:$R/usr/lib/x86_64-linux-gnu/ceph
	while read -r lib; do
		cp -L "$lib" "$d/lib/"
	done < <(for t in "${tools[@]}"; do LD_LIBRARY_PATH=$libpath ldd "$t"; done |
		awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u)
	if for t in "${tools[@]}"; do LD_LIBRARY_PATH=$libpath ldd "$t"; done | grep -q 'not found'; then
		die "unresolved libraries for the guest tools"
	fi
	cp -L /lib64/ld-linux-x86-64.so.2 "$d/lib64/"
	# kernel modules, dependencies first
	local -A seen=()
	local order=()
	add_mod() {
		local n=${1//-/_} f dep
		[[ -n ${seen[$n]:-} ]] && return 0
		seen[$n]=1
		f=$(find "$mods" -name "$n.ko" -o -name "$n.ko.xz" -o -name "${n//_/-}.ko" \
			-o -name "${n//_/-}.ko.xz" | head -1)
		if [[ -z $f ]]; then
			# built into the kernel?
			grep -qE "/(${n}|${n//_/-})\.ko$" "$mods"/*/modules.builtin 2>/dev/null && return 0
			die "kernel $k has no module $n"
		fi
		local plain=$d/modules/$(basename "${f%.xz}")
		if [[ $f == *.xz ]]; then xz -dc "$f" >"$plain"; else cp "$f" "$plain"; fi
		for dep in $(ko_depends "$plain"); do add_mod "$dep"; done
		order+=("$(basename "$plain")")
	}
	for t in virtio_pci virtio_blk md_mod raid1 ext4; do add_mod "$t"; done
	# ext4 asks for crc32c at mount time (a module on 6.1, built in on some kernels)
	for t in crc32c_generic crc32c_intel; do
		[[ -n $(find "$mods" -name "$t.ko*" -o -name "${t//_/-}.ko*" | head -1) ]] && add_mod "$t"
	done
	printf '%s\n' "${order[@]}" >"$d/modules/order"
	cp "$CACHE/build-$k/mdraid_k.ko" "$d/modules/"
	cp "$HERE/guest.sh" "$d/init"
	chmod +x "$d/init"
	(cd "$d" && find . | "$R/bin/busybox" cpio -o -H newc 2>/dev/null) >"$out"
	rm -rf "$d"
}

# vmlinux K: the kernel image to boot (uncompressed ELF through PVH when it is xz).
kernel_image() {
	local k=$1 z out=$CACHE/k-$1/vmlinux.boot off
	z=$(ls "$CACHE/k-$k"/boot/vmlinuz-*)
	if [[ ! -f $out ]]; then
		off=$(LC_ALL=C grep -abo $'\xfd7zXZ' "$z" | head -1 | cut -d: -f1 || true)
		if [[ -n $off ]]; then
			tail -c +$((off + 1)) "$z" | xz -dcq >"$out.tmp" 2>/dev/null || true # trailing data
		fi
		if [[ -s $out.tmp && $(head -c 4 "$out.tmp" | od -An -c | tr -d ' ') == 177ELF ]]; then
			mv "$out.tmp" "$out"
		else
			rm -f "$out.tmp"
			cp "$z" "$out"
		fi
	fi
	echo "$out"
}

WORK=$CACHE/work
rm -rf "$WORK"
mkdir -p "$WORK" # kept after the run: console logs, gdb log

# accel: KVM when a probe boot of the 6.1 kernel reaches /init, else TCG.
ACCEL=${MDR_ACCEL:-}
probe_kvm() {
	[[ -r /dev/kvm && -w /dev/kvm ]] || return 1
	local d
	d=$(mktemp -d)
	printf '#!/bin/busybox sh\necho MDR-KVM-OK\n/bin/busybox poweroff -f\n' >"$d/init"
	chmod +x "$d/init"
	mkdir -p "$d/bin" && cp "$R/bin/busybox" "$d/bin/"
	(cd "$d" && find . | "$R/bin/busybox" cpio -o -H newc 2>/dev/null) >"$WORK/kvm.cpio"
	rm -rf "$d"
	timeout 30 "${QEMU[@]}" -accel kvm -kernel "$(kernel_image "${KERNELS[0]}")" \
		-initrd "$WORK/kvm.cpio" -append "console=ttyS0 panic=-1" </dev/null 2>&1 |
		grep -q MDR-KVM-OK
}
if [[ -z $ACCEL ]]; then
	if probe_kvm; then ACCEL=kvm; else ACCEL=tcg; fi
fi
say "accelerator: $ACCEL"

# bench_ratios KERNEL: shim / md of each round's MDR-BENCH lines, and their median
bench_ratios() {
	local rows
	rows=$(grep -a '^MDR-BENCH ' "$WORK/console-$1.log" | tr -d '\r' | awk '
		{ for (i = 4; i <= NF; i++) { split($i, kv, "="); v[$2 " " $3 " " kv[1]] = kv[2] }
		  if (!($2 in seen)) { seen[$2] = 1; order[++n] = $2 } }
		END { for (j = 1; j <= n; j++) { r = order[j]
			printf "%s %.2f %.2f\n", r, v[r " shim randread4k_qd32_iops"] / v[r " md randread4k_qd32_iops"],
				v[r " shim seqwrite1m_kib_s"] / v[r " md seqwrite1m_kib_s"] } }')
	[[ -n $rows ]] || return 0
	awk -v k="$1" '{ printf "MDR-RATIO %s %s randread=%s seqwrite=%s\n", k, $1, $2, $3 }' <<<"$rows"
	local n mid
	n=$(wc -l <<<"$rows")
	mid=$(((n + 1) / 2))
	echo "MDR-RATIO $1 median randread=$(cut -d' ' -f2 <<<"$rows" | sort -n | sed -n ${mid}p)" \
		"seqwrite=$(cut -d' ' -f3 <<<"$rows" | sort -n | sed -n ${mid}p)"
}

disks() { # fresh sparse raw images
	local i
	for i in a b c d e f; do
		rm -f "$WORK/vd$i.img"
		truncate -s 64M "$WORK/vd$i.img"
	done
	# vde: reads of sectors 40000..40063 and writes of 50000..50063 fail (QEMU blkdebug)
	cat >"$WORK/blkdebug.conf" <<-'EOF'
		[inject-error]
		event = "read_aio"
		errno = "5"
		sector = "40000"
		[inject-error]
		event = "write_aio"
		errno = "5"
		sector = "50000"
	EOF
}

# boot K ARGS...: one guest run; the console goes to $WORK/console-K.log.
boot() {
	local k=$1 log=$WORK/console-$1.log
	shift
	local drives=() i
	for i in a b c d; do
		drives+=(-drive "file=$WORK/vd$i.img,format=raw,if=virtio,cache=unsafe")
	done
	drives+=(-drive "file=blkdebug:$WORK/blkdebug.conf:$WORK/vde.img,format=raw,if=virtio,cache=unsafe")
	drives+=(-drive "file=$WORK/vdf.img,format=raw,if=virtio,cache=unsafe")
	local limit=900
	[[ $ACCEL == kvm ]] && limit=300
	# A guest that has not reached /init after STALL seconds stalled in the kernel's own boot,
	# before anything of ours ran (seen once under TCG on an overloaded host: no console output
	# for ten minutes after "IP idents hash table"): it is booted once more, and says so.
	local stall=${MDR_BOOT_STALL:-240} try pid t
	for try in 1 2; do
		timeout $limit "${QEMU[@]}" -accel "$ACCEL" -kernel "$(kernel_image "$k")" \
			-initrd "$WORK/initrd-$k.cpio" "${drives[@]}" "$@" </dev/null >"$log" 2>&1 &
		pid=$! t=0
		while kill -0 "$pid" 2>/dev/null; do
			sleep 2
			t=$((t + 2))
			if ((try == 1 && t >= stall)) && ! grep -aq 'Run /init' "$log"; then
				warn "kernel $k: the guest did not reach /init in $t s (a boot stall); booting it again"
				pkill -P "$pid" 2>/dev/null || true
				kill "$pid" 2>/dev/null || true
				wait "$pid" 2>/dev/null || true
				cp "$log" "$log.stalled"
				continue 2
			fi
		done
		wait "$pid" || true
		return 0
	done
}

# check_log K: the scenario verdicts of one boot; 0 when all passed.
check_log() {
	local k=$1 log=$WORK/console-$1.log
	grep -E '^MDR: ' "$log" | sed "s/^/[$k] /" || true
	if ! grep -q '^MDR-DONE rc=0' "$log"; then
		echo "---- console of the $k guest (last 80 lines) ----"
		tail -80 "$log"
		return 1
	fi
}

gdb_session() { # the scripted (or interactive) gdb session on kernel $1
	local k=$1 log=$WORK/console-$1.log b=$CACHE/build-$1
	need_gdb
	disks
	# QEMU's gdb stub (-s, on a free port rather than 1234, which may be taken)
	local port=1234
	while ss -ltn 2>/dev/null | grep -q ":$port "; do port=$((port + 1)); done
	boot "$k" -gdb "tcp:127.0.0.1:$port" -append "console=ttyS0 panic=-1 MDR_MODE=gdb" &
	local qpid=$! end="" i
	for i in $(seq 1 600); do
		end=$(grep -a -m1 '^MDR-SECTIONS-END ' "$log" 2>/dev/null | tr -d '\r' || true)
		[[ -n $end ]] && break
		sleep 0.5
	done
	[[ -n $end ]] || { kill "$qpid"; die "the guest never reported the module's sections"; }
	local major text sargs
	major=${end#MDR-SECTIONS-END }
	text=$(tr -d '\r' <"$log" | awk '$1 == "MDR-SECTION" && $2 == ".text" {print $3}')
	sargs=$(tr -d '\r' <"$log" | awk '$1 == "MDR-SECTION" && $2 != ".text" {printf " -s %s %s", $2, $3}')
	# Registry::probe is inlined into mdraid_k_reg_open: break at its first line.
	local pline
	pline=$(awk '/pub fn probe\(&mut self, unit: u32\)/ {p = 1} p && /self.check_unit\(unit\)/ {print NR; exit}' \
		"$ROOT/core/src/registry.rs")
	cat >"$WORK/gdb.cmd" <<-EOF
		set pagination off
		set confirm off
		set architecture i386:x86-64
		target remote 127.0.0.1:$port
		add-symbol-file $b/mdraid_k.ko $text$sargs
		break mdr_probe
		break $ROOT/core/src/registry.rs:$pline
		set var mdr_gdb_go = 1
		continue
		printf "MDR-GDB probe dev=%#x\\n", dev
		bt 2
		continue
		printf "MDR-GDB registry probe\\n"
		bt 3
		delete
		continue
	EOF
	if [[ $GDB == interactive ]]; then
		sed -i '/^continue$/,$d' "$WORK/gdb.cmd"
		gdb -q -x "$WORK/gdb.cmd"
		wait "$qpid" || true
		return 0
	fi
	timeout 300 gdb -q -batch -x "$WORK/gdb.cmd" >"$WORK/gdb.log" 2>&1 || true
	wait "$qpid" || true
	cat "$WORK/gdb.log"
	local want
	want=$(printf '%#x' $(((major << 20) | 0)))
	grep -q "^MDR-GDB probe dev=$want\$" "$WORK/gdb.log" ||
		{ tail -40 "$log"; die "gdb: the probe breakpoint did not show dev_t $want (mdr0)"; }
	grep -q '^MDR-GDB registry probe' "$WORK/gdb.log" && grep -q 'hit Breakpoint 2, mdraid::registry::Registry::probe' "$WORK/gdb.log" ||
		die "gdb: no stop in the core's Registry::probe"
	check_log "$k" || die "the gdb guest failed"
	say "gdb session: probe hit with dev_t $want (major $major, minor 0), then Registry::probe"
}
need_gdb() { command -v gdb >/dev/null || ensure_apt_packages gdb; }

rc=0
for k in "${KERNELS[@]}"; do
	say "kernel $k: building mdraid_k.ko"
	build_module "$k"
	initramfs "$k" "$WORK/initrd-$k.cpio"
	say "kernel $k: initramfs $(du -h "$WORK/initrd-$k.cpio" | cut -f1)"
	if [[ -n $GDB ]]; then
		gdb_session "$k"
		continue
	fi
	disks
	if [[ $PROFILE == 1 ]]; then
		boot "$k" -monitor "unix:$WORK/monitor.sock,server,nowait" -append "console=ttyS0 \
panic=-1 nokaslr MDR_MODE=test MDR_SCENARIOS=prof MDR_PROF_RW=${MDR_PROF_RW:-randread} \
MDR_PROF_BS=${MDR_PROF_BS:-4k} MDR_PROF_SECS=${MDR_PROF_SECS:-20}" &
		python3 "$HERE/profile.py" "$WORK/monitor.sock" "$WORK/console-$k.log" "$WORK/vdf.img" \
			| tee "$WORK/profile-$k.txt"
		wait
		grep -a 'MDR-PROF-END' "$WORK/console-$k.log" || true
		check_log "$k" || rc=1
		continue
	fi
	start=$SECONDS
	mode=test
	[[ $BENCH == 1 ]] && mode=bench
	boot "$k" -append "console=ttyS0 panic=-1 MDR_MODE=$mode MDR_SCENARIOS=${MDR_SCENARIOS:-all}"
	if check_log "$k"; then
		say "kernel $k: all scenarios passed in $((SECONDS - start)) s ($ACCEL)"
	else
		warn "kernel $k: FAILED after $((SECONDS - start)) s ($ACCEL)"
		rc=1
	fi
	if [[ $BENCH == 1 ]]; then
		grep '^MDR-BENCH ' "$WORK/console-$k.log" || true
		bench_ratios "$k"
	fi
done
exit $rc
