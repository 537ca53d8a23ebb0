#!/usr/bin/env bash
# `make run`: Slipway on this machine with a local demo that needs no cloud account.
#
# It starts private services (PostgreSQL, a Docker engine and a registry, via scripts/services.sh),
# builds slipway, creates a small sample repository, starts `slipway serve`, pushes the repository's
# first commit with scripts/demo-push.sh (a signed push webhook) and waits until the demo app it
# deploys answers. Slipway keeps serving until Ctrl-C, which stops everything this script started
# and removes its temp dir (the sample repository with it); meanwhile `scripts/demo-push.sh
# "message"` pushes more changes.
#
# SLIPWAY_DEMO_PORT (default 8080) is Slipway's port; SLIPWAY_DEMO_APP_PORT (default 8081) the demo app's.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=scripts/prereqs.sh
source "$root/scripts/prereqs.sh"
port=${SLIPWAY_DEMO_PORT:-8080}
app_port=${SLIPWAY_DEMO_APP_PORT:-8081}

say() { printf '\033[1m[run]\033[0m %s\n' "$*" >&2; }

prereq_linux
prereq_root "make run"
prereq_go "$root"
prereq_port "$port" "Slipway's" "SLIPWAY_DEMO_PORT=18080 make run"
prereq_port "$app_port" "the demo app's" "SLIPWAY_DEMO_APP_PORT=18081 make run"
need=()
for tool in curl openssl jq git; do command -v "$tool" >/dev/null || need+=("$tool"); done
if ((${#need[@]})); then
	prereq_apt "${need[*]}"
	say "installing ${need[*]}"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

dir=$(mktemp -d /tmp/slipway-run.XXXXXX)
chmod 711 "$dir" # PostgreSQL runs as the postgres user and must reach its data dir inside
server_pid=
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	local rc=$? t0=$EPOCHREALTIME
	trap '' INT TERM # a second Ctrl-C must not cut the clean-up short
	[[ -z $server_pid ]] || stop_server
	SLIPWAY_SERVICES=postgres,docker,registry bash "$root/scripts/services.sh" down "$dir/svc" || true
	rm -rf "$dir"
	local us=$((${EPOCHREALTIME/[.,]/} - ${t0/[.,]/}))
	say "stopped in $((us / 1000000)).$((us % 1000000 / 100000)) s"
	exit "$rc"
}
# stop_server: TERM (running work is handed back within queue.shutdown_grace), KILL after 10 s.
# shellcheck disable=SC2317
stop_server() {
	local i st
	kill -TERM "$server_pid" 2>/dev/null || return 0
	for ((i = 0; i < 200; i++)); do
		# Our child stays a zombie until `wait`: state Z counts as gone.
		read -r _ _ st _ 2>/dev/null <"/proc/$server_pid/stat" || break
		[[ $st != Z ]] || break
		sleep 0.05
	done
	kill -KILL "$server_pid" 2>/dev/null || true
	wait "$server_pid" 2>/dev/null || true
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

say "creating the sample repository acme/hello in $dir/hello"
repo=$dir/hello
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

# Secrets stay in files only this user can read: nothing prints them, and they go on no command
# line (other users see command lines in /proc). curl reads the API header with -H @FILE.
(
	umask 077
	openssl rand -hex 24 | tr -d '\n' >"$dir/webhook-secret"
	printf 'Authorization: Bearer %s\n' "$(openssl rand -hex 24)" >"$dir/api-header"
	openssl rand -hex 12 | tr -d '\n' >"$dir/dashboard-password"
)
# The dashboard's demo user: only the password's hash goes into the config.
password_hash=$("$dir/slipway" hash-password <"$dir/dashboard-password")
cat >"$dir/slipway.yml" <<YAML
listen_addr: 127.0.0.1:$port
log_format: text
repositories:
  - name: acme/hello
    clone_url: $repo
    branches: [main]
policy:
  allow_all: true
auth:
  cookie_secure: false # the demo is plain http on 127.0.0.1
  users:
    - {name: demo, role: admin, password_hash: "$password_hash"}
metrics:
  public: true # the demo's Prometheus-style scrape needs no token
queue:
  shutdown_grace: 2s # Ctrl-C: the demo's work is thrown away with its database
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
# The secrets reach slipway through its environment, which only this user can read.
SLIPWAY_CONFIG=$dir/slipway.yml SLIPWAY_DATABASE_URL=$SLIPWAY_TEST_DATABASE_URL \
	SLIPWAY_WEBHOOK_SECRET=$(<"$dir/webhook-secret") SLIPWAY_API_TOKENS=$(sed 's/^.* //' "$dir/api-header") \
	"$dir/slipway" serve >"$dir/slipway.log" 2>&1 &
server_pid=$!
for ((i = 0; i < 300; i++)); do
	curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
	kill -0 "$server_pid" 2>/dev/null || { cat "$dir/slipway.log" >&2; exit 1; }
	sleep 0.1
done

# What scripts/demo-push.sh reads (key=value, never sourced).
cat >"$dir/demo.state" <<STATE
url=http://127.0.0.1:$port
repo=$repo
repo_name=acme/hello
branch=main
app_url=http://127.0.0.1:$app_port/
server_pid=$server_pid
secret_file=$dir/webhook-secret
api_header=$dir/api-header
STATE

say "pushing the first commit of acme/hello"
push=(bash "$root/scripts/demo-push.sh")
SLIPWAY_DEMO_DIR=$dir "${push[@]}" || say "the first deployment did not succeed (above); the log: $dir/slipway.log"

cat >&2 <<MSG

Slipway is running at http://127.0.0.1:$port (its log: $dir/slipway.log)
  the dashboard:      http://127.0.0.1:$port/  (user demo; its password is in $dir/dashboard-password)
  sample repository:  $repo  (acme/hello, branch main; the app is app/index.html)
  push a change:      scripts/demo-push.sh "Hello, world"
                      commits your edits in the sample repository (or, with none, makes the app say
                      the message), sends the signed push webhook and follows the run
  the demo app:       http://127.0.0.1:$app_port/
  the API:            curl -sS -H @$dir/api-header http://127.0.0.1:$port/api/v1/deployments | jq
  metrics:            http://127.0.0.1:$port/metrics
Press Ctrl-C to stop Slipway and everything this script started (the sample repository goes too).
MSG
wait "$server_pid"
