#!/usr/bin/env bash
# Fetches everything the QEMU harness needs into a cache folder, without installing anything:
# `apt-get download` + `dpkg -x`, through an apt sources list, state and cache of our own (the
# machine's apt setup is untouched; the mirror is the one the machine's own sources name).
#
#   kmod-shim/qemu/fetch.sh            fill $MDR_QEMU_CACHE (default <repo>/.cache/qemu)
#
# Result (all under the cache):
#   root/            qemu-system-x86 + libraries, busybox-static, mdadm, e2fsprogs, fio and the
#                    libraries fio links, unpacked
#   k-6.1/, k-6.12/  kernel image, headers (Makefile fixed to the unpacked path), kbuild
#   k-*/abi          the kernel ABI (e.g. 6.1.0-41-amd64), resolved from linux-headers-amd64
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
source "$HERE/../../scripts/lib.sh"
ROOT=$(repo_root)
CACHE=${MDR_QEMU_CACHE:-$ROOT/.cache/qemu}
APT=$CACHE/apt
DEBS=$CACHE/debs
mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial" "$DEBS"

# The Debian mirror the machine already uses (first URIs of a deb822 source naming bookworm, or
# the first one-line `deb` entry).
mirror() {
	local m
	m=$(awk '/^URIs:/ {u=$2} /^Suites:/ && / bookworm( |$)/ && u {print u; exit}' \
		/etc/apt/sources.list.d/*.sources 2>/dev/null || true)
	[[ -n $m ]] || m=$(awk '$1 == "deb" && $3 ~ /^bookworm$/ {print $2; exit}' \
		/etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)
	[[ -n $m ]] || die "cannot find the machine's Debian mirror in /etc/apt"
	echo "$m"
}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
[[ -f $KEYRING ]] || die "no $KEYRING (debian-archive-keyring)"
MIRROR=$(mirror)
cat >"$APT/sources.list" <<SRC
deb [signed-by=$KEYRING] $MIRROR bookworm main
deb [signed-by=$KEYRING] $MIRROR bookworm-updates main
deb [signed-by=$KEYRING] $MIRROR bookworm-backports main
deb [signed-by=$KEYRING] ${MIRROR%/debian}/debian-security bookworm-security main
SRC
APT_OPTS=(-o "Dir::Etc::sourcelist=$APT/sources.list" -o Dir::Etc::sourceparts=/dev/null
	-o "Dir::State::Lists=$APT/lists" -o "Dir::Cache=$APT/cache"
	-o "Dir::State::status=/var/lib/dpkg/status" -o APT::Get::List-Cleanup=0)
aptc() { apt-cache "${APT_OPTS[@]}" "$@"; }

# Lists younger than a day are reused.
if [[ -z $(find "$APT/lists" -maxdepth 1 -name '*bookworm-backports*Packages*' -mmin -1440 2>/dev/null) ]]; then
	say "apt-get update (own lists in $APT)"
	apt-get "${APT_OPTS[@]}" update -qq
fi

# download PKG...: fetches each .deb into $DEBS unless present.
download() {
	local p need=()
	for p in "$@"; do
		local n=${p%%/*} v
		v=$(aptc policy "$p" 2>/dev/null | awk '/Candidate:/ {print $2}')
		[[ $p == */* ]] && v=$(aptc show "$p" 2>/dev/null | awk '/^Version:/ {print $2; exit}')
		[[ -n $v && $v != "(none)" ]] || die "no package $p in the Debian archive"
		compgen -G "$DEBS/${n}_${v//:/%3a}_*.deb" >/dev/null || need+=("$p")
	done
	[[ ${#need[@]} -eq 0 ]] || (cd "$DEBS" && apt-get "${APT_OPTS[@]}" download -qq "${need[@]}")
}
# deb_of PKG: the newest downloaded .deb of PKG.
deb_of() { ls -t "$DEBS/${1}_"*.deb | head -1; }
unpack() { # unpack DIR PKG...
	local dir=$1 p
	shift
	mkdir -p "$dir"
	for p in "$@"; do dpkg -x "$(deb_of "${p%%/*}")" "$dir"; done
}

# --- kernels ---------------------------------------------------------------------------------
# kernel NAME SUITE: headers/image of linux-headers-amd64 as SUITE has it.
kernel() {
	local name=$1 suite=$2 dir=$CACHE/k-$1 abi kbuild
	abi=$(aptc depends "linux-headers-amd64/$suite" 2>/dev/null |
		awk '/Depends: linux-headers-[0-9]/ {sub("linux-headers-", "", $2); print $2; exit}')
	[[ -n $abi ]] || die "cannot resolve the $suite kernel ABI from linux-headers-amd64"
	if [[ -f $dir/abi && $(cat "$dir/abi") == "$abi" && -f $dir/ready ]]; then
		say "kernel $name: $abi (cached)"
		return 0
	fi
	local common=${abi%-amd64}-common
	kbuild=$(aptc depends "linux-headers-$common" 2>/dev/null |
		awk '/Depends: linux-kbuild-/ {print $2; exit}')
	[[ -n $kbuild ]] ||
		kbuild=$(aptc depends "linux-headers-$abi" 2>/dev/null | awk '/Depends: linux-kbuild-/ {print $2; exit}')
	[[ -n $kbuild ]] || die "cannot resolve linux-kbuild for $abi"
	say "kernel $name: $abi ($kbuild)"
	local pkgs=("linux-image-$abi-unsigned" "linux-headers-$abi" "linux-headers-$common" "$kbuild")
	download "${pkgs[@]}"
	rm -rf "$dir"
	unpack "$dir" "${pkgs[@]}"
	echo "$abi" >"$dir/abi"
	# The headers' Makefile names /usr/src/... absolutely: point it into the unpacked tree.
	local hdr=$dir/usr/src/linux-headers-$abi
	sed -i "s|/usr/src/|$dir/usr/src/|g" "$hdr/Makefile"
	# linux-kbuild's scripts live under /usr/lib/linux-kbuild-X: the headers link to them.
	local l t
	while read -r l; do
		t=$(readlink "$l")
		[[ $t == /* ]] && ln -sfn "$dir$t" "$l"
	done < <(find "$dir/usr/src" -maxdepth 2 -type l)
	ln -sfn "$hdr" "$dir/build"
	touch "$dir/ready"
}
kernel 6.1 bookworm
kernel 6.12 bookworm-backports

# --- tools -----------------------------------------------------------------------------------
TOOLS=(qemu-system-x86 qemu-system-common qemu-system-data seabios ipxe-qemu
	libcapstone4 libfdt1 libibverbs1 libnl-3-200 libnl-route-3-200 libpmem1 libndctl6 libdaxctl1
	librdmacm1 libslirp0 libvdeplug2 libaio1 liburing2 libgfapi0
	busybox-static mdadm e2fsprogs fio)
if [[ ! -f $CACHE/root/ready ]]; then
	# fio links glusterfs, ceph, nbd and pmem libraries: take its library closure from the archive.
	mapfile -t fiolibs < <(aptc depends --recurse --no-recommends --no-suggests --no-conflicts \
		--no-breaks --no-replaces --no-enhances --no-pre-depends fio 2>/dev/null |
		awk '/^[a-z]/ && /^lib/ && !/:/ {print}' | sort -u)
	say "downloading ${#TOOLS[@]} tool packages and ${#fiolibs[@]} libraries for fio"
	download "${TOOLS[@]}" "${fiolibs[@]}"
	rm -rf "$CACHE/root"
	unpack "$CACHE/root" "${TOOLS[@]}" "${fiolibs[@]}"
	touch "$CACHE/root/ready"
fi
say "cache ready: $CACHE ($(du -sh "$CACHE" | cut -f1))"
