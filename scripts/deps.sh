#!/usr/bin/env bash
# Installs what the tests and the demo need and are missing: redis-server, redis-cli, nutcracker.
set -euo pipefail
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v redis-cli    >/dev/null || missing+=(redis-tools)
command -v nutcracker   >/dev/null || missing+=(nutcracker)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: need ${missing[*]}; run as root or install them: apt-get install -y ${missing[*]}" >&2
	exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian's packages may start system services on the default ports; the tests use their own.
for svc in redis-server nutcracker; do
	(service "$svc" stop || true) >/dev/null 2>&1
done
