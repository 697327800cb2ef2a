#!/bin/bash
# The host's reboot cycle (runtime-hook/stasis-host): one container of each engine runs at once
# (Docker, Podman, LXC, runc, containerd through ctr), each counting, every daemon our own in
# the temporary directory. `stasis-host save DIR` checkpoints them all through their engines;
# then a reboot as the engines see it: the daemons stopped, every runtime state directory (what
# /run holds on a host: containerd's state, Docker's exec root, Podman's runroot and tmpdir,
# runc's root) removed, containerd started again; Docker's daemon comes up late.
#
# host-cycle/list           `stasis-host list` names the five, and none twice (Docker's
#                           containers are containerd's (moby) and runc's too)
# host-cycle/list-podman-runc  runc's default state directory, which Podman's runc uses too: its
#                           containers are listed once, as Podman's
# host-cycle/save           with --tcp-established: every container stopped, its count still;
#                           containers.tsv lists eight saved (the five; a pair of Docker's on a
#                           network of their own, as docker compose runs an application and its
#                           server, one counting through a TCP connection to the other, which
#                           echoes, nc to nc; Podman's second holding established TCP
#                           connections); no warning
#                           (containerd's task was killed while ctr held it paused after its dump,
#                           not after ctr resumed it); /etc/criu/runc.conf, which gave Docker's
#                           runc tcp-established, as it was before
# host-cycle/save-failed    a sixth container (Podman's) that stasis refuses, holding an io_uring
#                           instance (tests/zoo/unsupported-fd.c): save names it and fd 42 and
#                           exits 1, the other eight saved; it runs on, its io_uring held
# host-cycle/save-failed-unharmed  stopped then, it checks itself: PASS
# host-cycle/save-refused   saving into the same directory again, before a revive, is refused
#                           naming the list (the saved containers would be lost)
# host-cycle/revive-partial the first revive, while no dockerd runs: Docker's three are not
#                           revived, naming the daemon (exit 1); the other five are, each
#                           counting on from its last number before the save (never from 1)
# host-cycle/revive-rest    dockerd started, revive again: Docker's count on too (the first
#                           --restart always, which stasis-host takes away until the revive:
#                           dockerd would have started it afresh; its policy back; the pair
#                           through its TCP connection between the two, held with
#                           tcp-established from runc.conf, each at its address again);
#                           the others are not touched twice; runc.conf as before again
# host-cycle/tcp-established  Podman's holding TCP connections (tests/zoo/tcp-established.c: both
#                           ends in the container, IPv4 and IPv6, data in flight both ways, a
#                           half-closed one, a listener) stopped: it checks itself, PASS
#
#   tests/e2e/host-cycle.sh    (root; needs docker.io, containerd, runc, podman, lxc, busybox)
# Not done here: a real reboot (this machine's is the CI's).
# Output: "ok"/"FAIL" lines, then "N passed, N failed".
set -u
E2E_NAME=host-cycle
# shellcheck source=e2e-lib.sh
. "$(dirname "$0")/e2e-lib.sh"
HOST=$E2E_ROOT/runtime-hook/stasis-host
LXC_NAME=stasis-hc-$$
NS=stasis-hc

c() { ctr -a "$WORK/containerd.sock" -n $NS "$@"; }
rc() { runc --root "$WORK/runc-state" "$@"; }
cleanup() {
	if [ -n "$WORK" ]; then
		pm rm -f -a >/dev/null 2>&1
		rc kill hc-runc KILL >/dev/null 2>&1
		sleep 0.2
		rc delete -f hc-runc >/dev/null 2>&1
		lxc_remove "$LXC_NAME"
		if [ -n "$CTRD_PID" ]; then
			c tasks rm -f hc-ctr >/dev/null 2>&1
			c containers rm hc-ctr >/dev/null 2>&1
		fi
	fi
	[ -n "$DOCKERD_PID" ] && { dk rm -f hc-cli hc-srv; dk network rm hc-net; } >/dev/null 2>&1
	stop_docker
	ip link del stasis-hcbr 2>/dev/null
	e2e_cleanup
}
trap cleanup EXIT

need dockerd containerd ctr runc podman lxc-create lxc-checkpoint busybox cc python3
e2e_setup
export DOCKER_HOST=unix://$WORK/docker.sock CONTAINERD_ADDRESS=$WORK/containerd.sock
# the podman stasis-host finds: ours, every state in WORK
{
	echo '#!/bin/bash'
	echo "WORK=$WORK"
	declare -f pm | sed "s|^\( *\)podman |\1$(command -v podman) |"
	echo 'pm "$@"'
} >"$WORK/bin/podman" && chmod +x "$WORK/bin/podman"
start_docker || finish
docker_import bb:latest || finish

# ---- one counting container per engine ----------------------------------------------------
# (docker-tcp: Docker's hc-cli, counting through a TCP connection to hc-srv, a server in another
# container on their network, which echoes its numbers back; its engine is docker)
COUNTERS=(docker docker-tcp podman lxc runc containerd)
declare -A NAME_OF=([docker]=hc-docker [docker-tcp]=hc-cli [podman]=hc-podman [lxc]=$LXC_NAME [runc]=hc-runc [containerd]=hc-ctr)
# counts COUNTER: its container's numbers so far
counts() {
	case $1 in
	docker) dk logs hc-docker 2>&1 | numbers /dev/stdin ;;
	docker-tcp) dk logs hc-cli 2>&1 | numbers /dev/stdin ;;
	podman) pm logs hc-podman 2>&1 | numbers /dev/stdin ;;
	lxc) numbers "$RFS/count.log" ;;
	runc) numbers "$WORK/runc-out/count" ;;
	containerd) numbers "$WORK/ctr-out/count" ;;
	esac
}
dk run -d --name hc-docker --restart always --network none bb:latest sh -c "$COUNTER" >"$WORK/docker.run" 2>&1
dk network create --subnet 10.219.0.0/24 -o com.docker.network.bridge.name=stasis-hcbr hc-net >"$WORK/docker-tcp.run" 2>&1 &&
	dk run -d --name hc-srv --network hc-net --ip 10.219.0.2 bb:latest sh -c 'nc -ll -p 7000 -e cat' >>"$WORK/docker-tcp.run" 2>&1 &&
	sleep 0.5 && dk run -d --name hc-cli --network hc-net bb:latest sh -c "{ $COUNTER; } | nc 10.219.0.2 7000" >>"$WORK/docker-tcp.run" 2>&1
if tar -C "$WORK/rootfs" -c . | pm import - bb:latest >"$WORK/podman.import" 2>&1; then
	pm run --ulimit nofile=20000:20000 --ulimit nproc=1024:1024 -d --name hc-podman --network none \
		localhost/bb:latest sh -c "$COUNTER" >"$WORK/podman.run" 2>&1
fi
if lxc_busybox "$LXC_NAME"; then
	lxc_counting 0.5
	lxc-start -n "$LXC_NAME" -d -o "$WORK/lxc.log"
fi
make_bundle "$WORK/bundle" "$WORK/runc-out" && (cd "$WORK/bundle" && rc run -d hc-runc </dev/null >/dev/null 2>&1)
mkdir -p "$WORK/ctr-out"
tar -C "$WORK/rootfs" -cf "$WORK/rootfs.tar" . && oci_archive "$WORK/rootfs.tar" "$WORK/image.tar" docker.io/library/stasis-bb:latest &&
	c images import "$WORK/image.tar" >"$WORK/ctr.import" 2>&1 &&
	c run -d --null-io --mount "type=bind,src=$WORK/ctr-out,dst=/out,options=rbind:rw" \
		docker.io/library/stasis-bb:latest hc-ctr \
		sh -c 'i=0; while true; do i=$((i+1)); echo $i >>/out/count; sleep 1; done' >"$WORK/ctr.run" 2>&1
# one that stasis refuses (tests/zoo/unsupported-fd.c: an io_uring instance a kernel thread
# polls, IORING_SETUP_SQPOLL, at fd 42)
zoo_static unsupported-fd host-cycle/start || finish
pm run --ulimit nofile=20000:20000 --ulimit nproc=1024:1024 -d --name hc-bad --network none \
	--security-opt seccomp=unconfined -e ZOO_UNSUPPORTED_KIND=io_uring \
	-v "$WORK/zoo-unsupported-fd:/zoo-unsupported-fd:ro" localhost/bb:latest /zoo-unsupported-fd >"$WORK/bad.run" 2>&1
# one holding established TCP connections over loopback, IPv4 and IPv6 (tests/zoo/tcp-established.c;
# NET_ADMIN: its SO_BUSY_POLL; Podman's: Docker disables IPv6 in its containers)
zoo_static tcp-established host-cycle/start || finish
pm run --ulimit nofile=20000:20000 --ulimit nproc=1024:1024 -d --name hc-ptcp --network none --cap-add NET_ADMIN \
	-v "$WORK/zoo-tcp-established:/zoo-tcp:ro" localhost/bb:latest /zoo-tcp >"$WORK/ptcp.run" 2>&1
tcp_ready() { pm logs hc-ptcp 2>&1 | grep -q '^READY'; }
bad_fd() { readlink "/proc/$(pm inspect -f '{{.State.Pid}}' hc-bad 2>/dev/null)/fd/42" 2>/dev/null | grep -q io_uring; }
if ! wait_for 20 bad_fd; then
	fail host-cycle/start "the unsupported-fd container holds no io_uring at fd 42" "$WORK/bad.run"
	finish
fi
if ! wait_for 20 tcp_ready; then
	fail host-cycle/start "the TCP zoo container is not ready: $(pm logs hc-ptcp 2>&1 | tail -n 1)" "$WORK/ptcp.run"
	finish
fi
for e in "${COUNTERS[@]}"; do
	wait_for 20 has_lines 2 counts "$e" && continue
	fail "host-cycle/start" "the $e container does not count" "$WORK/$e.run" "$WORK/$e.import" "$WORK/lxc.log"
	finish
done

# ---- host-cycle/list ------------------------------------------------------------------------
"$HOST" list --runc-root "$WORK/runc-state" >"$WORK/list.out" 2>&1
listed=$(grep -v '^stasis-host:' "$WORK/list.out" | awk '{print $1 " " $2}' | sort | tr '\n' ',')
want=$({ for e in "${COUNTERS[@]}"; do echo "${e%-tcp} ${NAME_OF[$e]}"; done; printf 'podman hc-bad\npodman hc-ptcp\ndocker hc-srv\n'; } | sort | tr '\n' ',')
if [ "$listed" = "$want" ]; then
	ok "host-cycle/list (the nine containers, once each)"
else
	fail host-cycle/list "stasis-host list: $listed, not $want" "$WORK/list.out"
fi

# ---- host-cycle/list-podman-runc ------------------------------------------------------------
# Podman runs runc in runc's default state directory, where `runc list` shows its containers
pid_=$(pm inspect -f '{{.Id}}' hc-podman)
"$HOST" list --engines podman,runc >"$WORK/list2.out" 2>&1
if ! runc list -q 2>/dev/null | grep -q -x "$pid_"; then
	fail host-cycle/list-podman-runc "runc list does not show Podman's container $pid_" "$WORK/list2.out"
elif grep -q "^runc $pid_" "$WORK/list2.out" || ! grep -q "^podman hc-podman" "$WORK/list2.out"; then
	fail host-cycle/list-podman-runc "Podman's container is not listed once, as Podman's" "$WORK/list2.out"
else
	ok "host-cycle/list-podman-runc (runc's own list shows it too)"
fi

# ---- host-cycle/save ------------------------------------------------------------------------
D=$WORK/host
declare -A LAST N
# runc_conf: /etc/criu (there or not), its runc.conf as it is, and any file stasis-host keeps
# beside it
runc_conf() { { ls -d /etc/criu; md5sum /etc/criu/runc.conf*; } 2>&1; }
CONF_BEFORE=$(runc_conf)
timed T_SAVE "$HOST" save "$D" --runc-root "$WORK/runc-state" --tcp-established >"$WORK/save.out" 2>&1
save_rc=$?
sleep 1.5
still=""
for e in "${COUNTERS[@]}"; do
	counts "$e" >"$WORK/$e.before"
	N[$e]=$(wc -l <"$WORK/$e.before")
	LAST[$e]=$(tail -n 1 "$WORK/$e.before")
done
sleep 1.5
for e in "${COUNTERS[@]}"; do
	[ "$(counts "$e" | wc -l)" = "${N[$e]}" ] || still+=" $e"
done
saved=$(grep -c -P '\tsaved$' "$D/containers.tsv" 2>/dev/null)
if [ "$save_rc" -ne 1 ] || [ -n "$still" ] || [ "$saved" != 8 ] || grep -q warning "$WORK/save.out"; then
	fail host-cycle/save "stasis-host save: exit $save_rc (1 wanted: hc-bad), still counting:${still:- none}, $saved saved (or a warning)" \
		"$WORK/save.out" "$D/containers.tsv"
	finish
fi
if [ "$(runc_conf)" != "$CONF_BEFORE" ]; then
	fail host-cycle/save "runc.conf not as before the save: $(runc_conf | tr '\n' ' ')"
	finish
fi
ok "host-cycle/save (8 containers in $T_SAVE ms: $(grep -o '^[a-z]* [^:]*: saved in [0-9.]* s' "$WORK/save.out" | sed 's/: saved in/:/' | tr '\n' ',' | sed 's/,$//'))"

# ---- host-cycle/save-failed -----------------------------------------------------------------
if ! grep -q "^podman hc-bad: not saved: .*fd 42" "$WORK/save.out" || ! bad_fd ||
	[ "$(pm inspect -f '{{.State.Running}}' hc-bad)" != true ] || ! grep -q -P '\thc-bad\t.*\tfailed-save$' "$D/containers.tsv"; then
	fail host-cycle/save-failed "hc-bad: not named as refused (fd 42) or not running on with it" "$WORK/save.out" "$D/containers.tsv"
else
	ok "host-cycle/save-failed ($(grep "^podman hc-bad:" "$WORK/save.out" | cut -c1-160)...; it runs on)"
fi

# ---- host-cycle/save-refused ----------------------------------------------------------------
"$HOST" save "$D" --runc-root "$WORK/runc-state" >"$WORK/save2.out" 2>&1
rc2=$?
if [ $rc2 -eq 2 ] && grep -q "saved and not revived yet" "$WORK/save2.out" && [ "$(grep -c -P '\tsaved$' "$D/containers.tsv")" = 8 ]; then
	ok "host-cycle/save-refused"
else
	fail host-cycle/save-refused "a second save into $D: exit $rc2" "$WORK/save2.out" "$D/containers.tsv"
fi

# hc-bad, refused, was left running: SIGTERM, its own checks
pm stop -t 20 hc-bad >/dev/null 2>&1
if pm logs hc-bad 2>&1 | grep -q '^PASS'; then
	ok "host-cycle/save-failed-unharmed (hc-bad checked itself after the refused save: PASS)"
else
	fail host-cycle/save-failed-unharmed "hc-bad did not PASS after the refused save: $(pm logs hc-bad 2>&1 | tail -n 1)"
fi

# ---- the reboot, as the engines see it ------------------------------------------------------
stop_pid "$DOCKERD_PID"
DOCKERD_PID=""
stop_containerd
for d in docker-exec containerd-state run tmp runc-state; do
	for m in $(awk -v w="$WORK/$d/" 'index($5, w) == 1 {print $5}' /proc/self/mountinfo | sort -r); do umount -l "$m"; done
	rm -rf "${WORK:?}/$d"
done
start_containerd || finish

# went_on ENGINE: its count goes on from the last number before the save
went_on() {
	local e=$1 first
	wait_for 20 has_lines $((N[$e] + 2)) counts "$e" || { echo "$e: no new count"; return 1; }
	first=$(counts "$e" | sed -n "$((N[$e] + 1))p")
	[ "$first" = $((LAST[$e] + 1)) ] || { echo "$e: stopped at ${LAST[$e]}, went on from $first"; return 1; }
}

# ---- host-cycle/revive-partial --------------------------------------------------------------
timed T_REV1 "$HOST" revive "$D" --runc-root "$WORK/runc-state" >"$WORK/revive1.out" 2>&1
rev_rc=$?
why=""
for e in podman lxc runc containerd; do why+=$(went_on "$e") || why+=" "; done
if [ $rev_rc -ne 1 ] || [ "$(grep -c "^docker hc-[a-z]*: not revived: no Docker daemon answers" "$WORK/revive1.out")" != 3 ] ||
	[ "$(grep -c -P '\trevived$' "$D/containers.tsv")" != 5 ] || [ -n "$why" ]; then
	fail host-cycle/revive-partial "exit $rev_rc (1 wanted); ${why:-the counts went on}" "$WORK/revive1.out" "$D/containers.tsv"
else
	ok "host-cycle/revive-partial (5 containers in $T_REV1 ms, each counting on: $(for e in podman lxc runc containerd; do printf '%s %s->%s ' "$e" "${LAST[$e]}" "$((LAST[$e] + 1))"; done | sed 's/ $//'); docker named as waiting for its daemon)"
fi

# ---- host-cycle/revive-rest -----------------------------------------------------------------
start_dockerd || finish
timed T_REV2 "$HOST" revive "$D" --runc-root "$WORK/runc-state" >"$WORK/revive2.out" 2>&1
rev_rc=$?
why=$(went_on docker)$(went_on docker-tcp)
policy=$(dk inspect -f '{{.HostConfig.RestartPolicy.Name}}' hc-docker)
[ "$policy" = always ] || why+=" its restart policy is ${policy:-none}, not always again"
[ "$(runc_conf)" = "$CONF_BEFORE" ] || why+=" runc.conf not as before the revive: $(runc_conf | tr '\n' ' ')"
if [ $rev_rc -ne 0 ] || [ -n "$why" ] || [ "$(grep -c -P '\trevived$' "$D/containers.tsv")" != 8 ] ||
	[ "$(grep -c '^[a-z]* [^:]*: revived' "$WORK/revive2.out")" != 3 ]; then
	fail host-cycle/revive-rest "exit $rev_rc; ${why:-the count went on}" "$WORK/revive2.out" "$D/containers.tsv" "$WORK/dockerd.log"
else
	ok "host-cycle/revive-rest (3 docker containers in $T_REV2 ms: ${LAST[docker]}->$((LAST[docker] + 1)), the pair through TCP ${LAST[docker-tcp]}->$((LAST[docker-tcp] + 1)))"
fi

# ---- host-cycle/tcp-established -------------------------------------------------------------
pm stop -t 20 hc-ptcp >/dev/null 2>&1
pv=$(pm logs hc-ptcp 2>&1 | grep -E '^(PASS|FAIL)' | tail -n 1)
if [[ $pv == PASS* ]]; then
	ok "host-cycle/tcp-established (Podman's hc-ptcp, stopped after its revive: $pv)"
else
	fail host-cycle/tcp-established "podman hc-ptcp: ${pv:-no verdict}"
fi
finish
