#!/bin/bash
# End to end with Debian's LXC and a network: a busybox container with a veth on a bridge of
# this script's own (10.215.0.1/24 on the host, 10.215.0.2 and a fixed MAC in the container),
# whose init counts in memory and runs a TCP echo server (busybox nc, one connection at a time).
# A client of this script stays connected across `lxc-checkpoint -s` and `-r` (LXC passes
# --tcp-established and names the veth's new outer end with --external veth[eth0]:NAME@BRIDGE):
#
# lxc-net/start       the echo answers through the bridge
# lxc-net/checkpoint  lxc-checkpoint -s: the container stops, its veth's outer end is gone
# lxc-net/restore     lxc-checkpoint -r: running, a veth's outer end on the bridge again, eth0 with
#                     the same address and MAC inside, the held connection echoes a line sent
#                     after the restore, the count goes on, and once that client closes, a new
#                     connection is served
#
# As lxc-macvlan.sh (a link to this script) eth0 is a macvlan (lxc.net.0.type = macvlan, mode
# bridge) on LOW, one end of a veth pair of the host whose other end has 10.216.0.1/24: LXC
# passes --external macvlan[eth0]:LOW on restore, and no macvlan is left in the host between.
#
#   tests/e2e/lxc-net.sh    (root; needs lxc, busybox and iproute2: make setup installs them)
# Output: "ok ..." / "FAIL ...: reason" lines, then "N passed, N failed". The container, the
# bridge, the images and the PATH directory are removed at the end, whatever happens.
set -u
E2E_NAME=$(basename "$0" .sh) # lxc-net (a veth on a bridge) or lxc-macvlan
# shellcheck source=e2e-lib.sh
. "$(dirname "$0")/e2e-lib.sh"
NAME=stasis-e2e-net-$$
BR=stasis-lxbr$$
BR=${BR:0:15}
IP=10.215.0.2
LOW=stasis-lxmv$$
LOW=${LOW:0:14} # (its peer: LOWp)
[ "$E2E_NAME" = lxc-macvlan ] && IP=10.216.0.2
MAC=00:16:3e:5a:51:50

cleanup() {
	exec 5<&- 2>/dev/null
	lxc-stop -n "$NAME" -k >/dev/null 2>&1
	lxc-destroy -n "$NAME" -f >/dev/null 2>&1
	ip link del "$BR" 2>/dev/null
	ip link del "$LOW" 2>/dev/null
	e2e_cleanup
}
trap cleanup EXIT

need lxc-create lxc-checkpoint busybox ip
e2e_setup
mkdir -p "$WORK/img"
LOGS=("$WORK/img/dump.log" "$WORK/img/restore.log" "$WORK/lxc.log")

if [ "$E2E_NAME" = lxc-macvlan ]; then
	if ! ip link add "$LOW" up type veth peer name "${LOW}p" || ! ip link set "${LOW}p" up ||
		! ip addr add 10.216.0.1/24 dev "${LOW}p"; then
		fail "$E2E_NAME/link" "cannot make veth pair $LOW with 10.216.0.1/24"
		finish
	fi
elif ! ip link add "$BR" type bridge || ! ip addr add 10.215.0.1/24 dev "$BR" || ! ip link set "$BR" up; then
	fail $E2E_NAME/bridge "cannot make bridge $BR with 10.215.0.1/24"
	finish
fi
if ! lxc_busybox "$NAME"; then
	fail $E2E_NAME/create "lxc-create failed"
	finish
fi
if [ "$E2E_NAME" = lxc-macvlan ]; then
	printf 'lxc.net.0.type = macvlan\nlxc.net.0.macvlan.mode = bridge\nlxc.net.0.link = %s\n' "$LOW" >>"$CONF"
else
	printf 'lxc.net.0.type = veth\nlxc.net.0.link = %s\n' "$BR" >>"$CONF"
fi
cat >>"$CONF" <<CONF
lxc.net.0.flags = up
lxc.net.0.name = eth0
lxc.net.0.hwaddr = $MAC
lxc.net.0.ipv4.address = $IP/24
lxc.console.path = none
lxc.init.cmd = /bin/sh /serve.sh
CONF
cat >"$RFS/serve.sh" <<'SH'
(while true; do nc -l -p 9000 -e cat; done) &
i=0
while true; do i=$((i + 1)); echo $i >>/count.log; sleep 0.2; done
SH

last() { tail -n 1 "$RFS/count.log" 2>/dev/null; }
# the veth's outer ends on the bridge; for a macvlan, those in the host ("none" if none)
outer_ends() {
	if [ "$E2E_NAME" = lxc-macvlan ]; then
		ip -br link show type macvlan | awk '{print $1}' | tr '\n' ' '
	else
		ip -br link show master "$BR" 2>/dev/null | awk '{print $1}' | tr '\n' ' '
	fi
}
where() {
	if [ "$E2E_NAME" = lxc-macvlan ]; then echo "on $LOW, no macvlan in the host"; else echo "outer end $(outer_ends)on $BR"; fi
}
# eth0 inside: "ADDRESS/PREFIX MAC", and "macvlan MODE" for a macvlan (the host's ip tells)
inner_eth0() {
	local pid
	pid=$(lxc-info -n "$NAME" -p -H 2>/dev/null)
	{
		lxc-attach -n "$NAME" -- ip addr show eth0 2>/dev/null 5<&-
		[ -n "$pid" ] && nsenter -t "$pid" -n ip -d link show eth0 2>/dev/null 5<&-
	} | awk '/link\/ether/ {m=$2} /inet / {a=$2} /macvlan mode/ {v=" macvlan " $3} END {print a, m v}'
}
# echo_line TEXT: sent on the held connection (fd 5), the line read back
echo_line() {
	local l=""
	echo "$1" >&5 2>/dev/null && read -r -t 5 l <&5
	echo "$l"
}

if ! lxc-start -n "$NAME" -d -l DEBUG -o "$WORK/lxc.log" || ! sleep 1.5; then
	fail $E2E_NAME/start "lxc-start failed" "${LOGS[@]}"
	finish
fi
if ! exec 5<>"/dev/tcp/$IP/9000" 2>/dev/null || [ "$(echo_line before)" != before ]; then
	fail $E2E_NAME/start "no echo from $IP:9000 (outer ends on $BR: $(outer_ends); eth0: $(inner_eth0))"
	finish
fi
eth0_before=$(inner_eth0)
if [[ $eth0_before != "$IP/24 $MAC"* ]]; then
	fail "$E2E_NAME/start" "eth0 inside reads '$eth0_before', not $IP/24 $MAC"
	finish
fi
if [ "$E2E_NAME" = lxc-macvlan ] && { [[ $eth0_before != *"macvlan bridge" ]] || [ -n "$(outer_ends)" ]; }; then
	fail lxc-macvlan/start "eth0 is not a macvlan in bridge mode, or one is in the host: '$eth0_before', '$(outer_ends)'"
	finish
fi
ok "$E2E_NAME/start (eth0 $eth0_before, $(where), echo answered)"

if ! lxc-checkpoint -n "$NAME" -D "$WORK/img" -s -l DEBUG -o "$WORK/lxc.log"; then
	fail $E2E_NAME/checkpoint "lxc-checkpoint -s failed" "${LOGS[@]}"
	finish
fi
if lxc-info -n "$NAME" 2>/dev/null | grep -q RUNNING || [ -n "$(outer_ends)" ]; then
	fail $E2E_NAME/checkpoint "after lxc-checkpoint -s: $(lxc-info -n "$NAME" -s 2>&1), outer ends on $BR: '$(outer_ends)'"
	finish
fi
before=$(last)
n_before=$(wc -l <"$RFS/count.log")
left=$([ "$E2E_NAME" = lxc-macvlan ] && echo "no macvlan in the host" || echo "no veth left on $BR")
ok "$E2E_NAME/checkpoint (stopped at $before, $left)"

# (LXC's monitor, which lxc-checkpoint -r becomes, must not keep the client's fd 5 open)
if ! lxc-checkpoint -n "$NAME" -D "$WORK/img" -r -l DEBUG -o "$WORK/lxc.log" 5<&-; then
	fail $E2E_NAME/restore "lxc-checkpoint -r failed" "${LOGS[@]}"
	finish
fi
sleep 1
after=$(echo_line after)
ends=$(outer_ends)
eth0_after=$(inner_eth0)
next=$(sed -n "$((n_before + 1))p" "$RFS/count.log")
exec 5<&-
# the server loop listens again once the held connection has ended
fresh=""
for _ in 1 2 3 4 5 6 7 8 9 10; do
	if exec 6<>"/dev/tcp/$IP/9000" 2>/dev/null; then
		echo fresh >&6 && read -r -t 5 fresh <&6
		exec 6<&-
		[ -n "$fresh" ] && break
	fi
	sleep 0.3
done
if ! lxc-info -n "$NAME" 2>/dev/null | grep -q RUNNING; then
	fail $E2E_NAME/restore "the container is not running after lxc-checkpoint -r" "${LOGS[@]}"
elif { [ "$E2E_NAME" = lxc-net ] && [ -z "$ends" ]; } || { [ "$E2E_NAME" = lxc-macvlan ] && [ -n "$ends" ]; } ||
	[ "$eth0_after" != "$eth0_before" ]; then
	fail $E2E_NAME/restore "outer ends on $BR: '$ends'; eth0 '$eth0_after', was '$eth0_before'" "${LOGS[@]}"
elif [ "$after" != after ]; then
	fail $E2E_NAME/restore "the held connection echoed '$after' after the restore, not 'after'" "${LOGS[@]}"
elif [ "$next" != $((before + 1)) ]; then
	fail $E2E_NAME/restore "the count did not go on: stopped at $before, then $next" "${LOGS[@]}"
elif [ "$fresh" != fresh ]; then
	fail $E2E_NAME/restore "a new connection after the held one was not served (got '$fresh')" "${LOGS[@]}"
else
	ok "$E2E_NAME/restore ($(where), eth0 $eth0_after; the held connection echoed, the count went $before, $next; a new connection served)"
fi
finish
