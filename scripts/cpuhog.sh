#!/usr/bin/env bash
# Runs a command under a CPU-hogging load, to show that tests wait on events and bound work rather
# than depend on the machine's speed:
#   scripts/cpuhog.sh [-n N] -- CMD [ARG...]   starts N busy loops, runs CMD, stops the loops
#                                              whatever CMD's status, and exits with that status
#   scripts/cpuhog.sh [-n N]                   starts them and waits until interrupted
# N defaults to twice the number of cores. The loops run at normal priority, so they compete with
# CMD as a few parallel builds would. Each one also ends by itself soon after this script is gone,
# even killed with SIGKILL, so none is left spinning on a shared machine.
set -euo pipefail

usage() {
	echo "usage: $0 [-n N] [-- CMD [ARG...]]" >&2
	exit 2
}

n=$(($(nproc) * 2))
while (($#)); do
	case $1 in
	-n)
		[[ $# -ge 2 && $2 =~ ^[1-9][0-9]*$ ]] || usage
		n=$2
		shift 2
		;;
	--)
		shift
		break
		;;
	*) usage ;;
	esac
done

pids=()
# shellcheck disable=SC2317 # called by the EXIT trap
stop() {
	local rc=$?
	if ((${#pids[@]})); then
		kill "${pids[@]}" 2>/dev/null || true
		wait "${pids[@]}" 2>/dev/null || true
		echo "cpuhog: stopped ${#pids[@]} busy loops" >&2
	fi
	exit "$rc"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# One busy loop: it spins, and between rounds of counting checks that this script ($1) still runs.
# shellcheck disable=SC2016 # expanded by the loop's own sh
hog='while kill -0 "$1" 2>/dev/null; do i=0; while [ "$i" -lt 50000 ]; do i=$((i + 1)); done; done'
for ((i = 0; i < n; i++)); do
	sh -c "$hog" cpuhog "$$" &
	pids+=("$!")
done
echo "cpuhog: ${#pids[@]} busy loops on $(nproc) cores (pids ${pids[*]})" >&2

if (($# == 0)); then
	echo "cpuhog: running until interrupted" >&2
	wait # the loops never end by themselves; a trapped signal ends the wait
fi
status=0
"$@" || status=$?
exit "$status"
