#!/usr/bin/env bash
# Mutation testing of the core's metadata-ordering, sync, checkpoint, assembly and bitmap code
# with cargo-mutants (https://mutants.rs). NOT part of CI: one pass takes about an hour on
# two cores. Results, the figures and the fate of every missed mutant: TESTING.md.
#
#   scripts/mutants.sh GROUP...   run these groups (see `groups` below); default: all
#   scripts/mutants.sh --list     list each group's mutants without running them
#
# Environment: MUTANTS_OUT (default target/mutants) holds one mutants.out per group;
# MUTANTS_TIMEOUT=seconds caps each test run (default: the auto timeout, at least the 120 s of
# .cargo/mutants.toml; a mutant that hangs costs all of it);
# MUTANTS_ITERATE=1 re-tests only the mutants a previous run of the group did not catch;
# MUTANTS_RE=regex keeps only the mutants whose name (file:line:col: replace …) matches (it
# replaces the group's own function filter, -F: cargo-mutants ORs several -F, so name the
# functions in it when the group has one).
#
# It runs in place (`--in-place`) so the tests find ../shared/fixtures and reuse target/: do
# not edit the tree while it runs. One mutant at a time (in place is `--jobs 1`), under `nice -n 15`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ROOT=$(repo_root)
cd "$ROOT"

command -v cargo-mutants >/dev/null ||
	die "cargo-mutants is not installed: cargo install --locked cargo-mutants"

OUT=${MUTANTS_OUT:-$ROOT/target/mutants}

# Seed counts small enough for one mutant's run to take seconds (the defaults are for CI).
export MDRAID_MACHINE_CASES=${MDRAID_MACHINE_CASES:-300}
export MDRAID_CRASH_CASES=${MDRAID_CRASH_CASES:-300}
export MDRAID_INTERRUPT_CASES=${MDRAID_INTERRUPT_CASES:-100}

# The tests that cover the machine's metadata rounds, the superblock policy and sync.
MACHINE_TESTS=(machine_inflight crash_consistency assemble_rules array_sync interrupted_recovery
	metadata_rounds)

# group name -> files (-f), function filter (-F, optional) and tests.
run_group() {
	local name=$1 list=$2
	local -a files=() re=() excl=() tests=()
	local lib=0
	case $name in
	superblocks)
		files=(-f core/src/array/machine/superblocks.rs)
		tests=("${MACHINE_TESTS[@]}")
		;;
	metadata)
		files=(-f core/src/array/machine/metadata.rs)
		# block_size: align_writes (metadata writes widened to 4 KiB logical blocks).
		# metadata_align: align_writes on a hand-built layout with an unaligned bitmap.
		tests=("${MACHINE_TESTS[@]}" block_size metadata_align)
		;;
	membership)
		files=(-f core/src/array/machine/membership.rs)
		# block_size .. machine_readonly: added after the first (partial) run, whose 30
		# missed were mostly add/re-add refusals these exercise (see TESTING.md); add_rules:
		# written for what that run and the next missed.
		tests=("${MACHINE_TESTS[@]}" machine_setup block_size badblock_feature array_faults
			machine_readonly add_rules)
		;;
	checkpoint)
		files=(-f core/src/raid1/engine/sync.rs)
		re=(-F 'sync_checkpoint|sync_maybe_end|sync_progress|release_synced_chunks')
		# sync_end: the tests written for what this group's first run missed.
		tests=("${MACHINE_TESTS[@]}" raid1_sync sync_end)
		;;
	sync)
		# engine/sync.rs outside the checkpoint group's four functions (-E: the two groups
		# together are the whole file and do not overlap; check with --list).
		files=(-f core/src/raid1/engine/sync.rs)
		excl=(-E ' in Raid1::(sync_checkpoint|sync_maybe_end|sync_progress|release_synced_chunks)$|replace Raid1::(sync_checkpoint|sync_maybe_end|sync_progress|release_synced_chunks) ')
		# The tests that drive sync actions, lean (a baseline of these takes ~13 s): the
		# engine's sync suites (raid1_sync, sync_end, raid1_replace), and through the machine
		# recovery, resync, check and repair of the fixtures (array_sync), interrupted ones
		# (interrupted_recovery, crash_consistency) and replace (machine_replace).
		# sync_rules: written for what the first run missed. sync_stop: stop_sync and
		# request_sync_check (md's idle / frozen and recovery check), added 2 December.
		tests=(array_sync crash_consistency interrupted_recovery machine_replace raid1_replace
			raid1_sync sync_end sync_rules sync_stop)
		;;
	bitmap)
		# The bitmap format: its unit tests (--lib, which also runs the lib's other unit
		# tests), bitmap_format (its edges), and the tests that load, write and report
		# bitmaps made by mdadm and by us.
		files=(-f core/src/format/bitmap.rs)
		tests=(bitmap_format v090_bitmap bitmap_badblocks assemble_fixtures examine_text)
		lib=1
		;;
	assembly)
		# Array::assemble (md's assembly rules: leader, non-fresh, faulty, slot clashes, the
		# start rule, resumed rebuilds) and the tests that assemble arrays: by rule, from
		# mdadm's fixtures, after cuts (crash, interrupted recovery), with replacements,
		# and setup::Assembly (which runs it over the caller's reads). Left out for time:
		# corruption (~100 s) and grow_cut (~27 s at 100 seeds), which also assemble.
		files=(-f core/src/array/assemble.rs)
		# assemble_edges: written for what the first run missed.
		tests=(assemble_rules assemble_fixtures update_members interrupted_recovery
			crash_consistency array_sync machine_setup machine_replace v090_bitmap
			badblock_feature assemble_edges)
		;;
	gates)
		# The engine's metadata gates (engine/gates.rs): a write waits for MarkDirty and
		# BitmapSet, failed members' writes are recorded (BadBlocks / MemberFailed) before
		# they complete, the bitmap daemon's clears. The engine's unit tests (--lib, ~3 s),
		# the engine's event-order tests (raid1_engine, raid1_model) and the machine tests
		# that drive the gates through rounds, faults and cuts. gate_rules: written for what
		# the first run missed.
		files=(-f core/src/raid1/engine/gates.rs)
		tests=(array_faults bitmap_badblocks crash_consistency gate_rules machine_inflight
			metadata_rounds raid1_engine raid1_model)
		lib=1
		;;
	intent)
		# The write-intent bitmap in use (array/intent.rs: load, fresh, clear_all, encode,
		# pad_to, pages_of): the tests that load bitmaps (fixtures, 0.90, 4 KiB blocks), write
		# through them (set-before-write pages, rounds, cuts) and stop clean (the clear).
		# intent_rules: written for what the first run missed (a grown bitmap's image).
		files=(-f core/src/array/intent.rs)
		tests=(bitmap_badblocks intent_rules v090_bitmap metadata_rounds crash_consistency
			machine_inflight array_sync metadata_align block_size machine_setup)
		;;
	sb0)
		# md's super_90_sync disk table (array/sb0_sync.rs): 0.90 arrays created, assembled
		# from md's fixtures, changed (add, fail, remove, re-add) and written.
		# sb0_rules: written for what the first run missed (28 of 48: no test read the disk
		# table or the state word md rebuilds at every update).
		files=(-f core/src/array/sb0_sync.rs)
		tests=(sb0_rules v090_bitmap add_rules update_members assemble_fixtures machine_setup)
		;;
	setup)
		# Assembly and create for caller-driven fronts (array/setup.rs): machine_setup (its
		# own tests), and the tests that build machines through it (block_size,
		# metadata_align, metadata_rounds, assemble_fixtures). setup_rules: written for what
		# the first run missed (the device numbers given, creation's writes widened to blocks
		# larger than the layouts' 4 KiB alignment).
		files=(-f core/src/array/setup.rs)
		tests=(machine_setup block_size metadata_align metadata_rounds assemble_fixtures
			setup_rules)
		;;
	report)
		# The `--examine-bitmap` / `--examine-badblocks` text (report/bitmap.rs): its unit
		# tests (--lib), bitmap_badblocks (every fixture member's bitmap and bad-block log
		# against mdadm's text) and examine_bitmap_rules (headers the fixtures do not hold,
		# by mdadm's rules: written for what the first run missed).
		files=(-f core/src/report/bitmap.rs)
		tests=(bitmap_badblocks examine_bitmap_rules)
		lib=1
		;;
	validate)
		# Superblock1::validate_blocks (format/sb1.rs: every region of a 1.x layout on a
		# logical block of its own) and the tests that call it, directly (block_size) or
		# through assembly and hand-built layouts (metadata_align, assemble_rules). Left out
		# for time: corruption (~100 s), which also assembles.
		files=(-f core/src/format/sb1.rs)
		re=(-F 'Superblock1::validate_blocks')
		# layout_rules: written for what the first run missed.
		tests=(block_size metadata_align assemble_rules layout_rules)
		;;
	config)
		# The machine's engine configuration from what assembly or creation decided
		# (array/machine/config.rs: slots, per-member state and recovery offsets, bad-block
		# tables, the resync checkpoint, the bitmap's dirty runs, a read-only array's empty
		# sync pool): the tests that build machines from fixtures, cuts and hand-made states.
		# config_rules: written for what the first run missed.
		files=(-f core/src/array/machine/config.rs)
		tests=(assemble_rules assemble_fixtures machine_setup interrupted_recovery
			machine_readonly array_sync v090_bitmap badblock_feature block_size config_rules)
		;;
	*) die "unknown group $name (groups: $GROUPS)" ;;
	esac
	# The test targets go to every cargo call (-C): the build then compiles only these test
	# binaries, not all of the crate's (a third of the time per mutant).
	# MUTANTS_RE replaces the group's function filter: cargo-mutants ORs several -F.
	[[ -n ${MUTANTS_RE:-} ]] && re=(-F "$MUTANTS_RE")
	local -a args=(mutants --in-place --no-shuffle "${files[@]}" "${re[@]}" "${excl[@]}")
	local t
	for t in "${tests[@]}"; do
		args+=("--cargo-arg=--test=$t")
	done
	[[ $lib == 1 ]] && args+=("--cargo-arg=--lib")
	if [[ $list == 1 ]]; then
		cargo "${args[@]}" --list
		return
	fi
	mkdir -p "$OUT/$name"
	[[ ${MUTANTS_ITERATE:-0} == 1 ]] && args+=(--iterate)
	[[ -n ${MUTANTS_TIMEOUT:-} ]] && args+=(--timeout "$MUTANTS_TIMEOUT")
	echo "== $name: cargo ${args[*]} -o $OUT/$name"
	nice -n 15 cargo "${args[@]}" -o "$OUT/$name" || true
	echo "== $name: $(cat "$OUT/$name/mutants.out/caught.txt" | wc -l) caught," \
		"$(cat "$OUT/$name/mutants.out/missed.txt" | wc -l) missed," \
		"$(cat "$OUT/$name/mutants.out/unviable.txt" | wc -l) unviable," \
		"$(cat "$OUT/$name/mutants.out/timeout.txt" | wc -l) timeout"
}

GROUPS="superblocks metadata checkpoint sync membership bitmap assembly gates intent sb0 setup report validate config"
list=0
if [[ ${1:-} == --list ]]; then
	list=1
	shift
fi
for g in ${@:-$GROUPS}; do
	run_group "$g" "$list"
done
