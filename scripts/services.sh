#!/usr/bin/env bash
# Real services for Slipway's tests, private to one directory.
#
#   scripts/services.sh up DIR     install what is missing, start the services, write DIR/env
#   scripts/services.sh down DIR   stop what `up` started in DIR and remove DIR (safe to repeat)
#
# SLIPWAY_SERVICES (default "postgres,docker,registry,swarm,promtool,browser") picks what `up`
# starts, for example SLIPWAY_SERVICES=postgres for just a database. "swarm" needs "docker"; the base
# image slipway-test/busybox:latest is imported whenever "docker" runs; "promtool" starts nothing but
# installs Prometheus's promtool, which only the metrics tests need (a 100 MB package); "browser"
# starts nothing but installs Debian's chromium, which the dashboard's browser test drives headless.
#
# Packages are installed with apt-get when missing, without starting their system services and
# without leaving them enabled at boot: this script's daemons are private to DIR, and a dockerd or
# PostgreSQL that came back on the next boot would be a surprise.
#
# DIR/env holds `export NAME=value` lines: SLIPWAY_TEST_DATABASE_URL, SLIPWAY_TEST_PG_BIN, DOCKER_HOST,
# SLIPWAY_TEST_DOCKER_CLI, SLIPWAY_TEST_BASE_IMAGE, SLIPWAY_TEST_REGISTRY, SLIPWAY_TEST_SERVICES_DIR,
# each only for a service that was started.
#
# Found out on these machines (Debian 12, docker.io 20.10, no internet), worth knowing when writing tests:
# - Builds: the classic builder (DOCKER_BUILDKIT=0) works with any --network; BuildKit works only with
#   `--network host`: without it even a plain RUN fails with "network bridge not found" (--bridge=none).
#   The docker CLI at /usr/local/bin/docker (28.x, first on PATH) has no buildx plugin, so BuildKit
#   builds through it fail ("BuildKit is enabled but the buildx component is missing"); docker.io's
#   /usr/bin/docker (20.10) has BuildKit built in. DIR/env names it as SLIPWAY_TEST_DOCKER_CLI.
# - Containers without --network get only a loopback interface (as --network none).
# - Swarm: a service whose image is only local (such as the base image) makes the engine look the image
#   up on Docker Hub first; that fails at once here (no DNS) and the local image is used, with an error
#   in dockerd.log. Images pushed to SLIPWAY_TEST_REGISTRY are pinned by digest, as in production.
# - Swarm: `sleep` as PID 1 ignores SIGTERM, so each service update waits out the 10 s stop grace
#   period and the 5 s update monitor (an update took ~18 s); with --stop-grace-period 1s and
#   --update-monitor 1s it took ~5 s.
# - PID 1 on these machines reaps orphans lazily: a stopped daemon can show as <defunct> for a few
#   seconds after `down`. Its /proc cmdline is empty, so `down` treats it as gone.
#
# Every process that `up` starts has its pid in DIR/pids/NAME.pid; `down` signals a recorded pid only
# while /proc/PID/cmdline still names DIR, so it never touches a process it did not start (a pid that
# was reused, a developer's own PostgreSQL, another test run's services).
set -euo pipefail

# shellcheck source=scripts/prereqs.sh
source "$(dirname "${BASH_SOURCE[0]}")/prereqs.sh"

PG_BIN=
BASE_IMAGE=slipway-test/busybox:latest
MARKER=.slipway-services

log() { printf '[services %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
	echo "usage: $0 up|down DIR" >&2
	exit 2
}

# abs_dir DIR: an absolute path without symlinks, whether or not DIR exists yet. Mount points in
# /proc/self/mountinfo and the command lines in /proc are compared against it, so it must be canonical.
abs_dir() { realpath -m -- "$1"; }

want() { [[ ",${SLIPWAY_SERVICES:-postgres,docker,registry,swarm,promtool,browser}," == *",$1,"* ]]; }

# ---------------------------------------------------------------------------------------------------
# ports

# listening_ports prints the local ports bound for listening (TCP LISTEN, UDP unconnected; v4 and
# v6), in decimal.
listening_ports() {
	local f
	for f in /proc/net/tcp /proc/net/tcp6 /proc/net/udp /proc/net/udp6; do
		[[ -r $f ]] || continue
		# columns: sl local_address rem_address st ...; st 0A is TCP LISTEN, 07 an unconnected UDP
		# socket; the port is hex after the colon.
		awk 'NR > 1 && ($4 == "0A" || $4 == "07") { split($2, a, ":"); print a[length(a)] }' "$f"
	done | while read -r hex; do printf '%d\n' "0x$hex"; done
}

# free_port prints a TCP port that nothing listens on now. Another process can still take it before
# our service binds it, so the callers retry a start that fails.
free_port() {
	local used p i
	used=" $(listening_ports | tr '\n' ' ') "
	for ((i = 0; i < 200; i++)); do
		p=$((20000 + RANDOM % 30000))
		[[ $used == *" $p "* ]] && continue
		echo "$p"
		return 0
	done
	die "no free TCP port found"
}

# ---------------------------------------------------------------------------------------------------
# installing

pkg_installed() { [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]; }

# find_pg_bin sets PG_BIN to an installed PostgreSQL's bin dir: 15 (what Debian 12 ships and CI
# runs) when present, else the newest installed major from 15 on.
find_pg_bin() {
	local d v best=
	PG_BIN=
	for d in /usr/lib/postgresql/*/bin; do
		v=${d%/bin}
		v=${v##*/}
		if ! [[ $v =~ ^[0-9]+$ ]] || ((v < 15)); then continue; fi
		[[ -x $d/initdb && -x $d/pg_ctl && -x $d/postgres && -x $d/psql ]] || continue
		((v == 15)) && { PG_BIN=$d; return 0; }
		[[ -z $best ]] || ((v > ${best%%:*})) && best="$v:$d"
	done
	[[ -z $best ]] || PG_BIN=${best#*:}
}

# pg_packages prints the packages that install PostgreSQL: 15 where the archive has it (Debian 12),
# else the distribution's default major (Ubuntu 24.04: 16).
pg_packages() {
	if [[ -n $(apt-cache policy postgresql-15 2>/dev/null | awk '$1 == "Candidate:" && $2 != "(none)"') ]]; then
		echo postgresql-15 postgresql-client-15
	else
		echo postgresql postgresql-client
	fi
}

# enabled_units lists the symlinks that make systemd start a unit at boot.
enabled_units() {
	[[ -d /etc/systemd/system ]] || return 0
	find /etc/systemd/system -mindepth 2 -maxdepth 2 \( -path '*.wants/*' -o -path '*.requires/*' \) 2>/dev/null | sort
}

# disable_new_units BEFORE: disables every unit enabled since the BEFORE listing of enabled_units
# (docker.io, containerd, postgresql, docker-registry and prometheus enable theirs on install).
# `systemctl disable` works without a running systemd (it only edits links), and package upgrades
# keep a unit disabled.
disable_new_units() {
	local before=$1 unit
	local -a units
	mapfile -t units < <(comm -13 <(printf '%s\n' "$before") <(enabled_units) | sed 's#.*/##' | sort -u)
	for unit in "${units[@]}"; do
		[[ -n $unit ]] || continue
		if systemctl disable --no-reload "$unit" >/dev/null 2>&1; then
			log "installed $unit left disabled at boot"
		else
			log "warning: could not disable $unit at boot; run: systemctl disable $unit"
		fi
	done
}

ensure_packages() {
	local need=()
	if want postgres; then
		find_pg_bin
		# psql is in postgresql-client-N, a dependency of postgresql-N; pgbench is in the server
		# package; /usr/bin/{psql,pgbench} are pg_wrapper links.
		# shellcheck disable=SC2207
		[[ -n $PG_BIN ]] || need+=($(pg_packages))
	fi
	if want docker || want swarm; then
		command -v dockerd >/dev/null || need+=(docker.io)
		# The image's base layer: a statically linked busybox, so it needs no libc in the image.
		pkg_installed busybox-static || need+=(busybox-static)
	fi
	if want registry; then
		command -v docker-registry >/dev/null || need+=(docker-registry)
	fi
	command -v git >/dev/null || need+=(git) # Slipway's git mirror cache; tests make real repos
	command -v curl >/dev/null || need+=(curl) # the registry's readiness check below
	# promtool checks the /metrics output for real. Debian has no smaller package that ships it (no
	# prometheus-promtool); prometheus is a 19 MB download, 96 MB of its own installed, and pulls a few
	# small libjs-* packages for its web UI. Its service is never started (see policy-rc.d below).
	# Only the tests want it: `make run` leaves it out of SLIPWAY_SERVICES.
	if want promtool; then
		command -v promtool >/dev/null || need+=(prometheus)
	fi
	# The dashboard's browser test (internal/e2e/browser_test.go) drives it headless; never a
	# downloaded browser.
	if want browser; then
		command -v chromium >/dev/null || need+=(chromium)
		pkg_installed fonts-liberation || need+=(fonts-liberation) # text in its screenshots
	fi

	((${#need[@]})) || return 0
	prereq_apt "${need[*]}"
	log "installing: ${need[*]}"

	# docker.io's and prometheus's maintainer scripts start their system services (a dockerd on
	# /var/run/docker.sock, a prometheus on :9090) unless policy-rc.d says no. This machine's image
	# has a policy-rc.d that denies (exit 101); on a machine without one, put one there for the
	# install only, so that nothing outside DIR gets started.
	local own_policy=
	if [[ ! -e /usr/sbin/policy-rc.d ]]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		own_policy=1
	fi
	local rc=0 units
	units=$(enabled_units)
	{
		DEBIAN_FRONTEND=noninteractive apt-get update -q &&
			DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"
	} >&2 || rc=$?
	[[ -z $own_policy ]] || rm -f /usr/sbin/policy-rc.d
	disable_new_units "$units"
	((rc == 0)) || die "apt-get install ${need[*]} failed"
	if want postgres; then
		find_pg_bin
		[[ -n $PG_BIN ]] || die "no PostgreSQL 15 or newer under /usr/lib/postgresql after installing ${need[*]}"
	fi
}

# ---------------------------------------------------------------------------------------------------
# pids

# record NAME PID
record() { echo "$2" >"$DIR/pids/$1.pid"; }

# ours PID: true while PID is alive and its command line names a path inside DIR (so it is one of
# ours: every daemon gets DIR/... on its command line). Never true for this script or its callers.
# It forks nothing: `down` asks it about every candidate process, and forks are what a busy
# machine makes slow.
ours() {
	local pid=$1
	local -a args
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	is_ancestor "$pid" && return 1
	mapfile -d '' args 2>/dev/null <"/proc/$pid/cmdline" || return 1
	[[ " ${args[*]} " == *"$DIR/"* ]]
}

# is_ancestor PID: true for this shell and the processes above it.
ANCESTORS=
is_ancestor() {
	if [[ -z $ANCESTORS ]]; then
		local p=$$ ppid
		ANCESTORS=" "
		while [[ $p =~ ^[0-9]+$ && $p -gt 1 ]]; do
			ANCESTORS+="$p "
			ppid=$(awk '$1 == "PPid:" { print $2 }' "/proc/$p/status" 2>/dev/null) || break
			p=$ppid
		done
	fi
	[[ $ANCESTORS == *" $1 "* || $1 == "$BASHPID" ]]
}

# stop_pid NAME [SECONDS [SIGNAL]]: send SIGNAL (default TERM) to the recorded process, wait up to
# SECONDS, then KILL.
stop_pid() {
	local name=$1 secs=${2:-20} sig=${3:-TERM} f="$DIR/pids/$1.pid" pid i
	[[ -f $f ]] || return 0
	pid=$(<"$f")
	if ours "$pid"; then
		log "stopping $name (pid $pid)"
		kill "-$sig" "$pid" 2>/dev/null || true
		for ((i = 0; i < secs * 20; i++)); do
			ours "$pid" || break
			sleep 0.05
		done
		if ours "$pid"; then
			log "$name (pid $pid) still alive after ${secs}s: KILL"
			kill -KILL "$pid" 2>/dev/null || true
			for ((i = 0; i < 50; i++)); do
				ours "$pid" || break
				sleep 0.1
			done
		fi
	fi
	rm -f "$f"
}

# signal_pid NAME SIGNAL: send SIGNAL to the recorded process if it is ours; stop_pid waits for it.
signal_pid() {
	local f="$DIR/pids/$1.pid" pid
	[[ -f $f ]] || return 0
	pid=$(<"$f")
	ours "$pid" || return 0
	kill "-$2" "$pid" 2>/dev/null || true
}

# start_bg NAME LOGFILE CMD...: start CMD detached from our terminal and pipes (so a caller that
# captures our output does not wait for the daemon), in its own session, and record its pid.
start_bg() {
	local name=$1 logf=$2
	shift 2
	# Not a process-group leader when started with & from a script, so setsid execs in place and $!
	# is the daemon's own pid.
	setsid "$@" </dev/null >>"$logf" 2>&1 &
	record "$name" "$!"
}

# ---------------------------------------------------------------------------------------------------
# up

start_postgres() {
	log "postgres: initdb"
	install -d -m 700 -o postgres -g postgres "$DIR/pg"
	install -d -m 755 -o postgres -g postgres "$DIR/pg-socket"
	# pg_ctl -l opens the log as the postgres user, which cannot write in DIR itself.
	install -m 644 -o postgres -g postgres /dev/null "$DIR/pg.log"
	# --no-sync: a throwaway cluster need not fsync its initial files (saves ~1 s); fsync stays on
	# for the server itself.
	runuser -u postgres -- "$PG_BIN/initdb" -D "$DIR/pg" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
		--no-sync >"$DIR/pg-initdb.log" 2>&1 || {
		cat "$DIR/pg-initdb.log" >&2
		die "initdb failed"
	}
	echo "$PG_BIN" >"$DIR/pg-bin" # for `down` and for the log: which PostgreSQL this is
	cat >>"$DIR/pg/postgresql.conf" <<-EOF

		# slipway test settings (scripts/services.sh)
		listen_addresses = '127.0.0.1'
		unix_socket_directories = '$DIR/pg-socket'
		max_connections = 200
		shared_buffers = 128MB
		log_line_prefix = '%m [%p] %q%u@%d '
		log_min_messages = warning
	EOF

	local port try
	for try in 1 2 3 4 5; do
		port=$(free_port)
		echo "port = $port" >>"$DIR/pg/postgresql.conf" # the last setting in the file wins
		if runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$DIR/pg" -l "$DIR/pg.log" -w -t 60 start >/dev/null; then
			PG_PORT=$port
			# postmaster.pid's first line is the postmaster's pid; pg_ctl stop uses the file itself.
			record postgres "$(head -n1 "$DIR/pg/postmaster.pid")"
			log "postgres: 127.0.0.1:$PG_PORT"
			return 0
		fi
		log "postgres did not start on port $port (try $try)"
		tail -n 5 "$DIR/pg.log" >&2 || true
	done
	die "postgres did not start; log: $DIR/pg.log"
}

start_dockerd() {
	log "docker: starting a private dockerd"
	mkdir -p "$DIR/docker" "$DIR/docker-exec"
	# vfs: overlayfs on overlayfs and the kernel's options here are not a given; vfs works anywhere,
	# at the price of a full copy per layer (fine for a busybox base image).
	# --iptables=false --bridge=none: no NAT rules on the host and no docker0; containers run with
	# --network host or none. dockerd starts its own containerd under DIR/docker-exec.
	start_bg dockerd "$DIR/dockerd.log" dockerd \
		--data-root "$DIR/docker" \
		--exec-root "$DIR/docker-exec" \
		--pidfile "$DIR/docker.pid" \
		--host "unix://$DIR/docker.sock" \
		--storage-driver vfs \
		--iptables=false --ip6tables=false --bridge=none \
		--userland-proxy=false
	export DOCKER_HOST="unix://$DIR/docker.sock"

	local i
	for ((i = 0; i < 600; i++)); do
		if [[ -S $DIR/docker.sock ]] && "$DOCKER" info >/dev/null 2>&1; then
			log "docker: engine $("$DOCKER" version --format '{{.Server.Version}}' 2>/dev/null) answers"
			return 0
		fi
		# Still alive? Not `ours`: until setsid has exec'd, the child's command line is this script's.
		kill -0 "$(<"$DIR/pids/dockerd.pid")" 2>/dev/null || break
		sleep 0.1
	done
	cat "$DIR/dockerd.log" >&2 || true
	die "dockerd did not answer within 60 s"
}

build_base_image() {
	log "docker: importing $BASE_IMAGE"
	local root="$DIR/base-image/rootfs" busybox a
	busybox=$(dpkg -L busybox-static | grep -m1 -E '/bin/busybox$')
	rm -rf "$DIR/base-image"
	mkdir -p "$root"/{bin,etc,tmp,root,proc,sys,dev,var/www,usr/bin,sbin,usr/sbin}
	chmod 1777 "$root/tmp"
	cp "$busybox" "$root/bin/busybox"
	local applets
	mapfile -t applets < <("$root/bin/busybox" --list)
	for a in "${applets[@]}"; do
		[[ $a == busybox || $a == */* ]] && continue
		ln -sf busybox "$root/bin/$a"
	done
	for a in sh ls cat echo sleep wget httpd nc true false; do
		[[ -L $root/bin/$a ]] || die "busybox has no applet $a"
	done
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
	printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
	# Nothing can be pulled from outside, so the base image is imported from a tarball.
	tar -C "$root" --numeric-owner --owner=0 --group=0 -cf "$DIR/base-image/rootfs.tar" .
	"$DOCKER" import \
		--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		--change 'CMD ["/bin/sh"]' \
		"$DIR/base-image/rootfs.tar" "$BASE_IMAGE" >/dev/null
	local out
	out=$("$DOCKER" run --rm --network none "$BASE_IMAGE" /bin/sh -c 'echo ok') ||
		die "docker run of $BASE_IMAGE failed"
	[[ $out == ok ]] || die "docker run of $BASE_IMAGE printed '$out', want 'ok'"
}

start_swarm() {
	log "swarm: init"
	# Swarm's defaults are machine-wide ports: 0.0.0.0:2377 (manager API) and UDP 4789 (overlay data
	# path), so a second private engine (a developer's `make services-up` beside `make test`) fails
	# with "address already in use". Both are moved to free ports on 127.0.0.1. Gossip stays on 7946,
	# which no flag moves: the second engine logs "failed to create memberlist" and carries on; that
	# only matters for overlay networks, and tests use --network host.
	local port dport try ok=
	for try in 1 2 3; do
		port=$(free_port)
		dport=$(free_port)
		if "$DOCKER" swarm init --advertise-addr "127.0.0.1:$port" --listen-addr "127.0.0.1:$port" \
			--data-path-port "$dport" >"$DIR/swarm-init.log" 2>&1; then
			ok=1
			break
		fi
		log "swarm init on port $port failed (try $try)"
		cat "$DIR/swarm-init.log" >&2
	done
	[[ -n $ok ]] || die "docker swarm init failed"
	local i state
	for ((i = 0; i < 300; i++)); do
		state=$("$DOCKER" info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}' 2>/dev/null || true)
		[[ $state == "active true" ]] && return 0
		sleep 0.1
	done
	die "swarm not active after 30 s (state: $state)"
}

start_registry() {
	log "registry: starting"
	mkdir -p "$DIR/registry-data"
	local port try i
	for try in 1 2 3 4 5; do
		port=$(free_port)
		cat >"$DIR/registry.yml" <<-EOF
			version: 0.1
			log:
			  level: info
			  accesslog:
			    disabled: false
			storage:
			  filesystem:
			    rootdirectory: $DIR/registry-data
			  delete:
			    enabled: true
			  maintenance:
			    uploadpurging:
			      enabled: false
			http:
			  addr: 127.0.0.1:$port
			  headers:
			    X-Content-Type-Options: [nosniff]
		EOF
		start_bg registry "$DIR/registry.log" docker-registry serve "$DIR/registry.yml"
		for ((i = 0; i < 300; i++)); do
			if curl -fsS --noproxy '*' -o /dev/null --max-time 2 "http://127.0.0.1:$port/v2/" 2>/dev/null; then
				REGISTRY_PORT=$port
				log "registry: 127.0.0.1:$REGISTRY_PORT"
				return 0
			fi
			kill -0 "$(<"$DIR/pids/registry.pid")" 2>/dev/null || break
			sleep 0.1
		done
		log "registry did not answer on port $port (try $try)"
		tail -n 5 "$DIR/registry.log" >&2 || true
		stop_pid registry 5
	done
	die "registry did not start; log: $DIR/registry.log"
}

# Only the variables below: no PGHOST/PGPORT and the like, since pgx and libpq read those as defaults
# and they would silently change what other connection strings mean.
write_env() {
	{
		echo "# written by scripts/services.sh up; source it"
		echo "export SLIPWAY_TEST_SERVICES_DIR=$DIR"
		if [[ -n ${PG_PORT:-} ]]; then
			echo "export SLIPWAY_TEST_DATABASE_URL='postgres://postgres@127.0.0.1:$PG_PORT/postgres?sslmode=disable'"
			echo "export SLIPWAY_TEST_PG_BIN=$PG_BIN"
		fi
		if [[ -n ${DOCKER_UP:-} ]]; then
			echo "export DOCKER_HOST=unix://$DIR/docker.sock"
			echo "export SLIPWAY_TEST_DOCKER_CLI=$DOCKER"
			echo "export SLIPWAY_TEST_BASE_IMAGE=$BASE_IMAGE"
		fi
		if [[ -n ${REGISTRY_PORT:-} ]]; then
			echo "export SLIPWAY_TEST_REGISTRY=127.0.0.1:$REGISTRY_PORT"
		fi
	} >"$DIR/env.tmp"
	mv "$DIR/env.tmp" "$DIR/env"
}

cmd_up() {
	prereq_linux
	prereq_root "scripts/services.sh up"
	want swarm && ! want docker && die "SLIPWAY_SERVICES: swarm needs docker"
	# Unix socket paths are limited to 107 bytes; the longest one under DIR is the containerd socket.
	((${#DIR} <= 60)) || die "DIR '$DIR' is too long for unix socket paths (keep it under 60 characters)"
	if [[ -e $DIR ]]; then
		[[ -d $DIR ]] || die "$DIR exists and is not a directory"
		[[ -e $DIR/env || -d $DIR/pids ]] && die "$DIR already holds services; run: $0 down $DIR"
		[[ -z $(ls -A "$DIR") ]] || die "$DIR is not empty; refusing to use it"
	fi
	mkdir -p "$DIR/pids"
	touch "$DIR/$MARKER"
	# The postgres user must reach DIR/pg and DIR/pg-socket (mktemp -d makes DIR 0700).
	chmod 711 "$DIR"

	trap 'rc=$?; ((rc == 0)) || log "up failed; clean up with: $0 down $DIR"' EXIT

	ensure_packages

	# docker.io's /usr/bin/docker (the engine's own version, 20.10) has BuildKit built in. This
	# machine may also have a newer CLI at /usr/local/bin/docker, earlier on PATH, without the buildx
	# plugin: with it, BuildKit builds fail and only DOCKER_BUILDKIT=0 builds.
	DOCKER=/usr/bin/docker
	[[ -x $DOCKER ]] || DOCKER=$(command -v docker)

	local t0=$SECONDS
	if want postgres; then start_postgres; fi
	if want docker; then
		start_dockerd
		DOCKER_UP=1
		build_base_image
		if want swarm; then start_swarm; fi
	fi
	if want registry; then start_registry; fi
	write_env
	log "up in $((SECONDS - t0)) s (after installs); env: $DIR/env"
}

# ---------------------------------------------------------------------------------------------------
# down

# After dockerd stops, its network namespaces can stay bind-mounted under DIR/docker-exec/netns (swarm
# leaves netns/default), and rm -rf fails on them with EBUSY.
unmount_under_dir() {
	local mp i
	for ((i = 0; i < 3; i++)); do
		# mountinfo field 5 is the mount point, with spaces etc. octal-escaped (\040); deepest first.
		mapfile -t mps < <(awk '{ print $5 }' /proc/self/mountinfo | while read -r m; do printf '%b\n' "$m"; done |
			awk -v d="$DIR/" 'index($0, d) == 1' | awk '{ print length($0) "\t" $0 }' | sort -rn | cut -f2-)
		((${#mps[@]})) || return 0
		for mp in "${mps[@]}"; do
			log "unmounting $mp"
			umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || true
		done
	done
}

# kill_leftovers: processes dockerd started (its containerd, containerd-shims, a docker-proxy) that
# outlived a dockerd killed with KILL. They are found by DIR in their command line, so only ours.
# One grep over every command line finds the candidates: asking `ours` about each of the machine's
# processes took seconds on a busy machine with a thousand of them.
kill_leftovers() {
	local p exe pids=() candidates
	mapfile -t candidates < <(grep -lsaF -- "$DIR/" /proc/[0-9]*/cmdline 2>/dev/null || true)
	for p in "${candidates[@]}"; do
		p=${p#/proc/}
		p=${p%/cmdline}
		ours "$p" || continue
		exe=$(readlink "/proc/$p/exe" 2>/dev/null) || continue
		case ${exe##*/} in
		dockerd | containerd | containerd-shim* | docker-proxy | runc | docker-init | tini | docker-registry | postgres)
			pids+=("$p")
			;;
		esac
	done
	((${#pids[@]})) || return 0
	log "killing leftover processes: ${pids[*]}"
	kill -KILL "${pids[@]}" 2>/dev/null || true
	local i alive
	for ((i = 0; i < 100; i++)); do
		alive=
		for p in "${pids[@]}"; do ours "$p" && alive=1 && break; done
		[[ -n $alive ]] || break
		sleep 0.05
	done
}

cmd_down() {
	if [[ ! -e $DIR ]]; then
		log "$DIR does not exist: nothing to stop"
		return 0
	fi
	[[ -d $DIR ]] || die "$DIR is not a directory"
	if [[ ! -e $DIR/$MARKER ]]; then
		# Not made by `up`: never rm -rf a directory we did not fill.
		if [[ -z $(ls -A "$DIR") ]]; then
			rmdir "$DIR"
			return 0
		fi
		die "$DIR has no $MARKER: not a services dir, refusing to remove it"
	fi
	prereq_root "scripts/services.sh down"
	mkdir -p "$DIR/pids"
	local t0=$EPOCHREALTIME

	# Everything here is thrown away with DIR, so nothing gets a graceful goodbye it does not need.
	# The three stop at once; each is then waited for.
	local swarm=
	if [[ -f $DIR/pids/dockerd.pid ]] && ours "$(<"$DIR/pids/dockerd.pid")"; then
		local docker=/usr/bin/docker ids
		[[ -x $docker ]] || docker=$(command -v docker)
		export DOCKER_HOST="unix://$DIR/docker.sock"
		swarm=$(timeout 10 "$docker" info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null || true)
		if [[ $swarm == active ]]; then
			# Services first, else swarm restarts the task containers removed below.
			ids=$(timeout 10 "$docker" service ls -q 2>/dev/null || true)
			# shellcheck disable=SC2086
			[[ -z $ids ]] || timeout 30 "$docker" service rm $ids >/dev/null 2>&1 || true
		fi
		ids=$(timeout 30 "$docker" ps -aq 2>/dev/null || true)
		# shellcheck disable=SC2086
		[[ -z $ids ]] || timeout 60 "$docker" rm -f $ids >/dev/null 2>&1 || true
	fi
	# A swarm member's dockerd waits 5 s on SIGTERM for an ingress network that never goes away
	# here (--bridge=none), and `swarm leave` waits the same 5 s; with the containers gone and the
	# data root deleted next, KILL loses nothing (kill_leftovers takes its containerd).
	local dockerd_sig=TERM
	[[ $swarm == active ]] && dockerd_sig=KILL
	# SIGINT is PostgreSQL's fast shutdown: sessions are cut, nothing is waited for.
	signal_pid postgres INT
	signal_pid dockerd "$dockerd_sig"
	signal_pid registry TERM
	stop_pid dockerd 30 "$dockerd_sig"
	stop_pid registry 10
	stop_pid postgres 10 INT

	kill_leftovers
	unmount_under_dir
	rm -rf -- "$DIR" || {
		sleep 1
		unmount_under_dir
		rm -rf -- "$DIR"
	}
	log "down in $(elapsed_since "$t0") s"
}

# elapsed_since EPOCHREALTIME: seconds since then, to a tenth.
elapsed_since() {
	local t0=${1/[.,]/} t1=${EPOCHREALTIME/[.,]/}
	printf '%d.%d' $(((t1 - t0) / 1000000)) $((((t1 - t0) % 1000000) / 100000))
}

# ---------------------------------------------------------------------------------------------------

[[ $# == 2 ]] || usage
DIR=$(abs_dir "$2")
case $DIR in
/ | /tmp | /root | /home | /work | /usr | /var | /etc | "$HOME") die "refusing to use $DIR" ;;
esac
case $1 in
up) cmd_up ;;
down) cmd_down ;;
*) usage ;;
esac
