#!/usr/bin/env bash
# Checks that a relocatable object is fit to be linked into a Linux x86-64 kernel module.
#
#   scripts/check-kobj.sh OBJ.o     check one object (exit 1 and say why when it is unfit)
#   scripts/check-kobj.sh --self-test
#                                   build good and bad C objects and check that the checker
#                                   accepts and rejects them (run by scripts/test.sh)
#
# The rules (DESIGN.md §4):
#  1. Undefined symbols: only the C hooks the module provides and the four mem* functions.
#     - mdraid_k_alloc / mdraid_k_free: the global allocator (kmalloc / kfree on the C side).
#     - mdraid_k_panic: the panic handler's non-returning error path.
#     - memcpy / memset / memmove / memcmp: every x86-64 kernel defines and exports these, and
#       compilers may emit calls to them for any struct copy or comparison. (Today the object
#       carries compiler_builtins' own copies, localized, so none is actually undefined.)
#       `bcmp` is NOT allowed: the kernel has it only on some versions/configs; LLVM emits it
#       only for targets that declare it, which x86_64-unknown-none does not.
#     - __x86_indirect_thunk_<reg> / __x86_return_thunk: the retpoline and return thunks the
#       hardened build calls instead of indirect branches and `ret` (kernel-build.sh).
#  2. Relocation types: only R_X86_64_64, R_X86_64_32S, R_X86_64_PC32, R_X86_64_PLT32 — what the
#     module loader and a `-mcmodel=kernel` link resolve. GOTPCREL and friends need a GOT,
#     which a kernel module does not have. Relocations of debug sections (never loaded, only
#     read by gdb) are not checked.
#  3. No SIMD: no %xmm/%ymm/%zmm (SSE/AVX) or %mm (MMX) or %k (AVX-512 mask) register appears in
#     the disassembly: the kernel does not save FPU state around ordinary code.
#  4. Sanity: an ELF64 x86-64 relocatable object defining at least one global `mdraid_k_*`.
#  Reported, not enforced: the largest stack frame (the kernel warns above 2048 bytes).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ALLOWED_UNDEFINED=(mdraid_k_alloc mdraid_k_free mdraid_k_panic mdraid_k_dev_io memcpy memset memmove memcmp)
# The kernel's retpoline and return thunks (kernel-build.sh's hardening flags), exported by
# every x86-64 kernel built with CONFIG_RETPOLINE/RETHUNK (both Debian kernels).
ALLOWED_THUNKS='^(__x86_indirect_thunk_(r([89]|1[0-5])|[re](ax|bx|cx|dx|si|di|bp))|__x86_return_thunk)$'
ALLOWED_RELOCS=(R_X86_64_64 R_X86_64_32S R_X86_64_PC32 R_X86_64_PLT32)
FRAME_WARN=2048

in_list() {
	local x=$1 y
	shift
	for y in "$@"; do [[ $x == "$y" ]] && return 0; done
	return 1
}

# check_object OBJ [--quiet]: prints findings; returns 0 when fit, 1 when not.
check_object() {
	local obj=$1 quiet=${2:-} bad=0 s t
	local -a found=()
	[[ -f $obj ]] || {
		echo "FAIL: $obj: no such file"
		return 1
	}
	log() { [[ $quiet == --quiet ]] || echo "$@"; }

	# 4. ELF header sanity.
	local hdr
	hdr=$(readelf -hW "$obj" 2>&1) || {
		echo "FAIL: $obj is not an ELF file: $hdr"
		return 1
	}
	if ! grep -qE 'Class:[[:space:]]+ELF64' <<<"$hdr" ||
		! grep -qE 'Type:[[:space:]]+REL ' <<<"$hdr" ||
		! grep -qE 'Machine:[[:space:]]+Advanced Micro Devices X86-64' <<<"$hdr"; then
		echo "FAIL: $obj is not an ELF64 x86-64 relocatable object:"
		grep -E 'Class|Type|Machine' <<<"$hdr" | sed 's/^/    /'
		bad=1
	fi
	local exports
	exports=$(nm -g --defined-only "$obj" | awk '$3 ~ /^mdraid_k_/ {print $3}')
	if [[ -z $exports ]]; then
		echo "FAIL: $obj defines no global mdraid_k_* entry point"
		bad=1
	else
		log "ok: exports: $(tr '\n' ' ' <<<"$exports")"
	fi

	# 1. Undefined symbols.
	found=()
	while read -r s; do
		[[ -n $s ]] || continue
		in_list "$s" "${ALLOWED_UNDEFINED[@]}" || [[ $s =~ $ALLOWED_THUNKS ]] || found+=("$s")
	done < <(nm -u "$obj" | awk '{print $NF}' | sort -u)
	if [[ ${#found[@]} -gt 0 ]]; then
		echo "FAIL: undefined symbols outside the allowed hooks (${ALLOWED_UNDEFINED[*]}):"
		printf '    %s\n' "${found[@]}"
		bad=1
	else
		log "ok: undefined symbols: $(nm -u "$obj" | awk '{print $NF}' | sort -u | tr '\n' ' ')"
	fi

	# 2. Relocation types.
	found=()
	local -A count=()
	while read -r t; do
		count[$t]=$((${count[$t]:-0} + 1))
	done < <(readelf -rW "$obj" | awk '/^Relocation section/ {dbg = ($3 ~ /debug/)}
		!dbg && $1 ~ /^[0-9a-f]+$/ && $3 ~ /^R_/ {print $3}')
	for t in "${!count[@]}"; do
		in_list "$t" "${ALLOWED_RELOCS[@]}" || found+=("$t")
	done
	if [[ ${#found[@]} -gt 0 ]]; then
		echo "FAIL: relocation types outside ${ALLOWED_RELOCS[*]}:"
		for t in "${found[@]}"; do
			echo "    $t (${count[$t]}x), e.g.:"
			readelf -rW "$obj" | awk -v t="$t" '/^Relocation section/ {sec=$3} $3 == t {print "      in " sec ": " $0}' | head -3
		done
		bad=1
	else
		local summary=""
		for t in "${!count[@]}"; do summary+="$t=${count[$t]} "; done
		log "ok: relocations: ${summary:-none}"
	fi

	# 3. SIMD registers.
	local dis simd
	dis=$(objdump -d --no-show-raw-insn "$obj")
	simd=$(grep -E '%([xyz]mm[0-9]+|mm[0-7]|k[0-7])\b' <<<"$dis" || true)
	if [[ -n $simd ]]; then
		echo "FAIL: SIMD/FPU register use ($(wc -l <<<"$simd") instructions), e.g.:"
		head -5 <<<"$simd" | sed 's/^/    /'
		bad=1
	else
		log "ok: no %xmm/%ymm/%zmm/%mm/%k register in $(grep -cE '^ +[0-9a-f]+:' <<<"$dis") instructions"
	fi

	# Stack frames: report the largest `sub $N,%rsp`.
	local maxframe
	maxframe=$(grep -oE 'sub +\$0x[0-9a-f]+,%rsp' <<<"$dis" | sed -E 's/.*\$0x([0-9a-f]+).*/\1/' |
		while read -r h; do echo $((16#$h)); done | sort -n | tail -1)
	maxframe=${maxframe:-0}
	if ((maxframe > FRAME_WARN)); then
		warn "largest stack frame is $maxframe bytes (kernel FRAME_WARN is $FRAME_WARN)"
	else
		log "ok: largest stack frame $maxframe bytes"
	fi

	if [[ $bad -ne 0 ]]; then
		echo "FAIL: $obj is not fit for the kernel"
		return 1
	fi
	log "PASS: $obj"
	return 0
}

# Builds small C objects with known defects and checks the checker's verdict on each.
self_test() {
	command -v gcc >/dev/null || die "self-test needs gcc"
	local dir rc fails=0
	dir=$(mktemp -d)
	trap 'rm -rf "$dir"' RETURN
	local kflags=(-c -O2 -mcmodel=kernel -fno-pic -mno-red-zone -mno-sse -mno-mmx -mno-sse2
		-mno-avx -ffreestanding -fno-asynchronous-unwind-tables -fno-stack-protector)

	cat >"$dir/good.c" <<-'C'
		#include <stddef.h>
		void *mdraid_k_alloc(size_t size, size_t align);
		void mdraid_k_free(void *p, size_t size, size_t align);
		static long table[4] = {1, 2, 3, 4};
		long mdraid_k_demo(int i) {
		    long *p = mdraid_k_alloc(8, 8);
		    if (!p) return -12;
		    *p = table[i & 3];
		    long v = *p;
		    mdraid_k_free(p, 8, 8);
		    return v;
		}
	C
	cat >"$dir/undef.c" <<-'C'
		int printf(const char *, ...);
		int mdraid_k_demo(void) { return printf("hi\n"); }
	C
	cat >"$dir/sse.c" <<-'C'
		int mdraid_k_demo(void) { __asm__ volatile("pxor %xmm0, %xmm0"); return 0; }
	C
	cat >"$dir/got.c" <<-'C'
		int some_global = 1;
		int mdraid_k_demo(void) { return some_global; }
	C
	cat >"$dir/noexport.c" <<-'C'
		int helper(int x) { return x + 1; }
	C
	gcc "${kflags[@]}" -o "$dir/good.o" "$dir/good.c"
	gcc "${kflags[@]}" -o "$dir/undef.o" "$dir/undef.c"
	gcc "${kflags[@]}" -o "$dir/sse.o" "$dir/sse.c"
	gcc -c -O2 -fPIC -fno-asynchronous-unwind-tables -o "$dir/got.o" "$dir/got.c" # GOTPCRELX relocation (and _GLOBAL_OFFSET_TABLE_)
	gcc "${kflags[@]}" -o "$dir/noexport.o" "$dir/noexport.c"
	echo 'not an object' >"$dir/text.o"

	# name expected-verdict expected-substring-in-output
	local cases=(
		"good pass PASS"
		"undef fail printf"
		"sse fail xmm0"
		"got fail R_X86_64_REX_GOTPCRELX"
		"noexport fail no global mdraid_k_"
		"text fail not an ELF"
	)
	local c name want needle out
	for c in "${cases[@]}"; do
		read -r name want needle <<<"$c"
		rc=0
		out=$(check_object "$dir/$name.o" 2>&1) || rc=$?
		if [[ $want == pass && $rc -ne 0 ]] || [[ $want == fail && $rc -eq 0 ]] ||
			! grep -qF "$needle" <<<"$out"; then
			echo "self-test FAILED on $name.o (wanted $want mentioning '$needle'); checker said:"
			sed 's/^/    /' <<<"$out"
			fails=$((fails + 1))
		else
			echo "self-test ok: $name.o -> $want ($(grep -m1 -E 'FAIL|PASS' <<<"$out"))"
		fi
	done
	[[ $fails -eq 0 ]] || die "check-kobj self-test: $fails case(s) wrong"
	say "check-kobj self-test passed (${#cases[@]} cases)"
}

case "${1:-}" in
--self-test) self_test ;;
"" | -h | --help)
	sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
	[[ -n ${1:-} ]] || exit 2
	;;
*)
	rc=0
	for obj in "$@"; do check_object "$obj" || rc=1; done
	exit $rc
	;;
esac
