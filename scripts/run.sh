#!/usr/bin/env bash
# `make run`: Slipway on this machine with a local demo that needs no cloud account.
#
# It starts private services (PostgreSQL, a Docker engine and a registry, via scripts/services.sh),
# builds slipway, creates a small sample repository, starts `slipway serve`, sends it a signed push
# webhook, and shows the run as the JSON API returns it once the demo container is live. Slipway
# keeps serving until Ctrl-C, which stops everything this script started.
#
# SLIPWAY_DEMO_PORT (default 8080) is Slipway's port; SLIPWAY_DEMO_APP_PORT (default 8081) the demo app's.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
command -v go >/dev/null || export PATH="/usr/local/go/bin:$PATH"
port=${SLIPWAY_DEMO_PORT:-8080}
app_port=${SLIPWAY_DEMO_APP_PORT:-8081}

say() { printf '\033[1m[run]\033[0m %s\n' "$*" >&2; }

need=()
for tool in curl openssl jq git; do command -v "$tool" >/dev/null || need+=("$tool"); done
if ((${#need[@]})); then
	say "installing ${need[*]}"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

dir=$(mktemp -d /tmp/slipway-run.XXXXXX)
chmod 755 "$dir" # PostgreSQL runs as the postgres user and must reach its data dir inside
server_pid=
cleanup() {
	local rc=$?
	[[ -n $server_pid ]] && kill -TERM "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
	[[ -n ${DOCKER_HOST:-} && -n ${SLIPWAY_TEST_DOCKER_CLI:-} ]] && "$SLIPWAY_TEST_DOCKER_CLI" rm -f slipway-demo-hello >/dev/null 2>&1
	SLIPWAY_SERVICES=postgres,docker,registry bash "$root/scripts/services.sh" down "$dir/svc" || true
	rm -rf "$dir"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "starting PostgreSQL, a private Docker engine and a registry"
SLIPWAY_SERVICES=postgres,docker,registry bash "$root/scripts/services.sh" up "$dir/svc"
# shellcheck source=/dev/null
source "$dir/svc/env"

say "building slipway"
go build -o "$dir/slipway" ./cmd/slipway

say "creating the sample repository acme/hello"
repo=$dir/hello.git
git init -q -b main "$repo"
mkdir -p "$repo/app"
cat >"$repo/.slipway.yml" <<YAML
services:
  hello:
    paths: [app/**]
    context: app
    image: $SLIPWAY_TEST_REGISTRY/demo/hello
    environments:
      demo: {branch: main, docker: {container: slipway-demo-hello}}
YAML
cat >"$repo/app/Dockerfile" <<DOCKERFILE
FROM $SLIPWAY_TEST_BASE_IMAGE
COPY index.html /www/index.html
CMD ["httpd", "-f", "-p", "127.0.0.1:$app_port", "-h", "/www"]
DOCKERFILE
echo "Hello from a Slipway deployment" >"$repo/app/index.html"
git -C "$repo" add -A
git -C "$repo" -c user.name=Demo -c user.email=demo@example.com commit -q -m "First version of hello"
sha=$(git -C "$repo" rev-parse HEAD)

secret=$(openssl rand -hex 24)
token=$(openssl rand -hex 24)
# The token stays in a file: nothing prints a secret, not even a demo's.
(umask 077 && printf '%s' "$token" >"$dir/api-token")
cat >"$dir/slipway.yml" <<YAML
listen_addr: 127.0.0.1:$port
log_format: text
repositories:
  - name: acme/hello
    clone_url: $repo
    branches: [main]
policy:
  allow_all: true
git:
  allow_insecure_urls: true # the demo repository is a local path
  cache_dir: $dir/git-cache
  work_dir: $dir/work
docker:
  binary: $SLIPWAY_TEST_DOCKER_CLI
  build_network: host
registries:
  - host: $SLIPWAY_TEST_REGISTRY
    insecure: true
YAML

say "starting slipway serve on 127.0.0.1:$port"
SLIPWAY_CONFIG=$dir/slipway.yml SLIPWAY_DATABASE_URL=$SLIPWAY_TEST_DATABASE_URL \
	SLIPWAY_WEBHOOK_SECRET=$secret SLIPWAY_API_TOKENS=$token \
	"$dir/slipway" serve >"$dir/slipway.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
	curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
	kill -0 "$server_pid" 2>/dev/null || { cat "$dir/slipway.log" >&2; exit 1; }
	sleep 0.1
done

say "sending a signed push webhook for acme/hello@${sha:0:12}"
payload=$(jq -cn --arg sha "$sha" '{ref: "refs/heads/main", before: "0000000000000000000000000000000000000000",
	after: $sha, repository: {full_name: "acme/hello", clone_url: "https://github.com/acme/hello.git"},
	pusher: {name: "demo"}, head_commit: {id: $sha, message: "First version of hello"}}')
signature=$(printf '%s' "$payload" | openssl dgst -sha256 -hmac "$secret" | sed 's/^.*= //')
answer=$(curl -fsS -X POST "http://127.0.0.1:$port/webhooks/github" -H 'Content-Type: application/json' \
	-H 'X-GitHub-Event: push' -H "X-GitHub-Delivery: demo-$(date +%s%N)" \
	-H "X-Hub-Signature-256: sha256=$signature" --data-binary "$payload")
echo "$answer" | jq .
run_id=$(echo "$answer" | jq -r .run_id)

say "waiting for run $run_id to deploy"
api() { curl -fsS -H "Authorization: Bearer $token" "http://127.0.0.1:$port/api/v1/$1"; }
for _ in $(seq 1 600); do
	run=$(api "runs/$run_id")
	status=$(echo "$run" | jq -r '.status')
	pending=$(echo "$run" | jq '[.deployments[]? | select(.status | IN("queued","building","pushing","deploying"))] | length')
	if [[ $status != queued && $status != planning && $pending == 0 ]]; then break; fi
	sleep 0.5
done
echo "$run" | jq 'del(.deployments[].target)'
if [[ $(echo "$run" | jq -r '.deployments[0].status') == succeeded ]]; then
	say "the demo app answers on http://127.0.0.1:$app_port/: $(curl -fsS "http://127.0.0.1:$app_port/")"
else
	say "the deployment did not succeed; its logs:"
	api "deployments/$(echo "$run" | jq -r '.deployments[0].id')/logs" | jq -r '.lines[].line' >&2 || true
fi

cat >&2 <<MSG

Slipway is running at http://127.0.0.1:$port (logs: $dir/slipway.log)
  dashboard:  http://127.0.0.1:$port/   (the dashboard comes in a later issue; until then the JSON API:)
  run JSON:   curl -H "Authorization: Bearer \$(cat $dir/api-token)" http://127.0.0.1:$port/api/v1/runs/$run_id
  metrics:    http://127.0.0.1:$port/metrics
Press Ctrl-C to stop Slipway and everything this script started.
MSG
wait "$server_pid"
