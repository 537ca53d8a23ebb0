#!/bin/bash
# The container image's HEALTHCHECK: GET /readyz (database reachable and migrated) on the address
# Slipway listens on, healthy on 200 only. The address is SLIPWAY_LISTEN_ADDR, which the image
# sets (default :8080) and which wins over listen_addr in the config file, so both always agree.
# bash's /dev/tcp: the image carries no HTTP client.
addr=${SLIPWAY_LISTEN_ADDR:-:8080}
port=${addr##*:}
host=${addr%:*}
host=${host#[}
host=${host%]}
case $host in
"" | 0.0.0.0 | ::) host=127.0.0.1 ;; # listening everywhere: ask over loopback
esac
[[ $port =~ ^[0-9]+$ ]] || { echo "SLIPWAY_LISTEN_ADDR=$addr has no port" >&2; exit 1; }
authority=$host:$port
[[ $host != *:* ]] || authority="[$host]:$port" # IPv6
exec 3<>"/dev/tcp/$host/$port" || exit 1
printf 'GET /readyz HTTP/1.0\r\nHost: %s\r\nUser-Agent: slipway-healthcheck\r\n\r\n' "$authority" >&3
read -r -t 4 _ code _ <&3 || { echo "no answer from $host:$port" >&2; exit 1; }
[[ $code == 200 ]] || { echo "/readyz on $host:$port answered $code" >&2; exit 1; }
