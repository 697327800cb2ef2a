#!/bin/bash
# Cgroups and the cgroup freezer, with real cgroups this script makes (and removes, also those a
# restore makes). Targets: the zoo's tree (a root with live children, a stopped one, a zombie;
# its children moved to a sub-cgroup), mem-anon, fork-churn (forks all the time).
#
#   v1/soft-made          tree in memory:/T (limit 64M, soft limit 32M, swappiness 30),
#                         pids:/T (pids.max 50), cpu:/T (shares 512, quota 50 ms of 100 ms) and
#                         devices:/T (only /dev/null and /dev/zero), its children in
#                         memory:/T/sub (limit 16M); dumped without options, cgroups removed,
#                         restored: every process is in its cgroups again, each limit is back;
#                         then the tree PASSes
#   v1/soft-existing      the same, the cgroups left there with other limits: the processes go
#                         back into them, the limits are left alone (soft)
#   v1/full-existing      --manage-cgroups=full: the existing cgroups get the saved limits
#   v1/props-existing     --manage-cgroups=props: the same
#   v1/none-existing      --manage-cgroups=none: into the existing cgroups, limits left alone
#   v1/none-missing, v1/props-missing
#                         cgroups removed: the restore refuses naming memory:/T or pids:/T,
#                         nothing runs, no cgroup is made
#   v1/strict-existing    --manage-cgroups=strict: refused naming an existing cgroup, nothing
#                         runs, memory:/T's limit untouched
#   v1/strict-made        --manage-cgroups=strict, cgroups removed: made with their limits
#   v1/cgroup-root        restored with --cgroup-root /U: the tree in /U of each of those
#                         hierarchies and in memory:/U/sub, with the saved limits; /T not made
#   v1/ignore             dumped normally, restored with --manage-cgroups=ignore: every process
#                         in the restoring stasis's cgroups, memory:/T not made
#   v1/failed-restore     STASIS_FAULT=restore-child, memory:/T removed, pids:/T left there:
#                         the restore fails, memory:/T and /T/sub (which it made) are gone again,
#                         pids:/T is still there with its pids.max, nothing runs
#   v1/killed-restore     the same with stasis SIGKILLed once the root is made
#                         (STASIS_FAULT=kill-at:restore-root:1): its watchdog kills the new
#                         processes and removes memory:/T and /T/sub, pids:/T stays, nothing
#                         runs
#   v2/made               mem-anon in /T2 of a cgroup2 mount this script makes, which also has
#                         an empty /T2/sub (cgroup.max.descendants 3, cgroup.max.depth 2; the
#                         hugetlb controller, the one this machine leaves to v2, enabled for
#                         /T2: hugetlb.2MB.max 4 MiB, hugetlb.2MB.rsvd.max 2 MiB); dumped,
#                         removed, restored: in /T2 again, both made with their limits
#   threads/v1-v2         threads (64 threads) in cpu:/TT and the v2 /T3; thread A moved to
#                         cpu:/TT/a and to /T3/a (cgroup.type threaded), thread B to cpu:/TT/b
#                         only: dumped, cgroups removed, restored: every thread in its cgroups
#                         again (/T3/a made threaded), then the program PASSes
#   freezer/v1            fork-churn in freezer:/F, dumped with --freeze-cgroup: the dump
#                         passes, freezer.state is THAWED, the restored tree PASSes
#   freezer/v1-fault      the same with STASIS_FAULT=after-collect: the dump fails, the cgroup
#                         is THAWED, the tree runs untraced and PASSes
#   freezer/v1-stopped    tree (one child stopped by SIGSTOP) in freezer:/F: dumped without the
#                         seizing watchdog firing, restored, PASSes (the child still stopped)
#   freezer/v1-vfork      vfork-exec in freezer:/F: the freezer catches a child of vfork() before
#                         its exec (its parent cannot stop until then): the dump lets the child
#                         exec (its log says so), the restored tree PASSes
#   freezer/v2            fork-churn in /F2 of the cgroup2 mount: dump, cgroup.freeze 0, PASS
#   freezer/v1-paused, freezer/v2-paused
#                         a cgroup frozen before the dump (a paused container: docker
#                         checkpoint --leave-running of a paused one, containerd's checkpoint,
#                         which pauses first) dumped with --leave-running --freeze-cgroup: frozen
#                         after it, and tests/tools/spin-count in it, which counts into a file
#                         all the time, did not count once meanwhile, neither during a
#                         pre-dump that fails with its threads held (STASIS_FAULT=
#                         pre-dump-armed), nor during a pre-dump before the dump; a pre-dump
#                         and a dump killed while they hold its threads (kill-at:pre-dump-armed,
#                         kill-at:after-seize): frozen again by the guardian, not counting (with --prev-images-dir: pages kept in it),
#                         which holds the threads while it arms their tracking and freezes the
#                         cgroup again before it lets them go; thawed, it counts on; killed, its
#                         images restore and count on
#   freezer/v1-paused-exec-waited, freezer/v1-paused-exec
#                         a paused container with an exec in it: tests/tools/spin-count as the
#                         init of a PID namespace of its own in freezer:/F, and a process that
#                         joined that namespace and cgroup from outside (nsenter: sleep 0.3,
#                         or sleep 1000), the cgroup frozen, dumped with --leave-running
#                         --freeze-cgroup. The dump holds the tree and lets the stranger alone
#                         go on: the short one ends and the dump passes (its log names it); the
#                         one that stays is refused by name. Either way the cgroup is frozen
#                         after it and spin-count did not count once meanwhile
#   freezer/not-a-cgroup  --freeze-cgroup of a plain directory: refused naming it, the target
#                         PASSes
#   freezer/timeout       mem-anon in a frozen cgroup dumped without --freeze-cgroup, with
#                         --timeout 2: it cannot stop; refused naming it and the 2000 ms, the
#                         target (thawed) PASSes
#
#   tests/cgroup-cases.sh [--keep]
# Output: one line per case, then "N passed, N failed"; exit status non-zero on failure.

# shellcheck source-path=SCRIPTDIR
set -u
# shellcheck source=zoo/lib.sh
. "$(dirname "$0")/zoo/lib.sh"

zoo_common_options "$@"

V1=/sys/fs/cgroup
TAG=stasis-cg-$$
CG_MADE=() # cgroups to remove at the end, parents before children
CG2=""     # our cgroup2 mount
HUGETLB_ENABLED="" # we enabled hugetlb in its root's cgroup.subtree_control

# cg_rmdir DIR: remove it once the processes killed in it have left (5 s at most)
cg_rmdir() {
	local n=100
	[ -d "$1" ] || return 0
	while ! rmdir "$1" 2>/dev/null && [ $n -gt 0 ]; do
		sleep 0.05
		n=$((n - 1))
	done
	[ ! -d "$1" ]
}

cg_cleanup() {
	local i d p
	for ((i = ${#CG_MADE[@]} - 1; i >= 0; i--)); do
		d=${CG_MADE[i]}
		[ -d "$d" ] || continue
		set_frozen "$d" 0 2>/dev/null
		for p in $(cat "$d/cgroup.procs" 2>/dev/null); do
			kill_ours "$p"
		done
		cg_rmdir "$d" || echo "# could not remove cgroup $d" >&2
	done
	[ -n "$HUGETLB_ENABLED" ] && echo -hugetlb >"$CG2/cgroup.subtree_control"
	[ -n "$CG2" ] && { umount "$CG2" 2>/dev/null || umount -l "$CG2"; }
	zoo_cleanup
}

# cg_new DIR [FILE=VALUE...]: make a cgroup (removed at the end) and set its files
cg_new() {
	local d=$1 kv
	shift
	mkdir -p "$d" || return 1
	CG_MADE+=("$d")
	for kv in "$@"; do
		echo "${kv#*=}" >"$d/${kv%%=*}" || return 1
	done
}

# tree_pids ROOT: ROOT and every live descendant
tree_pids() {
	local p=$1 c
	echo "$p"
	for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do
		[ "$(proc_state "$c")" = Z ] || tree_pids "$c"
	done
}

# cg_of PID CONTROLLERS: its cgroup in that hierarchy ("" for v2)
cg_of() { awk -F: -v c="$2" '$2 == c { print $3 }' "/proc/$1/cgroup" 2>/dev/null; }

# membership PID...: "pid memory-cgroup pids-cgroup v2-cgroup" per process
membership() {
	local p
	for p in "$@"; do
		echo "$p $(cg_of "$p" memory) $(cg_of "$p" pids) $(cg_of "$p" cpu) $(cg_of "$p" devices)" \
			"$(cg_of "$p" '')"
	done
}

# value FILE: its first line
value() { head -n1 "$1" 2>/dev/null; }

# expect_values CASE FILE=VALUE...: each file holds that value (else the case fails, 1)
expect_values() {
	local label=$1 kv f want got
	shift
	for kv in "$@"; do
		f=${kv%%=*} want=${kv#*=}
		got=$(value "$f")
		if [ "$got" != "$want" ]; then
			result_fail "$label" "${f#"$V1"/} is '$got', expected '$want'"
			return 1
		fi
	done
}

# restore_refused CASE DIR REGEX: the restore of the tree failed cleanly naming REGEX, and no
# process of the tree runs
restore_refused() {
	local label=$1 d=$2 re=$3 p
	if ! clean_failure "$ZRC"; then
		result_fail "$label" "restore exit status $ZRC (expected a refusal)"
		show_tail "$d/restore.out" "$d/img/restore.log"
		kill_tree
		return 1
	fi
	if ! mentions "$d/restore.out" "$d/img/restore.log" "$re"; then
		result_fail "$label" "the error does not match '$re'"
		show_tail "$d/restore.out" "$d/img/restore.log"
		return 1
	fi
	for p in $(echo "$TREE_BEFORE" | cut -d' ' -f1); do
		if proc_alive "$p"; then
			result_fail "$label" "pid $p runs after the failed restore"
			kill_tree
			return 1
		fi
	done
}

# restore_tree DIR [OPTIONS...]: restore DIR/img detached (output DIR/restore.out); a pid of the
# tree that another process took meanwhile (others fork a lot: pids wrap around quickly here)
# is waited out twice
restore_tree() {
	local d=$1
	shift
	for _ in 1 2 3; do
		run_stasis "$d/restore.out" 60 restore -D "$d/img" -d -o restore.log -v4 "$@"
		mentions "$d/restore.out" "that pid is taken" || break
		sleep 1
	done
}

# kill_tree: SIGKILL every process of the restored tree (a failed case), wait until gone
kill_tree() {
	local p
	for p in $(echo "$TREE_BEFORE" | cut -d' ' -f1); do
		kill_ours "$p"
	done
	for p in $(echo "$TREE_BEFORE" | cut -d' ' -f1); do
		wait_until 10 not_alive "$p"
	done
}

# ---------------------------------------------------------------------------------------
# The v1 tree: memory:/T (+ /T/sub for the root's children) and pids:/T, dumped once; each
# case copies the images. Sets TREE_PID, TREE_OUT (its stdout) and TREE_BEFORE (membership at
# dump time).
MEM=$V1/memory/$TAG PIDS=$V1/pids/$TAG CPU=$V1/cpu/$TAG DEV=$V1/devices/$TAG
T_LIMITS=(memory.limit_in_bytes=67108864 memory.soft_limit_in_bytes=33554432 memory.swappiness=30)
T_CPU=(cpu.shares=512 cpu.cfs_period_us=100000 cpu.cfs_quota_us=50000)
T_DEVICES="c 1:3 rwm;c 1:5 rwm;" # /dev/null and /dev/zero only

tree_cgroups_make() {
	cg_new "$MEM/T" "${T_LIMITS[@]}" && cg_new "$MEM/T/sub" memory.limit_in_bytes=16777216 &&
		cg_new "$PIDS/T" pids.max=50 && cg_new "$CPU/T" "${T_CPU[@]}" &&
		cg_new "$DEV/T" "devices.deny=a" "devices.allow=c 1:3 rwm" "devices.allow=c 1:5 rwm"
}

tree_cgroups_remove() {
	cg_rmdir "$MEM/T/sub" && cg_rmdir "$MEM/T" && cg_rmdir "$PIDS/T" && cg_rmdir "$CPU/T" &&
		cg_rmdir "$DEV/T"
}

# expect_tree_limits CASE [T]: the limits the tree's cgroups had at dump, in /T (or /U)
expect_tree_limits() {
	local t=${2:-T} devices
	devices=$(tr '\n' ';' <"$DEV/$t/devices.list")
	if [ "$devices" != "$T_DEVICES" ]; then
		result_fail "$1" "devices:/$t allows '$devices', expected '$T_DEVICES'"
		return 1
	fi
	expect_values "$1" "$MEM/$t/${T_LIMITS[0]}" "$MEM/$t/${T_LIMITS[1]}" "$MEM/$t/${T_LIMITS[2]}" \
		"$MEM/$t/sub/memory.limit_in_bytes=16777216" "$PIDS/$t/pids.max=50" "$CPU/$t/${T_CPU[0]}" \
		"$CPU/$t/${T_CPU[2]}"
}

dump_tree() {
	local d=$ZOO_TMP/v1-tree c
	TREE_PID=""
	mkdir -p "$d/img"
	if ! tree_cgroups_make; then
		result_fail v1/dump "cannot make the test's cgroups"
		return 1
	fi
	if ! ZOO_CGROUPS="$MEM/T $PIDS/T $CPU/T $DEV/T" zoo_start tree "$d"; then
		result_fail v1/dump "$ZERR"
		return 1
	fi
	TREE_PID=$ZPID TREE_OUT=$d/out
	for c in $(cat /proc/"$ZPID"/task/*/children); do
		[ "$(proc_state "$c")" = Z ] || echo "$c" >"$MEM/T/sub/cgroup.procs"
	done
	# shellcheck disable=SC2046
	TREE_BEFORE=$(membership $(tree_pids "$ZPID"))
	run_stasis "$d/dump.out" 60 dump -t "$ZPID" -D "$d/img" -o dump.log -v4
	if [ "$ZRC" -ne 0 ]; then
		result_fail v1/dump "dump exit status $ZRC"
		show_tail "$d/dump.out" "$d/img/dump.log"
		kill_ours "$ZPID"
		return 1
	fi
	wait_until 10 not_alive "$ZPID"
	result_ok v1/dump
}

# v1_case CASE SETUP [RESTORE OPTIONS...]: SETUP is "made" (cgroups removed) or "existing"
# (there, with limit 128M and pids.max 7). Restores the tree's images.
v1_case() {
	local label=$1 setup=$2 d=$ZOO_TMP/$1
	shift 2
	mkdir -p "$d"
	rm -rf "$d/img"
	cp -a "$ZOO_TMP/v1-tree/img" "$d/img"
	printf 'READY\n' >"$TREE_OUT" # the tree writes its verdict there again (same offset)
	case $setup in
	made) tree_cgroups_remove ;;
	existing)
		tree_cgroups_make
		echo 134217728 >"$MEM/T/memory.limit_in_bytes"
		echo 7 >"$PIDS/T/pids.max"
		;;
	esac
	restore_tree "$d" "$@"
	if [ "$ZRC" -ne 0 ]; then
		result_fail "$label" "restore exit status $ZRC"
		show_tail "$d/restore.out" "$d/img/restore.log"
		return 1
	fi
	track_pid "$TREE_PID"
	RESTORED=$d
}

# v1_finish CASE [WANT]: the restored tree is in its cgroups as at dump (or as WANT says), then
# SIGTERM: it PASSes
v1_finish() {
	local label=$1 want=${2:-$TREE_BEFORE} now
	# shellcheck disable=SC2046
	now=$(membership $(echo "$TREE_BEFORE" | cut -d' ' -f1))
	if [ "$now" != "$want" ]; then
		now=$(echo "$now" | tr '\n' ';') want=$(echo "$want" | tr '\n' ';')
		result_fail "$label" "cgroups after restore: $now expected $want"
		kill_tree
		return 1
	fi
	if ! zoo_stop "$TREE_PID" "$RESTORED" "$TREE_OUT"; then
		result_fail "$label" "$ZERR"
		return 1
	fi
	if [[ $ZVERDICT != PASS* ]]; then
		result_fail "$label" "the tree's own checks: $ZVERDICT"
		return 1
	fi
	wait_until 10 not_alive "$TREE_PID"
	result_ok "$label"
}

expect_limits_kept() {
	expect_values "$1" "$MEM/T/memory.limit_in_bytes=134217728" "$PIDS/T/pids.max=7"
}

# v1_run CASE SETUP CHECK [RESTORE OPTIONS...]: v1_case, then CHECK CASE (the limits), v1_finish
v1_run() {
	local label=$1 setup=$2 check=$3
	shift 3
	v1_case "$label" "$setup" "$@" || return
	if ! $check "$label"; then
		kill_tree
		return
	fi
	v1_finish "$label"
}

case_v1_restores() {
	v1_run v1/soft-made made expect_tree_limits
	v1_run v1/soft-existing existing expect_limits_kept
	v1_run v1/full-existing existing expect_tree_limits --manage-cgroups=full
	v1_run v1/props-existing existing expect_tree_limits --manage-cgroups=props
	v1_run v1/none-existing existing expect_limits_kept --manage-cgroups=none
	v1_run v1/strict-made made expect_tree_limits --manage-cgroups=strict
	CG_MADE+=("$MEM/U" "$MEM/U/sub" "$PIDS/U" "$CPU/U" "$DEV/U")
	if v1_case v1/cgroup-root made --cgroup-root "/$TAG/U"; then
		if [ -d "$MEM/T" ]; then
			result_fail v1/cgroup-root "memory:/T was made too"
			kill_tree
		elif expect_tree_limits v1/cgroup-root U; then
			v1_finish v1/cgroup-root "${TREE_BEFORE//\/$TAG\/T//$TAG/U}"
		else
			kill_tree
		fi
	fi
	cg_rmdir "$MEM/U/sub" && cg_rmdir "$MEM/U" && cg_rmdir "$PIDS/U" && cg_rmdir "$CPU/U" &&
		cg_rmdir "$DEV/U"
	if v1_case v1/ignore made --manage-cgroups=ignore; then
		if [ -d "$MEM/T" ]; then
			result_fail v1/ignore "memory:/T was made"
			kill_tree
		else
			# shellcheck disable=SC2046
			v1_finish v1/ignore "$(for p in $(echo "$TREE_BEFORE" | cut -d' ' -f1); do
				echo "$p $(cg_of $$ memory) $(cg_of $$ pids) $(cg_of $$ cpu) $(cg_of $$ devices)" \
					"$(cg_of $$ '')"
			done)"
		fi
	fi
}

# refused CASE SETUP REGEX OPTIONS...: the restore must fail naming REGEX and leave no process
v1_refused() {
	local label=$1 setup=$2 re=$3 d=$ZOO_TMP/$1
	shift 3
	mkdir -p "$d"
	rm -rf "$d/img"
	cp -a "$ZOO_TMP/v1-tree/img" "$d/img"
	if [ "$setup" = made ]; then tree_cgroups_remove; else tree_cgroups_make; fi
	restore_tree "$d" "$@"
	restore_refused "$label" "$d" "$re" || return 1
	if [ "$setup" = made ] && [ -d "$MEM/T" ]; then
		result_fail "$label" "memory:/T was made by the refused restore"
		return 1
	fi
	if [ "$setup" != made ] && ! expect_values "$label" "$MEM/T/memory.limit_in_bytes=67108864"; then
		return 1
	fi
	result_ok "$label"
}

case_v1_refusals() {
	local t="[a-z]+:/$TAG/T"
	v1_refused v1/none-missing made "$t does not exist.*none" --manage-cgroups=none
	v1_refused v1/props-missing made "$t does not exist.*props" --manage-cgroups=props
	v1_refused v1/strict-existing existing "$t exists.*strict" --manage-cgroups=strict
}

# images_memory_missing DIR: the tree's images in DIR/img; its cgroups there but memory:/T and
# /T/sub (pids:/T with pids.max 9)
images_memory_missing() {
	mkdir -p "$1"
	cp -a "$ZOO_TMP/v1-tree/img" "$1/img"
	tree_cgroups_make
	echo 9 >"$PIDS/T/pids.max"
	cg_rmdir "$MEM/T/sub" && cg_rmdir "$MEM/T"
}

# made_ones_gone LABEL WHY: after a restore that failed, memory:/T and /T/sub (which it made) are
# gone (else WHY), pids:/T (which was there) is not, with its limit
made_ones_gone() {
	if [ -d "$MEM/T/sub" ] || [ -d "$MEM/T" ]; then
		result_fail "$1" "$2"
	elif ! [ -d "$PIDS/T" ] || ! expect_values "$1" "$PIDS/T/pids.max=9"; then
		[ -d "$PIDS/T" ] || result_fail "$1" "pids:/T, which was there before, is gone"
	else
		result_ok "$1"
	fi
}

case_v1_failed_restore() {
	local label=v1/failed-restore d=$ZOO_TMP/v1-failed
	images_memory_missing "$d"
	STASIS_FAULT=restore-child restore_tree "$d"
	restore_refused "$label" "$d" "injected failure restore-child" || return
	made_ones_gone $label "the cgroups the restore made are still there"
}

# stasis killed mid-restore: what it made goes with its watchdog
case_v1_killed_restore() {
	local label=v1/killed-restore d=$ZOO_TMP/v1-killed n=0 p
	images_memory_missing "$d"
	STASIS_FAULT=kill-at:restore-root:1 restore_tree "$d"
	if [ "$ZRC" != 137 ]; then
		result_fail $label "stasis exit status $ZRC (expected its SIGKILL at restore-root: 137)"
		show_tail "$d/restore.out" "$d/img/restore.log"
		kill_tree
		return
	fi
	# the watchdog kills the processes, then removes the cgroups once they are empty
	while { [ -d "$MEM/T" ] || pgrep -x stasis-watch >/dev/null; } && [ $n -lt 100 ]; do
		sleep 0.1
		n=$((n + 1))
	done
	for p in $(echo "$TREE_BEFORE" | cut -d' ' -f1); do
		if proc_alive "$p"; then
			result_fail $label "pid $p runs after stasis was killed mid-restore"
			kill_tree
			return
		fi
	done
	made_ones_gone $label "the cgroups the killed restore made are still there after 10 s"
}

# ---------------------------------------------------------------------------------------
# stop_passes LABEL PID DIR: PID (its output DIR/out) stopped with SIGTERM PASSes
stop_passes() {
	if zoo_stop "$2" "$3" "$3/out" && [[ $ZVERDICT == PASS* ]]; then
		result_ok "$1"
	else
		result_fail "$1" "${ZERR:-$ZVERDICT}"
	fi
}

# dump_remove_restore LABEL PID DIR CGROUP...: PID dumped into DIR/img (it is then gone), the
# cgroups removed in that order, the images restored; else says why, returns 1
dump_remove_restore() {
	local label=$1 pid=$2 d=$3 cg
	shift 3
	run_stasis "$d/dump.out" 60 dump -t "$pid" -D "$d/img" -o dump.log -v4
	if [ "$ZRC" -ne 0 ]; then
		result_fail "$label" "dump exit status $ZRC"
		show_tail "$d/dump.out" "$d/img/dump.log"
		kill_ours "$pid"
		return 1
	fi
	wait_until 10 not_alive "$pid"
	for cg in "$@"; do
		cg_rmdir "$cg" || break
	done
	restore_tree "$d"
	if [ "$ZRC" -ne 0 ]; then
		result_fail "$label" "restore exit status $ZRC"
		show_tail "$d/restore.out" "$d/img/restore.log"
		return 1
	fi
}

case_v2() {
	local label=v2/made d=$ZOO_TMP/v2 pid before
	mkdir -p "$d/img"
	if ! cg_new "$CG2/$TAG/T2" cgroup.max.descendants=3 hugetlb.2MB.max=4194304 \
		hugetlb.2MB.rsvd.max=2097152 || ! cg_new "$CG2/$TAG/T2/sub" cgroup.max.depth=2; then
		result_fail $label "cannot make the test's v2 cgroups"
		return
	fi
	if ! ZOO_CGROUPS="$CG2/$TAG/T2" zoo_start mem-anon "$d"; then
		result_fail $label "$ZERR"
		return
	fi
	pid=$ZPID before=$(cg_of "$pid" '')
	dump_remove_restore $label "$pid" "$d" "$CG2/$TAG/T2/sub" "$CG2/$TAG/T2" || return
	if [ "$(cg_of "$pid" '')" != "$before" ] || [ "$before" != "/$TAG/T2" ]; then
		result_fail $label "in v2 cgroup '$(cg_of "$pid" '')' after restore, '$before' before"
		kill_ours "$pid"
	elif expect_values $label "$CG2/$TAG/T2/cgroup.max.descendants=3" \
		"$CG2/$TAG/T2/sub/cgroup.max.depth=2" "$CG2/$TAG/T2/hugetlb.2MB.max=4194304" \
		"$CG2/$TAG/T2/hugetlb.2MB.rsvd.max=2097152"; then
		stop_passes $label "$pid" "$d"
	else
		kill_ours "$pid"
	fi
}

# ---------------------------------------------------------------------------------------
# thread_cgroups PID: "tid cpu-cgroup v2-cgroup" for each of its threads
thread_cgroups() {
	local t
	for t in $(ls /proc/"$1"/task | sort -n); do
		echo "$t $(cg_of "$1/task/$t" cpu) $(cg_of "$1/task/$t" '')"
	done
}

case_threads() {
	local label=threads/v1-v2 d=$ZOO_TMP/threads pid a b before now
	mkdir -p "$d/img"
	if ! cg_new "$CPU/TT" || ! cg_new "$CPU/TT/a" || ! cg_new "$CPU/TT/b" ||
		! cg_new "$CG2/$TAG/T3" || ! cg_new "$CG2/$TAG/T3/a" cgroup.type=threaded; then
		result_fail $label "cannot make the test's cgroups"
		return
	fi
	if ! ZOO_CGROUPS="$CPU/TT $CG2/$TAG/T3" zoo_start threads "$d"; then
		result_fail $label "$ZERR"
		return
	fi
	pid=$ZPID
	local tids=() t
	for t in /proc/"$pid"/task/*; do
		[ "${t##*/}" = "$pid" ] || tids+=("${t##*/}")
	done
	a=${tids[0]:-} b=${tids[1]:-}
	if ! echo "$a" >"$CPU/TT/a/tasks" || ! echo "$a" >"$CG2/$TAG/T3/a/cgroup.threads" ||
		! echo "$b" >"$CPU/TT/b/tasks"; then
		result_fail $label "cannot move threads $a and $b into their cgroups"
		kill_ours "$pid"
		return
	fi
	before=$(thread_cgroups "$pid")
	dump_remove_restore $label "$pid" "$d" "$CPU/TT/a" "$CPU/TT/b" "$CPU/TT" "$CG2/$TAG/T3/a" \
		"$CG2/$TAG/T3" || return
	now=$(thread_cgroups "$pid")
	if [ "$now" != "$before" ] || ! grep -qx "$a /$TAG/TT/a /$TAG/T3/a" <<<"$now" ||
		! grep -qx "$b /$TAG/TT/b /$TAG/T3" <<<"$now"; then
		result_fail $label "threads' cgroups after restore differ: $(diff <(echo "$before") <(echo "$now") | grep '^[<>]' | tr '\n' ';')"
		kill_ours "$pid"
	elif expect_values $label "$CG2/$TAG/T3/a/cgroup.type=threaded"; then
		stop_passes $label "$pid" "$d"
	else
		kill_ours "$pid"
	fi
}

# ---------------------------------------------------------------------------------------
# freezer_state DIR: THAWED/FROZEN/FREEZING (v1), or 0/1 (v2 cgroup.freeze)
freezer_state() {
	if [ -f "$1/freezer.state" ]; then value "$1/freezer.state"; else value "$1/cgroup.freeze"; fi
}

# freezer_case CASE CGROUP PROGRAM THAWED [fault | REGEX]: dump PROGRAM (in CGROUP) with
# --freeze-cgroup; without fault it must pass (its log mentioning REGEX, if given) and the
# restored tree PASS; with it the dump fails and the tree runs on and PASSes. The cgroup must
# read THAWED after the dump.
freezer_case() {
	local label=$1 cg=$2 name=$3 thawed=$4 fault="" expect="" d=$ZOO_TMP/$1 pid
	if [ "${5:-}" = fault ]; then fault=1; else expect=${5:-}; fi
	mkdir -p "$d/img"
	if ! ZOO_CGROUPS="$cg" zoo_start "$name" "$d"; then
		result_fail "$label" "$ZERR"
		return
	fi
	pid=$ZPID
	if [ -n "$fault" ]; then
		STASIS_FAULT=after-collect run_stasis "$d/dump.out" 60 dump -t "$pid" -D "$d/img" \
			--freeze-cgroup "$cg" -o dump.log -v4
	else
		run_stasis "$d/dump.out" 60 dump -t "$pid" -D "$d/img" --freeze-cgroup "$cg" -o dump.log -v4
	fi
	local state
	state=$(freezer_state "$cg")
	if [ "$state" != "$thawed" ]; then
		result_fail "$label" "the cgroup reads '$state' after the dump (exit $ZRC)"
		show_tail "$d/dump.out" "$d/img/dump.log"
		kill_ours "$pid"
		return
	fi
	if mentions "$d/img/dump.log" "thawed early"; then
		result_fail "$label" "seizing the frozen cgroup blocked (the watchdog thawed it)"
		kill_ours "$pid"
		return
	fi
	if [ -n "$fault" ]; then
		if ! clean_failure "$ZRC"; then
			result_fail "$label" "dump exit status $ZRC (expected the injected failure)"
			kill_ours "$pid"
		elif ! target_survives "$label" "$pid" "$d"; then
			result_fail "$label" "$ZERR"
		else
			result_ok "$label"
		fi
		return
	fi
	if [ "$ZRC" -ne 0 ] || ! mentions "$d/img/dump.log" "caught [0-9]+ threads of cgroup"; then
		result_fail "$label" "dump exit status $ZRC, or the freezer was not used"
		show_tail "$d/dump.out" "$d/img/dump.log"
		kill_ours "$pid"
		return
	fi
	if [ -n "$expect" ] && ! mentions "$d/img/dump.log" "$expect"; then
		result_fail "$label" "the dump's log does not mention '$expect'"
		wait_until 10 not_alive "$pid"
		return
	fi
	wait_until 10 not_alive "$pid"
	restore_tree "$d"
	if [ "$ZRC" -ne 0 ]; then
		result_fail "$label" "restore exit status $ZRC"
		show_tail "$d/restore.out" "$d/img/restore.log"
		return
	fi
	track_pid "$pid"
	sleep 0.5
	if zoo_stop "$pid" "$d" "$d/out" && [[ $ZVERDICT == PASS* ]]; then
		result_ok "$label"
	else
		result_fail "$label" "${ZERR:-$ZVERDICT}"
	fi
	wait_until 10 not_alive "$pid"
}

# frozen DIR: the cgroup reads frozen (v1 freezer.state FROZEN, v2 cgroup.events frozen 1)
frozen() { grep -q -x -E 'FROZEN|frozen 1' "$1/freezer.state" "$1/cgroup.events" 2>/dev/null; }
# set_frozen DIR 1|0: freeze or thaw the cgroup (v1 or v2)
set_frozen() {
	if [ ! -f "$1/freezer.state" ]; then
		echo "$2" >"$1/cgroup.freeze"
	elif [ "$2" = 1 ]; then
		echo FROZEN >"$1/freezer.state"
	else
		echo THAWED >"$1/freezer.state"
	fi
}

# paused_case CASE CGROUP: see freezer/v1-paused above
paused_case() {
	local label=$1 cg=$2 d=$ZOO_TMP/$1 pid
	mkdir -p "$d/img" "$d/pre"
	(ZOO_CGROUPS=$cg zoo_join_cgroups && exec "$ZOO_ROOT/tests/tools/bin/spin-count" "$d/count" \
		</dev/null >"$d/out" 2>&1) &
	pid=$!
	disown
	track_pid "$pid"
	if paused_checks "$cg" "$d" "$pid"; then
		result_ok "$label ($ZERR)"
	else
		result_fail "$label" "$ZERR"
	fi
	set_frozen "$cg" 0
	kill_ours "$pid"
	wait_until 10 not_alive "$pid"
}
# paused_checks CGROUP DIR PID: paused_case's steps; ZERR says what went wrong, or what was seen
paused_checks() {
	local cg=$1 d=$2 pid=$3 count
	counts_on() { [ "$(cat "$d/count")" != "$count" ]; }
	if ! wait_until 5 file_nonempty "$d/count"; then
		ZERR="spin-count wrote no count: $(head -c 300 "$d/out")"
		return 1
	fi
	set_frozen "$cg" 1
	if ! wait_until 10 frozen "$cg"; then
		ZERR="the cgroup does not freeze"
		return 1
	fi
	count=$(cat "$d/count")
	# a pre-dump that fails with the threads held leaves the cgroup frozen, not one count on
	STASIS_FAULT=pre-dump-armed run_stasis "$d/pre-fail.out" 60 pre-dump -t "$pid" -D "$d/pre" \
		--freeze-cgroup "$cg" -o pre-dump.log -v4
	if ! clean_failure "$ZRC" || ! mentions "$d/pre-fail.out" "injected failure pre-dump-armed"; then
		ZERR="the pre-dump failing at pre-dump-armed: exit $ZRC, not the failure injected"
		show_tail "$d/pre-fail.out"
		return 1
	fi
	if ! frozen "$cg" || counts_on; then
		ZERR="the failed pre-dump let the paused program run (count $count, now $(cat "$d/count"); $(freezer_state "$cg"))"
		return 1
	fi
	# stasis killed while it holds the thawed cgroup's threads (the kernel lets them go): its
	# guardian freezes the cgroup again (the program may run a moment first), in a pre-dump
	# and in a dump
	local what
	for what in pre-dump:pre-dump-armed dump:after-seize; do
		STASIS_FAULT=kill-at:${what#*:} run_stasis "$d/killed.out" 60 "${what%%:*}" -t "$pid" \
			-D "$d/pre" --freeze-cgroup "$cg" -o killed.log -v4 2>/dev/null # (bash's "Killed")
		if [ "$ZRC" != 137 ] || ! wait_until 5 frozen "$cg"; then
			ZERR="${what%%:*} killed at ${what#*:}: exit $ZRC, the cgroup reads '$(freezer_state "$cg")', not frozen again"
			return 1
		fi
		count=$(cat "$d/count")
		sleep 0.2
		if ! proc_alive "$pid" || counts_on; then
			ZERR="${what%%:*} killed at ${what#*:}: the program is $(proc_alive "$pid" && echo "counting on" || echo gone) though frozen again"
			return 1
		fi
	done
	rm -rf "$d/pre"
	mkdir -p "$d/pre"
	run_stasis "$d/pre.out" 60 pre-dump -t "$pid" -D "$d/pre" --freeze-cgroup "$cg" -o pre-dump.log -v4
	if [ "$ZRC" -ne 0 ]; then
		ZERR="pre-dump exit status $ZRC"
		show_tail "$d/pre.out" "$d/pre/pre-dump.log"
		return 1
	fi
	if ! frozen "$cg" || counts_on; then
		ZERR="the pre-dump let the paused program run (count $count, now $(cat "$d/count"); $(freezer_state "$cg"))"
		return 1
	fi
	run_stasis "$d/dump.out" 60 dump -t "$pid" -D "$d/img" --prev-images-dir ../pre --leave-running \
		--freeze-cgroup "$cg" -o dump.log -v4
	if [ "$ZRC" -ne 0 ]; then
		ZERR="dump exit status $ZRC"
		show_tail "$d/dump.out" "$d/img/dump.log"
		return 1
	fi
	if ! frozen "$cg"; then
		ZERR="the cgroup reads '$(freezer_state "$cg")' after the dump, not frozen"
		return 1
	fi
	if counts_on; then
		ZERR="the paused program ran during the dump: it counted from $count to $(cat "$d/count")"
		return 1
	fi
	if ! grep -q 'pages_in_parent_dump=[1-9]' "$d/img/dump.log"; then
		ZERR="the dump kept no page in the pre-dump: $(grep -o 'pages=.*' "$d/img/dump.log" | tail -n 1)"
		return 1
	fi
	set_frozen "$cg" 0
	if ! wait_until 5 counts_on; then
		ZERR="thawed after the dump, it does not count on (still $count; state $(proc_state "$pid"))"
		return 1
	fi
	# the images of the paused program, restored once the original is gone, count on too
	kill_ours "$pid"
	wait_until 10 not_alive "$pid"
	local paused_count=$count
	run_stasis "$d/restore.out" 60 restore -D "$d/img" -d -o restore.log -v4
	count=$(cat "$d/count")
	if [ "$ZRC" -ne 0 ] || ! proc_alive "$pid" || ! wait_until 5 counts_on; then
		ZERR="restore of the paused program's images: exit $ZRC, pid $pid $(proc_alive "$pid" && echo running || echo gone), count $((10#$count))"
		show_tail "$d/restore.out" "$d/img/restore.log"
		return 1
	fi
	ZERR="pre-dumped and dumped frozen at count $((10#$paused_count)), not one count meanwhile; counting on once thawed, and restored"
}

# paused_exec_case CGROUP: see freezer/v1-paused-exec above
paused_exec_case() {
	local cg=$1 d=$ZOO_TMP/paused-exec label root count stranger nsenter
	counts_on() { [ "$(cat "$d/count")" != "$count" ]; }
	mkdir -p "$d/img"
	# (spin-count, pid 1 of its namespace, joins the cgroup itself; unshare stays outside)
	unshare --pid --fork --kill-child sh -c "echo 0 >$cg/cgroup.procs && exec $ZOO_ROOT/tests/tools/bin/spin-count $d/count" \
		</dev/null >"$d/out" 2>&1 &
	track_pid $!
	disown
	if ! wait_until 5 file_nonempty "$d/count" || ! root=$(pgrep -P $! spin-count); then
		result_fail freezer/v1-paused-exec "spin-count did not start in a PID namespace: $(head -c 300 "$d/out")"
		return
	fi
	track_pid "$root"
	for label in freezer/v1-paused-exec-waited freezer/v1-paused-exec; do
		stranger=""
		set_frozen "$cg" 0
		# (nsenter forks the process that joins the namespace; it joins the cgroup, then sleeps)
		nsenter -t "$root" -p -- sh -c "echo 0 >$cg/cgroup.procs && exec sleep $([ $label = freezer/v1-paused-exec ] && echo 1000 || echo 0.3)" &
		nsenter=$!
		disown
		track_pid $nsenter
		for _ in $(seq 100); do stranger=$(pgrep -P $nsenter) && grep -q -x "$stranger" "$cg/cgroup.procs" && break; sleep 0.01; done
		[ -n "$stranger" ] && track_pid "$stranger"
		set_frozen "$cg" 1
		if [ -z "$stranger" ] || ! wait_until 10 frozen "$cg"; then
			result_fail $label "no stranger in the cgroup (${stranger:-none}), or the cgroup does not freeze"
			continue
		fi
		count=$(cat "$d/count")
		rm -rf "$d/img" && mkdir -p "$d/img"
		run_stasis "$d/dump.out" 60 dump -t "$root" -D "$d/img" --leave-running --freeze-cgroup "$cg" -o dump.log -v4
		if [ $label = freezer/v1-paused-exec-waited ] && { [ "$ZRC" -ne 0 ] ||
			! mentions "$d/dump.out" "$d/img/dump.log" "dump pid $stranger: it joined the paused container.s PID namespace from outside" ||
			! mentions "$d/dump.out" "$d/img/dump.log" "what joined the paused container ended"; }; then
			result_fail $label "dump exit status $ZRC (0 wanted, pid $stranger let go to end, its end in the log)"
			show_tail "$d/dump.out" "$d/img/dump.log"
		elif [ $label = freezer/v1-paused-exec ] && { ! clean_failure "$ZRC" ||
			! mentions "$d/dump.out" "$d/img/dump.log" "dump pid $stranger: it is in the tree.s PID namespace .* but not a descendant of its init, pid $root"; }; then
			result_fail $label "dump exit status $ZRC, or the error does not name pid $stranger, which stays in the tree's namespace"
			show_tail "$d/dump.out" "$d/img/dump.log"
		elif ! frozen "$cg" || counts_on; then
			result_fail $label "after the dump the cgroup reads '$(freezer_state "$cg")', count $count, now $(cat "$d/count") (frozen, unchanged wanted)"
		elif ! proc_alive "$root" || [ "$(tracer_of "$root")" != 0 ]; then
			result_fail $label "the tree is gone or still traced"
		else
			result_ok "$label (frozen after it, no count meanwhile)"
		fi
	done
	set_frozen "$cg" 0
	kill_ours "$stranger"
	kill_ours "$root"
}

case_freezer() {
	local f=$V1/freezer/$TAG/F f2=$CG2/$TAG/F2
	if cg_new "$f"; then
		freezer_case freezer/v1 "$f" fork-churn THAWED
		freezer_case freezer/v1-fault "$f" fork-churn THAWED fault
		freezer_case freezer/v1-stopped "$f" tree THAWED
		freezer_case freezer/v1-vfork "$f" vfork-exec THAWED "its vfork\(\) child stopped by the freezer has exec'd"
		paused_case freezer/v1-paused "$f"
		paused_exec_case "$f"
	else
		result_fail freezer/v1 "cannot make freezer:/$TAG/F"
	fi
	if cg_new "$f2"; then
		freezer_case freezer/v2 "$f2" fork-churn 0
		paused_case freezer/v2-paused "$f2"
	else
		result_fail freezer/v2 "cannot make $f2"
	fi
}

case_not_a_freezer() {
	local label=freezer/not-a-cgroup d=$ZOO_TMP/not-a-freezer
	mkdir -p "$d/img" "$d/plain"
	if ! zoo_start mem-anon "$d"; then
		result_fail $label "$ZERR"
		return
	fi
	run_stasis "$d/dump.out" 60 dump -t "$ZPID" -D "$d/img" --freeze-cgroup "$d/plain" -o dump.log -v4
	refused_survives $label "$d" "cgroup $d/plain: not a freezer cgroup" "$d/plain"
}

# refused_survives LABEL DIR RE WHAT [NOTE]: the dump just run (ZRC, DIR/dump.out) failed
# cleanly naming WHAT (its output matching RE), and ZPID PASSes; says the result
refused_survives() {
	local label=$1 d=$2 re=$3 what=$4
	if ! clean_failure "$ZRC"; then
		result_fail "$label" "dump exit status $ZRC"
		kill_ours "$ZPID"
	elif ! mentions "$d/dump.out" "$d/img/dump.log" "$re"; then
		result_fail "$label" "the error does not name $what"
		show_tail "$d/dump.out"
		kill_ours "$ZPID"
	elif ! target_survives "$label" "$ZPID" "$d"; then
		result_fail "$label" "$ZERR"
	else
		result_ok "$label${5:+ ($5)}"
	fi
}

# freezer/timeout: see above
case_stop_timeout() {
	local label=freezer/timeout d=$ZOO_TMP/stop-timeout cg=$V1/freezer/$TAG/T start took
	mkdir -p "$d/img"
	if ! cg_new "$cg" || ! ZOO_CGROUPS=$cg zoo_start mem-anon "$d"; then
		result_fail $label "cannot start mem-anon in $cg: $ZERR"
		return
	fi
	set_frozen "$cg" 1
	wait_until 10 frozen "$cg"
	start=$(date +%s%N)
	run_stasis "$d/dump.out" 60 dump -t "$ZPID" -D "$d/img" --timeout 2 -o dump.log -v4
	took=$((($(date +%s%N) - start) / 1000000))
	set_frozen "$cg" 0
	refused_survives $label "$d" "pid $ZPID: did not stop within 2000 ms" \
		"pid $ZPID and the 2 s of --timeout 2" "refused after $took ms"
}

# ---------------------------------------------------------------------------------------
zoo_setup_tmp
trap cg_cleanup EXIT
zoo_ready_or_exit
if [ ! -d "$V1/memory" ] || [ ! -d "$V1/pids" ] || [ ! -d "$V1/cpu" ] || [ ! -d "$V1/devices" ] ||
	[ ! -d "$V1/freezer" ]; then
	result_fail setup "no cgroup v1 memory, pids, cpu, devices and freezer hierarchies under $V1"
	summary
	exit 1
fi
CG_MADE+=("$MEM" "$PIDS" "$CPU" "$DEV" "$V1/freezer/$TAG")
mkdir -p "$MEM" "$PIDS" "$CPU" "$DEV" "$V1/freezer/$TAG"
mkdir -p "$ZOO_TMP/cg2"
if mount -t cgroup2 none "$ZOO_TMP/cg2"; then
	CG2=$ZOO_TMP/cg2
	CG_MADE+=("$CG2/$TAG")
	mkdir -p "$CG2/$TAG"
	# hugetlb for $TAG's children (and for the root's, if it was not: given back at the end)
	grep -qw hugetlb "$CG2/cgroup.subtree_control" || HUGETLB_ENABLED=1
	echo +hugetlb >"$CG2/cgroup.subtree_control" && echo +hugetlb >"$CG2/$TAG/cgroup.subtree_control" ||
		result_fail setup "cannot enable the hugetlb controller in the cgroup2 mount"
else
	result_fail setup "cannot mount cgroup2"
fi

if dump_tree; then
	case_v1_restores
	case_v1_refusals
	case_v1_failed_restore
	case_v1_killed_restore
fi
[ -n "$CG2" ] && { case_v2; case_threads; }
case_freezer
case_not_a_freezer
case_stop_timeout
summary
