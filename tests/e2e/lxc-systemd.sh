#!/bin/bash
# End to end with LXC and systemd as the container's init (a "system container", LXC's most
# common kind): the container's root file system is made here from this machine's own /usr
# (bound read-only, as Debian 12 is merged-/usr) and a minimal /etc, so no image is fetched.
# systemd boots it (journald, dbus, a counter service writing /count.log every 0.2 s), then
# `lxc-checkpoint -s` / `-r` (stasis being the `criu` on PATH) twice; after each restore:
#   - the counter goes on from where it stopped (never 1 again);
#   - systemctl talks to PID 1 (is-system-running says running; before, a restored listener
#     read peer pid 0 and systemctl refused it: "No data available");
#   - a restart of the counter service starts it anew (systemd's own process management);
#   - a line sent with logger reaches journalctl (journald and its sockets);
#   - busctl lists the bus (dbus-daemon, and PID 1 on it);
#   - loginctl answers: systemd-logind, which systemd runs in a mount namespace and a UTS
#     namespace of its own (ProtectSystem=, PrivateTmp=, ProtectHostname=...), is back in them,
#     and restarts;
#   - a service with PrivateNetwork=yes (its own network namespace, its loopback alone, its
#     stdout a journal stream connected to journald across the two namespaces): a pre-forking
#     echo server there (a listener on 127.0.0.1:7000 that two workers share) and a client
#     holding one TCP connection to it, which sends each count and reads it back, go on
#     counting in their own namespace, and their lines still reach the journal;
#   - a network lab made with iproute2 as its manual says: `ip netns add lab` (a namespace a
#     mount of /run/netns holds), a veth pair into it (10.68.0.1 in the container, 10.68.0.2
#     in lab), an echo server started with `ip netns exec lab` (in lab and in a mount namespace
#     of its own, with lab's sysfs), and a client in the container holding a TCP connection to
#     it over the pair, counting: the count goes on, `ip -n lab` shows lab as it was, a new
#     connection from the container is served, and `ip netns exec lab` enters it again.
# Not covered, because stasis refuses them by name: BPF programs systemd attaches to cgroups
# for IPAddressDeny= (turned off for every service by a drop-in).
#
#   tests/e2e/lxc-systemd.sh   (root; needs lxc and systemd: make setup installs them)
# Output: "ok ..." / "FAIL ...: reason" lines, then "N passed, N failed". The container, its
# images and the PATH directory are removed at the end, whatever happens.
set -u
E2E_NAME=lxc-systemd
# shellcheck source=e2e-lib.sh
. "$(dirname "$0")/e2e-lib.sh"
NAME=stasis-e2e-sd-$$

cleanup() {
	lxc-stop -n "$NAME" -k >/dev/null 2>&1
	lxc-destroy -n "$NAME" -f >/dev/null 2>&1
	e2e_cleanup
}
trap cleanup EXIT
# the images' logs of a failed step, Errors and Warnings only
logs() { grep -h -E "Error|Warn" "$1/dump.log" "$1/restore.log" 2>/dev/null >"$1/errors"; echo "$1/errors"; }

need lxc-start lxc-checkpoint lxc-attach
[ -x /lib/systemd/systemd ] || { fail "$E2E_NAME" "systemd is not installed (make setup installs it)"; finish; }
e2e_setup
RFS=$WORK/rootfs

# the root file system: this machine's /usr, read-only; /etc just enough for systemd
mkdir -p "$RFS"/{usr,etc,var/lib,var/log,run,tmp,root,proc,sys,dev,home}
for l in bin lib lib64 sbin; do ln -s "usr/$l" "$RFS/$l"; done
cp /etc/passwd /etc/group /etc/shadow /etc/gshadow /etc/nsswitch.conf "$RFS/etc/"
ln -s ../usr/lib/os-release "$RFS/etc/os-release"
echo "$NAME" >"$RFS/etc/hostname"
echo 5e1f0c0ffee0123456789abcdef01234 >"$RFS/etc/machine-id" # not a first boot: no presets
SD=$RFS/etc/systemd/system
mkdir -p "$SD/multi-user.target.wants" "$SD/service.d"
cat >"$SD/counter.service" <<'UNIT'
[Unit]
Description=a counter stasis checks
[Service]
ExecStart=/bin/sh -c 'i=0; while true; do i=$((i+1)); echo $i >>/count.log; sleep 0.2; done'
UNIT
ln -s ../counter.service "$SD/multi-user.target.wants/counter.service"
cat >"$RFS/private.py" <<'PY'
import os, socket, time
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 7000))
srv.listen(4)
for _ in range(2):  # pre-forked workers sharing the listener
    if os.fork() == 0:
        while True:
            c, _ = srv.accept()
            while d := c.recv(64):
                c.sendall(d)
            c.close()
cli = socket.create_connection(("127.0.0.1", 7000))
i = 0
while True:
    i += 1
    cli.sendall(b"%d\n" % i)
    if cli.recv(64) != b"%d\n" % i:
        raise SystemExit("the echo server answered wrong")
    with open("/private.log", "a") as f:
        f.write("%d\n" % i)
    print("private tick %d" % i, flush=True)
    time.sleep(0.2)
PY
cat >"$SD/private-net.service" <<'UNIT'
[Unit]
Description=a service in a network namespace of its own
[Service]
PrivateNetwork=yes
ExecStart=/usr/bin/python3 /private.py
UNIT
ln -s ../private-net.service "$SD/multi-user.target.wants/private-net.service"
cat >"$RFS/lab.py" <<'PY'
import socket, sys, time
if sys.argv[1] == "server":  # in lab: echoes every line of every connection
    import threading
    srv = socket.socket()
    srv.bind(("10.68.0.2", 7200))
    srv.listen(8)
    def echo(c):
        while d := c.recv(64):
            c.sendall(d)
    while True:
        threading.Thread(target=echo, args=(srv.accept()[0],), daemon=True).start()
cli = socket.create_connection(("10.68.0.2", 7200), timeout=30)  # in the container
i = 0
while True:
    i += 1
    cli.sendall(b"%d\n" % i)
    if cli.recv(64) != b"%d\n" % i:
        raise SystemExit("the lab's echo server answered wrong")
    with open("/lab.log", "a") as f:
        f.write("%d\n" % i)
    time.sleep(0.2)
PY
cat >"$SD/lab.service" <<'UNIT'
[Unit]
Description=an echo server in a network namespace made with ip netns
[Service]
ExecStartPre=/usr/bin/ip netns add lab
ExecStartPre=/usr/bin/ip link add lab0 type veth peer name lab1 netns lab
ExecStartPre=/usr/bin/ip addr add 10.68.0.1/24 dev lab0
ExecStartPre=/usr/bin/ip link set lab0 up
ExecStartPre=/usr/bin/ip -n lab addr add 10.68.0.2/24 dev lab1
ExecStartPre=/usr/bin/ip -n lab link set lab1 up
ExecStartPre=/usr/bin/ip -n lab link set lo up
ExecStart=/usr/bin/ip netns exec lab /usr/bin/python3 /lab.py server
UNIT
cat >"$SD/lab-client.service" <<'UNIT'
[Unit]
Description=a client of the lab's echo server, counting
After=lab.service
Requires=lab.service
[Service]
ExecStartPre=/bin/sleep 1
ExecStart=/usr/bin/python3 /lab.py client
UNIT
ln -s ../lab-client.service "$SD/multi-user.target.wants/lab-client.service"
printf '[Service]\nIPAddressDeny=\nIPAddressAllow=\nIPAccounting=no\n' >"$SD/service.d/10-no-bpf.conf"

mkdir -p "/var/lib/lxc/$NAME"
cat >"/var/lib/lxc/$NAME/config" <<CONF
lxc.uts.name = $NAME
lxc.rootfs.path = dir:$RFS
lxc.mount.entry = /usr usr none bind,ro 0 0
lxc.mount.auto = proc:mixed sys:mixed cgroup:mixed
lxc.net.0.type = empty
lxc.console.path = none
lxc.tty.max = 0
lxc.pty.max = 16
lxc.init.cmd = /lib/systemd/systemd
lxc.environment = container=lxc
CONF

in_ctr() { lxc-attach -n "$NAME" -- "$@" 2>/dev/null; }
state() { in_ctr systemctl is-system-running; }
last() { tail -n 1 "$RFS/count.log" 2>/dev/null; }
# the private-net service's network namespace is not the container's init's (the host's /proc)
own_netns() {
	local init host
	init=$(lxc-info -n "$NAME" -p -H 2>/dev/null)
	host=$(pgrep -f -n "private.py" --ns "$init" --nslist pid 2>/dev/null)
	[ -n "$init" ] && [ -n "$host" ] &&
		[ "$(readlink "/proc/$host/ns/net")" != "$(readlink "/proc/$init/ns/net")" ]
}

# the lab as iproute2 shows it from the container: its namespaces, lab's interfaces and addresses
lab_look() {
	in_ctr ip netns list
	in_ctr ip -n lab -br addr | sed 's/ *$//'
	in_ctr ip -br addr show lab0 | sed 's/ *$//'
}

if ! lxc-start -n "$NAME" -d -l DEBUG -o "$WORK/lxc.log"; then
	fail lxc-systemd/start "lxc-start failed" "$WORK/lxc.log"
	finish
fi
booted() {
	[ "$(state)" = running ] && [ "$(last)" -ge 3 ] 2>/dev/null &&
		[ "$(tail -n 1 "$RFS/lab.log" 2>/dev/null)" -ge 3 ] 2>/dev/null
}
wait_for 30 booted
if [ "$(state)" != running ]; then
	fail lxc-systemd/start "systemd says '$(state)', not running: $(in_ctr systemctl --failed --no-legend | tr '\n' ';')"
	finish
fi
ok "lxc-systemd/start (systemd running, counting: $(last))"

# one checkpoint and restore, then every check; $1: its number
cycle() {
	local n=$1 img=$WORK/img$1 before lines next word pbefore plines lab_before
	mkdir -p "$img"
	lab_before=$(lab_look)
	if ! lxc-checkpoint -n "$NAME" -D "$img" -s -l DEBUG -o "$WORK/lxc.log" 2>>"$WORK/lxc.err"; then
		fail "lxc-systemd/checkpoint-$n" "lxc-checkpoint -s failed" "$(logs "$img")"
		return 1
	fi
	if lxc-info -n "$NAME" 2>/dev/null | grep -q RUNNING; then
		fail "lxc-systemd/checkpoint-$n" "the container still runs after lxc-checkpoint -s"
		return 1
	fi
	before=$(last)
	lines=$(wc -l <"$RFS/count.log")
	pbefore=$(tail -n 1 "$RFS/private.log")
	plines=$(wc -l <"$RFS/private.log")
	local lbefore llines
	lbefore=$(tail -n 1 "$RFS/lab.log")
	llines=$(wc -l <"$RFS/lab.log")
	if ! lxc-checkpoint -n "$NAME" -D "$img" -r -l DEBUG -o "$WORK/lxc.log" 2>>"$WORK/lxc.err"; then
		fail "lxc-systemd/restore-$n" "lxc-checkpoint -r failed" "$(logs "$img")"
		return 1
	fi
	sleep 1
	next=$(sed -n "$((lines + 1))p" "$RFS/count.log")
	if [ "$next" != $((before + 1)) ]; then
		fail "lxc-systemd/restore-$n" "the count did not go on: stopped at $before, then '$next'"
		return 1
	fi
	if [ "$(state)" != running ]; then
		fail "lxc-systemd/restore-$n" "systemctl is-system-running says '$(state)' (systemctl: $(in_ctr systemctl is-system-running 2>&1 | head -n 1))"
		return 1
	fi
	lines=$(wc -l <"$RFS/count.log")
	in_ctr systemctl restart counter.service
	sleep 1
	if ! sed -n "$((lines + 1)),\$p" "$RFS/count.log" | grep -qx 1; then
		fail "lxc-systemd/restore-$n" "systemctl restart counter did not start it anew"
		return 1
	fi
	word=stasis-check-$n-$$
	in_ctr logger "$word"
	sleep 0.5
	if ! in_ctr journalctl --no-pager -n 50 | grep -q "$word"; then
		fail "lxc-systemd/restore-$n" "a logger line did not reach journalctl"
		return 1
	fi
	if ! in_ctr busctl list --no-pager | grep -q "org.freedesktop.DBus"; then
		fail "lxc-systemd/restore-$n" "busctl does not list the bus"
		return 1
	fi
	if ! in_ctr loginctl list-seats --no-legend | grep -q seat0 || ! in_ctr systemctl restart systemd-logind ||
		[ "$(in_ctr systemctl is-active systemd-logind)" != active ]; then
		fail "lxc-systemd/restore-$n" "systemd-logind (in its own namespaces) does not answer or restart"
		return 1
	fi
	local pnext logged
	pnext=$(sed -n "$((plines + 1))p" "$RFS/private.log")
	if [ "$pnext" != $((pbefore + 1)) ] || ! own_netns; then
		fail "lxc-systemd/restore-$n" "the PrivateNetwork= service does not go on in a network namespace of its own (at $pbefore, then '$pnext')"
		return 1
	fi
	logged=$(in_ctr journalctl --no-pager -u private-net -n 1 -o cat | sed -n 's/^private tick //p')
	if ! [ "${logged:-0}" -gt "$pbefore" ] 2>/dev/null; then
		fail "lxc-systemd/restore-$n" "the PrivateNetwork= service's lines do not reach the journal"
		return 1
	fi
	local lnext
	lnext=$(sed -n "$((llines + 1))p" "$RFS/lab.log")
	if [ "$lnext" != $((lbefore + 1)) ]; then
		fail "lxc-systemd/restore-$n" "the lab's client did not go on over its connection (at $lbefore, then '$lnext')" "$(logs "$img")"
		return 1
	fi
	if [ "$(lab_look)" != "$lab_before" ]; then
		fail "lxc-systemd/restore-$n" "ip netns lab differs: before '$lab_before', now '$(lab_look)'"
		return 1
	fi
	if ! in_ctr python3 -c 'import socket; c = socket.create_connection(("10.68.0.2", 7200), timeout=5); c.sendall(b"x\n"); assert c.recv(8) == b"x\n"' ||
		[ "$(in_ctr ip netns exec lab cat /sys/class/net/lab1/mtu)" != 1500 ]; then
		fail "lxc-systemd/restore-$n" "the lab's echo server does not serve a new connection, or ip netns exec lab does not enter it"
		return 1
	fi
	ok "lxc-systemd/cycle-$n (count $before then $next; systemctl, restart, journal, bus, logind, a PrivateNetwork= service, an ip netns lab all answer)"
}
cycle 1 && cycle 2
finish
