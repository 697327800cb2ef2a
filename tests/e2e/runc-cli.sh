#!/bin/bash
# A container made by `runc run` (runc spec's defaults: PID, mount, network, IPC and UTS
# namespaces, masked and read-only paths, cgroup mounts, no_new_privs) whose init counts in
# memory, each tick appended to /out/count.log (a bind of a host directory), is checkpointed
# with stasis's own command line (-t its init) and restored under --root (the bundle's root
# file system): the count goes on, the mount table is the same, the host's mounts unchanged.
#
#   tests/e2e/runc-cli.sh    (root; needs runc and busybox-static: make setup installs them)
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
STASIS=${STASIS:-$ROOT/stasis}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/stasis-runc.XXXXXX")
ID=stasis-e2e-$$
N_PASS=0
N_FAIL=0
RPID=""

ok() { echo "ok $1"; N_PASS=$((N_PASS + 1)); }
fail() {
	echo "FAIL $1: $2"
	N_FAIL=$((N_FAIL + 1))
	for f in "$WORK"/img/dump.log "$WORK"/img/restore.log "$WORK"/runc.log; do
		[ -s "$f" ] && { echo "    --- $f"; tail -n 15 "$f" | sed 's/^/    | /'; }
	done
}
cleanup() {
	[ -n "$RPID" ] && kill -9 "$RPID" 2>/dev/null
	runc delete -f "$ID" >/dev/null 2>&1
	rm -rf "$WORK"
}
trap cleanup EXIT
finish() {
	echo "$N_PASS passed, $N_FAIL failed"
	[ "$N_FAIL" -eq 0 ]
	exit
}

for cmd in runc busybox; do
	command -v "$cmd" >/dev/null || { fail runc "$cmd is not installed (make setup installs it)"; finish; }
done
B=$WORK/bundle
mkdir -p "$B/rootfs"/{bin,proc,sys,dev,tmp,etc,out} "$WORK/out" "$WORK/img"
cp "$(command -v busybox)" "$B/rootfs/bin/"
for a in sh sleep echo cat; do ln -s busybox "$B/rootfs/bin/$a"; done
(cd "$B" && runc spec)
python3 - "$B/config.json" "$WORK/out" <<'PY'
import json, sys
path, out = sys.argv[1], sys.argv[2]
c = json.load(open(path))
c["process"]["terminal"] = False
c["process"]["args"] = ["sh", "-c", "i=0; while true; do i=$((i+1)); echo $i >> /out/count.log; sleep 0.2; done"]
c["mounts"].append({"destination": "/out", "type": "bind", "source": out, "options": ["rbind", "rw"]})
json.dump(c, open(path, "w"), indent=1)
PY
last() { tail -n 1 "$WORK/out/count.log" 2>/dev/null; }
counting() { [ "$(last)" -ge 3 ] 2>/dev/null; }
# stdio /dev/null: a host file would be outside the container's mounts (the dump refuses it)
(cd "$B" && runc run -d "$ID" </dev/null >/dev/null 2>&1)
sleep 1.5
PID=$(runc state "$ID" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])' 2>/dev/null)
if [ -z "$PID" ] || ! counting; then
	fail runc/run "the container does not run or count (pid '$PID', last '$(last)')"
	finish
fi
ok "runc/run (pid $PID, counting: $(last))"
mounts() { awk '{print $5, $9, $6}' "/proc/$1/mountinfo" | sort; }
mounts "$PID" >"$WORK/mounts.before"
host_before=$(wc -l </proc/self/mountinfo)

if ! "$STASIS" dump -t "$PID" -D "$WORK/img" -o dump.log -v4 --ext-mount-map auto 2>"$WORK/dump.err"; then
	fail runc/dump "stasis dump failed: $(tail -n 1 "$WORK/dump.err")"
	finish
fi
before=$(last)
n_before=$(wc -l <"$WORK/out/count.log")
ok "runc/dump (stopped at $before)"
sleep 0.5
if ! "$STASIS" restore -D "$WORK/img" -d --root "$B/rootfs" --ext-mount-map auto --pidfile "$WORK/rpid" \
	-o restore.log -v4 2>"$WORK/restore.err"; then
	fail runc/restore "stasis restore failed: $(tail -n 1 "$WORK/restore.err")"
	finish
fi
RPID=$(cat "$WORK/rpid")
sleep 1.5
next=$(sed -n "$((n_before + 1))p" "$WORK/out/count.log")
now=$(last)
if [ "$next" != $((before + 1)) ] || [ "$now" -le "$before" ]; then
	fail runc/restore "the count did not go on: stopped at $before, then $next ... $now"
elif [ "$(awk '/^NSpid/ {print $NF}' "/proc/$RPID/status")" != 1 ]; then
	fail runc/restore "the restored init is not pid 1 of a PID namespace"
else
	ok "runc/restore (the count went on: $before, then $next ... $now)"
fi
mounts "$RPID" >"$WORK/mounts.after"
if ! diff -u "$WORK/mounts.before" "$WORK/mounts.after" >"$WORK/mounts.diff"; then
	fail runc/mounts "the restored container's mounts differ: $(head -c 400 "$WORK/mounts.diff")"
elif [ "$(wc -l </proc/self/mountinfo)" != "$host_before" ]; then
	fail runc/mounts "the host's mount table changed ($host_before mounts before, $(wc -l </proc/self/mountinfo) after)"
else
	ok "runc/mounts ($(wc -l <"$WORK/mounts.after") mounts, each with its flags; the host's unchanged)"
fi
finish
