#!/usr/bin/env bash
# The async-callback throughput benchmark (BENCHMARKS.md): a release libmdraid installed into a
# temporary prefix, bench_async.c built with cc -O2 against it, then run.
#   ffi/bench/run.sh [reads-per-round] [rounds]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PREFIX=$ROOT/target/ffi-bench/prefix
make -s -C "$ROOT/ffi" install PREFIX="$PREFIX" PROFILE=release
export PKG_CONFIG_PATH=$PREFIX/lib/pkgconfig
# shellcheck disable=SC2046
cc -O2 -Wall -Wextra -o "$ROOT/target/ffi-bench/bench_async" "$ROOT/ffi/bench/bench_async.c" \
	$(pkg-config --cflags --libs mdraid) -Wl,-rpath,"$PREFIX/lib" -lpthread
"$ROOT/target/ffi-bench/bench_async" "$@"
