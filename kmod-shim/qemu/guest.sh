#!/bin/busybox sh
# /init of the QEMU guest (kmod-shim/qemu/run.sh): loads the modules and runs the scenarios.
# Each scenario prints "MDR: PASS <name>" or "MDR: FAIL <name>: why"; the last line is
# "MDR-DONE rc=<n>". Kernel parameters MDR_MODE (test|bench|gdb) and MDR_SCENARIOS arrive
# in the environment.
export PATH=/bin:/sbin
mount -t proc proc /proc
echo 1 >/proc/sys/kernel/sysrq
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /tmp /mnt/a
echo 1 >/proc/sys/kernel/printk_ratelimit 2>/dev/null
RC=0
for m in $(cat /modules/order) mdraid_k.ko; do
	insmod /modules/$m 2>/tmp/err || { echo "MDR: FAIL insmod $m: $(cat /tmp/err)"; RC=1; }
done
MAJ=$(awk '$2 == "mdr" {print $1}' /proc/devices)
pass() { echo "MDR: PASS $1"; }
fail() { echo "MDR: FAIL $1: $2"; RC=1; }
die_scn() { fail "$SCN" "$1"; return 1; }
md() { echo "/sys/block/$1/md"; }
wr() { # wr FILE VALUE: write, failing the scenario with the errno text
	if ! echo "$2" >"$1" 2>/tmp/err; then
		echo "write '$2' > $1: $(cat /tmp/err)"
		return 1
	fi
}
devnum() { cat /sys/block/$1/dev; }
wait_idle() { # wait_idle DISK: until sync_action is idle (at most 300 s)
	local i=0
	while [ "$(cat $(md $1)/sync_action)" != idle ]; do
		i=$((i + 1))
		[ $i -gt 3000 ] && return 1
		sleep 0.1
	done
}
mdr_create() { # mdr_create UNIT DEV...: a RAID1 over the devices through sysfs
	local u=$1 d
	shift
	[ -e /dev/mdr$u ] || mknod /dev/mdr$u b $MAJ $u
	: </dev/mdr$u # the open creates the array (probe)
	[ -d $(md mdr$u) ] || { echo "no md/ for mdr$u"; return 1; }
	wr $(md mdr$u)/level raid1 || return 1
	wr $(md mdr$u)/raid_disks $# || return 1
	wr $(md mdr$u)/metadata_version 1.2 || return 1
	for d in "$@"; do wr $(md mdr$u)/new_dev $(devnum $d) || return 1; done
	[ -z "$MDR_SPEED_MAX" ] || wr $(md mdr$u)/sync_speed_max $MDR_SPEED_MAX || return 1
	wr $(md mdr$u)/array_state active || return 1
}
mdr_stop() { # mdr_stop DISK: full stop; the disk goes away
	wr $(md $1)/array_state clear || return 1
	local i=0
	while [ -e /sys/block/$1 ]; do
		i=$((i + 1))
		[ $i -gt 100 ] && { echo "$1 still there after stop"; return 1; }
		sleep 0.1
	done
}
fill_files() { # fill_files DIR: a few files of pseudo-random data, checksums in DIR.sums
	local dir=$1 i
	for i in 1 2 3 4 5; do
		dd if=/dev/urandom of=$dir/f$i bs=64k count=$((i * 4)) 2>/dev/null || return 1
	done
	(cd $dir && sha256sum f1 f2 f3 f4 f5) >/tmp/sums
}
check_files() { (cd $1 && sha256sum -c /tmp/sums >/dev/null 2>&1); }
check_zero() { # check_zero SYSFSMD: a check finds no mismatch
	wr $1/sync_action check || return 1
	sleep 0.2
	local i=0
	while [ "$(cat $1/sync_action)" != idle ]; do
		i=$((i + 1))
		[ $i -gt 3000 ] && { echo "check never ended"; return 1; }
		sleep 0.1
	done
	[ "$(cat $1/mismatch_cnt)" = 0 ] || { echo "mismatch_cnt $(cat $1/mismatch_cnt)"; return 1; }
}
# watchdog SECS: if the scenario is still running then, dump blocked tasks and power off
watchdog() {
	[ -n "$WDPID" ] && kill $WDPID 2>/dev/null
	(sleep $1; echo "MDR: FAIL $SCN: watchdog after $1 s"; echo w >/proc/sysrq-trigger;
		for f in /sys/block/mdr*/md/mdr_debug; do echo "$f: $(cat $f)"; done;
		sleep 2; echo "MDR-DONE rc=1"; poweroff -f) &
	WDPID=$!
}
wipe() { for d in "$@"; do dd if=/dev/zero of=/dev/$d bs=1M count=4 2>/dev/null; done; }

# ---- scenarios ----

scn_probe() {
	mknod /dev/mdr0 b $MAJ 0
	[ ! -e /sys/block/mdr0 ] || die_scn "mdr0 exists before the open" || return
	: </dev/mdr0
	[ -e /sys/block/mdr0/md/array_state ] || die_scn "open did not create mdr0" || return
	[ "$(cat /sys/block/mdr0/md/array_state)" = clear ] || die_scn "new array not clear" || return
	dmesg | grep -q "mdraid_k: probe of $MAJ:0" || die_scn "no probe in dmesg" || return
	echo mdr_data >/sys/module/mdraid_k/parameters/new_array ||
		die_scn "new_array refused" || return
	[ -e /sys/block/mdr_data/md ] || die_scn "named array mdr_data did not appear" || return
	if echo mdr_data >/sys/module/mdraid_k/parameters/new_array 2>/dev/null; then
		die_scn "a second mdr_data was accepted"; return
	fi
	# bad writes give errnos
	for kv in "level raid5" "raid_disks 0" "raid_disks x" "metadata_version 2.0" \
		"new_dev 999:999" "new_dev junk" "array_state bogus" "sync_action check"; do
		set -- $kv
		if echo "$2" >/sys/block/mdr0/md/$1 2>/dev/null; then
			die_scn "$1 accepted '$2'"; return
		fi
	done
	# stopped and closed: both go
	exec 3</dev/mdr0
	wr /sys/block/mdr0/md/array_state clear || die_scn "clear refused" || return
	[ -e /sys/block/mdr0 ] || die_scn "mdr0 went while still open" || return
	exec 3<&-
	sleep 0.5
	[ ! -e /sys/block/mdr0 ] || die_scn "mdr0 still there when stopped and closed" || return
	mdr_stop mdr_data || die_scn "mdr_data did not go" || return
	rm -f /dev/mdr0
	pass probe
}

scn_create() {
	wipe vda vdb
	mdr_create 1 vda vdb || die_scn "create failed" || return
	[ "$(cat $(md mdr1)/raid_disks)" = 2 ] || die_scn "raid_disks" || return
	[ "$(cat $(md mdr1)/metadata_version)" = 1.2 ] || die_scn "metadata_version" || return
	[ "$(cat $(md mdr1)/dev-vda/state)" = in_sync ] || die_scn "vda not in_sync" || return
	[ "$(cat $(md mdr1)/dev-vdb/slot)" = 1 ] || die_scn "vdb slot" || return
	wait_idle mdr1 || die_scn "initial resync did not end" || return
	watchdog 120
	mkfs.ext4 -q -F /dev/mdr1 >/tmp/mkfs 2>&1 || { cat /tmp/mkfs; die_scn "mkfs.ext4"; return; }
	mount -t ext4 /dev/mdr1 /mnt/a || die_scn "mount" || return
	fill_files /mnt/a || die_scn "writing files" || return
	sync
	umount /mnt/a || die_scn "umount" || return
	check_zero $(md mdr1) || die_scn "check after writes" || return
	mdr_stop mdr1 || die_scn "stop" || return
	# re-assemble: the devices carry superblocks now
	mknod /dev/mdr2 b $MAJ 2 2>/dev/null
	: </dev/mdr2
	wr $(md mdr2)/new_dev $(devnum vdb) && wr $(md mdr2)/new_dev $(devnum vda) &&
		wr $(md mdr2)/array_state active || die_scn "re-assembly" || return
	[ "$(cat $(md mdr2)/degraded)" = 0 ] || die_scn "degraded after re-assembly" || return
	# disk statistics count each request once, kept by the shim (queue/iostats 0, the
	# default: md's jiffies accounting) or by the block layer (1)
	[ "$(cat /sys/block/mdr2/queue/iostats)" = 0 ] || die_scn "iostats default" || return
	for ios in 1 0; do
		wr /sys/block/mdr2/queue/iostats $ios || die_scn "iostats $ios" || return
		set -- $(cat /sys/block/mdr2/stat)
		r0=$1 s0=$3
		dd if=/dev/mdr2 of=/dev/null bs=4k count=16 iflag=direct 2>/dev/null ||
			die_scn "direct reads" || return
		set -- $(cat /sys/block/mdr2/stat)
		[ $(($1 - r0)) = 16 ] && [ $(($3 - s0)) = 128 ] ||
			die_scn "iostats=$ios: 16 reads of 8 sectors counted as $(($1 - r0)) of $(($3 - s0))" ||
			return
	done
	mount -t ext4 /dev/mdr2 /mnt/a || die_scn "mount after re-assembly" || return
	check_files /mnt/a || die_scn "checksums after re-assembly" || return
	umount /mnt/a
	mdr_stop mdr2 || die_scn "stop" || return
	pass create
}

scn_to_md() { # our array, assembled by the kernel's md with mdadm
	mdadm --assemble /dev/md0 /dev/vda /dev/vdb >/tmp/asm 2>&1 ||
		{ cat /tmp/asm; die_scn "mdadm --assemble"; return; }
	mount -t ext4 /dev/md0 /mnt/a || die_scn "mount md0" || return
	check_files /mnt/a || die_scn "checksums on md0" || return
	umount /mnt/a
	check_zero /sys/block/md0/md || die_scn "md check" || return
	mdadm --stop /dev/md0 >/dev/null 2>&1 || die_scn "mdadm --stop" || return
	pass to_md
}

scn_from_md() { # an array mdadm created, assembled by the shim
	wipe vdc vdd
	mdadm --create /dev/md1 --run --level=1 --raid-devices=2 --metadata=1.2 \
		--assume-clean /dev/vdc /dev/vdd >/tmp/cr 2>&1 || { cat /tmp/cr; die_scn "mdadm --create"; return; }
	mkfs.ext4 -q -F /dev/md1 >/dev/null 2>&1 || die_scn "mkfs on md1" || return
	mount -t ext4 /dev/md1 /mnt/a && fill_files /mnt/a && umount /mnt/a ||
		die_scn "files on md1" || return
	mdadm --stop /dev/md1 >/dev/null 2>&1 || die_scn "mdadm --stop" || return
	mknod /dev/mdr3 b $MAJ 3 2>/dev/null
	: </dev/mdr3
	wr $(md mdr3)/new_dev $(devnum vdc) && wr $(md mdr3)/new_dev $(devnum vdd) &&
		wr $(md mdr3)/array_state active || die_scn "shim assembly" || return
	mount -t ext4 /dev/mdr3 /mnt/a || die_scn "mount mdr3" || return
	check_files /mnt/a || die_scn "checksums on mdr3" || return
	umount /mnt/a
	check_zero $(md mdr3) || die_scn "shim check" || return
	mdr_stop mdr3 || die_scn "stop" || return
	pass from_md
}

scn_faults() { # fail a member under fio verify, degraded; add a third disk; recovery; check
	wipe vda vdb vdc
	mdr_create 4 vda vdb || die_scn "create" || return
	wait_idle mdr4
	fio --name=v --filename=/dev/mdr4 --rw=randwrite --bs=4k --size=24m --direct=1 \
		--ioengine=libaio --iodepth=8 --verify=crc32c --do_verify=1 --output=/tmp/fio.out \
		>/dev/null 2>&1 &
	local fpid=$!
	sleep 2
	wr $(md mdr4)/dev-vdb/state faulty || die_scn "fail vdb" || return
	wait $fpid
	local frc=$?
	[ $frc = 0 ] && ! grep -q "err=[^ 0]" /tmp/fio.out ||
		{ tail -20 /tmp/fio.out; die_scn "fio saw an error (rc $frc)"; return; }
	[ "$(cat $(md mdr4)/degraded)" = 1 ] || die_scn "not degraded after fail" || return
	[ "$(cat $(md mdr4)/dev-vdb/state)" = faulty ] || die_scn "vdb not faulty" || return
	wr $(md mdr4)/dev-vdb/state remove || die_scn "remove vdb" || return
	[ ! -e $(md mdr4)/dev-vdb ] || sleep 0.5
	wr $(md mdr4)/new_dev $(devnum vdc) || die_scn "add vdc" || return
	# the running machine took it: no stop, no re-assembly
	dmesg | grep -q "mdraid_k: mdr4: added vdc" || die_scn "no hot add in dmesg" || return
	! dmesg | grep -qE "mdraid_k: mdr4: (stopped|assembled)" || die_scn "hot add restarted the array" || return
	wait_idle mdr4 || die_scn "recovery never ended" || return
	[ "$(cat $(md mdr4)/degraded)" = 0 ] || die_scn "still degraded after recovery" || return
	[ "$(cat $(md mdr4)/dev-vdc/state)" = in_sync ] || die_scn "vdc not in_sync" || return
	check_zero $(md mdr4) || die_scn "check after recovery" || return
	fio --name=v --filename=/dev/mdr4 --rw=randread --bs=4k --size=24m --direct=1 \
		--ioengine=libaio --iodepth=8 --verify=crc32c --verify_only >/tmp/fio2.out 2>&1 ||
		{ tail /tmp/fio2.out; die_scn "data lost across fail+recovery"; return; }
	mdr_stop mdr4 || die_scn "stop" || return
	pass faults
}

scn_nomem() { # every 3rd atomic allocation of a member-I/O record or copy fails: held, no error
	local p=/sys/module/mdraid_k/parameters held0=$(cat /sys/module/mdraid_k/parameters/held)
	wipe vda vdb
	mdr_create 8 vda vdb || die_scn "create" || return
	wait_idle mdr8
	echo 3 >$p/fail_atomic
	fio --name=v --filename=/dev/mdr8 --rw=randwrite --bs=4k --size=16m --direct=1 \
		--ioengine=libaio --iodepth=16 --verify=crc32c --do_verify=1 --output=/tmp/fio.out \
		>/dev/null 2>&1
	local frc=$?
	echo 0 >$p/fail_atomic
	[ $frc = 0 ] && ! grep -q "err=[^ 0]" /tmp/fio.out ||
		{ tail -20 /tmp/fio.out; die_scn "fio saw an error (rc $frc)"; return; }
	echo "MDR: INFO nomem: $(($(cat $p/held) - held0)) member I/Os held"
	[ "$(cat $p/held)" -gt "$held0" ] || die_scn "no member I/O was held" || return
	[ "$(cat $(md mdr8)/degraded)" = 0 ] || die_scn "a member failed" || return
	check_zero $(md mdr8) || die_scn "check" || return
	mdr_stop mdr8 || die_scn "stop" || return
	pass nomem
}

scn_blkdebug() { # QEMU injects EIO on vde's reads and writes: retries, data intact
	wipe vde vdf
	mdr_create 5 vde vdf || die_scn "create" || return
	wait_idle mdr5
	# the array's data starts 2048 sectors in (1.2, 64 MiB members): array sector
	# 40000-2048 on vde fails to read, 50000-2048 fails to write
	dd if=/dev/urandom of=/tmp/pat bs=512 count=20000 2>/dev/null
	dd if=/tmp/pat of=/dev/mdr5 bs=512 seek=36000 conv=fsync oflag=direct 2>/dev/null ||
		die_scn "write through the write error" || return
	echo 3 >/proc/sys/vm/drop_caches
	local i
	for i in 1 2 3; do # the read balancer may pick either mirror; read several times
		dd if=/dev/mdr5 of=/tmp/back bs=512 skip=36000 count=20000 iflag=direct 2>/dev/null ||
			die_scn "read through the read error" || return
		cmp -s /tmp/pat /tmp/back || die_scn "data differs" || return
	done
	dmesg | grep -q "I/O error, dev vde, sector .*:(READ)" || die_scn "no read error was injected" || return
	dmesg | grep -q "I/O error, dev vde, sector .*:(WRITE)" || die_scn "no write error was injected" || return
	mdr_stop mdr5 || die_scn "stop" || return
	pass blkdebug
}

scn_sync_ctl() { # sync_action idle, a hot add, frozen mid-resync: md and the shim on vda+vdb
	local what sa seq
	for what in md shim; do
		wipe vda vdb vdc
		# a slow resync (1000 KiB/s of 64 MiB), so that it is still running at each step
		if [ $what = md ]; then
			echo 1000 >/proc/sys/dev/raid/speed_limit_max
			mdadm --create /dev/md7 --run --level=1 --raid-devices=2 --metadata=1.2 \
				/dev/vda /dev/vdb >/tmp/cr 2>&1 || { cat /tmp/cr; die_scn "md create"; return; }
			sa=/sys/block/md7/md
		else
			MDR_SPEED_MAX=1000
			mdr_create 7 vda vdb || die_scn "shim create" || return
			MDR_SPEED_MAX=
			sa=$(md mdr7)
		fi
		sleep 1
		seq=$(cat $sa/sync_action)
		# idle: the resync stops and md's recovery check starts it again from its checkpoint
		wr $sa/sync_action idle || die_scn "$what: idle" || return
		sleep 1
		seq="$seq $(cat $sa/sync_action)"
		# a hot add (a spare: both slots are full) leaves the resync running (the shim pauses
		# it for the add and resumes it)
		if [ $what = md ]; then
			mdadm /dev/md7 --add /dev/vdc >/tmp/add 2>&1 || { cat /tmp/add; die_scn "md add"; return; }
		else
			wr $sa/new_dev $(devnum vdc) || die_scn "shim add" || return
		fi
		sleep 1
		seq="$seq $(cat $sa/sync_action)"
		# frozen: it stops and stays stopped
		wr $sa/sync_action frozen || die_scn "$what: frozen" || return
		sleep 1
		local c1=$(cat $sa/sync_completed)
		sleep 1
		seq="$seq $(cat $sa/sync_action)"
		[ "$(cat $sa/sync_completed)" = "$c1" ] || die_scn "$what: progress while frozen" || return
		# full speed, then idle: the resync runs to its end
		if [ $what = md ]; then
			echo 200000 >/proc/sys/dev/raid/speed_limit_max
		else
			wr $sa/sync_speed_max system || die_scn "shim speed" || return
		fi
		wr $sa/sync_action idle || die_scn "$what: idle after frozen" || return
		# md restarts the resync from its thread a moment after the write: until then
		# sync_action reads idle with the resync still owed, which md's resync_start shows
		# (its checkpoint, "none" once done); the shim restarts it before the write returns
		local i=0
		while [ "$(cat $sa/sync_action)" != idle ] ||
			{ [ $what = md ] && [ "$(cat $sa/resync_start)" != none ]; }; do
			i=$((i + 1))
			[ $i -gt 3000 ] && { die_scn "$what: resync never ended"; return; }
			sleep 0.1
		done
		echo "MDR: INFO sync_ctl $what: $seq"
		[ "$seq" = "resync resync resync frozen" ] || die_scn "$what: sync_action read '$seq'" || return
		if [ $what = md ]; then
			mdadm --stop /dev/md7 >/dev/null 2>&1 || die_scn "md stop" || return
		else
			mdr_stop mdr7 || die_scn "shim stop" || return
		fi
		# mdadm's word on the members: the resync finished (1.x says it by State alone: clean
		# is a resync offset of MaxSector, active anything short of it)
		mdadm --examine /dev/vda >/tmp/ex 2>&1 || { cat /tmp/ex; die_scn "$what: examine"; return; }
		grep -q "^ *State : clean$" /tmp/ex || { grep "State" /tmp/ex; die_scn "$what: resync not done"; return; }
	done
	pass sync_ctl
}

bench_array() { # the head-to-heads' array: one mdadm-made RAID1 on vda+vdb, stopped
	wipe vda vdb
	mdadm --create /dev/md2 --run --level=1 --raid-devices=2 --assume-clean --metadata=1.2 \
		/dev/vda /dev/vdb >/dev/null 2>&1 || die_scn "md create" || return
	mdadm --stop /dev/md2 >/dev/null 2>&1 || die_scn "md stop" || return
}

bench_stop() { # bench_stop md|shim: stops what bench_assemble started
	if [ $1 = shim ]; then
		mdr_stop mdr6
	else
		mdadm --stop /dev/md2 >/dev/null 2>&1
	fi
}

bench_assemble() { # bench_assemble md|shim: vda+vdb's array by md or by the shim; its device
	if [ $1 = shim ]; then
		mdr_create 6 vda vdb >&2 && echo /dev/mdr6
	else
		mdadm --assemble /dev/md2 /dev/vda /dev/vdb >/dev/null 2>&1 && echo /dev/md2
	fi
}

scn_bench() { # fio head-to-head on vda+vdb: one md RAID1, run by md and by the shim in turn
	local r what dev
	# each round md assembles it and the shim does (same disks, same superblock and layout),
	# so load swings on the host hit both alike
	bench_array || return
	for r in 1 2 3 4 5; do
		# who goes first alternates, so a drift within a round favours neither
		local order="md shim"
		[ $((r % 2)) = 0 ] && order="shim md"
		for what in $order; do
			dev=$(bench_assemble $what) || { die_scn "$what assemble"; return; }
			[ "$(cat $(md ${dev#/dev/})/sync_action)" = idle ] || die_scn "$what not idle" || return
			# system-wide interrupts and context switches around the random reads
			local s0=$(awk '$1 == "intr" || $1 == "ctxt" { printf "%s ", $2 }' /proc/stat)
			fio --name=rr --filename=$dev --rw=randread --bs=4k --iodepth=32 --ioengine=libaio \
				--direct=1 --size=32m --runtime=4 --time_based --output-format=terse \
				--terse-version=3 >/tmp/rr 2>&1 || die_scn "fio randread" || return
			local s1=$(awk '$1 == "intr" || $1 == "ctxt" { printf "%s ", $2 }' /proc/stat)
			local per_io=$(echo "$s0 $s1 $(cut -d';' -f6 /tmp/rr)" |
				awk '{ n = $5 / 4; if (n < 1) n = 1
				       printf "intr_per_read=%.2f ctxt_per_read=%.2f", ($3 - $1) / n, ($4 - $2) / n }')
			fio --name=sw --filename=$dev --rw=write --bs=1m --iodepth=4 --ioengine=libaio \
				--direct=1 --size=32m --runtime=4 --time_based --output-format=terse \
				--terse-version=3 >/tmp/sw 2>&1 || die_scn "fio seqwrite" || return
			# terse v3: field 8 read iops, 48 write bandwidth KiB/s, 89 system CPU %, 90 context switches
			echo "MDR-BENCH round=$r $what randread4k_qd32_iops=$(cut -d';' -f8 /tmp/rr)" \
				"seqwrite1m_kib_s=$(cut -d';' -f48 /tmp/sw)" \
				"randread_sys_cpu=$(cut -d';' -f89 /tmp/rr) randread_ctx=$(cut -d';' -f90 /tmp/rr)" \
				"seqwrite_sys_cpu=$(cut -d';' -f89 /tmp/sw) seqwrite_ctx=$(cut -d';' -f90 /tmp/sw)" \
				"$per_io scheduler=$(sed 's/.*\[\(.*\)\].*/\1/' /sys/block/${dev#/dev/}/queue/scheduler)"
			bench_stop $what || { die_scn "$what stop"; return; }
		done
	done
	pass bench
}

scn_trace() { # diagnostics (MDR_SCENARIOS=trace): kernel calls per 4 KiB random read, md and the shim
	trace_calls trace randread 4k 32 6 4
}

scn_tracew() { # diagnostics (MDR_SCENARIOS=tracew): kernel calls per 1 MiB sequential write
	trace_calls tracew write 1m 4 47 1024
}

trace_calls() { # trace_calls NAME RW BS QD KIB_FIELD KIB_PER_IO: ftrace's calls per I/O of one fio
	# job (its terse field KIB_FIELD: KiB moved) on md and on the shim (the function tracer on
	# the block layer, md, virtio, timekeeping and allocators)
	local name=$1 rw=$2 bs=$3 qd=$4 field=$5 per=$6
	local T=/sys/kernel/tracing what dev n
	local fn="blk_* __blk_* bio_* __bio_* submit_bio* *mdr* *mdraid* raid1* md_* *virt* *apic* *hpet* ktime_get* *plug* *queue_rq* *kmem_cache* *kmalloc* kfree mempool* *spin_lock* *spin_unlock* mutex_* *io_acct* *sbitmap* *srcu*"
	mount -t tracefs nodev $T 2>/dev/null
	bench_array || return
	echo "MDR-FN clocksource $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
	echo 60000 >$T/buffer_size_kb
	for f in $fn; do echo "$f" >>$T/set_ftrace_filter; done
	echo "MDR-FN filtered $(wc -l <$T/set_ftrace_filter)"
	echo 0 >$T/options/func_stack_trace
	for what in md shim; do
		dev=$(bench_assemble $what) || { die_scn "$what assemble"; return; }
		echo 0 >$T/tracing_on
		echo function >$T/current_tracer
		echo >$T/trace
		echo 1 >$T/tracing_on
		fio --name=tr --filename=$dev --rw=$rw --bs=$bs --iodepth=$qd --ioengine=libaio \
			--direct=1 --size=32m --runtime=1 --time_based --output-format=terse \
			--terse-version=3 >/tmp/rr 2>&1 || die_scn "fio $rw" || return
		echo 0 >$T/tracing_on
		# (events lost to a full buffer would make the counts low)
		echo "MDR-FN $what lost $(cat $T/per_cpu/cpu*/stats | awk '$1 == "overrun:" { s += $2 } END { print s }')"
		n=$(( $(cut -d';' -f$field /tmp/rr) / per + 1 ))
		awk -v w=$what -v n=$n '
			/ <-/ { f = $0; sub(/ <-.*/, "", f); sub(/.* /, "", f); c[f]++
			        # clock readers by caller (a clock source read is an emulated
			        # device access under TCG)
			        if (f ~ /^(ktime_get|read_hpet)/) { p = $0; sub(/.* <-/, "", p); c[f "<-" p]++ } }
			END { for (x in c) if (c[x] / n >= 0.1) printf "MDR-FN %s %s %.2f\n", w, x, c[x] / n }' $T/trace | sort
		echo "MDR-FN $what ios $n"
		echo nop >$T/current_tracer
		bench_stop $what || { die_scn "$what stop"; return; }
	done
	pass $name
}

scn_prof() { # run.sh --profile: fio randread on md, then on the shim, while the host samples
	(cat /proc/kallsyms; echo MDR-KALLSYMS-END) >/dev/vdf || die_scn "kallsyms" || return
	sync
	bench_array || return
	local what dev
	for what in md shim; do
		dev=$(bench_assemble $what) || { die_scn "$what assemble"; return; }
		echo "MDR-PROF-START $what"
		fio --name=rr --filename=$dev --rw=${MDR_PROF_RW:-randread} --bs=${MDR_PROF_BS:-4k} \
			--iodepth=32 --ioengine=libaio --direct=1 --size=32m --runtime=${MDR_PROF_SECS:-20} \
			--time_based --output-format=terse --terse-version=3 >/tmp/rr 2>&1 || die_scn "fio" || return
		echo "MDR-PROF-END $what iops=$(cut -d';' -f8 /tmp/rr) wkib=$(cut -d';' -f48 /tmp/rr)"
		bench_stop $what || { die_scn "$what stop"; return; }
	done
	pass prof
}

scn_rmmod() {
	rmmod mdraid_k || die_scn "rmmod" || return
	pass rmmod
}

if [ "$MDR_MODE" = gdb ]; then
	# the harness's gdb sets mdraid_k's mdr_gdb_go once its breakpoints are in
	# every loaded section (the core's code keeps one section per function)
	for f in /sys/module/mdraid_k/sections/.*; do
		[ -f "$f" ] && echo "MDR-SECTION ${f##*/} $(cat $f)"
	done
	echo "MDR-SECTIONS-END $MAJ"
	i=0
	while [ "$(cat /sys/module/mdraid_k/parameters/gdb_go)" = 0 ] && [ $i -lt 1500 ]; do
		sleep 0.2
		i=$((i + 1))
	done
	mknod /dev/mdr0 b $MAJ 0
	: </dev/mdr0 && [ -e /sys/block/mdr0 ] && pass gdb_probe || fail gdb_probe "no mdr0"
	wr /sys/block/mdr0/md/array_state clear
	SCENARIOS="rmmod"
elif [ "$MDR_MODE" = bench ]; then
	SCENARIOS="bench rmmod"
else
	SCENARIOS=$(echo "${MDR_SCENARIOS:-all}" | tr , " ")
	[ "$SCENARIOS" = all ] && SCENARIOS="probe create to_md from_md faults nomem blkdebug sync_ctl rmmod"
fi
for SCN in $SCENARIOS; do
	START=$(date +%s)
	watchdog 600
	scn_$SCN
	echo "MDR-TIME $SCN $(($(date +%s) - START)) s"
done
kill $WDPID 2>/dev/null
if dmesg | grep -E 'WARNING:|BUG:|Oops|general protection|unable to handle'; then
	fail dmesg "the kernel log has warnings"
else
	pass dmesg
fi
echo "MDR-DONE rc=$RC"
sync
poweroff -f
