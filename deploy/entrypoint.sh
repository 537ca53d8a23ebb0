#!/bin/bash
# The container image's entrypoint (under tini). Docker and compose secrets arrive as files, so a
# NAME_FILE=path variable sets NAME to the file's content, then slipway runs with the arguments.
# Only for the secret variables below: SLIPWAY_DATABASE_URL, SLIPWAY_WEBHOOK_SECRET,
# SLIPWAY_API_TOKENS, SLIPWAY_GIT_TOKEN, SLIPWAY_AWS_EXTERNAL_ID, the registry passwords that
# registries[].password_env names (call them SLIPWAY_REGISTRY_PASSWORD...), and PGPASSWORD, which
# the database driver uses when SLIPWAY_DATABASE_URL holds no password. A value is never shown.
set -euo pipefail

while IFS='=' read -r -d '' name _; do
	case $name in
	SLIPWAY_DATABASE_URL_FILE | SLIPWAY_WEBHOOK_SECRET_FILE | SLIPWAY_API_TOKENS_FILE | SLIPWAY_GIT_TOKEN_FILE | \
		SLIPWAY_AWS_EXTERNAL_ID_FILE | SLIPWAY_REGISTRY_PASSWORD*_FILE | PGPASSWORD_FILE) ;;
	*) continue ;;
	esac
	var=${name%_FILE}
	if [[ -n ${!var+set} ]]; then
		echo "slipway: both $var and $name are set; keep one" >&2
		exit 1
	fi
	file=${!name}
	if [[ ! -r $file ]]; then
		echo "slipway: $name: cannot read $file (as uid $(id -u))" >&2
		exit 1
	fi
	value=$(<"$file") # without the trailing newline an editor adds
	if [[ -z $value ]]; then
		# compose makes an empty secret of an unset variable: say which one.
		echo "slipway: $name: $file is empty (is the variable its secret comes from set?)" >&2
		exit 1
	fi
	export "$var=$value"
	unset "$name"
done < <(env -0)

exec /usr/local/bin/slipway "$@"
