#!/bin/bash
# End to end with Debian's LXC and tun/tap devices: a busybox container in a network namespace
# of its own (lxc.net.0.type = empty) given /dev/net/tun (bound from the host, allowed by the
# devices cgroup), as a VPN's container is, runs the zoo's tun program (tests/zoo/tun.c, with
# ZOO_TUN_NETNS=keep: in the container's namespace): tun zt0 with an address, tap zp0, a
# persistent tap zq0, a multi-queue tap zm0 with two queues, and /dev/net/tun files, one
# attached to nothing. `lxc-checkpoint -s`,
# then `-r`, stasis being the `criu` LXC finds on PATH.
#
# lxc-tun/start       the program is READY, its four devices in the container's namespace
# lxc-tun/checkpoint  lxc-checkpoint -s: the container stops
# lxc-tun/restore     lxc-checkpoint -r: running, the same devices (`ip -d link`: type, flags,
#                     MAC, persistence, owner, queues); SIGTERM: the program checks its files, devices
#                     and traffic through zt0, and PASSes
#
#   tests/e2e/lxc-tun.sh    (root; needs lxc, busybox and iproute2: make setup installs them)
# Output: "ok ..." / "FAIL ...: reason" lines, then "N passed, N failed". The container, its
# images and the PATH directory are removed at the end, whatever happens.
set -u
E2E_NAME=lxc-tun
# shellcheck source=e2e-lib.sh
. "$(dirname "$0")/e2e-lib.sh"
TUN_PROG=$E2E_ROOT/tests/zoo/bin/tun
NAME=stasis-e2e-tun-$$
RFS=/var/lib/lxc/$NAME/rootfs

cleanup() {
	lxc-stop -n "$NAME" -k >/dev/null 2>&1
	lxc-destroy -n "$NAME" -f >/dev/null 2>&1
	e2e_cleanup
}
trap cleanup EXIT

need lxc-create lxc-checkpoint busybox ip nsenter
e2e_setup
mkdir -p "$WORK/img"
LOGS=("$WORK/img/dump.log" "$WORK/img/restore.log" "$WORK/lxc.log" "$RFS/tun.out")
make -s -C "$E2E_ROOT/tests/zoo" bin/tun >/dev/null 2>&1
if [ ! -x "$TUN_PROG" ] || [ ! -c /dev/net/tun ]; then
	fail lxc-tun "no $TUN_PROG (make -C tests/zoo) or no /dev/net/tun"
	finish
fi

if ! lxc_busybox "$NAME"; then
	fail lxc-tun/create "lxc-create failed" "$WORK/lxc.log"
	finish
fi
cat >>"$CONF" <<CONF
lxc.net.0.type = empty
lxc.console.path = none
lxc.cgroup.devices.allow = c 10:200 rwm
lxc.mount.entry = /dev/net/tun dev/net/tun none bind,create=file 0 0
lxc.init.cmd = /bin/sh /start.sh
CONF
# (the host's /lib and /usr/lib are bound into the container: the zoo's binary runs there)
cp "$TUN_PROG" "$RFS/tun"
cat >"$RFS/start.sh" <<'SH'
ZOO_TUN_NETNS=keep /tun >/tun.out 2>&1 &
while true; do sleep 1; done
SH

init_pid() { lxc-info -n "$NAME" -p -H 2>/dev/null; }
tun_pid() { ps -o pid=,comm= --ppid "$(init_pid)" 2>/dev/null | awk '$2 == "tun" { print $1 }'; }
# the devices as `ip -d link` shows them inside, without counters and the state of carrier
devices() {
	nsenter -n -t "$(init_pid)" ip -d -o link show 2>/dev/null | grep -E ': z[tpqm]0:' |
		sed -E -e 's/ state [A-Z]+//' -e 's/ (numtxqueues|numrxqueues|gso_max_size|gso_max_segs|tso_max_size|tso_max_segs|gro_max_size|gso_ipv4_max_size|gro_ipv4_max_size) [0-9]+//g' -e 's/^[0-9]+: //'
}
ready() { grep -q '^READY' "$RFS/tun.out" 2>/dev/null; }

lxc-start -n "$NAME" -d -l DEBUG -o "$WORK/lxc.log"
wait_for 5 ready
devices >"$WORK/devices.before"
if ! ready || [ "$(wc -l <"$WORK/devices.before")" != 4 ]; then
	fail lxc-tun/start "the program is not READY with its four devices ($(wc -l <"$WORK/devices.before") seen)" \
		"${LOGS[@]}"
	finish
fi
ok "lxc-tun/start (zt0, zp0, zq0, zm0 in the container's namespace)"

if ! lxc-checkpoint -n "$NAME" -D "$WORK/img" -s -l DEBUG -o "$WORK/lxc.log"; then
	fail lxc-tun/checkpoint "lxc-checkpoint -s failed" "${LOGS[@]}"
elif lxc-info -n "$NAME" 2>/dev/null | grep -q RUNNING; then
	fail lxc-tun/checkpoint "the container still runs after lxc-checkpoint -s" "${LOGS[@]}"
else
	ok "lxc-tun/checkpoint"
	if ! lxc-checkpoint -n "$NAME" -D "$WORK/img" -r -l DEBUG -o "$WORK/lxc.log"; then
		fail lxc-tun/restore "lxc-checkpoint -r failed" "${LOGS[@]}"
	else
		devices >"$WORK/devices.after"
		pid=$(tun_pid)
		[ -n "$pid" ] && kill -TERM "$pid"
		wait_for 5 grep -qE '^(PASS|FAIL)' "$RFS/tun.out"
		if ! cmp -s "$WORK/devices.before" "$WORK/devices.after"; then
			fail lxc-tun/restore "the devices differ: $(diff "$WORK/devices.before" "$WORK/devices.after" | tr '\n' ' ')" "${LOGS[@]}"
		elif ! grep -q '^PASS' "$RFS/tun.out"; then
			fail lxc-tun/restore "the program did not PASS after the restore (pid ${pid:-none}): $(tail -n 1 "$RFS/tun.out")" "${LOGS[@]}"
		else
			ok "lxc-tun/restore (the same devices; the program: $(grep '^PASS' "$RFS/tun.out"))"
		fi
	fi
fi
finish
