#!/bin/bash
# End to end with Debian's LXC: a busybox container whose init is a shell counting in memory
# (each tick appended to /count.log in its root file system) is checkpointed with
# `lxc-checkpoint -s` and restored with `lxc-checkpoint -r`, stasis being the `criu` LXC finds
# on PATH. The count must go on from where it stopped: the first tick after the restore is the
# last one before the dump plus one, never 1 again. The first checkpoint starts while an
# lxc-attach runs in the container for 0.3 s (as a health check gets in): the dump waits for it,
# the container running on meanwhile, and its log says so. Twice: as LXC makes it, then with
# lxc.idmap (the container in a user namespace of its own, root being host uid 100000, its root
# file system chowned to match), where the restored init must be LXC's child again (LXC takes
# its first child for the container's init).
#
#   tests/e2e/lxc.sh        (root; needs lxc and busybox: make setup installs them)
# Output: "ok ..." / "FAIL ...: reason" lines, then "N passed, N failed". The container, its
# images and the PATH directory are removed at the end, whatever happens.
set -u
E2E_NAME=lxc
# shellcheck source=e2e-lib.sh
. "$(dirname "$0")/e2e-lib.sh"
NAME=stasis-e2e-$$
SUBIDS=root:100000:65536 # LXC maps ids with newuidmap when it is installed: it checks these

cleanup() {
	local c f
	for c in "$NAME" "$NAME-idmap"; do lxc_remove "$c"; done
	for f in /etc/subuid /etc/subgid; do
		[ -e "$WORK/added-${f##*/}" ] && sed -i "/^$SUBIDS\$/d" "$f"
	done
	e2e_cleanup
}
trap cleanup EXIT

need lxc-create lxc-checkpoint busybox lsns
e2e_setup

# cycle TAG CONTAINER [IDMAP]: the container made, started counting, checkpointed, restored.
# IDMAP ("0 100000 65536"): its lxc.idmap for uids and gids.
cycle() {
	local tag=$1 name=$2 idmap=${3:-} img=$WORK/img-$1
	local logs=("$img/dump.log" "$img/restore.log" "$WORK/lxc.log") f
	mkdir -p "$img"
	if ! lxc_busybox "$name"; then
		fail "$tag/create" "lxc-create failed" "${logs[@]}"
		return
	fi
	lxc_counting 0.2
	if [ -n "$idmap" ]; then
		printf 'lxc.idmap = u %s\nlxc.idmap = g %s\n' "$idmap" "$idmap" >>"$CONF"
		for f in /etc/subuid /etc/subgid; do
			grep -qx "$SUBIDS" "$f" 2>/dev/null || { echo "$SUBIDS" >>"$f" && touch "$WORK/added-${f##*/}"; }
		done
		set -- $idmap
		chown -R -h "$2:$2" "$RFS"
		chmod o+x "${RFS%/rootfs}" # (made 0770)
	fi

	if ! lxc-start -n "$name" -d -l DEBUG -o "$WORK/lxc.log" || ! sleep 1.5 || ! counting; then
		fail "$tag/start" "the container does not count (last: $(last))" "${logs[@]}"
		return
	fi
	ok "$tag/start (counting: $(last))"

	# the first: an lxc-attach (a health check's way in) running as the checkpoint starts,
	# which it waits for
	local attach="" waited=""
	if [ "$tag" = lxc ]; then
		lxc-attach -n "$name" -- /bin/sleep 0.3 &
		attach=$!
		sleep 0.1
	fi
	if ! lxc-checkpoint -n "$name" -D "$img" -s -l DEBUG -o "$WORK/lxc.log"; then
		fail "$tag/checkpoint" "lxc-checkpoint -s failed" "${logs[@]}"
		return
	elif lxc-info -n "$name" 2>/dev/null | grep -q RUNNING; then
		fail "$tag/checkpoint" "the container still runs after lxc-checkpoint -s" "${logs[@]}"
		return
	fi
	if [ -n "$attach" ]; then
		wait "$attach"
		waited=$(grep -a -c "joined the tree's PID namespace from outside" "$img/dump.log")
		if [ "$waited" = 0 ]; then
			fail "$tag/checkpoint" "the dump did not wait for the lxc-attach running (its log names no process that joined)" "${logs[@]}"
			return
		fi
		waited=", an lxc-attach waited for ($waited seizes)"
	fi
	local before n_before next now
	before=$(last)
	n_before=$(wc -l <"$RFS/count.log")
	sleep 0.5
	ok "$tag/checkpoint (stopped at $before$waited)"
	if ! lxc-checkpoint -n "$name" -D "$img" -r -l DEBUG -o "$WORK/lxc.log"; then
		fail "$tag/restore" "lxc-checkpoint -r failed" "${logs[@]}"
		return
	fi
	sleep 1.5
	next=$(sed -n "$((n_before + 1))p" "$RFS/count.log")
	now=$(last)
	if ! lxc-info -n "$name" 2>/dev/null | grep -q RUNNING; then
		fail "$tag/restore" "the container is not running after lxc-checkpoint -r" "${logs[@]}"
	elif [ "$next" != $((before + 1)) ] || [ "$now" -le "$before" ]; then
		fail "$tag/restore" "the count did not go on: stopped at $before, then $next ... $now" "${logs[@]}"
	elif [ -n "$idmap" ] && ! owned_by_userns "$(lxc-info -n "$name" -p -H)"; then
		fail "$tag/restore" "the init's PID or UTS namespace is not owned by its user namespace: $OWNERS" "${logs[@]}"
	else
		ok "$tag/restore (the count went on: $before, then $next ... $now)"
	fi
	lxc-stop -n "$name" -k >/dev/null 2>&1
}
# owned_by_userns PID: PID's PID and UTS namespaces belong to its user namespace (OWNERS: what
# was seen)
owned_by_userns() {
	local user t owner
	user=$(stat -L -c %i "/proc/$1/ns/user" 2>/dev/null) || return 1
	OWNERS="user $user"
	for t in pid uts; do
		owner=$(lsns -n -o ONS -t $t -p "$1" 2>/dev/null)
		OWNERS="$OWNERS, $t owned by $owner"
		[ "$owner" = "$user" ] || return 1
	done
}
last() { tail -n 1 "$RFS/count.log" 2>/dev/null; }
counting() { [ "$(last)" -ge 3 ] 2>/dev/null; }

cycle lxc "$NAME"
cycle lxc-idmap "$NAME-idmap" "0 100000 65536"
finish
