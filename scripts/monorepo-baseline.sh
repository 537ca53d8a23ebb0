#!/usr/bin/env bash
# The bare monorepo deploy Slipway is measured against (BenchmarkMonorepoPush,
# internal/e2e/monorepo_bench_test.go): check out one commit, then for each service docker build,
# docker push, and replace its container (docker stop and docker rm of the old one, docker run of
# the new one by digest on the host network); one service after the other, or all at once with -p
# (bash & and wait). Nothing else: no queue, no database, no logs kept, no checks beyond set -e and
# a failed service failing the run.
#
#   scripts/monorepo-baseline.sh [-p] REPO_DIR SHA DIR IMAGE_PREFIX CONTAINER_PREFIX SERVICE...
#
#   -p                deploy the services in parallel instead of one by one
#   REPO_DIR          a git repository holding the commit SHA
#   DIR               the directory of the services inside the repository: service S builds DIR/S
#   IMAGE_PREFIX      service S is pushed as IMAGE_PREFIX$S:SHA (REGISTRY/path/prefix-)
#   CONTAINER_PREFIX  service S runs as the container CONTAINER_PREFIX$S, which must exist: it is
#                     replaced, never created from nothing
#
# Environment:
#   SLIPWAY_TEST_DOCKER_CLI  the docker CLI (default: docker on PATH); DOCKER_HOST as for any CLI
#   BASELINE_BUILDKIT        DOCKER_BUILDKIT of the builds: 1, 0, or auto (the default: 1 when
#                            `docker buildx version` works). Give it the mode the server chose, else
#                            the comparison is not like for like.
#   BASELINE_STOP_TIMEOUT    docker stop -t, seconds (default 5, Slipway's docker target's grace)
#
# Builds run their RUN steps on the host network, as the e2e server's do
# (SLIPWAY_DOCKER_BUILD_NETWORK=host). Prints "monorepo-baseline: SERVICE digest sha256:…" for each
# service pushed, and marks "monorepo-baseline: PHASE EPOCHREALTIME" ($EPOCHREALTIME costs no fork;
# the script forks nothing it does not need, since its CPU time is measured).
set -euo pipefail

parallel=false window=
while [[ ${1:-} == -* ]]; do
	case $1 in
	-p) parallel=true ;;
	-w)
		window=${2:-}
		[[ $window =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "$0: -w wants seconds, got '$window'" >&2; exit 2; }
		shift
		;;
	*) echo "$0: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done
if [[ $# -lt 6 ]]; then
	echo "usage: $0 [-p] [-w SECONDS] REPO_DIR SHA DIR IMAGE_PREFIX CONTAINER_PREFIX SERVICE..." >&2
	exit 2
fi
repo=$1 sha=$2 dir=$3 image_prefix=$4 container_prefix=$5
shift 5
docker=${SLIPWAY_TEST_DOCKER_CLI:-docker}
buildkit=${BASELINE_BUILDKIT:-auto}
stop_timeout=${BASELINE_STOP_TIMEOUT:-5}
if [[ $buildkit == auto ]]; then
	buildkit=0
	if "$docker" buildx version >/dev/null 2>&1; then
		buildkit=1
	fi
fi

mark() { echo "monorepo-baseline: $1 $EPOCHREALTIME"; }

mark start
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git -C "$repo" archive "$sha" "$dir" | tar -x -C "$work"
if [[ -n $window ]]; then
	# A FIFO opened read-write never blocks the open, and read -t on it waits without a process.
	mkfifo "$work/wait"
fi
mark checkout

# deploy SERVICE: build, push, replace the container. Its output goes to the script's.
deploy() {
	local svc=$1
	local image=$image_prefix$svc name=$container_prefix$svc out
	DOCKER_BUILDKIT=$buildkit "$docker" build --network host -t "$image:$sha" "$work/$dir/$svc"
	# docker push's last line: "TAG: digest: sha256:… size: 528". Read from a file, not $(…): no fork.
	"$docker" push "$image:$sha" >"$work/push-$svc.out"
	read -r -d '' out <"$work/push-$svc.out" || true
	printf '%s\n' "$out"
	if [[ ! $out =~ digest:\ (sha256:[0-9a-f]{64})\ size: ]]; then
		echo "monorepo-baseline.sh: no digest in the output of docker push $image:$sha" >&2
		return 1
	fi
	local digest=${BASH_REMATCH[1]}
	echo "monorepo-baseline: $svc digest $digest"
	"$docker" stop -t "$stop_timeout" "$name" >/dev/null
	"$docker" rm "$name" >/dev/null
	"$docker" run -d --name "$name" --network host --restart unless-stopped "$image@$digest" >/dev/null
	if [[ -n $window ]]; then
		read -rt "$window" <>"$work/wait" || true
		"$docker" container inspect -f '{{.State.Running}} {{.RestartCount}}' "$name" >"$work/state-$svc"
		read -r out <"$work/state-$svc"
		if [[ $out != "true 0" ]]; then
			echo "monorepo-baseline.sh: $name did not stay up for ${window}s (running, restarts: $out)" >&2
			return 1
		fi
	fi
	mark "$svc"
}

if ! $parallel; then
	for svc in "$@"; do
		deploy "$svc"
	done
else
	pids=()
	for svc in "$@"; do
		deploy "$svc" &
		pids+=("$!")
	done
	failed=0
	for pid in "${pids[@]}"; do
		wait "$pid" || failed=1
	done
	if [[ $failed != 0 ]]; then
		echo "monorepo-baseline.sh: a service failed to deploy" >&2
		exit 1
	fi
fi
mark end
