#!/usr/bin/env bash
# Runs the benchmarks against private services, as scripts/test.sh runs the tests:
#   scripts/services.sh up (PostgreSQL, Docker, registry, Swarm) in a temp dir, with pg_stat_statements
#   preloaded;
#   cmd/slipway-bench: webhook ingest of a real `slipway serve` vs pgbench, and the half-rate latency;
#   go test -bench BenchmarkPickupLatency ./internal/queue;
#   go test -bench . ./internal/pipeline: parsing hostile pipeline files and the worst glob, the
#   timings the tests bound as work (allocations, steps) rather than time;
#   go test -bench BenchmarkDeployOverhead ./internal/e2e: webhook accepted → deployment succeeded of a
#   trivial swarm service vs scripts/deploy-baseline.sh (docker build, push, service update), ~1.5 min;
#   go test -bench BenchmarkMonorepoPush ./internal/e2e: a monorepo push touching 1, 4, 8 services,
#   each really built, by Slipway (4 and 8 workers) vs scripts/monorepo-baseline.sh (docker build,
#   push, container replaced) sequential and parallel, bare and waiting the stability window (-w 3s),
#   with docker processes and CPU counted;
#   scripts/dashboard-bench.sh: the dashboard's pages (p50/p95 server time, EXPLAIN of each query) on
#   SLIPWAY_BENCH_DEPLOYMENTS seeded deployments, and RSS while 10 clients tail 4 live logs;
#   then services.sh down (always).
# The numbers are reported against the issue's targets; a missed target does not fail the script.
#
# Environment:
#   SLIPWAY_BENCH_OUT        directory for the results (default /tmp/slipway-bench-results):
#                            ingest.json, pickup.txt, pipeline.txt, deploy-overhead.txt, monorepo.txt,
#                            dashboard.txt, dashboard-explain-<n>.txt, handler.pprof (CPU profile of the handler)
#   SLIPWAY_BENCH_ARGS       extra flags for cmd/slipway-bench, e.g. "-duration 5s -concurrency 1,16"
#   SLIPWAY_BENCH_PICKUPS    runs per pickup benchmark (default 300)
#   SLIPWAY_BENCH_DEPLOYS    deploys per side in the deploy overhead benchmark (default 5; each pair
#                            takes ~13 s)
#   SLIPWAY_BENCH_N          services a push touches in the monorepo benchmark (default 1,4,8)
#   SLIPWAY_BENCH_REPEAT     pushes per figure in the monorepo benchmark, medians (default 3)
#   SLIPWAY_BENCH_DEPLOYMENTS deployments the dashboard benchmark seeds (default 1000000, ~10 log lines
#                            each; seeding takes minutes on a small machine)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
command -v go >/dev/null || export PATH="/usr/local/go/bin:$PATH"

out=${SLIPWAY_BENCH_OUT:-/tmp/slipway-bench-results}
mkdir -p "$out"

# Always under /tmp, not $TMPDIR: unix socket paths under the dir must stay short (see services.sh).
dir=$(mktemp -d /tmp/slipway-bench.XXXXXX)
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	local rc=$?
	bash "$root/scripts/services.sh" down "$dir" || echo "bench.sh: services.sh down $dir failed" >&2
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

SLIPWAY_SERVICES=postgres,docker,registry,swarm bash "$root/scripts/services.sh" up "$dir"
# shellcheck source=/dev/null
source "$dir/env"

# pg_stat_statements must be loaded at server start: restart the private cluster with it. The last
# setting in postgresql.conf wins; the new postmaster's pid is recorded for services.sh down.
pg_bin=${SLIPWAY_TEST_PG_BIN:-/usr/lib/postgresql/15/bin}
{
	echo "shared_preload_libraries = 'pg_stat_statements'"
	echo "pg_stat_statements.track = top"
} >>"$dir/pg/postgresql.conf"
runuser -u postgres -- "$pg_bin/pg_ctl" -D "$dir/pg" -l "$dir/pg.log" -w -t 60 -m fast restart >/dev/null
head -n1 "$dir/pg/postmaster.pid" >"$dir/pids/postgres.pid"

export SLIPWAY_BENCH_DATABASE_URL=$SLIPWAY_TEST_DATABASE_URL
status=0

# The server under test is the working tree's. Should it not build (a change half made by someone
# else), HEAD's is measured instead, and the report says so.
bin="$dir/slipway"
source_label="working tree"
if ! go build -o "$bin" ./cmd/slipway 2>"$dir/build.log"; then
	rev=$(git rev-parse --short HEAD)
	echo "bench.sh: the working tree's cmd/slipway does not build; benchmarking HEAD ($rev) instead:" >&2
	sed 's/^/    /' "$dir/build.log" >&2
	mkdir "$dir/src"
	git archive HEAD | tar -x -C "$dir/src"
	(cd "$dir/src" && go build -o "$bin" ./cmd/slipway)
	source_label="HEAD $rev (the working tree did not build)"
fi

echo "bench.sh: webhook ingest vs pgbench" >&2
# shellcheck disable=SC2086 # SLIPWAY_BENCH_ARGS is a list of flags
go run ./cmd/slipway-bench -server-bin "$bin" -server-source "$source_label" -pgbench "$pg_bin/pgbench" \
	-out "$out/ingest.json" -profile "$out/handler.pprof" ${SLIPWAY_BENCH_ARGS:-} || status=$?

echo "bench.sh: pickup latency" >&2
go test -run '^$' -bench BenchmarkPickupLatency -benchtime "${SLIPWAY_BENCH_PICKUPS:-300}x" -count 1 \
	./internal/queue | tee "$out/pickup.txt" || status=$?

echo "bench.sh: pipeline file parsing (hostile files) and glob matching" >&2
go test -run '^$' -bench . -benchmem -count 1 ./internal/pipeline | tee "$out/pipeline.txt" || status=$?

# The same server binary as the ingest benchmark; the benchmark itself is compiled from the working tree.
echo "bench.sh: deploy overhead vs scripts/deploy-baseline.sh (target: ratio <= 1.10)" >&2
SLIPWAY_BENCH_SERVER_BIN=$bin go test -run '^$' -bench BenchmarkDeployOverhead \
	-benchtime "${SLIPWAY_BENCH_DEPLOYS:-5}x" -count 1 -timeout 15m \
	./internal/e2e | tee "$out/deploy-overhead.txt" || status=$?

# SLIPWAY_BENCH_N and SLIPWAY_BENCH_REPEAT reach the benchmark through the environment.
echo "bench.sh: monorepo push (N = ${SLIPWAY_BENCH_N:-1,4,8} services) vs scripts/monorepo-baseline.sh" >&2
SLIPWAY_BENCH_SERVER_BIN=$bin go test -run '^$' -bench BenchmarkMonorepoPush -benchtime 1x -count 1 \
	-timeout 60m ./internal/e2e | tee "$out/monorepo.txt" || status=$?

# SLIPWAY_BENCH_DEPLOYMENTS reaches the script through the environment.
echo "bench.sh: dashboard pages (target: p95 <= 50 ms) and live log tails" >&2
SLIPWAY_BENCH_OUT=$out bash "$root/scripts/dashboard-bench.sh" || status=$?

if [[ -s $out/handler.pprof ]]; then
	echo
	echo "CPU profile of the in-process webhook handler (load generator included), top functions by cumulative time:"
	go tool pprof -top -cum -nodecount 35 "$out/handler.pprof" 2>/dev/null | sed -n '1,45p' || true
fi
echo
echo "bench.sh: results in $out (ingest.json, pickup.txt, pipeline.txt, deploy-overhead.txt, monorepo.txt, dashboard.txt, handler.pprof: go tool pprof -http :0 $out/handler.pprof)"
exit "$status"
