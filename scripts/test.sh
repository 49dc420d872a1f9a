#!/usr/bin/env bash
# THE test command: everything CI checks, on a fresh Debian 12 machine or a developer's.
#
#   scripts/test.sh             run every step, stop at the first failure
#   scripts/test.sh STEP...     run only these steps (e.g. `scripts/test.sh test kernel_build`)
#   scripts/test.sh --list      list the steps
#
# Environment: SKIP_STEPS="a b" skips steps; MDRAID_FIXTURES overrides the fixtures folder
# (default ../shared/fixtures from the repository root); CLIPPY_STRICT=0 makes clippy warnings
# non-fatal.
#
# Adding a step: write a `step_<name>` function below and add <name> to STEPS in the order it
# should run. A step fails by returning non-zero (or by any failing command: `set -e` is on).
# Use `need_apt PKG...` inside a step for Debian packages it needs.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ROOT=$(repo_root)
cd "$ROOT"

STEPS=(
	setup
	fmt
	build
	build_nostd
	clippy
	doc
	test
	python
	kobj_selftest
	kernel_build
	kernel_smoke
	kernel_qemu
	kernel_gdb
	md_grow
	fuzz_check
	ffi
)

# Debian packages the steps need; installed together in `setup` (one apt-get update at most).
APT_PACKAGES=(xz-utils gcc g++ binutils rustc-web rust-web-src)

FIXTURES=${MDRAID_FIXTURES:-$ROOT/../shared/fixtures}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

need_apt() { ensure_apt_packages "$@"; }

# --- steps -----------------------------------------------------------------------------------

step_setup() {
	need_apt "${APT_PACKAGES[@]}"
	command -v cargo >/dev/null || die "no cargo on PATH (install rustup's stable toolchain)"
	echo "cargo:  $(cargo -V)"
	echo "rustc:  $(rustc -V)"
	echo "kernel rustc: $(/usr/bin/rustc -V 2>/dev/null || echo missing)"
	echo "gcc:    $(gcc -dumpfullversion)"
	if [[ -d $FIXTURES ]]; then
		echo "fixtures: $(cd "$FIXTURES" && pwd) ($(find "$FIXTURES" -mindepth 1 -maxdepth 1 -type d | wc -l) arrays)"
	else
		die "no fixtures at $FIXTURES (set MDRAID_FIXTURES)"
	fi
}

step_fmt() {
	if ! cargo fmt --version >/dev/null 2>&1; then
		warn "rustfmt is not installed: skipping the format check"
		return 0
	fi
	cargo fmt --all --check
	cargo fmt --manifest-path kmod-shim/rust/Cargo.toml --check
	cargo fmt --manifest-path fuzz/Cargo.toml --check
	cargo fmt --manifest-path python/Cargo.toml --check
}

step_build() {
	cargo build --workspace --all-targets --locked
}

step_build_nostd() {
	cargo build -p mdraid --no-default-features --locked
}

step_clippy() {
	if ! cargo clippy --version >/dev/null 2>&1; then
		warn "clippy is not installed: skipping lints"
		return 0
	fi
	local deny=(-D warnings)
	[[ ${CLIPPY_STRICT:-1} == 0 ]] && deny=()
	cargo clippy --workspace --all-targets --locked -- "${deny[@]}"
	cargo clippy -p mdraid --no-default-features --locked -- "${deny[@]}"
}

# Rustdoc of the core: broken or ambiguous intra-doc links fail the build.
step_doc() {
	RUSTDOCFLAGS='-D warnings' cargo doc -p mdraid --no-deps --locked
}

# Debian's mdadm (the real thing the CLI is held against), unpacked into .cache without
# installing it: the cross-check tests run `mdadm --examine` on arrays mdraid made.
MDADM_ROOT=$ROOT/.cache/mdadm
fetch_mdadm() {
	[[ -x $MDADM_ROOT/sbin/mdadm ]] && return 0
	local debs=$ROOT/.cache/debs
	mkdir -p "$debs"
	if ! (cd "$debs" && apt-get download mdadm >/dev/null 2>&1); then
		as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
		(cd "$debs" && apt-get download mdadm) || die "cannot download Debian's mdadm"
	fi
	rm -rf "$MDADM_ROOT"
	dpkg -x "$(ls -t "$debs"/mdadm_*.deb | head -1)" "$MDADM_ROOT"
	"$MDADM_ROOT/sbin/mdadm" --version
}

# MDRAID_REQUIRE_URING=1: io_uring and O_DIRECT work on the machines CI runs on (checked on
# the Debian 12 build hosts), so a test the kernel refuses them to fails instead of passing.
step_test() {
	fetch_mdadm
	MDADM_BIN=$MDADM_ROOT/sbin/mdadm MDRAID_REQUIRE_MDADM=1 MDRAID_FIXTURES=$FIXTURES \
		MDRAID_REQUIRE_URING=1 cargo test --workspace --locked
}

# The Python package: built by `pip install ./python` into a fresh venv (maturin, the build
# backend, comes from PyPI), imported from outside the source tree, its stubs checked against
# the compiled module (mypy stubtest), its crate linted, and its pytest suite run (fixtures,
# lifecycle, Python devices, GIL, misuse, hypothesis property test, README example).
# python/ is its own cargo workspace (pyo3's extension-module leaves libpython unlinked, which
# test binaries of the root workspace could not link), so not --locked, like fuzz/.
step_python() {
	need_apt python3-venv
	local venv=$ROOT/target/python-venv
	rm -rf "$venv"
	python3 -m venv "$venv"
	"$venv/bin/pip" install --quiet --disable-pip-version-check ./python
	"$venv/bin/pip" install --quiet --disable-pip-version-check pytest hypothesis mypy
	(cd / && "$venv/bin/python" -c 'import mdraid; print("import mdraid:", mdraid.__version__, mdraid.__file__)')
	(cd / && "$venv/bin/python" -m mypy.stubtest mdraid._native)
	if cargo clippy --version >/dev/null 2>&1; then
		local deny=(-D warnings)
		[[ ${CLIPPY_STRICT:-1} == 0 ]] && deny=()
		PYO3_PYTHON=$venv/bin/python cargo clippy --manifest-path python/Cargo.toml --all-targets -- "${deny[@]}"
	fi
	# From the repository root, so `import mdraid` finds the installed package, not python/mdraid.
	MDRAID_FIXTURES=$FIXTURES "$venv/bin/python" -m pytest -q -p no:cacheprovider python/tests
}

step_kobj_selftest() {
	scripts/check-kobj.sh --self-test
}

# Builds target/kernel/mdraid-core.o with Debian's rustc and checks it (check-kobj.sh).
step_kernel_build() {
	scripts/kernel-build.sh
}

# Links the kernel object into a userspace program and runs it on fixture superblocks.
step_kernel_smoke() {
	local obj=target/kernel/mdraid-core.o dir
	[[ -f $obj ]] || scripts/kernel-build.sh
	dir=target/kernel/smoke
	mkdir -p "$dir"
	gcc -O2 -Wall -Wextra -Werror -no-pie -o "$dir/kobj_smoke" kmod-shim/tests/kobj_smoke.c "$obj"
	xz -dc "$FIXTURES/r1-v1.2-bitmap/vda.img.xz" >"$dir/sb1.img"
	xz -dc "$FIXTURES/r1-v0.90/vda.img.xz" >"$dir/sb0.img"
	"$dir/kobj_smoke" "$dir/sb1.img" 4096 "$dir/sb0.img"
	rm -f "$dir/sb1.img" "$dir/sb0.img"
}

# The kernel module under QEMU on Debian's 6.1 and 6.12 kernels, next to the kernel's md
# (kmod-shim/qemu/run.sh: fetches kernels and tools with apt-get download + dpkg -x, builds
# mdraid_k.ko, boots each kernel once and runs every guest scenario).
step_kernel_qemu() {
	need_apt xz-utils gcc-12 make libelf1 debian-archive-keyring
	kmod-shim/qemu/run.sh
}

# The scripted gdb session: QEMU's gdb stub, the module's symbols at the guest's section
# addresses, a breakpoint in the probe hit with mdr0's dev_t, then in the core's Registry::probe.
step_kernel_gdb() {
	need_apt gdb
	kmod-shim/qemu/run.sh --kernel 6.1 --gdb-test
}

# `mdraid grow` against the kernel's md and mdadm --grow doing the same grow (6.1 under QEMU,
# the kernel_qemu step's cache): examine and examine-bitmap of both sides agree.
step_md_grow() {
	need_apt xz-utils
	scripts/md-grow-check.sh
}

# The fuzz targets compile (they are run by scripts/fuzz.sh, not here). Not --locked: fuzz/ has
# its own Cargo.lock, which would go stale whenever the core gains a dependency.
step_fuzz_check() {
	cargo check --manifest-path fuzz/Cargo.toml --bins
}

# Not in STEPS (CI does not run it; it takes ~90 s of a shared machine): `scripts/test.sh bench`
# runs `mdraid bench --json` in release mode, with Debian's fio as the CLI baselines' tool.
step_bench() {
	need_apt fio
	cargo build --release -p mdraid-cli --locked
	target/release/mdraid bench --json
}

# libmdraid (ffi/): the committed header must be what the pinned cbindgen generates from the
# Rust source; then the C tests (ffi/tests/run.sh): installed into a temporary prefix, compiled
# with cc + pkg-config, run plainly, under ASan+UBSan and under valgrind, plus the fixture round
# trips and the mdadm cross-check of arrays created through the C ABI.
CBINDGEN_VERSION=0.27.0
step_ffi() {
	need_apt valgrind pkg-config xz-utils python3
	if [[ "$(cbindgen --version 2>/dev/null)" != "cbindgen $CBINDGEN_VERSION" ]]; then
		cargo install cbindgen --version "=$CBINDGEN_VERSION" --locked --quiet
	fi
	make -s -C ffi check-header || die "ffi/include/mdraid.h is stale: run 'make -C ffi header'"
	fetch_mdadm
	MDADM_BIN=$MDADM_ROOT/sbin/mdadm MDRAID_REQUIRE_MDADM=1 MDRAID_FIXTURES=$FIXTURES ffi/tests/run.sh
}

# --- driver ----------------------------------------------------------------------------------

if [[ ${1:-} == --list ]]; then
	printf '%s\n' "${STEPS[@]}"
	exit 0
fi
if [[ ${1:-} == -h || ${1:-} == --help ]]; then
	sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
	exit 0
fi

selected=("$@")
if [[ ${#selected[@]} -eq 0 ]]; then
	selected=("${STEPS[@]}")
fi
for s in "${selected[@]}"; do
	declare -F "step_$s" >/dev/null || die "unknown step '$s' (steps: ${STEPS[*]})"
done

declare -a summary=()
total_start=$SECONDS
for s in "${selected[@]}"; do
	if [[ " ${SKIP_STEPS:-} " == *" $s "* ]]; then
		summary+=("$(printf '%-16s skipped' "$s")")
		continue
	fi
	printf '\n\033[1m===== %s =====\033[0m\n' "$s"
	start=$SECONDS
	# The step runs in a subshell (isolating its `cd`s) with `set -e` in force. Not `(...) || rc=$?`:
	# bash ignores `set -e` inside anything on the left of `||`.
	set +e
	(
		set -e
		step_"$s"
	)
	rc=$?
	set -e
	took=$((SECONDS - start))
	if [[ $rc -ne 0 ]]; then
		summary+=("$(printf '%-16s FAILED (exit %d) after %ds' "$s" "$rc" "$took")")
		printf '\n===== summary =====\n'
		printf '%s\n' "${summary[@]}"
		printf '\nFAILED: step %s (exit %d); total %ds\n' "$s" "$rc" $((SECONDS - total_start))
		exit 1
	fi
	summary+=("$(printf '%-16s ok %5ds' "$s" "$took")")
done

printf '\n===== summary =====\n'
printf '%s\n' "${summary[@]}"
printf '\nPASSED: %d steps in %ds\n' "${#selected[@]}" $((SECONDS - total_start))
