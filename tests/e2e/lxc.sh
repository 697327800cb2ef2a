#!/bin/bash
# End to end with Debian's LXC: a busybox container whose init is a shell counting in memory
# (each tick appended to /count.log in its root file system) is checkpointed with
# `lxc-checkpoint -s` and restored with `lxc-checkpoint -r`, stasis being the `criu` LXC finds
# on PATH. The count must go on from where it stopped: the first tick after the restore is the
# last one before the dump plus one, never 1 again.
#
#   tests/e2e/lxc.sh        (root; needs lxc and busybox: make setup installs them)
# Output: "ok ..." / "FAIL ...: reason" lines, then "N passed, N failed". The container, its
# images and the PATH directory are removed at the end, whatever happens.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
STASIS=${STASIS:-$ROOT/stasis}
NAME=stasis-e2e-$$
WORK=$(mktemp -d "${TMPDIR:-/tmp}/stasis-lxc.XXXXXX")
N_PASS=0
N_FAIL=0

ok() { echo "ok $1"; N_PASS=$((N_PASS + 1)); }
fail() {
	echo "FAIL $1: $2"
	N_FAIL=$((N_FAIL + 1))
	for f in "$WORK"/img/dump.log "$WORK"/img/restore.log "$WORK"/lxc.log; do
		[ -s "$f" ] && { echo "    --- $f"; tail -n 15 "$f" | sed 's/^/    | /'; }
	done
}
cleanup() {
	lxc-stop -n "$NAME" -k >/dev/null 2>&1
	lxc-destroy -n "$NAME" -f >/dev/null 2>&1
	rm -rf "$WORK"
}
trap cleanup EXIT

for cmd in lxc-create lxc-checkpoint busybox; do
	if ! command -v "$cmd" >/dev/null; then
		fail lxc "$cmd is not installed (make setup installs lxc and busybox-static)"
		echo "$N_PASS passed, $N_FAIL failed"
		exit 1
	fi
done
mkdir -p "$WORK/bin" "$WORK/img"
ln -s "$STASIS" "$WORK/bin/criu"
export PATH="$WORK/bin:$PATH"

# the container: no network, no ttys, no console, no AppArmor (this kernel has none)
if ! lxc-create -n "$NAME" -t busybox >"$WORK/lxc.log" 2>&1; then
	fail lxc/create "lxc-create failed"
	echo "$N_PASS passed, $N_FAIL failed"
	exit 1
fi
CONF=/var/lib/lxc/$NAME/config
RFS=/var/lib/lxc/$NAME/rootfs
sed -i -e '/^lxc.net.0/d' -e '/^lxc.apparmor/d' -e 's/^lxc.tty.max.*/lxc.tty.max = 0/' \
	-e 's/^lxc.pty.max.*/lxc.pty.max = 0/' "$CONF"
cat >>"$CONF" <<CONF
lxc.net.0.type = empty
lxc.console.path = none
lxc.init.cmd = /bin/sh /counter.sh
CONF
cat >"$RFS/counter.sh" <<'SH'
i=0
while true; do i=$((i + 1)); echo $i >>/count.log; sleep 0.2; done
SH

last() { tail -n 1 "$RFS/count.log" 2>/dev/null; }
counting() { [ "$(last)" -ge 3 ] 2>/dev/null; }
if ! lxc-start -n "$NAME" -d -l DEBUG -o "$WORK/lxc.log" || ! sleep 1.5 || ! counting; then
	fail lxc/start "the container does not count (last: $(last))"
	echo "$N_PASS passed, $N_FAIL failed"
	exit 1
fi
ok "lxc/start (counting: $(last))"

if ! lxc-checkpoint -n "$NAME" -D "$WORK/img" -s -l DEBUG -o "$WORK/lxc.log"; then
	fail lxc/checkpoint "lxc-checkpoint -s failed"
elif lxc-info -n "$NAME" 2>/dev/null | grep -q RUNNING; then
	fail lxc/checkpoint "the container still runs after lxc-checkpoint -s"
else
	before=$(last)
	n_before=$(wc -l <"$RFS/count.log")
	sleep 0.5
	ok "lxc/checkpoint (stopped at $before)"
	if ! lxc-checkpoint -n "$NAME" -D "$WORK/img" -r -l DEBUG -o "$WORK/lxc.log"; then
		fail lxc/restore "lxc-checkpoint -r failed"
	else
		sleep 1.5
		next=$(sed -n "$((n_before + 1))p" "$RFS/count.log")
		now=$(last)
		if ! lxc-info -n "$NAME" 2>/dev/null | grep -q RUNNING; then
			fail lxc/restore "the container is not running after lxc-checkpoint -r"
		elif [ "$next" != $((before + 1)) ] || [ "$now" -le "$before" ]; then
			fail lxc/restore "the count did not go on: stopped at $before, then $next ... $now"
		else
			ok "lxc/restore (the count went on: $before, then $next ... $now)"
		fi
	fi
fi
echo "$N_PASS passed, $N_FAIL failed"
[ "$N_FAIL" -eq 0 ]
