# Sourced by demo.sh and bench.sh.
#
# free_port NAME sets $NAME to a loopback port nothing listens on, never one it gave before (a
# server just stopped may still hold its port for a moment). Ports come from below the kernel's
# ephemeral range (32768-60999 by default), where a client connection can hold a port that
# nothing listens on, and make the server's bind fail.
used_ports=" "
free_port() {
	local p
	for _ in $(seq 200); do
		p=$((10000 + RANDOM % 20000))
		case "$used_ports" in *" $p "*) continue ;; esac
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then used_ports="$used_ports$p "; printf -v "$1" %s "$p"; return; fi
	done
	echo "$(basename "$0"): no free port" >&2; exit 1
}
