# shellcheck shell=bash
# What Slipway's scripts need from the machine, checked before they start anything, each with one
# line that says what is missing and what to do. Sourced by run.sh, test.sh and services.sh:
#
#   source scripts/prereqs.sh
#   prereq_linux; prereq_root "make run"; prereq_go; prereq_apt postgresql-15 ...
#
# Each function exits the calling script with status 1 on a missing prerequisite.

prereq_fail() {
	printf 'slipway: %s\n' "$*" >&2
	exit 1
}

# prereq_linux: the services run a Linux dockerd and read /proc.
prereq_linux() {
	[[ $(uname -s) == Linux ]] || prereq_fail "needs Linux (found $(uname -s)); on a Mac or Windows, use a Linux VM"
	[[ -r /proc/self/status ]] || prereq_fail "needs /proc mounted"
}

# prereq_root WHAT: dockerd, apt-get and runuser need root.
prereq_root() {
	[[ $(id -u) == 0 ]] || prereq_fail "$1 needs root (it runs apt-get, dockerd and PostgreSQL as its own user); run it with sudo"
}

# prereq_go [ROOT]: Go at least the version of ROOT/go.mod's go line. An older go that can switch
# toolchains (1.21 and later, GOTOOLCHAIN not "local") fetches the right one itself, so it passes.
prereq_go() {
	local root=${1:-.} want have toolchain
	command -v go >/dev/null || export PATH="/usr/local/go/bin:$PATH" # sudo resets PATH
	want=$(awk '$1 == "go" { print $2; exit }' "$root/go.mod" 2>/dev/null)
	want=${want:-1.26}
	command -v go >/dev/null ||
		prereq_fail "needs Go >= $want (found none on PATH or in /usr/local/go/bin); install it: https://go.dev/doc/install"
	# Asked outside the module and with GOTOOLCHAIN=local, so that this go answers for itself
	# instead of fetching the toolchain go.mod asks for.
	have=$(cd / && GOTOOLCHAIN=local go version 2>/dev/null) || have= # "go version go1.26.8 linux/amd64"
	have=${have#go version go}
	have=${have%%[!0-9.]*} # go1.26rc1 -> 1.26
	[[ -n $have ]] || prereq_fail "needs Go >= $want (found $(command -v go), which does not say its version)"
	version_ge "$have" "$want" && return 0
	toolchain=$(cd / && go env GOTOOLCHAIN 2>/dev/null) || toolchain=local
	if version_ge "$have" 1.21 && [[ $toolchain != *local* ]]; then
		printf 'slipway: Go %s found; go fetches Go %s itself (GOTOOLCHAIN=%s)\n' "$have" "$want" "$toolchain" >&2
		return 0
	fi
	prereq_fail "needs Go >= $want (found $have); install it: https://go.dev/doc/install"
}

# version_ge A B: true when dotted version A >= B.
version_ge() {
	local i
	local -a a b
	IFS=. read -ra a <<<"$1"
	IFS=. read -ra b <<<"$2"
	for ((i = 0; i < ${#a[@]} || i < ${#b[@]}; i++)); do
		((10#${a[i]:-0} > 10#${b[i]:-0})) && return 0
		((10#${a[i]:-0} < 10#${b[i]:-0})) && return 1
	done
	return 0
}

# prereq_apt PKG...: installing PKG needs Debian's or Ubuntu's apt-get (and root).
prereq_apt() {
	if ! command -v apt-get >/dev/null || ! command -v dpkg-query >/dev/null; then
		prereq_fail "needs $* and installs missing packages with apt-get, which this machine lacks: use Debian 12+ or Ubuntu 24.04+, or install them yourself"
	fi
	[[ $(id -u) == 0 ]] || prereq_fail "needs $* installed; run as root (sudo) so apt-get can install them"
}

# prereq_port PORT WHAT HINT: nothing listens on TCP PORT yet.
prereq_port() {
	local port=$1 what=$2 hex f
	hex=$(printf '%04X' "$port")
	for f in /proc/net/tcp /proc/net/tcp6; do
		[[ -r $f ]] || continue
		# columns: sl local_address rem_address st; st 0A is LISTEN, the port is hex after the colon.
		if awk -v p="$hex" 'NR > 1 && $4 == "0A" { n = split($2, a, ":"); if (a[n] == p) found = 1 } END { exit !found }' "$f"; then
			prereq_fail "port $port ($what) is already in use; pick another one: $3"
		fi
	done
}
