#!/usr/bin/env bash
# Starts a Docker daemon for the image test when none answers: installs docker.io from Debian
# (as root) and runs dockerd in the background. Exits non-zero when it cannot.
set -uo pipefail
docker info >/dev/null 2>&1 && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "docker: not root; cannot start a Docker daemon" >&2
	exit 1
fi
if ! command -v dockerd >/dev/null; then
	export DEBIAN_FRONTEND=noninteractive
	timeout 300 apt-get install -y -qq --no-install-recommends docker.io >/dev/null 2>&1 ||
		{ timeout 120 apt-get update -qq && timeout 300 apt-get install -y -qq --no-install-recommends docker.io >/dev/null 2>&1; } ||
		{ echo "docker: cannot install docker.io" >&2; exit 1; }
fi
nohup dockerd >/tmp/dockerd.log 2>&1 &
for _ in $(seq 1 60); do
	docker info >/dev/null 2>&1 && exit 0
	sleep 1
done
echo "docker: dockerd did not answer within 60 s (see /tmp/dockerd.log)" >&2
exit 1
