#!/usr/bin/env bash
# Builds the core for the Linux kernel (DESIGN.md §4) and links it into one relocatable object.
#
#   scripts/kernel-build.sh            build target/kernel/mdraid-core.o and check it
#   scripts/kernel-build.sh --no-check build only
#
# Recipe: Debian's rustc-web (/usr/bin/rustc, sysroot /usr; 1.96.0+dfsg1-1~deb12u2 in bookworm at
# the time of writing, 1.85 with stale apt lists: both work) and rust-web-src (the library sources
# at /usr/lib/rustlib/src/rust -> /usr/src/rustc-<version>, which is where -Zbuild-std looks:
# `<sysroot>/lib/rustlib/src/rust/library`; no extra setting needed), driven by rustup's cargo:
#
#   RUSTFLAGS="-C relocation-model=static -C code-model=kernel -Z plt=yes -C force-unwind-tables=no <HARDEN>" \
#   RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 cargo build --release \
#     -Zbuild-std=core,alloc --target x86_64-unknown-none   (of kmod-shim/rust)
#
# -Z plt=yes: without it (checked with 1.85 and 1.96) calls to memcpy/memset, which live in
# another crate (compiler_builtins), go through the GOT (R_X86_64_GOTPCREL), which a kernel module
# cannot resolve. The target itself already
# has soft-float, no SSE/MMX and no red zone.
#
# kmod-shim/rust is a no_std staticlib over `mdraid` (default-features = false) that exports the
# `mdraid_k_*` entry points and routes the allocator and panics to C hooks. Its archive is linked
# with `ld -r --gc-sections -u <each mdraid_k_* export>`, then objcopy drops .eh_frame (the kernel
# unwinds with ORC, not DWARF) and makes every symbol but `mdraid_k_*` local, so nothing in the
# object (e.g. compiler_builtins' weak memcpy) can clash with or override kernel symbols.
#
# Environment: KERNEL_RUSTC (default /usr/bin/rustc), CARGO_TARGET_DIR (default target/kernel).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ROOT=$(repo_root)
cd "$ROOT"

CHECK=1
[[ ${1:-} == --no-check ]] && CHECK=0

KERNEL_RUSTC=${KERNEL_RUSTC:-/usr/bin/rustc}
TARGET=x86_64-unknown-none
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target/kernel}
OUT=$CARGO_TARGET_DIR/mdraid-core.o
ARCHIVE=$CARGO_TARGET_DIR/$TARGET/release/libmdraid_kernel.a

if [[ $KERNEL_RUSTC == /usr/bin/rustc ]]; then
	ensure_apt_packages rustc-web rust-web-src binutils
fi
[[ -x $KERNEL_RUSTC ]] || die "no rustc at $KERNEL_RUSTC"
sysroot=$("$KERNEL_RUSTC" --print sysroot)
libsrc=$sysroot/lib/rustlib/src/rust/library
[[ -f $libsrc/core/Cargo.toml ]] ||
	die "$KERNEL_RUSTC has no library sources at $libsrc (install rust-web-src)"
say "kernel rustc: $KERNEL_RUSTC ($("$KERNEL_RUSTC" -V)), sysroot $sysroot, sources $(readlink -f "$libsrc")"
say "cargo: $(command -v cargo) ($(cargo -V))"

# Hardening the 6.12 kernel's objtool insists on (CONFIG_X86_KERNEL_IBT, CONFIG_MITIGATION_
# RETPOLINE/RETHUNK/SLS), harmless on 6.1 (endbr64 is a NOP there, the thunks exist on both):
#  -Z cf-protection=branch   endbr64 at every function entry (IBT: C reaches us through
#                            pointers, and Rust's vtables/fn pointers land on these entries)
#  -C jump-tables=no         no switch tables (indirect jumps to non-endbr targets)
#  -Z retpoline-external-thunk indirect calls/jumps through __x86_indirect_thunk_<reg>
#  -Z function-return=thunk-extern
#                            every `ret` becomes `jmp __x86_return_thunk`
#  +harden-sls-ret,+harden-sls-ijmp
#                            int3 after ret and indirect jumps (straight-line speculation)
HARDEN="-Z cf-protection=branch -C jump-tables=no -Z function-return=thunk-extern -Z retpoline-external-thunk"
HARDEN+=" -C target-feature=+harden-sls-ret,+harden-sls-ijmp"
say "building kmod-shim/rust for $TARGET"
RUSTFLAGS="-C relocation-model=static -C code-model=kernel -Z plt=yes -C force-unwind-tables=no $HARDEN" \
	RUSTC=$KERNEL_RUSTC RUSTC_BOOTSTRAP=1 \
	cargo build --manifest-path kmod-shim/rust/Cargo.toml --release \
	-Zbuild-std=core,alloc --target "$TARGET"

[[ -f $ARCHIVE ]] || die "cargo built no $ARCHIVE"
mapfile -t exports < <(nm -g --defined-only "$ARCHIVE" 2>/dev/null |
	awk '$2 == "T" && $3 ~ /^mdraid_k_/ {print $3}' | sort -u)
[[ ${#exports[@]} -gt 0 ]] || die "$ARCHIVE exports no mdraid_k_* function"
say "linking ${#exports[@]} exports: ${exports[*]}"
undef_args=()
for s in "${exports[@]}"; do undef_args+=(-u "$s"); done

# objtool (6.12, IBT) needs to see that the allocation-failure path never returns: alloc's
# handle_alloc_error ends in a call to rustc's allocator shim, which only tail-jumps to the
# default handler (objtool cannot follow that sibling call: "unexpected end of section").
# The call is redirected (ld --wrap) to a stub that calls the default handler directly and
# ends in ud2.
oom_shim=$(nm "$ARCHIVE" 2>/dev/null | awk '$2 == "T" && /___rust_alloc_error_handler$/ && !f {print $3; f = 1}')
oom_default=$(nm "$ARCHIVE" 2>/dev/null | awk '$2 == "T" && /___rdl_alloc_error_handler$/ && !f {print $3; f = 1}')
wrap_args=()
if [[ -n $oom_shim && -n $oom_default ]]; then
	cat >"$CARGO_TARGET_DIR/oom.s" <<-ASM
		.section .note.GNU-stack,"",@progbits
		.section .text.mdraid_k_oom,"ax",@progbits
		.globl __wrap_$oom_shim
		.type __wrap_$oom_shim,@function
		__wrap_$oom_shim:
		endbr64
		call $oom_default
		ud2
		.size __wrap_$oom_shim, .-__wrap_$oom_shim
	ASM
	as -o "$CARGO_TARGET_DIR/oom.o" "$CARGO_TARGET_DIR/oom.s"
	wrap_args=(--wrap="$oom_shim" "$CARGO_TARGET_DIR/oom.o")
fi
raw=$CARGO_TARGET_DIR/mdraid-core.raw.o
ld -r --gc-sections "${undef_args[@]}" -o "$raw" "${wrap_args[@]}" "$ARCHIVE"
objcopy --remove-section=.eh_frame --remove-section=.rela.eh_frame --remove-section=.comment \
	--wildcard --keep-global-symbol='mdraid_k_*' "$raw" "$OUT"
rm -f "$raw"
say "wrote $OUT ($(stat -c %s "$OUT") bytes, $(size "$OUT" | awk 'NR==2 {print $1 " text, " $2 " data, " $3 " bss"}'))"

if [[ $CHECK -eq 1 ]]; then
	say "checking $OUT"
	"$ROOT/scripts/check-kobj.sh" "$OUT"
fi
