#!/usr/bin/env bash
# The C tests of libmdraid: install into a temporary prefix, compile every test with `cc`
# against the installed header and `pkg-config --cflags --libs mdraid`, and run them plainly,
# under AddressSanitizer (+UBSan) and under valgrind; then the fixture round trips and the
# mdadm cross-check, and the examples.
#
#   ffi/tests/run.sh            everything (scripts/test.sh runs it as the `ffi` step)
#   ffi/tests/run.sh quick      plain runs only (no ASan, no valgrind)
#
# Environment: MDADM_BIN (default .cache/mdadm/sbin/mdadm; required: MDRAID_REQUIRE_MDADM=1
# makes its absence a failure, as in CI), MDRAID_FIXTURES (default ../shared/fixtures),
# MDRAID_FFI_PROFILE (debug|release, default debug), CC (default cc).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
MODE=${1:-full}
CC=${CC:-cc}
PROFILE=${MDRAID_FFI_PROFILE:-debug}
FIXTURES=${MDRAID_FIXTURES:-$ROOT/../shared/fixtures}
MDADM=${MDADM_BIN:-$ROOT/.cache/mdadm/sbin/mdadm}
# test_api provokes a caught panic on purpose: keep its report to one line.
export RUST_BACKTRACE=0
WORK=$ROOT/target/ffi-tests
PREFIX=$WORK/prefix

say() { printf '\n--- %s\n' "$*"; }
fail() { echo "FAILED: $*" >&2; exit 1; }

rm -rf "$WORK"
mkdir -p "$WORK/bin" "$WORK/data"

say "install into $PREFIX (profile $PROFILE)"
make -s -C ffi install PREFIX="$PREFIX" PROFILE="$PROFILE"
export PKG_CONFIG_PATH=$PREFIX/lib/pkgconfig
CFLAGS="$(pkg-config --cflags mdraid) -std=c11 -O1 -g -Wall -Wextra -Werror -pthread"
LIBS="$(pkg-config --libs mdraid) -Wl,-rpath,$PREFIX/lib -lpthread"
echo "pkg-config: $(pkg-config --modversion mdraid): $(pkg-config --cflags --libs mdraid)"
[[ $(pkg-config --modversion mdraid) == "$(sed -n 's/^#define MDRAID_VERSION "\(.*\)"/\1/p' "$PREFIX/include/mdraid.h")" ]] ||
	fail "mdraid.pc and mdraid.h disagree on the version"
readelf -d "$PREFIX/lib/libmdraid.so" | grep -q 'SONAME.*libmdraid.so.0' || fail "no SONAME libmdraid.so.0"

TESTS=(test_api test_async test_fixtures test_create_files)
for t in "${TESTS[@]}"; do
	# shellcheck disable=SC2086
	$CC $CFLAGS -o "$WORK/bin/$t" "ffi/tests/c/$t.c" $LIBS
	# shellcheck disable=SC2086
	$CC $CFLAGS -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all \
		-o "$WORK/bin/$t.asan" "ffi/tests/c/$t.c" $LIBS
done
# The static library links too (Libs.private for its system dependencies).
# shellcheck disable=SC2086
$CC $CFLAGS -o "$WORK/bin/mirror-static" examples/c/mirror.c "$PREFIX/lib/libmdraid.a" \
	$(pkg-config --static --libs-only-other --libs-only-l mdraid | sed 's/-lmdraid//')
# shellcheck disable=SC2086
$CC $CFLAGS -o "$WORK/bin/mirror" examples/c/mirror.c $LIBS
# shellcheck disable=SC2086
$CC $CFLAGS -o "$WORK/bin/event_loop" examples/c/event_loop.c $LIBS

# Fixture images, decompressed once; a manifest of each fixture's members and data.
say "fixtures from $FIXTURES"
[[ -d $FIXTURES ]] || fail "no fixtures at $FIXTURES (set MDRAID_FIXTURES)"
manifest() { # $1 = image dir root
	python3 - "$FIXTURES" "$1" <<'EOF'
import json, os, sys
fx_root, img_root = sys.argv[1], sys.argv[2]
for name in sorted(os.listdir(fx_root)):
    d = os.path.join(fx_root, name)
    j = os.path.join(d, "fixture.json")
    if not os.path.isfile(j):
        continue
    f = json.load(open(j))
    print("FIXTURE", name, d, os.path.join(img_root, name))
    for m in f["members"]:
        print("MEMBER", m)
    for w in f.get("writes", []):
        print("WRITE", w["gen"], w["array_offset"], w["bytes"], w["scenario"])
    print("END")
EOF
}
unpack() { # $1 = image dir root
	for d in "$FIXTURES"/*/; do
		n=$(basename "$d")
		mkdir -p "$1/$n"
		for x in "$d"/*.img.xz; do xz -dc "$x" >"$1/$n/$(basename "$x" .xz)"; done
	done
}

run_fixtures() { # $1 = runner prefix (e.g. valgrind ...), $2 = binary suffix
	local dir=$WORK/fx$2
	rm -rf "$dir"
	unpack "$dir"
	manifest "$dir" >"$dir/manifest"
	$1 "$WORK/bin/test_fixtures$2" "$dir/manifest"
}

VALGRIND=(valgrind -q --leak-check=full --errors-for-leak-kinds=definite,possible --error-exitcode=1)

say "test_api"
"$WORK/bin/test_api" "$WORK/data"
say "test_async"
"$WORK/bin/test_async" 20
say "test_fixtures"
run_fixtures "" ""
say "examples"
"$WORK/bin/mirror" "$WORK/data/ex-a.img" "$WORK/data/ex-b.img"
"$WORK/bin/mirror-static" "$WORK/data/ex-c.img" "$WORK/data/ex-d.img"
"$WORK/bin/event_loop"

# Round trip: md's arrays after assembly, I/O and a clean stop through the C ABI: Debian's
# mdadm reads each member exactly as `mdraid examine` prints it.
CLI=$ROOT/target/debug/mdraid
[[ -x $CLI ]] || cargo build -q -p mdraid-cli --locked
mdadm_examine() { "$MDADM" --examine --homehost=mdlab "$1" 2>&1; }
if [[ -x $MDADM ]]; then
	say "mdadm $("$MDADM" --version 2>&1 | head -1): fixtures after the round trip"
	"$MDADM" --version 2>&1 | grep -q 'v4\.2' || fail "need mdadm 4.2 at $MDADM"
	n=0
	for img in "$WORK"/fx/*/*.img; do
		diff -u <(mdadm_examine "$img") <("$CLI" examine --homehost mdlab "$img") ||
			fail "mdadm and mdraid examine differ on $img"
		n=$((n + 1))
	done
	echo "$n fixture members: mdadm --examine == mdraid examine"
	say "arrays created through the C ABI: mdadm --examine == mdraid examine == mdraid_examine"
	"$WORK/bin/test_create_files" "$WORK/data"
	for img in "$WORK"/data/v*-[01].img; do
		diff -u <(mdadm_examine "$img") <("$CLI" examine --homehost mdlab "$img") ||
			fail "mdadm and mdraid examine differ on $img"
		diff -u <("$CLI" examine --homehost mdlab "$img") "$img.c-examine" ||
			fail "mdraid examine and mdraid_examine differ on $img"
		echo "ok $(basename "$img")"
	done
elif [[ ${MDRAID_REQUIRE_MDADM:-0} == 1 ]]; then
	fail "no mdadm at $MDADM (scripts/test.sh fetches Debian's)"
else
	echo "WARNING: no mdadm at $MDADM: the mdadm cross-check did NOT run (set MDADM_BIN)" >&2
fi

[[ $MODE == quick ]] && { echo "C tests passed (quick)"; exit 0; }

say "AddressSanitizer + UBSan"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
"$WORK/bin/test_api.asan" "$WORK/data"
"$WORK/bin/test_async.asan" 10
run_fixtures "" ".asan"

say "valgrind"
command -v valgrind >/dev/null || fail "valgrind is not installed"
"${VALGRIND[@]}" "$WORK/bin/test_api" "$WORK/data"
"${VALGRIND[@]}" "$WORK/bin/test_async" 3
"${VALGRIND[@]}" "$WORK/bin/event_loop"
echo "C tests passed"
