#!/usr/bin/env bash
# Runs the cargo-fuzz targets in fuzz/ (a local developer tool; CI does not run it).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]    default: 60 s each, every target
#
# cargo-fuzz needs nightly-only rustc flags (-Zsanitizer=address, sancov); the stable toolchain
# accepts them with RUSTC_BOOTSTRAP=1. Seeds: the superblocks of the fixtures are copied into
# fuzz/corpus/<target>/ on the first run. Crashes land in fuzz/artifacts/<target>/.
# Environment: FUZZ_ARGS (extra libFuzzer flags, e.g. "-max_len=8192").
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ROOT=$(repo_root)
cd "$ROOT"

SECS=${1:-60}
shift || true
mapfile -t ALL < <(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^mdraid-fuzz$')
TARGETS=("$@")
[[ ${#TARGETS[@]} -gt 0 ]] || TARGETS=("${ALL[@]}")

export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version >/dev/null 2>&1; then
	say "installing cargo-fuzz"
	cargo install cargo-fuzz --locked
fi
ensure_apt_packages xz-utils g++

FIXTURES=${MDRAID_FIXTURES:-$ROOT/../shared/fixtures}

# seed TARGET: copies superblock-shaped samples of the fixtures into the target's corpus.
seed() {
	local t=$1 dir=fuzz/corpus/$1 fx img sectors
	[[ -d $dir && -n $(ls -A "$dir" 2>/dev/null) ]] && return 0
	mkdir -p "$dir"
	[[ -d $FIXTURES ]] || {
		warn "no fixtures at $FIXTURES: $t starts from an empty corpus"
		return 0
	}
	local tmp
	tmp=$(mktemp -d)
	for fx in "$FIXTURES"/*/; do
		fx=${fx%/}
		[[ -f $fx/vda.img.xz ]] || continue
		img=$tmp/$(basename "$fx").img
		xz -dc "$fx/vda.img.xz" >"$img"
		sectors=$(($(stat -c %s "$img") / 512))
		case $t in
		sb1)
			# 1.1 at sector 0, 1.2 at 8, 1.0 at (sectors - 16) & ~7; 4 KiB each.
			for s in 0 8 $(((sectors - 16) & ~7)); do
				dd if="$img" of="$dir/$(basename "$fx")-s$s" bs=512 skip="$s" count=8 status=none
			done
			;;
		sb0)
			dd if="$img" of="$dir/$(basename "$fx")" bs=512 skip=$(((sectors & ~127) - 128)) \
				count=8 status=none
			;;
		bitmap)
			# 1.1/1.2 bitmaps start 8 sectors after the superblock; 64 KiB covers the fixtures'.
			for s in 8 16; do
				dd if="$img" of="$dir/$(basename "$fx")-s$s" bs=512 skip="$s" count=128 status=none
			done
			;;
		badblocks)
			# shift byte 0, then the log area (1.2: 8 sectors at superblock + 8 sectors).
			{
				printf '\0'
				dd if="$img" bs=512 skip=16 count=8 status=none
			} >"$dir/$(basename "$fx")"
			;;
		esac
		rm -f "$img"
	done
	rm -rf "$tmp"
	# Drop all-zero samples (places where a fixture has no such structure).
	local f
	for f in "$dir"/*; do
		[[ -f $f ]] || continue
		[[ $(tr -d '\0' <"$f" | wc -c) -gt 0 ]] || rm -f "$f"
	done
}

declare -A EXECS=()
declare -A STATUS=()
for t in "${TARGETS[@]}"; do
	seed "$t"
	say "fuzzing $t for ${SECS}s (corpus: $(find "fuzz/corpus/$t" -type f | wc -l) files)"
	log=$(mktemp)
	# -print_final_stats=1 prints stat::number_of_executed_units at the end.
	set +e
	# shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
	cargo fuzz run --fuzz-dir fuzz "$t" "fuzz/corpus/$t" -- \
		-max_total_time="$SECS" -print_final_stats=1 ${FUZZ_ARGS:-} \
		2>&1 | tee "$log" | grep --line-buffered -E '(pulse|DONE|INITED|panicked|SUMMARY|ERROR|Finished)'
	rc=${PIPESTATUS[0]}
	set -e
	EXECS[$t]=$(awk '/stat::number_of_executed_units/ {print $2}' "$log" | tail -1)
	STATUS[$t]=$([[ $rc -eq 0 ]] && echo ok || echo "FAILED (rc $rc, see fuzz/artifacts/$t)")
	rm -f "$log"
done

echo
printf '%-10s %14s  %s\n' target executions status
for t in "${TARGETS[@]}"; do
	printf '%-10s %14s  %s\n' "$t" "${EXECS[$t]:-?}" "${STATUS[$t]}"
done
for t in "${TARGETS[@]}"; do [[ ${STATUS[$t]} == ok ]] || exit 1; done
