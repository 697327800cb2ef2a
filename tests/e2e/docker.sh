#!/bin/bash
# Docker end to end (Debian's docker.io 20.10 with containerd 1.6 and runc 1.1), stasis being
# the `criu` runc finds on PATH. A containerd and a dockerd of our own run with every state in a
# temporary directory (their own sockets, data and exec roots, pid file; no bridge, no
# iptables) and are stopped at the end; the image is a busybox tree imported from a tar stream
# (no registry).
#
# docker/checkpoint-restore  a counter: `docker checkpoint create` stops it, `docker start
#                            --checkpoint` brings it back; the count goes on (never from 1);
#                            the images are stasis's
# docker/restore-again       the same container killed and restored again from the same
#                            checkpoint: the count goes on from the checkpoint once more
# docker/memory-256M         memcheck 256 (tests/e2e/memcheck.c): checkpointed and restored, its
#                            ticks go on; `docker stop` makes it check every word: PASS, exit 0
# docker/image-files         tests/e2e/watchcheck.c watches /etc and /bin/busybox of the image
#                            (on Docker's overlay2, whose file handles cannot be opened) and a
#                            file of the upper layer, and holds /bin/podipc of the image open
#                            and mapped after removing it: checkpointed and started again, then
#                            a file made in /etc, busybox touched, the file written (`docker
#                            exec`): it sees the three events and the removed file reads the
#                            same: PASS
# docker/leave-running       `docker checkpoint create --leave-running`: the container runs on,
#                            not paused (containerd pauses it around the dump), same init; then
#                            killed and restored from that checkpoint: the count goes on from it
# docker/paused-leave-running  a paused container (`docker pause`) checkpointed with
#                            --leave-running: it stays paused (Docker's state and its cgroup's
#                            freezer) and counts nothing meanwhile; `docker unpause`: it goes on
#                            from its last count
# docker/exec-at-checkpoint  a `docker exec` runs in the counter when `docker checkpoint create`
#                            pauses it (containerd pauses every container it checkpoints): a
#                            shell that waits for a file of the bound host directory, which this
#                            script makes once the container's freezer says FROZEN. The dump
#                            holds the container's processes and lets the exec alone end (its
#                            log, kept by a `log-file` line in /etc/criu/runc.conf for this
#                            checkpoint, says both); the exec ends well, and the count goes on
#                            after start --checkpoint
# docker/tty                 a container with a terminal (-t): checkpointed and restored with a new
#                            terminal handed to Docker (orphan-pts-master); the count goes on
# docker/network             a container on Docker's default network (a bridge of this script's
#                            own, no iptables): busybox httpd answers over the bridge before the
#                            checkpoint and after start --checkpoint, at the same address (its
#                            network namespace is Docker's: runc hands it to stasis as external)
# docker/tcp-established     the same container's echo server: a connection from this script
#                            held across the checkpoint echoes after start --checkpoint. Docker
#                            has no option for it: `tcp-established` in /etc/criu/runc.conf,
#                            the configuration file runc names in every request (written for
#                            this case only; a file there before is put back)
# docker/sysctl              a counter run with --sysctl of its network namespace (somaxconn, the
#                            first unprivileged port, TCP keep-alive time, lo's IPv6 on): after
#                            checkpoint and start --checkpoint (runc applies no sysctl on
#                            restore, and Docker's hook turns lo's IPv6 off in the new namespace)
#                            the container sees the same values, and ::1 on lo
# docker/tun                 a VPN's state: tests/zoo/tun.c (built static) in a container given
#                            /dev/net/tun and NET_ADMIN (`--network none`: Docker's namespace,
#                            external to stasis) makes tun zt0 with an address and a route, taps
#                            zp0 and zq0 (persistent); checkpointed and started again in the new
#                            namespace Docker makes, its devices made again there: after SIGTERM
#                            it PASSes (its devices, files, address, route and traffic)
# docker/ipc-pid-container   a container in another's IPC and PID namespaces (`--ipc
#                            container:NAME --pid container:NAME`): the other (tests/e2e/
#                            podipc.c owner) keeps a SysV shm segment and a message queue, this
#                            one counts into both; checkpointed and started again (runc names
#                            the PID namespace as its own, --external pid, and asks stasis to
#                            join the IPC one, --join-ns ipc), it is back in both, with its pid
#                            there: the owner sees its new counts in the segment and gets them
#                            as messages
# docker/hardened            a counter run as security-minded users run one: --init (Docker's
#                            init as pid 1), --read-only, --user 1000:1000, --cap-drop ALL,
#                            --security-opt no-new-privileges, --memory 64m, --pids-limit 50,
#                            --cpus 0.5, files it wrote in the tmpfs /dev/shm (a word, 300 KiB
#                            of random bytes and their MD5; the --tmpfs /tmp it is given is
#                            root's, 0755, whatever mode is asked): checkpointed and started
#                            again, the count goes on; the counter's ids, capabilities,
#                            no_new_privs and seccomp mode, pid 1's command and the tmpfs files
#                            read as before
# docker/redis               a real server as users run one: redis-server (the host's, with its
#                            libraries, in an image of its own: epoll, jemalloc's threads, pipes)
#                            serving only on a unix socket in a volume (`-v DIR:/sock`), filled
#                            through it by redis-cli from outside (a string, a counter, a
#                            1000-element list, 2 MB of values); checkpointed and started again:
#                            the same server (its process_id and run_id) answers on its socket
#                            with every value, the counter goes on, a BGSAVE (a fork of the
#                            restored server writing all its memory) succeeds
# docker/other-container    moving a container: checkpointed, its checkpoint copied into a
#                            new container of the same image and command (this Docker refuses
#                            start --checkpoint-dir), started from it: the counter goes on from
#                            the last number, in a volume's file too, with the old hostname
# docker/stdin              a shell reading its open stdin (`run -i`: a pipe of containerd's
#                            shim) takes a line sent through `docker attach`, is checkpointed and
#                            started again: the next line sent reaches it, counted as its second
#
#   tests/e2e/docker.sh     (root; needs docker.io, containerd, runc, busybox-static)
# Output: "ok"/"FAIL" lines (a failure shows Docker's message and stasis's log), then
# "N passed, N failed".
set -u
E2E_NAME=docker
# shellcheck source=e2e-lib.sh
. "$(dirname "$0")/e2e-lib.sh"

DOCKER_BRIDGE=stasis-dkbr$$
DOCKER_BRIDGE=${DOCKER_BRIDGE:0:15}
RUNC_CONF=/etc/criu/runc.conf
# runc_conf_set LINE...: runc.conf holds these lines (the file there before kept aside)
runc_conf_set() {
	[ -e "$WORK/runc.conf.before" ] || [ -e "$WORK/runc.conf.none" ] ||
		{ cp -a "$RUNC_CONF" "$WORK/runc.conf.before" 2>/dev/null || touch "$WORK/runc.conf.none"; }
	mkdir -p "${RUNC_CONF%/*}" && printf '%s\n' "$@" >"$RUNC_CONF"
}
runc_conf_put_back() {
	if [ -e "$WORK/runc.conf.before" ]; then
		mv -f "$WORK/runc.conf.before" "$RUNC_CONF"
	elif [ -e "$WORK/runc.conf.none" ]; then
		rm -f "$RUNC_CONF" "$WORK/runc.conf.none"
		rmdir "${RUNC_CONF%/*}" 2>/dev/null
	fi
	return 0
}
cleanup() {
	[ -n "$WORK" ] && runc_conf_put_back
	stop_docker
	ip link del "$DOCKER_BRIDGE" 2>/dev/null
	e2e_cleanup
}
trap cleanup EXIT

need dockerd containerd ctr runc busybox cc ip curl
e2e_setup
if ! ip link add "$DOCKER_BRIDGE" type bridge || ! ip addr add 10.216.0.1/24 dev "$DOCKER_BRIDGE" ||
	! ip link set "$DOCKER_BRIDGE" up; then
	fail docker/bridge "cannot make bridge $DOCKER_BRIDGE with 10.216.0.1/24"
	finish
fi

start_docker || finish
docker_import bb:latest || finish

# ---- helpers -----------------------------------------------------------------------------
dk_logs() { dk logs "$1" 2>&1 | tr -d '\r' >"$WORK/$1.logs"; } # (a terminal says \r\n)
logged_numbers() { dk_logs "$1" && numbers "$WORK/$1.logs"; }
logged_ticks() { dk_logs "$1" && ticks "$WORK/$1.logs"; }
state() { dk inspect -f "{{.State.$2}}" "$1" 2>/dev/null; }
checkpoint_dir() { echo "$WORK/docker-root/containers/$(dk inspect -f '{{.Id}}' "$1")/checkpoints/$2"; }
# stasis's logs that runc's work directories hold (kept there when a run fails)
stasis_logs() { find "$WORK" -name 'dump.log' -o -name 'restore.log' -o -name 'criu-*.log' 2>/dev/null | head -n 4; }

# counted_cycle C LABEL CKPT [RUN OPTION...]: container C counting (COUNTER) checkpointed as
# CKPT (stasis's images checked) and started from it: the count goes on from the next number.
# BEFORE_CHECKPOINT, if set, is run with C once it counts.
# Sets LAST (before) and FIRST (after); 1 after a failure said under LABEL.
counted_cycle() {
	local c=$1 label=$2 ckpt=$3 cp
	shift 3
	dk run -d --name "$c" "$@" bb:latest sh -c "$COUNTER" >"$WORK/$c.run" 2>&1
	if ! wait_for 20 has_lines 3 logged_numbers "$c"; then
		fail "$label" "the container does not count" "$WORK/$c.run" "$WORK/$c.logs"
		return 1
	fi
	[ -z "${BEFORE_CHECKPOINT:-}" ] || "$BEFORE_CHECKPOINT" "$c"
	if ! timed T_CKPT dk checkpoint create "$c" "$ckpt" >"$WORK/$c.ckpt" 2>&1 || [ "$(state "$c" Running)" != false ]; then
		fail "$label" "docker checkpoint create failed (running: $(state "$c" Running))" \
			"$WORK/$c.ckpt" $(stasis_logs)
		return 1
	fi
	cp=$(checkpoint_dir "$c" "$ckpt")
	if ! stasis_images "$cp"; then
		fail "$label" "no stasis images in $cp: $(ls "$cp" 2>&1 | tr '\n' ' ')"
		return 1
	fi
	count_before "$c"
	if ! docker_start_checkpoint "$c" "$ckpt" "$WORK/$c.start" || ! wait_for 20 has_lines $((COUNTED + 2)) logged_numbers "$c"; then
		fail "$label" "docker start --checkpoint failed (running: $(state "$c" Running))" \
			"$WORK/$c.start" "$WORK/$c.logs" $(stasis_logs)
		return 1
	fi
	count_went_on "$label" "$c"
}

# ---- docker/hardened ------------------------------------------------------------------------
# what a container run with hardening options shows of itself: the counter's credentials, pid
# 1's command, its tmpfs files
hardened_state() {
	dk exec "$1" sh -c 'for d in /proc/[0-9]*; do grep -q "while true" $d/cmdline 2>/dev/null &&
		grep -E "^(Uid|Gid|Groups|CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):" $d/status
	done; tr "\0" " " </proc/1/cmdline; echo; cat /dev/shm/word; md5sum /dev/shm/random; cat /dev/shm/md5'
}
hardened_saved() { hardened_state "$1" >"$WORK/$1.state" 2>&1; }
case_hardened() {
	local c=dhard before after
	COUNTER="echo hardened >/dev/shm/word; dd if=/dev/urandom of=/dev/shm/random bs=1k count=300 2>/dev/null;
		md5sum /dev/shm/random >/dev/shm/md5; $COUNTER" BEFORE_CHECKPOINT=hardened_saved \
		counted_cycle $c docker/hardened cp1 --network none --init --read-only --tmpfs /tmp \
		--user 1000:1000 --cap-drop ALL --security-opt no-new-privileges --memory 64m \
		--pids-limit 50 --cpus 0.5 || { dk rm -f $c >/dev/null 2>&1; return; }
	after=$(hardened_state $c 2>&1)
	before=$(cat "$WORK/$c.state" 2>/dev/null)
	if [ -z "$before" ] || [ "$before" != "$after" ] || ! grep -q "^Uid:.1000" <<<"$after" ||
		! grep -q "^CapEff:.0000000000000000" <<<"$after" || ! grep -q "^NoNewPrivs:.1" <<<"$after" ||
		! grep -q "^/sbin/docker-init " <<<"$after" || [ "$(grep -c "^[0-9a-f]*  /dev/shm/random$" <<<"$after")" != 2 ] ||
		[ "$(grep "^[0-9a-f]*  /dev/shm/random$" <<<"$after" | cut -d' ' -f1 | uniq | wc -l)" != 1 ]; then
		{ printf 'after:\n%s\nchanged since before:\n' "$after"; diff <(echo "$before") <(echo "$after"); } >"$WORK/$c.states"
		fail docker/hardened "what the container shows differs, or is not as run" "$WORK/$c.states"
	else
		ok "docker/hardened (counted to $LAST, went on from $FIRST; uid 1000, no capabilities, no_new_privs, docker-init, tmpfs files)"
	fi
	dk rm -f $c >/dev/null 2>&1
}

# ---- docker/checkpoint-restore and docker/restore-again ----------------------------------
case_counter() {
	local c=dcount n2 first2
	counted_cycle $c docker/checkpoint-restore cp1 --network none || return
	ok "docker/checkpoint-restore (counted to $LAST, went on from $FIRST; checkpoint ${T_CKPT} ms, start --checkpoint ${T_START} ms)"

	dk kill $c >/dev/null 2>&1
	wait_for 20 eval "[ \"\$(state $c Running)\" = false ]"
	n2=$(logged_numbers $c | wc -l)
	if ! docker_start_checkpoint $c cp1 "$WORK/$c.start2" || ! wait_for 20 has_lines $((n2 + 2)) logged_numbers $c; then
		fail docker/restore-again "the second docker start --checkpoint failed (running: $(state $c Running))" \
			"$WORK/$c.start2" "$WORK/$c.logs" $(stasis_logs)
		return
	fi
	first2=$(logged_numbers $c | sed -n "$((n2 + 1))p")
	if [ "$first2" != $((LAST + 1)) ]; then
		fail docker/restore-again "restored again from the checkpoint taken at $LAST, the count went on from $first2" "$WORK/$c.logs"
		return
	fi
	ok "docker/restore-again (from the same checkpoint: went on from $first2 again; ${T_START} ms)"
	dk rm -f $c >/dev/null 2>&1
}

# ---- docker/memory-256M -------------------------------------------------------------------
case_memory() {
	local c=dmem n last first rc
	dk run -d --name $c --network none bb:latest memcheck 256 >"$WORK/$c.run" 2>&1
	if ! wait_for 60 has_lines 2 logged_ticks $c; then
		fail docker/memory-256M "memcheck does not tick" "$WORK/$c.run" "$WORK/$c.logs"
		return
	fi
	if ! timed T_CKPT dk checkpoint create $c m1 >"$WORK/$c.ckpt" 2>&1; then
		fail docker/memory-256M "docker checkpoint create failed" "$WORK/$c.ckpt" $(stasis_logs)
		return
	fi
	logged_ticks $c >"$WORK/$c.before"
	n=$(wc -l <"$WORK/$c.before")
	last=$(tail -n 1 "$WORK/$c.before")
	if ! docker_start_checkpoint $c m1 "$WORK/$c.start" || ! wait_for 20 has_lines $((n + 1)) logged_ticks $c; then
		fail docker/memory-256M "docker start --checkpoint failed" "$WORK/$c.start" "$WORK/$c.logs" $(stasis_logs)
		return
	fi
	first=$(logged_ticks $c | sed -n "$((n + 1))p")
	dk stop -t 60 $c >/dev/null 2>&1
	rc=$(state $c ExitCode)
	dk_logs $c
	if [ "$first" != $((last + 1)) ] || [ "$rc" != 0 ] || ! grep -q '^PASS memcheck' "$WORK/$c.logs"; then
		fail docker/memory-256M "ticks $last then $first, exit code $rc (expected the next tick, PASS and 0)" "$WORK/$c.logs"
		return
	fi
	ok "docker/memory-256M ($(grep '^PASS' "$WORK/$c.logs"); checkpoint ${T_CKPT} ms, start --checkpoint ${T_START} ms)"
	dk rm -f $c >/dev/null 2>&1
}

# ---- docker/image-files ---------------------------------------------------------------------
case_image_files() {
	local c=dimg
	dk run -d --name $c --network none bb:latest watchcheck >"$WORK/$c.run" 2>&1
	if ! wait_for 20 eval 'dk_logs '$c' && grep -q "^tick 2" "$WORK/'$c'.logs"'; then
		fail docker/image-files "watchcheck does not tick" "$WORK/$c.run" "$WORK/$c.logs"
		return
	fi
	if ! timed T_CKPT dk checkpoint create $c f1 >"$WORK/$c.ckpt" 2>&1 ||
		! docker_start_checkpoint $c f1 "$WORK/$c.start"; then
		fail docker/image-files "checkpoint or start --checkpoint failed" "$WORK/$c.ckpt" "$WORK/$c.start" $(stasis_logs)
		return
	fi
	dk exec $c busybox sh -c 'echo > /etc/new; busybox touch /bin/busybox; echo x >>/out/up' >"$WORK/$c.exec" 2>&1
	if ! wait_for 10 eval 'dk_logs '$c' && grep -q "^PASS watchcheck" "$WORK/'$c'.logs"'; then
		fail docker/image-files "watchcheck did not PASS after the restore" "$WORK/$c.logs" "$WORK/$c.exec" $(stasis_logs)
		return
	fi
	ok "docker/image-files (watches on files of the image's layers and of the upper layer saw a create, a touch and a write after start --checkpoint; a removed file of the image held open and mapped reads the same; checkpoint ${T_CKPT} ms, start --checkpoint ${T_START} ms)"
	dk rm -f $c >/dev/null 2>&1
}

# ---- docker/leave-running -----------------------------------------------------------------
case_leave_running() {
	local c=dlive pid v0 v1 n first
	dk run -d --name $c --network none bb:latest sh -c "$COUNTER" >"$WORK/$c.run" 2>&1
	if ! wait_for 20 has_lines 2 logged_numbers $c; then
		fail docker/leave-running "the container does not count" "$WORK/$c.run" "$WORK/$c.logs"
		return
	fi
	pid=$(state $c Pid)
	v0=$(logged_numbers $c | tail -n 1)
	if ! timed T_CKPT dk checkpoint create --leave-running $c live1 >"$WORK/$c.ckpt" 2>&1; then
		fail docker/leave-running "docker checkpoint create --leave-running failed" "$WORK/$c.ckpt" $(stasis_logs)
		return
	fi
	n=$(logged_numbers $c | wc -l)
	if ! wait_for 10 has_lines $((n + 2)) logged_numbers $c || [ "$(state $c Running)" != true ] ||
		[ "$(state $c Paused)" != false ] || [ "$(state $c Pid)" != "$pid" ]; then
		fail docker/leave-running "after the checkpoint: running $(state $c Running), paused $(state $c Paused), init $(state $c Pid) (was $pid); expected running, not paused, the same init, counting" \
			"$WORK/$c.logs" "$WORK/dockerd.log"
		return
	fi
	dk kill $c >/dev/null 2>&1
	wait_for 20 eval "[ \"\$(state $c Running)\" = false ]"
	v1=$(logged_numbers $c | tail -n 1)
	n=$(logged_numbers $c | wc -l)
	if ! docker_start_checkpoint $c live1 "$WORK/$c.start" || ! wait_for 20 has_lines $((n + 1)) logged_numbers $c; then
		fail docker/leave-running "docker start --checkpoint of the --leave-running checkpoint failed" \
			"$WORK/$c.start" $(stasis_logs)
		return
	fi
	first=$(logged_numbers $c | sed -n "$((n + 1))p")
	# taken while it counted from v0 on; it was killed at v1
	if [ "$first" -le "$v0" ] || [ "$first" -gt $((v1 + 1)) ]; then
		fail docker/leave-running "checkpointed between $v0 and $v1, the restored count went on from $first" "$WORK/$c.logs"
		return
	fi
	ok "docker/leave-running (ran on unpaused, same init; restored later, went on from $first; checkpoint ${T_CKPT} ms)"
	dk rm -f $c >/dev/null 2>&1
}

# ---- docker/paused-leave-running --------------------------------------------------------------
case_paused_leave_running() {
	local c=dpaused last n
	dk run -d --name $c --network none bb:latest sh -c "$COUNTER" >"$WORK/$c.run" 2>&1
	if ! wait_for 20 has_lines 2 logged_numbers $c; then
		fail docker/paused-leave-running "the container does not count" "$WORK/$c.run" "$WORK/$c.logs"
		return
	fi
	if ! dk pause $c >"$WORK/$c.pause" 2>&1; then
		fail docker/paused-leave-running "docker pause failed" "$WORK/$c.pause"
		return
	fi
	sleep 1.2
	last=$(logged_numbers $c | tail -n 1)
	n=$(logged_numbers $c | wc -l)
	if ! timed T_CKPT dk checkpoint create --leave-running $c paused1 >"$WORK/$c.ckpt" 2>&1; then
		fail docker/paused-leave-running "docker checkpoint create --leave-running of the paused container failed" \
			"$WORK/$c.ckpt" $(stasis_logs)
		return
	fi
	sleep 2.5 # (it counts each second)
	if [ "$(state $c Paused)" != true ] || [ "$(logged_numbers $c | wc -l)" != "$n" ]; then
		fail docker/paused-leave-running "after the checkpoint: paused $(state $c Paused), counts $(logged_numbers $c | tail -n +$((n + 1)) | tr '\n' ' ')(none wanted)" \
			"$WORK/$c.logs" "$WORK/dockerd.log"
		return
	fi
	if ! dk unpause $c >"$WORK/$c.unpause" 2>&1 || ! wait_for 10 has_lines $((n + 1)) logged_numbers $c ||
		[ "$(logged_numbers $c | sed -n "$((n + 1))p")" != $((last + 1)) ]; then
		fail docker/paused-leave-running "unpaused, it went on from '$(logged_numbers $c | sed -n "$((n + 1))p")', not $((last + 1))" \
			"$WORK/$c.unpause" "$WORK/$c.logs"
		return
	fi
	ok "docker/paused-leave-running (paused at $last: still paused after the checkpoint, no count; unpaused, went on from $((last + 1)); checkpoint ${T_CKPT} ms)"
	dk rm -f $c >/dev/null 2>&1
}

# ---- docker/exec-at-checkpoint -------------------------------------------------------------
# frozen_then_go C FILE: once container C's cgroup is frozen (v1 freezer or v2), FILE is made
frozen_then_go() {
	local id f
	id=$(dk inspect -f '{{.Id}}' "$1") || return
	for f in "/sys/fs/cgroup/freezer/docker/$id/freezer.state" "/sys/fs/cgroup/docker/$id/cgroup.events"; do
		[ -e "$f" ] && break
	done
	# (the dump thaws the cgroup within a moment of the engine's pause: looked at each 10 ms)
	for _ in $(seq 3000); do
		grep -q -e FROZEN -e 'frozen 1' "$f" && touch "$2" && return
		sleep 0.01
	done
	return 1
}
case_exec_at_checkpoint() {
	local c=dexec ex go log rc
	mkdir -p "$WORK/$c"
	dk run -d --name $c --network none -v "$WORK/$c:/out" bb:latest sh -c "$COUNTER" >"$WORK/$c.run" 2>&1
	if ! wait_for 20 has_lines 2 logged_numbers $c; then
		fail docker/exec-at-checkpoint "the container does not count" "$WORK/$c.run" "$WORK/$c.logs"
		return
	fi
	dk exec $c sh -c 'until [ -e /out/go ]; do sleep 0.05; done; echo ended >/out/exec' >"$WORK/$c.exec" 2>&1 &
	ex=$!
	if ! wait_for 20 pgrep -f '^sh -c until \[ -e /out/go' >/dev/null; then
		fail docker/exec-at-checkpoint "the exec does not run" "$WORK/$c.exec"
		return
	fi
	frozen_then_go $c "$WORK/$c/go" &
	go=$!
	# (containerd removes the log of a dump that succeeded: this one is kept)
	log=$WORK/$c-dump.log
	runc_conf_set "log-file $log"
	timed T_CKPT dk checkpoint create $c x1 >"$WORK/$c.ckpt" 2>&1
	rc=$?
	runc_conf_put_back
	if [ $rc != 0 ] || [ "$(state $c Running)" != false ]; then
		fail docker/exec-at-checkpoint "docker checkpoint create failed (running: $(state $c Running))" \
			"$WORK/$c.ckpt" "$log"
		kill $go 2>/dev/null
		return
	fi
	if ! wait $ex || [ "$(cat "$WORK/$c/exec" 2>/dev/null)" != ended ] || ! wait $go ||
		! grep -q "joined the paused container's PID namespace from outside" "$log" ||
		! grep -q "what joined the paused container ended" "$log"; then
		fail docker/exec-at-checkpoint "the exec did not end during the dump as wanted (ended: $(cat "$WORK/$c/exec" 2>&1))" \
			"$WORK/$c.exec" "$log"
		return
	fi
	count_before $c
	if ! docker_start_checkpoint $c x1 "$WORK/$c.start" || ! wait_for 20 has_lines $((COUNTED + 2)) logged_numbers $c; then
		fail docker/exec-at-checkpoint "docker start --checkpoint failed (running: $(state $c Running))" \
			"$WORK/$c.start" "$WORK/$c.logs" $(stasis_logs)
		return
	fi
	count_went_on docker/exec-at-checkpoint $c || return
	ok "docker/exec-at-checkpoint (the exec ended during the dump: $(grep -o '([0-9]* pauses)' "$log"); went on from $FIRST; checkpoint ${T_CKPT} ms)"
	dk rm -f $c >/dev/null 2>&1
}

# ---- docker/tty ----------------------------------------------------------------------------
# A container with a terminal (docker run -t): its stdio are the slave of a pty whose master
# containerd's shim holds. stasis saves the pty from the slave and makes it anew on restore,
# handing the new master to runc at the orphan-pts-master notification (runc gives it to the
# shim): the count goes on through the new terminal, which is the shell's controlling tty.
case_tty() {
	local c=dtty n last first pid tty
	dk run -d -t --name $c --network none bb:latest sh -c "$COUNTER" >"$WORK/$c.run" 2>&1
	if ! wait_for 20 has_lines 2 logged_numbers $c; then
		fail docker/tty "the container does not count" "$WORK/$c.run" "$WORK/$c.logs"
		return
	fi
	if ! timed T_CKPT dk checkpoint create $c t1 >"$WORK/$c.ckpt" 2>&1 || [ "$(state $c Running)" != false ]; then
		fail docker/tty "docker checkpoint create failed (running: $(state $c Running))" \
			"$WORK/$c.ckpt" $(grep -o '/[^ ]*criu-dump\.log' "$WORK/$c.ckpt")
		return
	fi
	logged_numbers $c >"$WORK/$c.before"
	n=$(wc -l <"$WORK/$c.before")
	last=$(tail -n 1 "$WORK/$c.before")
	if ! docker_start_checkpoint $c t1 "$WORK/$c.start" || ! wait_for 20 has_lines $((n + 2)) logged_numbers $c; then
		fail docker/tty "docker start --checkpoint failed (running: $(state $c Running))" "$WORK/$c.start" "$WORK/$c.logs"
		return
	fi
	first=$(logged_numbers $c | sed -n "$((n + 1))p")
	pid=$(state $c Pid)
	# fd 0 a pts slave (major 136: 0x88), the same as its controlling tty (stat field 7)
	tty=$(stat -L -c '%t:%T' "/proc/$pid/fd/0")
	ctty=$(awk '{printf "%x:%x", int($7 / 256), $7 % 256}' "/proc/$pid/stat")
	if [ "$first" != $((last + 1)) ] || [[ $tty != 88:* ]] || [ "$tty" != "$ctty" ]; then
		fail docker/tty "the count went $last, then $first; the restored shell's fd 0 is device $tty, its controlling tty $ctty" "$WORK/$c.logs"
		return
	fi
	# the restored container, with the terminal stasis made, checkpointed and restored again
	if ! dk checkpoint create $c t2 >"$WORK/$c.ckpt2" 2>&1 || ! logged_numbers $c >"$WORK/$c.before2" ||
		! n=$(wc -l <"$WORK/$c.before2") || ! docker_start_checkpoint $c t2 "$WORK/$c.start2" ||
		! wait_for 20 has_lines $((n + 2)) logged_numbers $c ||
		[ "$(logged_numbers $c | sed -n "$((n + 1))p")" != $(($(tail -n 1 "$WORK/$c.before2") + 1)) ]; then
		fail docker/tty "the restored container checkpointed and restored again: the count did not go on from $(tail -n 1 "$WORK/$c.before2")" \
			"$WORK/$c.ckpt2" "$WORK/$c.start2" "$WORK/$c.logs"
		return
	fi
	ok "docker/tty (counted to $last on its terminal, went on from $first on the new one (pts $tty, its controlling tty); checkpointed at $(tail -n 1 "$WORK/$c.before2") and restored again; checkpoint ${T_CKPT} ms, start --checkpoint ${T_START} ms)"
	dk rm -f $c >/dev/null 2>&1
}

# ---- docker/network -------------------------------------------------------------------------
case_network() {
	local c=dnet ip ip2 page l=""
	dk run -d --name $c bb:latest sh -c "(while true; do busybox nc -l -p 9000 -e cat; done) & busybox mkdir -p /www && echo served-by-$c >/www/index.html && busybox httpd -f -p 8080 -h /www" \
		>"$WORK/$c.run" 2>&1
	ip=$(dk inspect -f '{{.NetworkSettings.IPAddress}}' $c 2>/dev/null)
	if [ -z "$ip" ] || ! wait_for 20 eval "curl -sf --max-time 2 http://$ip:8080/ >'$WORK/$c.page'"; then
		fail docker/network "the container does not serve on the bridge (address '$ip')" "$WORK/$c.run"
		return
	fi
	if ! exec 5<>"/dev/tcp/$ip/9000" || ! echo before >&5 || ! read -r -t 5 l <&5 || [ "$l" != before ]; then
		fail docker/tcp-established "the container's echo server at $ip:9000 does not echo (got '$l')" "$WORK/$c.run"
		exec 5<&-
		return
	fi
	runc_conf_set "# stasis tests/e2e/docker.sh: docker/tcp-established" tcp-established
	if ! timed T_CKPT dk checkpoint create $c n1 >"$WORK/$c.ckpt" 2>&1 5<&- || [ "$(state $c Running)" != false ]; then
		runc_conf_put_back
		fail docker/network "docker checkpoint create failed (running: $(state $c Running))" "$WORK/$c.ckpt" $(stasis_logs)
		return
	fi
	if ! docker_start_checkpoint $c n1 "$WORK/$c.start" 5<&-; then
		runc_conf_put_back
		fail docker/network "docker start --checkpoint failed" "$WORK/$c.start" $(stasis_logs)
		return
	fi
	runc_conf_put_back
	ip2=$(dk inspect -f '{{.NetworkSettings.IPAddress}}' $c 2>/dev/null)
	page=$(curl -sf --max-time 5 "http://$ip2:8080/")
	if [ "$ip2" != "$ip" ] || [ "$page" != "served-by-$c" ]; then
		fail docker/network "after start --checkpoint: address '$ip2' (was $ip), page '$page'" "$WORK/$c.start" $(stasis_logs)
		return
	fi
	ok "docker/network (httpd at $ip on the bridge answered before and after; checkpoint ${T_CKPT} ms, start --checkpoint ${T_START} ms)"
	l=""
	echo after >&5 && read -r -t 10 l <&5
	exec 5<&-
	if [ "$l" != after ]; then
		fail docker/tcp-established "the connection held across the checkpoint echoed '$l', not 'after'" $(stasis_logs)
		return
	fi
	ok "docker/tcp-established (a connection from the host to $ip:9000 echoed before the checkpoint and after start --checkpoint; tcp-established from /etc/criu/runc.conf)"
	dk rm -f $c >/dev/null 2>&1
}

# ---- docker/host-network ------------------------------------------------------------------
# The host's network namespace: the container's /sys is a sysfs of the host's namespace (its
# superblock the host's own), made anew at restore.
case_host_network() {
	local c=dhostnet
	counted_cycle $c docker/host-network h1 --network host || return
	if ! dk exec $c busybox test -e /sys/class/net/lo >"$WORK/$c.exec" 2>&1; then
		fail docker/host-network "/sys/class/net/lo is not there after the restore: $(cat "$WORK/$c.exec")" "$WORK/$c.logs"
		return
	fi
	ok "docker/host-network (--network host: counted to $LAST, went on from $FIRST, /sys shows the host's interfaces; checkpoint ${T_CKPT} ms, start --checkpoint ${T_START} ms)"
	dk rm -f $c >/dev/null 2>&1
}

# ---- docker/sysctl ------------------------------------------------------------------------
# (runc applies a container's sysctls when it starts it, not when it restores it; Docker's hook
# sets lo's IPv6 off again in the new namespace)
SYSCTLS="net.core.somaxconn=1234 net.ipv4.ip_unprivileged_port_start=80 net.ipv4.tcp_keepalive_time=321 net.ipv6.conf.lo.disable_ipv6=0"
sysctls_seen() {
	local kv
	for kv in $SYSCTLS; do
		printf '%s=%s ' "${kv%%=*}" "$(dk exec "$1" cat "/proc/sys/$(tr . / <<<"${kv%%=*}")" 2>&1)"
	done
	[[ $(dk exec "$1" sh -c 'ip -6 addr show dev lo' 2>&1) == *"::1/128"* ]] && printf 'lo ::1'
}
case_sysctl() {
	local c=dsysctl kv want="" seen opts=()
	for kv in $SYSCTLS; do opts+=(--sysctl "$kv"); want+="$kv "; done
	want+="lo ::1"
	counted_cycle $c docker/sysctl s1 --network none "${opts[@]}" || return
	seen=$(sysctls_seen $c)
	if [ "$seen" != "$want" ]; then
		fail docker/sysctl "after start --checkpoint the container sees $seen, not $want" $(stasis_logs)
		return
	fi
	ok "docker/sysctl (--sysctl $SYSCTLS: the same after start --checkpoint, lo's ::1 too; counted to $LAST, went on from $FIRST)"
	dk rm -f $c >/dev/null 2>&1
}

# ---- docker/tun ---------------------------------------------------------------------------
case_tun() {
	local c=dtun
	zoo_static tun docker/tun || return
	dk run -d --name $c --network none --cap-add NET_ADMIN --device /dev/net/tun -e ZOO_TUN_NETNS=keep \
		-v "$WORK/zoo-tun:/zoo-tun:ro" bb:latest /zoo-tun >"$WORK/$c.run" 2>&1
	if ! wait_for 20 eval "dk_logs $c && grep -q '^READY' '$WORK/$c.logs'"; then
		fail docker/tun "the program is not READY" "$WORK/$c.run" "$WORK/$c.logs"
		return
	fi
	if ! timed T_CKPT dk checkpoint create $c t1 >"$WORK/$c.ckpt" 2>&1 || [ "$(state $c Running)" != false ]; then
		fail docker/tun "docker checkpoint create failed (running: $(state $c Running))" "$WORK/$c.ckpt" $(stasis_logs)
		return
	fi
	if ! docker_start_checkpoint $c t1 "$WORK/$c.start" || [ "$(state $c Running)" != true ]; then
		fail docker/tun "docker start --checkpoint failed (running: $(state $c Running))" "$WORK/$c.start" $(stasis_logs)
		return
	fi
	dk kill -s TERM $c >/dev/null 2>&1
	wait_for 20 eval "[ \"\$(state $c Running)\" = false ]"
	dk_logs $c
	if ! grep -q '^PASS' "$WORK/$c.logs"; then
		fail docker/tun "after start --checkpoint and SIGTERM the program did not PASS: $(grep -E '^(PASS|FAIL)' "$WORK/$c.logs" | head -n 1)" \
			"$WORK/$c.logs" $(stasis_logs)
		return
	fi
	ok "docker/tun ($(grep '^PASS' "$WORK/$c.logs"); checkpoint ${T_CKPT} ms, start --checkpoint ${T_START} ms)"
	dk rm -f $c >/dev/null 2>&1
}

# ---- docker/ipc-pid-container -----------------------------------------------------------------
ipc_owner_saw() { dk_logs dipco && podipc_saw "$WORK/dipco.logs" "$1"; }
case_ipc_pid_container() {
	local o=dipco u=dipcu n last first c nspid
	if ! dk run -d --name $o --network none --ipc shareable bb:latest podipc owner >"$WORK/$o.run" 2>&1 ||
		! dk run -d --name $u --network none --ipc container:$o --pid container:$o bb:latest podipc user \
			>"$WORK/$u.run" 2>&1 ||
		! wait_for 20 has_lines 2 logged_numbers $u || ! wait_for 10 ipc_owner_saw 2; then
		fail docker/ipc-pid-container "the two containers do not talk" "$WORK/$o.run" "$WORK/$u.run" \
			"$WORK/$u.logs" "$WORK/$o.logs"
		return
	fi
	nspid=$(awk '/^NSpid:/ { print $NF }' "/proc/$(state $u Pid)/status")
	if ! timed T_CKPT dk checkpoint create $u cp1 >"$WORK/$u.ckpt" 2>&1 || [ "$(state $u Running)" != false ]; then
		fail docker/ipc-pid-container "docker checkpoint create failed (running: $(state $u Running))" \
			"$WORK/$u.ckpt" $(stasis_logs)
		return
	fi
	logged_numbers $u >"$WORK/$u.before"
	n=$(wc -l <"$WORK/$u.before")
	last=$(tail -n 1 "$WORK/$u.before")
	sleep 1.5 # (the owner goes on alone: the user must find the segment as it is then)
	if ! docker_start_checkpoint $u cp1 "$WORK/$u.start" || ! wait_for 20 has_lines $((n + 2)) logged_numbers $u; then
		fail docker/ipc-pid-container "docker start --checkpoint failed (running: $(state $u Running))" \
			"$WORK/$u.start" "$WORK/$u.logs" $(stasis_logs)
		return
	fi
	first=$(logged_numbers $u | sed -n "$((n + 1))p")
	if [ "$first" != $((last + 1)) ]; then
		fail docker/ipc-pid-container "the count went $last before the checkpoint, $first after" "$WORK/$u.logs"
		return
	fi
	local ns_u ns_o k
	for k in ipc pid; do
		ns_u=$(readlink "/proc/$(state $u Pid)/ns/$k") ns_o=$(readlink "/proc/$(state $o Pid)/ns/$k")
		if [ -z "$ns_u" ] || [ "$ns_u" != "$ns_o" ]; then
			fail docker/ipc-pid-container "the restored container is in $ns_u, the other's $k namespace is $ns_o" $(stasis_logs)
			return
		fi
	done
	if [ "$(awk '/^NSpid:/ { print $NF }' "/proc/$(state $u Pid)/status")" != "$nspid" ] || [ "$nspid" = 1 ]; then
		fail docker/ipc-pid-container "the restored container is not pid $nspid of $o's PID namespace" $(stasis_logs)
		return
	fi
	if ! wait_for 10 ipc_owner_saw $((first + 1)); then
		fail docker/ipc-pid-container "the owner did not see the restored container's counts ($first and on) in their segment and queue" \
			"$WORK/$o.logs" $(stasis_logs)
		return
	fi
	for c in $u $o; do
		if grep -q FAIL "$WORK/$c.logs"; then
			fail docker/ipc-pid-container "$c: $(grep FAIL "$WORK/$c.logs" | head -n 1)"
			return
		fi
	done
	ok "docker/ipc-pid-container (--ipc container:$o --pid container:$o: counted to $last, went on from $first in $o's IPC namespace and as pid $nspid of its PID namespace; $o saw its counts in their segment and queue; checkpoint ${T_CKPT} ms, start --checkpoint ${T_START} ms)"
	dk rm -f $u $o >/dev/null 2>&1
}

# ---- docker/redis ------------------------------------------------------------------------
# redis_image IMAGE: the busybox tree with the host's redis-server and every library it loads
case_redis() {
	local c=drd pid run_id n len bg
	if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
		fail docker/redis "redis-server and redis-cli are not installed (make setup installs them)"
		return
	fi
	mkdir -p "$WORK/rd-sock"
	if ! redis_image rd:latest dk; then
		fail docker/redis "cannot make the redis image" "$WORK/redis-import.out"
		return
	fi
	dk run -d --name $c --network none -v "$WORK/rd-sock:/sock" rd:latest /usr/bin/redis-server --port 0 \
		--unixsocket /sock/redis.sock --unixsocketperm 777 --save "" --appendonly no --dir /data >"$WORK/$c.run" 2>&1
	if ! wait_for 20 redis_answers; then
		fail docker/redis "redis does not answer on its socket" "$WORK/$c.run"
		return
	fi
	rcli SET greeting "hello from before" >/dev/null
	for n in 1 2 3 4 5; do rcli INCR counter >/dev/null; done
	rcli RPUSH list $(seq 1 1000) >/dev/null
	for n in $(seq 1 20); do rcli SET "big$n" "$(head -c 100000 /dev/zero | tr '\0' "$((n % 10))")" >/dev/null; done
	pid=$(redis_field server process_id) run_id=$(redis_field server run_id)
	if ! timed T_CKPT dk checkpoint create $c r1 >"$WORK/$c.ckpt" 2>&1 || [ "$(state $c Running)" != false ]; then
		fail docker/redis "docker checkpoint create failed" "$WORK/$c.ckpt" $(stasis_logs)
		return
	fi
	if redis_answers; then
		fail docker/redis "redis still answers after its checkpoint"
		return
	fi
	if ! docker_start_checkpoint $c r1 "$WORK/$c.start" || ! wait_for 20 redis_answers; then
		fail docker/redis "docker start --checkpoint failed" "$WORK/$c.start" $(stasis_logs)
		return
	fi
	len=$(rcli LLEN list)
	bg=$(rcli BGSAVE)
	if [ "$(redis_field server process_id)" != "$pid" ] || [ "$(redis_field server run_id)" != "$run_id" ] ||
		[ "$(rcli GET greeting)" != "hello from before" ] || [ "$(rcli INCR counter)" != 6 ] ||
		[ "$len" != 1000 ] || [ "$(rcli LINDEX list 999)" != 1000 ] ||
		[ "$(rcli STRLEN big7)" != 100000 ] || [ "$(rcli GETRANGE big7 99999 99999)" != 7 ]; then
		fail docker/redis "after the restore: process_id $(redis_field server process_id) (was $pid), greeting '$(rcli GET greeting)', list length $len, big7 $(rcli STRLEN big7) bytes"
		return
	fi
	if [[ $bg != "Background saving started" ]] ||
		! wait_for 20 eval '[ "$(redis_field persistence rdb_bgsave_in_progress)" = 0 ]' ||
		[ "$(redis_field persistence rdb_last_bgsave_status)" != ok ]; then
		fail docker/redis "BGSAVE of the restored server: '$bg', status $(redis_field persistence rdb_last_bgsave_status)"
		return
	fi
	ok "docker/redis (the same server, pid $pid in its container, answers with every value, counts on, BGSAVE ok; checkpoint ${T_CKPT} ms, start --checkpoint ${T_START} ms)"
	dk rm -f $c >/dev/null 2>&1
}

# ---- docker/stdin --------------------------------------------------------------------------
# attach_line C TEXT: TEXT sent to C's open stdin through `docker attach`, which never ends by
# itself (its EOF does not close the container's stdin: not run with --attach) and forwards
# signals but SIGKILL: killed after 3 s
attach_line() { (echo "$2" | timeout -s KILL 3 "$DOCKER_BIN" -H "unix://$WORK/docker.sock" attach --sig-proxy=false "$1") >/dev/null 2>&1; }
case_stdin() {
	local c=dstdin
	dk run -d -i --name $c --network none bb:latest \
		sh -c 'i=0; while read l; do i=$((i+1)); echo "got $i $l"; done; echo stdin-closed' >"$WORK/$c.run" 2>&1
	attach_line $c first
	if ! wait_for 20 eval 'dk_logs $c && grep -q "^got 1 first$" "$WORK/$c.logs"'; then
		fail docker/stdin "the container does not read its stdin" "$WORK/$c.run" "$WORK/$c.logs"
		dk rm -f $c >/dev/null 2>&1
		return
	fi
	if ! timed T_CKPT dk checkpoint create $c s1 >"$WORK/$c.ckpt" 2>&1 || [ "$(state $c Running)" != false ] ||
		! docker_start_checkpoint $c s1 "$WORK/$c.start"; then
		fail docker/stdin "checkpoint or start --checkpoint failed (running: $(state $c Running))" \
			"$WORK/$c.ckpt" "$WORK/$c.start" $(stasis_logs)
		dk rm -f $c >/dev/null 2>&1
		return
	fi
	attach_line $c second
	if ! wait_for 20 eval 'dk_logs $c && grep -q "^got 2 second$" "$WORK/$c.logs"'; then
		fail docker/stdin "after start --checkpoint the shell does not read what is sent to its stdin" "$WORK/$c.logs"
	else
		ok "docker/stdin (a shell reading its open stdin, -i: the line sent after start --checkpoint is its second; checkpoint ${T_CKPT} ms, start ${T_START} ms)"
	fi
	dk rm -f $c >/dev/null 2>&1
}

# ---- docker/other-container ------------------------------------------------------------------
# Moving a container as Docker users do it (this Docker refuses `start --checkpoint-dir`):
# `docker checkpoint create A CP`, the checkpoint's directory copied into that of a new
# container B of the same image and command (as a copy to another host would put it), then
# `docker start --checkpoint CP B`. B has its own id, rootfs, cgroup and Docker's hostname;
# the counter (appending to a file of a volume both are given) goes on in B from A's last
# number, in the same file, with A's hostname (its UTS namespace is the checkpoint's).
case_other_container() {
	local a=dmovea b=dmoveb counter
	counter='exec 3>>/vol/count; i=0; while true; do i=$((i+1)); echo $i; echo $i >&3; sleep 1; done'
	mkdir -p "$WORK/vol"
	dk run -d --name $a --network none -v "$WORK/vol:/vol" bb:latest sh -c "$counter" >"$WORK/$a.run" 2>&1
	if ! wait_for 20 has_lines 3 logged_numbers $a; then
		fail docker/other-container "the container does not count" "$WORK/$a.run" "$WORK/$a.logs"
		dk rm -f $a >/dev/null 2>&1
		return
	fi
	if ! timed T_CKPT dk checkpoint create $a mv1 >"$WORK/$a.ckpt" 2>&1 ||
		[ "$(state $a Running)" != false ] || ! stasis_images "$(checkpoint_dir $a mv1)"; then
		fail docker/other-container "docker checkpoint create failed (running: $(state $a Running))" \
			"$WORK/$a.ckpt" $(stasis_logs)
		dk rm -f $a >/dev/null 2>&1
		return
	fi
	count_before $a
	dk create --name $b --network none -v "$WORK/vol:/vol" bb:latest sh -c "$counter" >"$WORK/$b.create" 2>&1
	mkdir -p "$(checkpoint_dir $b mv1)" && cp -a "$(checkpoint_dir $a mv1)/." "$(checkpoint_dir $b mv1)/"
	if ! docker_start_checkpoint $b mv1 "$WORK/$b.start" ||
		! wait_for 20 has_lines 2 logged_numbers $b; then
		fail docker/other-container "docker start --checkpoint of the new container failed (running: $(state $b Running))" \
			"$WORK/$b.create" "$WORK/$b.start" "$WORK/$b.logs" $(stasis_logs)
		dk rm -f $a $b >/dev/null 2>&1
		return
	fi
	FIRST=$(logged_numbers $b | head -n 1)
	local file_next
	file_next=$(grep -A1 -x "$LAST" "$WORK/vol/count" | sed -n 2p)
	if [ "$FIRST" != $((LAST + 1)) ] || [ "$file_next" != $((LAST + 1)) ] ||
		[ "$(dk exec $b cat /proc/sys/kernel/hostname 2>&1)" != "$(dk inspect -f '{{.Config.Hostname}}' $a)" ]; then
		fail docker/other-container "A counted to $LAST; B went on from '$FIRST', the volume's file from '$file_next', B's hostname '$(dk exec $b cat /proc/sys/kernel/hostname 2>&1)'" "$WORK/$b.logs" "$WORK/vol/count"
	else
		ok "docker/other-container (A counted to $LAST, B went on from $FIRST, in the volume's file too; checkpoint ${T_CKPT} ms, start ${T_START} ms)"
	fi
	dk rm -f $a $b >/dev/null 2>&1
}

case_counter
case_memory
case_hardened
case_redis
case_image_files
case_leave_running
case_paused_leave_running
case_exec_at_checkpoint
case_tty
case_network
case_host_network
case_sysctl
case_tun
case_ipc_pid_container
case_other_container
case_stdin
finish
