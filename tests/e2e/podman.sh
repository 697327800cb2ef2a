#!/bin/bash
# Podman end to end (Debian's podman 4.3 with `--runtime runc`: Debian's crun has no
# checkpoint support), stasis being the `criu` that Podman's version check and runc find on
# PATH. Podman's storage, run and tmp directories are in a temporary directory (cgroupfs
# manager, file events); rlimits are named (this machine's hard limits refuse Podman's
# defaults). The image is a busybox tree imported from a tar stream.
#
# podman/checkpoint-restore   a counter: `podman container checkpoint`, `podman container
#                             restore`: the count goes on; the images are stasis's
# podman/keep-print-stats     checkpoint and restore with --keep --print-stats: Podman decodes
#                             stasis's stats-dump and stats-restore (every time and page count
#                             set), and keeps the images and both logs
# podman/leave-running        `checkpoint --leave-running`: the container runs on (same init); stopped
#                             and restored, it counts on from the checkpoint's count
# podman/export-import        `checkpoint --export FILE`, `restore --import FILE --name NEW`: the
#                             new container counts on from the old one's count
# podman/pre-checkpoint       `checkpoint --pre-checkpoint` (stasis's FEATURE_CHECK says memory
#                             tracking works): the container runs on with its init; then
#                             `checkpoint --with-previous` and `restore`: the count goes on
#                             (with --export/--import: tests/migrate)
# podman/image-files              tests/e2e/watchcheck.c (built static) watches /etc and
#                             /bin/busybox of the image (on the container's overlayfs, whose file
#                             handles cannot be opened: stasis finds them by inode number) and a
#                             file it wrote (the upper layer): checkpoint and restore, then a file
#                             made in /etc, busybox touched and the file written through `podman
#                             exec`: it sees the three events on its same watches; /bin/podipc
#                             of the image, which it removed while holding it open and mapped
#                             (a whiteout hides it, its inode is still in the layer), reads the
#                             same through both and is still gone: it PASSes
# podman/tty                  a container with a terminal (-t): checkpoint and restore, the new
#                             terminal handed to conmon (orphan-pts-master); the count goes on
# podman/userns               a container in a user namespace of its own (--uidmap, --gidmap
#                             0:100000:65536): checkpoint and restore, the same maps, the count
#                             goes on
# podman/unix-client          a Redis server (the host's redis-server in an image of its own)
#                             serving only on a unix socket in a volume, in Podman's network
#                             namespace (--network none), busy with a host's redis-cli (DEBUG
#                             SLEEP 0.4) when `podman container checkpoint --keep` comes: the dump
#                             lets the container run on until the client is answered (its log,
#                             kept, says so), the client gets OK; restored, the same server
#                             answers with its data
# podman/tcp-established      a container in a network namespace of this script's own (--network
#                             ns:PATH, a veth to the host) serving TCP echo: a client connected
#                             across checkpoint and restore --tcp-established gets its echo after,
#                             the count goes on, a new connection is served once it closes
# podman/tun                  a VPN's state: tests/zoo/tun.c (built static) in that namespace,
#                             given /dev/net/tun and NET_ADMIN, makes tun zt0 with an address and
#                             a route, taps zp0 and zq0 (persistent); checkpoint and restore into
#                             the same namespace (zt0 and zp0 went with the dump, made again;
#                             zq0 is still there, used as it is): after SIGTERM it PASSes (its
#                             devices, files, address, route and traffic)
#
# podman/pod                  two containers of a pod (its sandbox made from catatonit), which
#                             share the sandbox's IPC and UTS namespaces: the owner
#                             (tests/e2e/podipc.c) keeps a SysV shm segment and a message queue,
#                             the user counts into both; the user's checkpoint and restore (runc
#                             asks stasis to join the pod's namespaces: --join-ns ipc and uts) put
#                             it back in them: the owner sees its new counts in the segment and
#                             gets them as messages, the user sees the owner's live tick
# podman/pod-import           then both exported (`checkpoint --export`) and imported into a new
#                             pod (`restore --import --pod ID`), the owner first: its segment and
#                             queue, not in the new pod's IPC namespace, are made again there,
#                             and the user counts on through them
# podman/pod-pid              the same in a pod whose containers share the sandbox's PID namespace
#                             too (`--share pid,ipc,net,uts`): runc names it as the engine's
#                             (external, then an fd of it at restore); the user comes back in it
#                             with the same pid there, which the owner sees, and counts on
# podman/pod-userns           the same in a pod with a user namespace of its own (`--uidmap
#                             0:100000:65536`), which its containers join: the user comes back in
#                             the pod's user, IPC, UTS and network namespaces (--join-ns user)
#
#   tests/e2e/podman.sh     (root; needs podman, runc, catatonit, busybox-static, iproute2)
set -u
E2E_NAME=podman
# shellcheck source=e2e-lib.sh
. "$(dirname "$0")/e2e-lib.sh"

STARTED=""
NETNS=stasis-e2e-pm$$ # case_tcp's
cleanup() {
	exec 5<&- 2>/dev/null
	[ -n "$STARTED" ] && pm pod rm -f -a >/dev/null 2>&1
	[ -n "$STARTED" ] && pm rm -f -a >/dev/null 2>&1
	ip netns del "$NETNS" 2>/dev/null
	ip link del "vpm$$" 2>/dev/null
	e2e_cleanup
}
trap cleanup EXIT

need podman runc catatonit busybox cc python3 ip
e2e_setup
make_rootfs "$WORK/rootfs" || finish
# (a pod's sandbox takes its rlimits from containers.conf: this machine refuses Podman's)
printf '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=1024:1024"]\n' >"$WORK/pod.conf"
STARTED=1
if ! tar -C "$WORK/rootfs" -c . | pm import - bb:latest >"$WORK/import.out" 2>&1; then
	fail podman/image "podman import failed" "$WORK/import.out"
	finish
fi

logged_numbers() { pm logs "$1" 2>&1 | tr -d '\r' >"$WORK/$1.logs" && numbers "$WORK/$1.logs"; } # (a terminal says \r\n)
state() { pm inspect -f "{{.State.$2}}" "$1" 2>/dev/null; }
userdata() { echo "$WORK/root/overlay-containers/$(pm inspect -f '{{.Id}}' "$1")/userdata"; }
# stasis's logs where runc's work directory is (Podman's userdata)
stasis_logs() { find "$WORK/root/overlay-containers" -name dump.log -o -name restore.log 2>/dev/null; }
# stats OUT: the criu_statistics of podman's --print-stats JSON, one "key=value" a line
stats() {
	python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
for s in d.get("container_statistics") or []:
    for k, v in (s.get("criu_statistics") or {}).items(): print("%s=%s" % (k, v))' "$1" 2>/dev/null
}
stat_set() { grep -q -E "^$1=[1-9]" "$2"; } # stat_set KEY FILE: a non-zero value

# run_counter NAME: a counting container, once it has counted twice
run_counter() {
	pm run --ulimit nofile=20000:20000 --ulimit nproc=1024:1024 -d --name "$1" --network none \
		localhost/bb:latest sh -c "$COUNTER" >"$WORK/$1.run" 2>&1 &&
		wait_for 20 has_lines 2 logged_numbers "$1"
}

# ckpt_restore CASE NAME CKPT_ARGS RESTORE_ARGS: checkpoint, then restore; the count goes on
# (LAST, FIRST set; T_CKPT, T_REST in ms); 1 after a failure said
ckpt_restore() {
	local c=$2
	# shellcheck disable=SC2086 # the options are words
	if ! timed T_CKPT pm container checkpoint $3 "$c" >"$WORK/$c.ckpt" 2>&1 ||
		[ "$(state "$c" Running)" != false ]; then
		fail "$1" "podman container checkpoint $3 failed (running: $(state "$c" Running))" \
			"$WORK/$c.ckpt" $(stasis_logs)
		return 1
	fi
	count_before "$c"
	[ -z "$5" ] || "$5" "$c" || return 1
	# shellcheck disable=SC2086
	if ! timed T_REST pm container restore $4 "$c" >"$WORK/$c.rest" 2>&1 ||
		! wait_for 20 has_lines $((COUNTED + 1)) logged_numbers "$c"; then
		fail "$1" "podman container restore $4 failed (running: $(state "$c" Running))" \
			"$WORK/$c.rest" $(stasis_logs)
		return 1
	fi
	count_went_on "$1" "$c"
}

images_are_stasis() {
	stasis_images "$(userdata "$1")/checkpoint" && return 0
	fail podman/checkpoint-restore "no stasis images in $(userdata "$1")/checkpoint"
	return 1
}

if ! run_counter p1; then
	fail podman/run "the container does not count" "$WORK/p1.run" "$WORK/p1.logs"
	finish
fi

if ckpt_restore podman/checkpoint-restore p1 "" "" images_are_stasis; then
	ok "podman/checkpoint-restore (counted to $LAST, went on from $FIRST; checkpoint $T_CKPT ms, restore $T_REST ms)"
fi

case_keep_stats() {
	local u why=""
	ckpt_restore podman/keep-print-stats p1 "--keep --print-stats" "--keep --print-stats" "" || return
	stats "$WORK/p1.ckpt" >"$WORK/stats-dump.txt"
	stats "$WORK/p1.rest" >"$WORK/stats-restore.txt"
	for k in freezing_time frozen_time memdump_time memwrite_time pages_scanned pages_written; do
		stat_set $k "$WORK/stats-dump.txt" || why="$why $k"
	done
	for k in restore_time pages_restored; do
		stat_set $k "$WORK/stats-restore.txt" || why="$why $k"
	done
	u=$(userdata p1)
	for f in checkpoint/inventory.img dump.log restore.log stats-dump stats-restore; do
		[ -s "$u/$f" ] || why="$why; $f not kept"
	done
	if [ -n "$why" ]; then
		fail podman/keep-print-stats "missing or zero:$why" "$WORK/p1.ckpt" "$WORK/p1.rest"
		return
	fi
	ok "podman/keep-print-stats (went on from $FIRST; dump: $(tr '\n' ' ' <"$WORK/stats-dump.txt")restore: $(tr '\n' ' ' <"$WORK/stats-restore.txt"))"
}
case_keep_stats

# --leave-running: the container runs on through the checkpoint (same init); stopped, then
# restored from that image: it counts on from the checkpoint's count, not from where it was
# stopped (nor from 1, nor from keep-print-stats's older image)
case_leave_running() {
	local pid before n first stopped
	pid=$(state p1 Pid)
	before=$(logged_numbers p1 | tail -n 1)
	if ! timed T_CKPT pm container checkpoint --leave-running p1 >"$WORK/p1.leave" 2>&1 ||
		[ "$(state p1 Running)" != true ] || [ "$(state p1 Pid)" != "$pid" ]; then
		fail podman/leave-running "checkpoint --leave-running failed or stopped the container (running $(state p1 Running), init $(state p1 Pid), was $pid)" "$WORK/p1.leave" $(stasis_logs)
		return
	fi
	# two more counts: the one the checkpoint froze is in the log, and one after it
	n=$(logged_numbers p1 | wc -l)
	if ! wait_for 10 has_lines $((n + 2)) logged_numbers p1 || ! pm stop -t 0 p1 >"$WORK/p1.stop" 2>&1; then
		fail podman/leave-running "the container did not run on after the checkpoint, or does not stop" "$WORK/p1.stop"
		return
	fi
	logged_numbers p1 >"$WORK/p1.stopped"
	n=$(wc -l <"$WORK/p1.stopped")
	stopped=$(tail -n 1 "$WORK/p1.stopped")
	if ! timed T_REST pm container restore p1 >"$WORK/p1.rest" 2>&1 ||
		! wait_for 20 has_lines $((n + 1)) logged_numbers p1; then
		fail podman/leave-running "podman container restore after the stop failed (running: $(state p1 Running))" "$WORK/p1.rest" $(stasis_logs)
		return
	fi
	first=$(logged_numbers p1 | sed -n "$((n + 1))p")
	if [ "$first" -le "$before" ] || [ "$first" -gt "$stopped" ]; then
		fail podman/leave-running "restored from the --leave-running image, it went on from $first: not after $before (the count at the checkpoint) and at most $stopped (stopped there)" "$WORK/p1.logs"
		return
	fi
	ok "podman/leave-running (ran on through the checkpoint; stopped at $stopped, restored, went on from $first, the checkpoint taken after $before; checkpoint $T_CKPT ms, restore $T_REST ms)"
}
case_leave_running

case_export_import() {
	local last first n
	if ! timed T_CKPT pm container checkpoint --export "$WORK/p1.tar" p1 >"$WORK/p1.export" 2>&1 ||
		[ ! -s "$WORK/p1.tar" ]; then
		fail podman/export-import "podman container checkpoint --export failed" "$WORK/p1.export" $(stasis_logs)
		return
	fi
	last=$(logged_numbers p1 | tail -n 1)
	if ! timed T_REST pm container restore --import "$WORK/p1.tar" --name p2 >"$WORK/p2.import" 2>&1 ||
		! wait_for 20 has_lines $(($(logged_numbers p1 | wc -l) + 1)) logged_numbers p2; then
		fail podman/export-import "podman container restore --import --name p2 failed" "$WORK/p2.import" $(stasis_logs)
		return
	fi
	# Podman's archive carries the container's log: p2's starts with p1's lines
	logged_numbers p1 >"$WORK/p1.numbers"
	logged_numbers p2 >"$WORK/p2.numbers"
	n=$(wc -l <"$WORK/p1.numbers")
	if head -n "$n" "$WORK/p2.numbers" | cmp -s - "$WORK/p1.numbers"; then
		first=$(sed -n "$((n + 1))p" "$WORK/p2.numbers")
	else
		first=$(head -n 1 "$WORK/p2.numbers")
	fi
	if [ "$first" != $((last + 1)) ] || [ "$(state p1 Running)" != false ]; then
		fail podman/export-import "p1 counted to $last, the new p2 went on from $first (p1 running: $(state p1 Running))" "$WORK/p2.logs"
		return
	fi
	ok "podman/export-import (p1 counted to $last, p2 went on from $first; export $T_CKPT ms, import $T_REST ms)"
}
case_export_import

case_pre_checkpoint() {
	local pid rc n
	pid=$(state p2 Pid)
	if [ "$(state p2 Running)" != true ]; then
		fail podman/pre-checkpoint "p2 is not running"
		return
	fi
	pm container checkpoint --pre-checkpoint p2 >"$WORK/p2.pre" 2>&1
	rc=$?
	n=$(logged_numbers p2 | wc -l)
	if [ "$rc" != 0 ] || [ "$(state p2 Running)" != true ] || [ "$(state p2 Pid)" != "$pid" ] ||
		! wait_for 10 has_lines $((n + 1)) logged_numbers p2; then
		fail podman/pre-checkpoint "the pre-checkpoint failed or stopped the container (exit $rc, running $(state p2 Running), init $(state p2 Pid), was $pid)" "$WORK/p2.pre" $(stasis_logs)
		return
	fi
	ckpt_restore podman/pre-checkpoint p2 --with-previous "" "" || return
	ok "podman/pre-checkpoint (ran on through it; --with-previous counted to $LAST, went on from $FIRST)"
}
# A host's client being answered by the container over a unix socket (see above)
case_unix_client() {
	local c=prd answered log
	if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
		fail podman/unix-client "redis-server and redis-cli are not installed (make setup installs them)"
		return
	fi
	mkdir -p "$WORK/rd-sock"
	if ! redis_image rd:latest pm; then
		fail podman/unix-client "cannot make the redis image" "$WORK/redis-import.out"
		return
	fi
	pm run --ulimit nofile=20000:20000 --ulimit nproc=1024:1024 -d --name $c --network none \
		-v "$WORK/rd-sock:/sock" localhost/rd:latest /usr/bin/redis-server --port 0 \
		--unixsocket /sock/redis.sock --unixsocketperm 777 --save "" --appendonly no --dir /data \
		--enable-debug-command yes >"$WORK/$c.run" 2>&1
	if ! wait_for 20 redis_answers; then
		fail podman/unix-client "redis does not answer on its socket" "$WORK/$c.run"
		return
	fi
	rcli SET greeting "hello from before" >/dev/null
	rcli DEBUG SLEEP 0.4 >"$WORK/$c.sleep" &
	answered=$!
	# (its request is in: the server does not answer the next one)
	if ! wait_for 5 eval '! timeout 0.1 redis-cli -s "$WORK/rd-sock/redis.sock" PING >/dev/null 2>&1'; then
		fail podman/unix-client "redis did not take its DEBUG SLEEP"
		return
	fi
	if ! timed T_CKPT pm container checkpoint --keep $c >"$WORK/$c.ckpt" 2>&1; then
		fail podman/unix-client "podman container checkpoint failed" "$WORK/$c.ckpt" $(stasis_logs)
		return
	fi
	log=$(stasis_logs | grep dump.log | head -n 1)
	if ! wait $answered || [ "$(cat "$WORK/$c.sleep")" != OK ] ||
		! grep -q "serves a connection from socket:\[[0-9]*\] of the host's network namespace" "$log"; then
		fail podman/unix-client "the host's client was not answered during the dump (it got '$(cat "$WORK/$c.sleep")')" "$log"
		return
	fi
	if ! timed T_REST pm container restore --keep $c >"$WORK/$c.rest" 2>&1 || ! wait_for 20 redis_answers ||
		[ "$(rcli GET greeting)" != "hello from before" ]; then
		fail podman/unix-client "restored, redis answers '$(rcli GET greeting)'" "$WORK/$c.rest" $(stasis_logs)
		return
	fi
	ok "podman/unix-client (the host's client answered during the dump, then the restored server with its data; checkpoint $T_CKPT ms, restore $T_REST ms)"
	pm rm -f $c >/dev/null 2>&1
}
# A container with a terminal: the new terminal goes to conmon (orphan-pts-master, through runc)
case_tty() {
	if ! pm run --ulimit nofile=20000:20000 --ulimit nproc=1024:1024 -d -t --name pt --network none \
		localhost/bb:latest sh -c "$COUNTER" >"$WORK/pt.run" 2>&1 || ! wait_for 20 has_lines 2 logged_numbers pt; then
		fail podman/tty "the container does not count" "$WORK/pt.run" "$WORK/pt.logs"
		return
	fi
	ckpt_restore podman/tty pt "" "" "" || return
	ok "podman/tty (counted to $LAST on its terminal, went on from $FIRST on the new one; checkpoint $T_CKPT ms, restore $T_REST ms)"
}
# A container in a user namespace of its own (--uidmap/--gidmap): runc restores it as its child
case_userns() {
	local pid
	if ! pm run --ulimit nofile=20000:20000 --ulimit nproc=1024:1024 -d --name pu --network none \
		--uidmap 0:100000:65536 --gidmap 0:100000:65536 localhost/bb:latest sh -c "$COUNTER" \
		>"$WORK/pu.run" 2>&1 || ! wait_for 20 has_lines 2 logged_numbers pu; then
		fail podman/userns "the container in a user namespace does not count" "$WORK/pu.run" "$WORK/pu.logs"
		return
	fi
	ckpt_restore podman/userns pu "" "" "" || return
	pid=$(state pu Pid)
	if [ "$(awk '{print $1, $2, $3}' "/proc/$pid/uid_map" 2>/dev/null)" != "0 100000 65536" ]; then
		fail podman/userns "the restored init's uid_map is '$(tr '\n' ' ' <"/proc/$pid/uid_map" 2>&1)'"
		return
	fi
	ok "podman/userns (--uidmap 0:100000:65536: counted to $LAST, went on from $FIRST in the same user namespace map; checkpoint $T_CKPT ms, restore $T_REST ms)"
}
# A TCP client held across checkpoint/restore --tcp-established; the namespace is external
# (Podman's ns:PATH), its veth the script's
case_tcp() {
	local l="" fresh=""
	if ! ip netns add $NETNS || ! ip link add vpm$$ type veth peer name vpmc$$ ||
		! ip link set vpmc$$ netns $NETNS || ! ip addr add 10.217.0.1/24 dev vpm$$ ||
		! ip link set vpm$$ up || ! ip -n $NETNS addr add 10.217.0.2/24 dev vpmc$$ ||
		! ip -n $NETNS link set vpmc$$ up || ! ip -n $NETNS link set lo up; then
		fail podman/tcp-established "cannot make network namespace $NETNS with a veth"
		return
	fi
	if ! pm run --ulimit nofile=20000:20000 --ulimit nproc=1024:1024 -d --name pn \
		--network ns:/run/netns/$NETNS localhost/bb:latest \
		sh -c "(while true; do nc -l -p 9000 -e cat; done) & $COUNTER" >"$WORK/pn.run" 2>&1 ||
		! wait_for 20 has_lines 2 logged_numbers pn || ! exec 5<>/dev/tcp/10.217.0.2/9000 ||
		! echo before >&5 || ! read -r -t 5 l <&5 || [ "$l" != before ]; then
		fail podman/tcp-established "the container does not count or echo (echo: '$l')" "$WORK/pn.run" "$WORK/pn.logs"
		return
	fi
	# (conmon, which restore starts, must not keep the client's fd 5)
	ckpt_restore podman/tcp-established pn --tcp-established --tcp-established "" 5<&- || return
	l=""
	echo after >&5 && read -r -t 5 l <&5
	exec 5<&-
	if [ "$l" != after ]; then
		fail podman/tcp-established "the held connection echoed '$l' after the restore, not 'after'" $(stasis_logs)
		return
	fi
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		if exec 6<>/dev/tcp/10.217.0.2/9000; then
			echo fresh >&6 && read -r -t 5 fresh <&6
			exec 6<&-
			[ -n "$fresh" ] && break
		fi
		sleep 0.3
	done 2>/dev/null
	if [ "$fresh" != fresh ]; then
		fail podman/tcp-established "a new connection after the held one was not served (got '$fresh')"
		return
	fi
	ok "podman/tcp-established (the held connection echoed after the restore, counted to $LAST, went on from $FIRST, a new connection served; checkpoint $T_CKPT ms, restore $T_REST ms)"
	pm rm -f pn >/dev/null 2>&1
}
# tun/tap devices made in the engine's namespace (the one case_tcp made), as a VPN makes them
case_tun() {
	local c=ptun
	zoo_static tun podman/tun || return
	if ! pm run --ulimit nofile=20000:20000 --ulimit nproc=1024:1024 -d --name $c \
		--network ns:/run/netns/$NETNS --cap-add NET_ADMIN --device /dev/net/tun -e ZOO_TUN_NETNS=keep \
		-v "$WORK/zoo-tun:/zoo-tun:ro" localhost/bb:latest /zoo-tun >"$WORK/$c.run" 2>&1 ||
		! wait_for 20 eval "pm logs $c 2>&1 | grep -q '^READY'"; then
		fail podman/tun "the program is not READY" "$WORK/$c.run"
		return
	fi
	if ! timed T_CKPT pm container checkpoint $c >"$WORK/$c.ckpt" 2>&1 || [ "$(state $c Running)" != false ]; then
		fail podman/tun "podman container checkpoint failed (running: $(state $c Running))" "$WORK/$c.ckpt" $(stasis_logs)
		return
	fi
	if ! timed T_REST pm container restore $c >"$WORK/$c.rest" 2>&1 || [ "$(state $c Running)" != true ]; then
		fail podman/tun "podman container restore failed (running: $(state $c Running))" "$WORK/$c.rest" $(stasis_logs)
		return
	fi
	pm kill -s TERM $c >/dev/null 2>&1
	wait_for 20 eval "[ \"\$(state $c Running)\" = false ]"
	pm logs $c >"$WORK/$c.logs" 2>&1
	if ! grep -q '^PASS' "$WORK/$c.logs"; then
		fail podman/tun "after the restore and SIGTERM the program did not PASS: $(grep -E '^(PASS|FAIL)' "$WORK/$c.logs" | head -n 1)" \
			"$WORK/$c.logs" $(stasis_logs)
		return
	fi
	ok "podman/tun ($(grep '^PASS' "$WORK/$c.logs"); checkpoint $T_CKPT ms, restore $T_REST ms)"
	pm rm -f $c >/dev/null 2>&1
}
# Two containers of a pod talking through the pod's IPC namespace; the user's checkpoint and
# restore put it back in the pod's IPC and UTS namespaces
pod_pause() { sleep 1.5; }
# podipc_no_fail CASE C...: no FAIL in the logs (last read) of the podipc containers C, else CASE
# fails, 1
podipc_no_fail() {
	local c
	for c in "${@:2}"; do
		grep -q FAIL "$WORK/$c.logs" || continue
		fail "$1" "$c: $(grep FAIL "$WORK/$c.logs" | head -n 1)"
		return 1
	done
}
pod_ns() { readlink "/proc/$(state "$1" Pid)/ns/$2" 2>/dev/null; }
pod_saw() { pm logs pdo >"$WORK/pdo.logs" 2>&1 && podipc_saw "$WORK/pdo.logs" "$1"; }
case_pod() {
	local infra k run=(--ulimit nofile=20000:20000 --ulimit nproc=1024:1024 -d --pod pd)
	if ! CONTAINERS_CONF=$WORK/pod.conf pm pod create --name pd --hostname stasis-pod --network none \
		>"$WORK/pd.out" 2>&1 ||
		! pm run "${run[@]}" --name pdo localhost/bb:latest podipc owner >>"$WORK/pd.out" 2>&1 ||
		! pm run "${run[@]}" --name pdu localhost/bb:latest podipc user >>"$WORK/pd.out" 2>&1 ||
		! wait_for 20 has_lines 2 logged_numbers pdu || ! wait_for 10 pod_saw 2; then
		fail podman/pod "the pod's two containers do not talk" "$WORK/pd.out" "$WORK/pdu.logs" "$WORK/pdo.logs"
		return
	fi
	infra=$(pm pod inspect -f '{{.InfraContainerID}}' pd)
	# (the owner goes on alone for a while: the user must find the segment as it is then)
	ckpt_restore podman/pod pdu "" "" pod_pause || return
	for k in ipc uts; do
		if [ -z "$(pod_ns pdu $k)" ] || [ "$(pod_ns pdu $k)" != "$(pod_ns "$infra" $k)" ]; then
			fail podman/pod "the restored user is in $k namespace $(pod_ns pdu $k), the pod's is $(pod_ns "$infra" $k)" $(stasis_logs)
			return
		fi
	done
	if ! wait_for 10 pod_saw $((FIRST + 1)); then
		fail podman/pod "the owner did not see the restored user's counts ($FIRST and on) in their segment and queue" \
			"$WORK/pdo.logs" $(stasis_logs)
		return
	fi
	podipc_no_fail podman/pod pdu pdo || return
	ok "podman/pod (the user counted to $LAST, went on from $FIRST in the pod's IPC and UTS namespaces; the owner saw its counts in their segment and queue, the user the owner's live tick; checkpoint $T_CKPT ms, restore $T_REST ms)"
	case_pod_import
	pm pod rm -f pd >/dev/null 2>&1
}
# Both containers of the pod exported and imported into a new pod, the owner first: its
# segment and queue, gone from the new pod's IPC namespace, are made again there from its
# images; the user's restore finds them and uses them as they are
pod2_saw() { pm logs pdo2 >"$WORK/pdo2.logs" 2>&1 && podipc_saw "$WORK/pdo2.logs" "$1"; }
case_pod_import() {
	local c p2 last k infra2
	for c in pdu pdo; do
		if ! pm container checkpoint --export "$WORK/$c.tar.gz" $c >"$WORK/$c.export" 2>&1; then
			fail podman/pod-import "podman container checkpoint --export $c failed" "$WORK/$c.export" $(stasis_logs)
			return
		fi
	done
	last=$(logged_numbers pdu | tail -n 1)
	# (Podman 4.3 finds the pod to restore into by its id only)
	if ! p2=$(CONTAINERS_CONF=$WORK/pod.conf pm pod create --name pd2 --hostname stasis-pod \
		--network none 2>"$WORK/pd2.out") || ! pm pod start pd2 >>"$WORK/pd2.out" 2>&1; then
		fail podman/pod-import "cannot make the second pod" "$WORK/pd2.out"
		return
	fi
	for c in pdo pdu; do
		if ! pm container restore --import "$WORK/$c.tar.gz" --pod "$p2" --name ${c}2 >"$WORK/$c.import" 2>&1; then
			fail podman/pod-import "podman container restore --import --pod of $c failed" "$WORK/$c.import" $(stasis_logs)
			return
		fi
	done
	infra2=$(pm pod inspect -f '{{.InfraContainerID}}' pd2)
	for k in ipc uts; do
		if [ -z "$(pod_ns pdu2 $k)" ] || [ "$(pod_ns pdu2 $k)" != "$(pod_ns pdo2 $k)" ] ||
			[ "$(pod_ns pdu2 $k)" != "$(pod_ns "$infra2" $k)" ]; then
			fail podman/pod-import "$k namespaces: the user's $(pod_ns pdu2 $k), the owner's $(pod_ns pdo2 $k), the new pod's $(pod_ns "$infra2" $k)"
			return
		fi
	done
	if ! wait_for 10 pod2_saw $((last + 2)); then
		fail podman/pod-import "the imported owner did not see the imported user's counts (from $((last + 1))) in their segment and queue" \
			"$WORK/pdo2.logs" $(stasis_logs)
		return
	fi
	logged_numbers pdu2 >/dev/null
	podipc_no_fail podman/pod-import pdu2 pdo2 || return
	ok "podman/pod-import (both exported, imported into a new pod, the owner first: its segment and queue made again there, the user counted on from $((last + 1)) through them)"
	pm pod rm -f pd2 >/dev/null 2>&1
}
# pod_ckpt CASE POD KINDS [POD-OPTION...]: a pod POD (with the options) of an owner POD-o and a
# user POD-u talking (podipc); the user's checkpoint and restore put it back in the sandbox's
# namespaces of KINDS (space-separated), where the owner sees its new counts (POD_PIDS: the
# user's pid in the pod's PID namespace, before and after; WHERE: what the ok line says)
pod_saw_of() { pm logs "$1" >"$WORK/$1.logs" 2>&1 && podipc_saw "$WORK/$1.logs" "$2"; }
ns_pid_of() { awk '/^NSpid:/ { print $NF }' "/proc/$(state "$1" Pid)/status" 2>/dev/null; }
pod_ckpt() {
	local pc=$1 p=$2 kinds=$3 infra k run=(--ulimit nofile=20000:20000 --ulimit nproc=1024:1024 -d --pod "$2")
	if ! CONTAINERS_CONF=$WORK/pod.conf pm pod create --name "$p" --network none "${@:4}" >"$WORK/$p.out" 2>&1 ||
		! pm run "${run[@]}" --name "$p-o" localhost/bb:latest podipc owner >>"$WORK/$p.out" 2>&1 ||
		! pm run "${run[@]}" --name "$p-u" localhost/bb:latest podipc user >>"$WORK/$p.out" 2>&1 ||
		! wait_for 20 has_lines 2 logged_numbers "$p-u" || ! wait_for 10 pod_saw_of "$p-o" 2; then
		fail "$pc" "the pod's two containers do not talk" "$WORK/$p.out" "$WORK/$p-u.logs" "$WORK/$p-o.logs"
		return 1
	fi
	POD_PIDS=$(ns_pid_of "$p-u")
	ckpt_restore "$pc" "$p-u" "" "" "" || return 1
	POD_PIDS="$POD_PIDS $(ns_pid_of "$p-u")"
	infra=$(pm pod inspect -f '{{.InfraContainerID}}' "$p")
	for k in $kinds; do
		if [ -z "$(pod_ns "$p-u" "$k")" ] || [ "$(pod_ns "$p-u" "$k")" != "$(pod_ns "$infra" "$k")" ]; then
			fail "$pc" "the restored user is in $k namespace $(pod_ns "$p-u" "$k"), the pod's is $(pod_ns "$infra" "$k")" $(stasis_logs)
			return 1
		fi
	done
	if ! wait_for 10 pod_saw_of "$p-o" $((FIRST + 1)); then
		fail "$pc" "the owner did not see the restored user's counts ($FIRST and on)" "$WORK/$p-o.logs" $(stasis_logs)
		return 1
	fi
	podipc_no_fail "$pc" "$p-u" "$p-o"
}
# A pod whose containers share its sandbox's PID namespace too (--share pid,...): runc names it
# as the engine's (--external pid[INODE]:extRootPidNS, then --inherit-fd): the user comes back
# in it with its pid there
case_pod_pid() {
	local before after
	pod_ckpt podman/pod-pid pdp "pid ipc uts" --share pid,ipc,net,uts || return
	read -r before after <<<"$POD_PIDS"
	if [ -z "$before" ] || [ "$before" != "$after" ] || [ "$before" = 1 ] ||
		! pm exec pdp-o busybox kill -0 "$after" >"$WORK/pdp.exec" 2>&1; then
		fail podman/pod-pid "the user was pid '$before' of the pod's namespace, is '$after' after the restore (seen by the owner: $(cat "$WORK/pdp.exec"))" $(stasis_logs)
		return
	fi
	ok "podman/pod-pid (the user, pid $before of the pod's PID namespace, counted to $LAST, went on from $FIRST as pid $after there, seen by the owner; checkpoint $T_CKPT ms, restore $T_REST ms)"
	pm pod rm -f pdp >/dev/null 2>&1
}
# A pod with a user namespace of its own (--uidmap): its containers join it (runc asks stasis
# with --join-ns user, ipc, uts)
case_pod_userns() {
	pod_ckpt podman/pod-userns pdn "user ipc uts net" --uidmap 0:100000:65536 --gidmap 0:100000:65536 || return
	ok "podman/pod-userns (--uidmap 0:100000:65536 on the pod: the user counted to $LAST, went on from $FIRST in the pod's user, IPC, UTS and network namespaces, talking to the owner; checkpoint $T_CKPT ms, restore $T_REST ms)"
	pm pod rm -f pdn >/dev/null 2>&1
}
# inotify watches on files of the image (overlayfs, whose handles cannot be opened) and of the
# upper layer: found by their inode numbers at the checkpoint, they see changes after the restore
logs_have() { pm logs "$1" 2>&1 | grep -q -- "$2"; } # logs_have C REGEX
case_image_files() {
	local c=pin
	if ! pm run --ulimit nofile=20000:20000 --ulimit nproc=1024:1024 -d --name $c --network none \
		localhost/bb:latest watchcheck >"$WORK/$c.run" 2>&1 ||
		! wait_for 20 logs_have $c '^tick 2'; then
		fail podman/image-files "watchcheck does not tick" "$WORK/$c.run"
		return
	fi
	if ! timed T_CKPT pm container checkpoint $c >"$WORK/$c.ckpt" 2>&1 ||
		! timed T_REST pm container restore $c >"$WORK/$c.rest" 2>&1; then
		fail podman/image-files "checkpoint or restore failed" "$WORK/$c.ckpt" "$WORK/$c.rest" $(stasis_logs)
		return
	fi
	pm exec $c busybox sh -c 'echo > /etc/new; busybox touch /bin/busybox; echo x >>/out/up' >"$WORK/$c.exec" 2>&1
	if ! wait_for 10 logs_have $c '^PASS watchcheck'; then
		pm logs $c >"$WORK/$c.logs" 2>&1
		fail podman/image-files "watchcheck did not PASS after the restore" "$WORK/$c.logs" "$WORK/$c.exec" $(stasis_logs)
		return
	fi
	ok "podman/image-files (watches on /etc and /bin/busybox of the image's layer and on a file of the upper layer saw a create, a touch and a write after the restore; a removed file of the image held open and mapped reads the same; checkpoint $T_CKPT ms, restore $T_REST ms)"
	pm rm -f $c >/dev/null 2>&1
}
case_image_files
case_pre_checkpoint
case_unix_client
case_tty
case_userns
case_tcp
case_tun
case_pod
case_pod_pid
case_pod_userns
finish
