#!/usr/bin/env bash
# Push a change to the sample repository of a running `make run`, as GitHub would.
#
#   scripts/demo-push.sh ["MESSAGE"] [--no-wait]
#
# With uncommitted changes in the sample repository (edit its files as you like), they are
# committed with MESSAGE. With none, MESSAGE becomes the text the demo app serves, and that change
# is committed. Without MESSAGE and with commits not pushed yet, those are pushed as they are.
# Then a push webhook goes to the demo's Slipway: GitHub's payload (before and after SHAs, the
# commits with their files), signed with the demo's webhook secret (X-Hub-Signature-256). The
# script prints the run's id and where to follow it, then waits for the run to finish (not with
# --no-wait; Ctrl-C stops only the waiting).
#
# The demo is found by its state file, /tmp/slipway-run.*/demo.state, written by scripts/run.sh;
# with several demos running, SLIPWAY_DEMO_DIR=/tmp/slipway-run.XXXXXX picks one. Run it as the
# user who ran `make run` (root): the secret is readable by that user only. The secret is never
# printed, and never put on a command line, where other users could read it in /proc.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/prereqs.sh
source "$root/scripts/prereqs.sh"

say() { printf '\033[1m[demo]\033[0m %s\n' "$*" >&2; }
fail() { prereq_fail "$*"; }

message='' wait=1
for arg in "$@"; do
	case $arg in
	--no-wait) wait= ;;
	-h | --help)
		sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	-*) fail "demo-push.sh: unknown flag $arg (usage: scripts/demo-push.sh [\"MESSAGE\"] [--no-wait])" ;;
	*)
		[[ -z $message ]] || fail "demo-push.sh: one message only; quote it: scripts/demo-push.sh \"$message $arg\""
		message=$arg
		;;
	esac
done
for tool in curl openssl jq git od; do
	command -v "$tool" >/dev/null || fail "demo-push.sh needs $tool; make run installs it"
done

# ---------------------------------------------------------------------------------------------------
# the demo's state

# demo_alive DIR: its state file exists and the Slipway it names still runs from DIR.
demo_alive() {
	local pid args
	[[ -r $1/demo.state ]] || return 1
	pid=$(state_get "$1/demo.state" server_pid) || return 1
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	mapfile -d '' args 2>/dev/null <"/proc/$pid/cmdline" || return 1
	[[ ${args[0]:-} == "$1/slipway" ]]
}

# state_get FILE KEY prints KEY's value from FILE's key=value lines (never sourced: it is data).
state_get() {
	local k v
	while IFS='=' read -r k v; do
		[[ $k == "$2" ]] && { printf '%s\n' "$v"; return 0; }
	done <"$1"
	return 1
}

find_demo() {
	if [[ -n ${SLIPWAY_DEMO_DIR:-} ]]; then
		demo_alive "$SLIPWAY_DEMO_DIR" || fail "no running demo in SLIPWAY_DEMO_DIR=$SLIPWAY_DEMO_DIR (is make run still running?)"
		printf '%s\n' "$SLIPWAY_DEMO_DIR"
		return 0
	fi
	local d found=()
	for d in /tmp/slipway-run.*; do
		[[ -d $d ]] || continue
		if [[ -e $d/demo.state && ! -r $d/demo.state ]]; then
			fail "cannot read $d/demo.state: run this as the user who ran make run (sudo scripts/demo-push.sh ...)"
		fi
		demo_alive "$d" && found+=("$d")
	done
	case ${#found[@]} in
	0) fail "no running demo found: start one with make run (and keep it running)" ;;
	1) printf '%s\n' "${found[0]}" ;;
	*) fail "several demos run (${found[*]}); pick one: SLIPWAY_DEMO_DIR=${found[0]} scripts/demo-push.sh ..." ;;
	esac
}

dir=$(find_demo)
state=$dir/demo.state
url=$(state_get "$state" url)
repo=$(state_get "$state" repo)
repo_name=$(state_get "$state" repo_name)
branch=$(state_get "$state" branch)
app_url=$(state_get "$state" app_url || true)
secret_file=$(state_get "$state" secret_file)
api_header=$(state_get "$state" api_header)
pushed_file=$dir/last-push
[[ -r $secret_file ]] || fail "cannot read the demo's webhook secret: run this as the user who ran make run"

# ---------------------------------------------------------------------------------------------------
# the commit

git_() { git -C "$repo" -c user.name=Demo -c user.email=demo@example.com "$@"; }

zero=0000000000000000000000000000000000000000
before=$zero
[[ -s $pushed_file ]] && before=$(<"$pushed_file")
head=$(git_ rev-parse HEAD)

if [[ -n $(git_ status --porcelain) ]]; then
	git_ add -A
	git_ commit -q -m "${message:-Change from demo-push.sh}"
elif [[ -n $message || $head == "$before" ]]; then
	# Nothing edited: the change is the page the demo app serves.
	printf '%s\n' "${message:-Hello again from a Slipway deployment}" >"$repo/app/index.html"
	git_ add -A
	git_ commit -q --allow-empty -m "${message:-Change the greeting}"
fi
after=$(git_ rev-parse HEAD)

# ---------------------------------------------------------------------------------------------------
# the payload, as GitHub sends it for a push to a branch

# commit_json SHA: one entry of the payload's commits[].
commit_json() {
	local sha=$1 files
	# name-status lines: "A\tpath", "M\tpath", "D\tpath", "R100\told\tnew"; --root lists a first commit's files.
	files=$(git_ diff-tree --root --no-commit-id -r --name-status "$sha" | jq -R -s '
		split("\n") | map(select(length > 0) | split("\t")) |
		{added: map(select(.[0] == "A" or (.[0] | startswith("R")) or (.[0] | startswith("C"))) | .[-1]),
		 removed: map(select(.[0] == "D" or (.[0] | startswith("R"))) | .[1]),
		 modified: map(select(.[0] == "M" or .[0] == "T") | .[1])}')
	git_ show -s --format='%H%x00%T%x00%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%cI%x00%B' "$sha" |
		jq -R -s --argjson files "$files" --arg repo "$repo_name" '
			split("\u0000") as $f |
			{id: $f[0], tree_id: $f[1], distinct: true, message: ($f[8] | rtrimstr("\n")), timestamp: $f[4],
			 url: "https://github.com/\($repo)/commit/\($f[0])",
			 author: {name: $f[2], email: $f[3], username: "demo"},
			 committer: {name: $f[5], email: $f[6], username: "demo"}} + $files'
}

commits=()
if [[ $before == "$zero" ]]; then
	commits=("$after")
elif [[ $before != "$after" ]]; then
	git_ cat-file -e "$before^{commit}" 2>/dev/null || fail "the last pushed commit ${before:0:12} is not in $repo"
	mapfile -t commits < <(git_ rev-list --reverse --max-count=20 "$before..$after")
fi
commits_json=$(for c in "${commits[@]}"; do commit_json "$c"; done | jq -s .)
head_json=$(commit_json "$after")
owner=${repo_name%%/*}
name=${repo_name#*/}

payload=$(mktemp "$dir/push.XXXXXX")
trap 'rm -f "$payload" "$payload.answer"' EXIT
jq -cn --arg ref "refs/heads/$branch" --arg before "$before" --arg after "$after" --arg repo "$repo_name" \
	--arg owner "$owner" --arg name "$name" --arg branch "$branch" \
	--argjson commits "$commits_json" --argjson head "$head_json" '{
	ref: $ref, before: $before, after: $after,
	repository: {id: 1, name: $name, full_name: $repo, private: false,
		owner: {name: $owner, login: $owner, type: "Organization"},
		html_url: "https://github.com/\($repo)", clone_url: "https://github.com/\($repo).git",
		default_branch: $branch, master_branch: $branch},
	pusher: {name: "demo", email: "demo@example.com"},
	sender: {login: "demo", id: 1, type: "User"},
	created: ($before == "0000000000000000000000000000000000000000"), deleted: false, forced: false,
	base_ref: null, compare: "https://github.com/\($repo)/compare/\($before[0:12])...\($after[0:12])",
	commits: $commits, head_commit: $head}' >"$payload"

# hmac_sha256 KEYFILE DATAFILE prints the hex HMAC-SHA256 (RFC 2104) of DATAFILE under the key in
# KEYFILE. `openssl dgst -hmac KEY` would put the key on a command line, readable by every user in
# /proc; here it goes only through pipes and bash builtins.
hmac_sha256() {
	local key i b ipad='' opad=''
	key=$(od -An -v -tx1 <"$1" | tr -d ' \n')
	if ((${#key} > 128)); then # longer than the 64-byte block: its hash is the key
		key=$(openssl dgst -sha256 -binary <"$1" | od -An -v -tx1 | tr -d ' \n')
	fi
	for ((i = 0; i < 128; i += 2)); do
		b=0
		[[ -z ${key:i:2} ]] || b=$((16#${key:i:2})) # zero-padded to the block
		printf -v ipad '%s\\x%02x' "$ipad" $((b ^ 0x36))
		printf -v opad '%s\\x%02x' "$opad" $((b ^ 0x5c))
	done
	{
		printf '%b' "$opad"
		{ printf '%b' "$ipad" && cat "$2"; } | openssl dgst -sha256 -binary
	} | openssl dgst -sha256 -r | cut -d' ' -f1
}

signature=$(hmac_sha256 "$secret_file" "$payload")
[[ $signature =~ ^[0-9a-f]{64}$ ]] || fail "could not sign the payload with openssl"

# ---------------------------------------------------------------------------------------------------
# the webhook

code=$(curl -sS -o "$payload.answer" -w '%{http_code}' -X POST "$url/webhooks/github" \
	-H 'Content-Type: application/json' -H 'User-Agent: GitHub-Hookshot/slipway-demo' \
	-H 'X-GitHub-Event: push' -H "X-GitHub-Delivery: $(cat /proc/sys/kernel/random/uuid)" \
	-H "X-Hub-Signature-256: sha256=$signature" --data-binary "@$payload") ||
	fail "could not reach Slipway at $url (is make run still running?)"
answer=$(<"$payload.answer")
case $code in
202 | 200) printf '%s\n' "$after" >"$pushed_file" ;;
*) fail "Slipway answered $code to the push: $answer" ;;
esac
run_id=$(jq -r '.run_id // empty' <<<"$answer")
range="${before:0:7}..${after:0:7}"
[[ $before == "$zero" ]] && range="${after:0:7}"
if [[ -z $run_id ]]; then
	say "pushed $repo_name $branch $range: nothing to deploy ($(jq -r '.reason // .outcome // "no reason given"' <<<"$answer"))"
	exit 0
fi

api="$url/api/v1/runs/$run_id"
say "pushed $repo_name $branch $range ($(git_ show -s --format=%s "$after")): run $run_id"
printf '  follow it:  curl -sS -H @%s %s | jq\n' "$api_header" "$api" >&2

# dashboard_page PATH prints the dashboard's page PATH where this server has one (404: it has not).
dashboard=
dashboard_page() {
	local status
	status=$(curl -s -o /dev/null -w '%{http_code}' "$url/$1" || true)
	[[ $status != 404 && $status != 000 ]] || return 1
	printf '  dashboard:  %s/%s\n' "$url" "$1" >&2
	dashboard=1
}
dashboard_page "runs/$run_id" || true
[[ -n $wait ]] || exit 0

# ---------------------------------------------------------------------------------------------------
# waiting for the run

get() { curl -fsS -H "@$api_header" "$url/api/v1/$1"; }
seen='' run='' deadline=$((SECONDS + 900))
while ((SECONDS < deadline)); do
	run=$(get "runs/$run_id") || fail "could not read run $run_id from $api"
	# One line per change of the run's or a deployment's status.
	now=$(jq -r '"run " + .status + ([.deployments[]? | ", " + .service + "/" + .environment + " " + .status] | add // "")' <<<"$run")
	if [[ $now != "$seen" ]]; then
		say "$now"
		seen=$now
		first=$(jq -r '.deployments[0].id // empty' <<<"$run")
		[[ -n $dashboard || -z $first ]] || dashboard_page "deployments/$first" || dashboard=no
	fi
	status=$(jq -r .status <<<"$run")
	pending=$(jq '[.deployments[]? | select(.status | IN("queued","building","pushing","deploying"))] | length' <<<"$run")
	[[ $status != queued && $status != planning && $pending == 0 ]] && break
	sleep 0.5
done
((SECONDS < deadline)) || fail "run $run_id did not finish within 15 minutes; see $api"

failed=$(jq -r '[.deployments[]? | select(.status | IN("failed", "rolled_back"))] | .[0].id // empty' <<<"$run")
if [[ -n $(jq -r '.error // empty' <<<"$run") ]]; then
	say "run $run_id: $(jq -r .error <<<"$run")"
fi
[[ $status != failed ]] || exit 1
if [[ -n $failed ]]; then
	say "deployment $failed did not succeed; its last log lines:"
	get "deployments/$failed/logs" | jq -r '.lines[-20:][].line' >&2 || true
	exit 1
fi
if [[ -n $app_url && $(jq '.deployments | length' <<<"$run") -gt 0 ]]; then
	say "the demo app at $app_url now answers: $(curl -fsS --max-time 5 "$app_url" || echo '(no answer)')"
fi
