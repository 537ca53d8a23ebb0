#!/usr/bin/env bash
# Runs the whole Go test suite against real, private services:
#   scripts/services.sh up a temp dir, source its env, go test -race, then services.sh down (always).
# Extra arguments go to go test, e.g. scripts/test.sh -run TestWebhook -v
# SLIPWAY_SERVICES=postgres scripts/test.sh starts only PostgreSQL (tests that need the rest skip).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=scripts/prereqs.sh
source "$root/scripts/prereqs.sh"
prereq_linux
prereq_root "make test"
prereq_go "$root"

# Always under /tmp, not $TMPDIR: unix socket paths under the dir must stay short (see services.sh).
dir=$(mktemp -d /tmp/slipway-test.XXXXXX)
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	local rc=$?
	local t0=$SECONDS
	bash "$root/scripts/services.sh" down "$dir" || echo "test.sh: services.sh down $dir failed" >&2
	echo "test.sh: services down in $((SECONDS - t0)) s" >&2
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

t0=$(date +%s%N)
bash "$root/scripts/services.sh" up "$dir"
# shellcheck source=/dev/null
source "$dir/env"
t1=$(date +%s%N)
echo "test.sh: services up in $(((t1 - t0) / 1000000)) ms (dir $dir)" >&2

# CI is passed through as it is (set by CI to true, unset for a developer); tests may read it.
if [[ -n ${CI+set} ]]; then export CI; fi

status=0
go test -race -count=1 -timeout 20m ./... "$@" || status=$?
echo "test.sh: go test exited $status after $((($(date +%s%N) - t1) / 1000000000)) s" >&2
exit "$status"
