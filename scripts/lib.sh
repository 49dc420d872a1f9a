# Shared helpers for scripts/*.sh. Source it; it does not change shell options.

# Output: say = progress, warn = non-fatal notice, die = fatal error (exit 1).
say() { printf '==> %s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() {
	printf 'error: %s\n' "$*" >&2
	exit 1
}

# The repository root (scripts/ lives right under it).
repo_root() { cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd; }

# rustup's cargo comes first even where a Debian cargo (cargo-web, pulled in by rustc-web) sits
# in /usr/bin.
if [[ -d "${CARGO_HOME:-$HOME/.cargo}/bin" ]]; then
	case ":$PATH:" in
	*":${CARGO_HOME:-$HOME/.cargo}/bin:"*) ;;
	*) PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH" ;;
	esac
	export PATH
fi

# Runs a command as root (directly when we are root, else through sudo).
as_root() {
	if [[ $(id -u) -eq 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null; then
		sudo "$@"
	else
		die "need root for: $*"
	fi
}

pkg_installed() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# ensure_apt_packages PKG...: installs the Debian packages that are missing; runs `apt-get update`
# at most once per process, and not at all when everything is present.
_APT_UPDATED=${_APT_UPDATED:-0}
ensure_apt_packages() {
	local missing=() p
	for p in "$@"; do
		pkg_installed "$p" || missing+=("$p")
	done
	[[ ${#missing[@]} -eq 0 ]] && return 0
	command -v apt-get >/dev/null || die "missing packages ${missing[*]} and no apt-get"
	say "installing Debian packages: ${missing[*]}"
	if [[ $_APT_UPDATED -eq 0 ]]; then
		as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
		_APT_UPDATED=1
		export _APT_UPDATED
	fi
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		"${missing[@]}"
}
