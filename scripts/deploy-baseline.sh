#!/usr/bin/env bash
# The bare deploy Slipway is measured against (BenchmarkDeployOverhead, internal/e2e/overhead_bench_test.go):
# check out one commit, docker build, docker push, docker service update, and nothing else: no queue,
# no database, no logs kept, no checks beyond set -e.
#
#   scripts/deploy-baseline.sh REPO_DIR SHA IMAGE SERVICE [CONTEXT]
#
#   REPO_DIR  a git repository holding the commit SHA
#   IMAGE     the repository to push to, without a tag (REGISTRY/name); the tag is SHA
#   SERVICE   an existing swarm service, updated to IMAGE@DIGEST
#   CONTEXT   the build context, a directory inside the repository (default ".")
#
# Environment:
#   SLIPWAY_TEST_DOCKER_CLI   the docker CLI (default: docker on PATH); DOCKER_HOST as for any CLI
#   BASELINE_UPDATE_MONITOR   --update-monitor of the service update (default 5s, Slipway's own default
#                             for docker.swarm_update_monitor): give it the server's value, else the
#                             comparison is not like for like
#
# The build runs as Slipway's e2e server is configured to run it: BuildKit on (SLIPWAY_DOCKER_BUILDKIT
# auto picks it for a CLI older than 23) and RUN steps on the host network
# (SLIPWAY_DOCKER_BUILD_NETWORK=host). Each phase's end is printed as "deploy-baseline: PHASE
# EPOCHREALTIME" ($EPOCHREALTIME costs no fork), so a caller can split the total the way Slipway's stage
# timestamps split its own.
set -euo pipefail

if [[ $# != 4 && $# != 5 ]]; then
	echo "usage: $0 REPO_DIR SHA IMAGE SERVICE [CONTEXT]" >&2
	exit 2
fi
repo=$1 sha=$2 image=$3 service=$4 context=${5:-.}
docker=${SLIPWAY_TEST_DOCKER_CLI:-docker}
monitor=${BASELINE_UPDATE_MONITOR:-5s}

mark() { echo "deploy-baseline: $1 $EPOCHREALTIME"; }

mark start
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git -C "$repo" archive "$sha" | tar -x -C "$work"
mark checkout

DOCKER_BUILDKIT=1 "$docker" build --network host -t "$image:$sha" "$work/$context"
mark build

out=$("$docker" push "$image:$sha")
printf '%s\n' "$out"
# docker push's last line: "TAG: digest: sha256:… size: 528"
digest=$(sed -n 's/.*digest: \(sha256:[0-9a-f]\{64\}\) size: .*/\1/p' <<<"$out" | tail -n 1)
if [[ -z $digest ]]; then
	echo "deploy-baseline.sh: no digest in the output of docker push" >&2
	exit 1
fi
mark push

"$docker" service update --image "$image@$digest" --update-monitor "$monitor" --detach=false "$service"
mark update
