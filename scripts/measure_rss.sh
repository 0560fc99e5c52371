#!/usr/bin/env bash
# The daemon's resident memory (issue target: idle VmRSS 20 MB or less),
# measured the way the issue defines it: fwknopd sniffing on lo inside a
# fresh network namespace with the firewall4-shaped test ruleset, VmRSS,
# RssAnon and RssFile from /proc/PID/status after a few idle seconds.
#
#   scripts/measure_rss.sh [OPTIONS] [FWKNOPD ARGS]    e.g. -U for UDP mode
#
# OPTIONS come first; everything from the first other word on goes to fwknopd.
#
#   --pyc      use bytecode caches (in a temporary PYTHONPYCACHEPREFIX), as
#              an installed package runs; by default the environment decides
#              (PYTHONDONTWRITEBYTECODE=1 compiles every module at start,
#              which leaves about 0.5 MB more behind).
#   --after    also send, from inside the namespace, a base64 garbage packet
#              (it fails the HMAC check) and then a valid knock, and print
#              the figures after each: what the lazily imported hashlib and
#              cryptography add once traffic arrives.
#   --smaps    also print the ten largest mappings by RSS (idle).
#
# Run as root. Only the namespace made here is touched; it, the daemon and
# the temporary files are removed on exit.
set -euo pipefail

cd "$(dirname "$0")/.."
python="$PWD/.venv/bin/python"
pyc=0
after=0
smaps=0
while [ $# -gt 0 ]; do
	case "$1" in
	--pyc) pyc=1 ;;
	--after) after=1 ;;
	--smaps) smaps=1 ;;
	*) break ;;
	esac
	shift
done

KEY=OjuLt2Ly33uvN7cBmIwoZDkEbdouZcfIsWikTvPPEOc=
HMAC=bDCuE1dzt9NPFyvhejoKo29MVCryM+MhSwGzMEORSgeja5v408hzvdi9E52ibMyWYNdP1lj2bTphujX1lqQXuQ==
ns="fwkt-rss-$$"
tmp="$(mktemp -d)"
pid=""

cleanup() {
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	ip netns del "$ns" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

# $1 - label for the line
report() {
	printf '%-8s' "$1"
	grep -E '^(VmRSS|RssAnon|RssFile):' "/proc/$pid/status" | tr -s ' \t' ' ' | tr '\n' ' '
	echo
}

# $1 - the UDP payload, sent to 127.0.0.1:62201 inside the namespace
send() {
	ip netns exec "$ns" "$python" -c 'import socket, sys
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(sys.argv[1].encode(),
                                                        ("127.0.0.1", 62201))' "$1"
}

# $1 - text to wait for in the daemon's log (5 s at most)
wait_log() {
	for _ in $(seq 50); do
		grep -q "$1" "$tmp/log" && return 0
		sleep 0.1
	done
	echo "measure_rss: '$1' not logged; the log:" >&2
	cat "$tmp/log" >&2
	exit 1
}

printf 'SOURCE ANY\nKEY_BASE64 %s\nHMAC_KEY_BASE64 %s\n' "$KEY" "$HMAC" >"$tmp/access.conf"
: >"$tmp/fwknopd.conf"
chmod 600 "$tmp/access.conf" "$tmp/fwknopd.conf"

env_args=()
if [ "$pyc" -eq 1 ]; then
	# The prefix is used for every module, the standard library's too.
	env_args=(env -u PYTHONDONTWRITEBYTECODE "PYTHONPYCACHEPREFIX=$tmp/pyc")
fi

ip netns add "$ns"
ip netns exec "$ns" ip link set lo up
ip netns exec "$ns" nft -f tests/data/fw4-ruleset.nft

# $@ - extra fwknopd arguments
start_daemon() {
	: >"$tmp/log"
	ip netns exec "$ns" "${env_args[@]}" "$python" -m fwknopd_uci.server.cli -f -i lo \
		-c "$tmp/fwknopd.conf" -a "$tmp/access.conf" -d "$tmp/digest" -p "$tmp/pid" "$@" \
		>"$tmp/log" 2>&1 &
	pid=$!
	wait_log "Starting fwknopd main event loop."
}

if [ "$pyc" -eq 1 ]; then
	# A first run writes the caches of everything the daemon imports, as
	# installing the package (and Python) would have.
	start_daemon "$@"
	kill "$pid"
	wait "$pid" || true
fi
start_daemon "$@"
sleep 3
report idle
if [ "$smaps" -eq 1 ]; then
	awk '/^[0-9a-f]+-[0-9a-f]+ / { name = (NF >= 6) ? $6 : "[anon]" }
	     /^Rss:/ { rss[name] += $2 }
	     END { for (n in rss) printf "%8d kB %s\n", rss[n], n }' "/proc/$pid/smaps" |
		sort -rn | head -10
fi
if [ "$after" -eq 1 ]; then
	send "$(printf 'A%.0s' $(seq 200))"
	wait_log "Non-corresponding HMAC"
	sleep 1
	report garbage
	wire="$("$python" -c 'import base64, sys, time
from fwknopd_uci.spa import StanzaKeys, build_packet
keys = StanzaKeys(base64.b64decode(sys.argv[1]), base64.b64decode(sys.argv[2]))
print(build_packet("127.0.0.1,tcp/22", keys, timestamp=int(time.time())))' "$KEY" "$HMAC")"
	send "$wire"
	wait_log "Added access rule"
	sleep 1
	report knock
fi
