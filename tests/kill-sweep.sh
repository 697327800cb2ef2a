#!/bin/bash
# stasis killed (SIGKILL) at many instants harms no one.
#
#   dump/TARGET/step         `stasis dump --leave-running` of a running tree (composite: 5
#                            processes exchanging messages over pipes and unix sockets, with
#                            epoll, eventfd, timerfd, inotify; threads: 64 threads) SIGKILLed at
#                            each step of each system call it runs inside the tree
#                            (STASIS_FAULT=kill-at:inject-STEP:N: registers set, mask set,
#                            syscall entry, syscall exit, mask back, registers back; N over the
#                            dump's syscalls) and at after-seize, after-collect, after-pages,
#                            after-images; threads: 20 more kills at its first other thread's
#                            list of syscalls (inject-regs:8)
#   dump/TARGET/time         the same dump SIGKILLed after S, S+5, S+10 ... 60 ms (S from 0 to 4,
#                            drawn for each run: over runs, every instant up to 60 ms)
#   After each kill every process of the tree is alive, neither stopped nor traced; at the end
#   the tree passes its own checks (SIGTERM: PASS). A kill that did not happen (the dump had
#   fewer steps) is not counted.
#   restore/composite/step   `stasis restore -d` of composite's images SIGKILLed at each step
#                            (STASIS_FAULT=kill-at:restore-STEP:N: the shared objects made, the
#                            root made, each report of a new process, each process prepared,
#                            each process set free of PTRACE_O_EXITKILL, the commit, each
#                            process let go): until the
#                            commit nothing from the images is left alive, and every pid is free
#                            again (the next restore is the retry); from then on every process runs
#   restore/composite/time   the same restore SIGKILLed after S, S+5 ... 60 ms: either nothing
#                            from the images is alive or all of it runs, never a part
#   restore/composite/passes the images, restored once more, run and PASS
#   restore/sysv-ipc/*       the same steps for a tree in an IPC namespace of its own (queues,
#                            semaphores, shm segments and a POSIX queue made by stasis in it)
#   restore/mqueue/*         the same for a process whose queue was removed after the dump:
#                            stasis makes it again, and a kill before the commit removes it
#   After each kill no watchdog of this stasis (stasis-watch) is left either, and before the
#   commit no message queue of the program's is there that was not there before the restore.
#   dump/stopped-in-stub     mem-anon stopped (SIGSTOP), a dump killed once it set the
#                            registers of the first syscall it runs inside (the thread left in
#                            the stub, where it stays while stopped): the next dump is refused
#                            naming the thread and the stub (it would take the stub for the
#                            thread's own place: an endless loop once it runs), the process
#                            stays stopped and untraced; after SIGCONT (it goes through the stub
#                            by itself) a dump succeeds and the program PASSes
#
#   tests/kill-sweep.sh [--keep] [--base STASIS]   (--base: another build to compare, not judged)
# Output: one line per case with the counts, then "N passed, N failed".

# shellcheck source-path=SCRIPTDIR
set -u
# shellcheck source=zoo/lib.sh
. "$(dirname "$0")/zoo/lib.sh"

zoo_common_options "$@"

zoo_setup_tmp
zoo_ready_or_exit

INJECT_STEPS="inject-regs inject-mask inject-entry inject-exit inject-unmask inject-done"
# the instants of the timed kills (ms): every 5 ms from a start drawn for this run
TIMED_START=$((RANDOM % 5))
TIMED_MS=$(seq "$TIMED_START" 5 60)

# killed_after MS CMD...: runs CMD and SIGKILLs it (it alone, not timeout(1)'s whole process
# group, which would take stasis's watchdog too and let timeout exit before stasis is gone) after
# MS ms; its exit status once it is reaped, when the kernel has let go of every task it traced.
killed_after() {
	local ms=$1 pid
	shift
	"$@" &
	pid=$!
	sleep "$(awk "BEGIN { printf \"%.3f\", $ms / 1000 }")"
	kill -KILL "$pid" 2>/dev/null
	wait "$pid"
}

# tree_pids PID: PID and its descendants
tree_pids() {
	local p=$1 c
	echo "$p"
	for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do
		tree_pids "$c"
	done
}

# tree_unharmed NAME COUNT: ROOT's tree has COUNT processes of NAME, each thread alive,
# neither stopped nor traced. Sets ZERR. (Read by bash alone: no process per thread, which
# threads' 21 spinning threads would make slow to run.)
tree_unharmed() {
	local name=$1 count=$2 p t st tr n=0 line k v
	for p in $(tree_pids "$ROOT"); do
		[ "$(readlink "/proc/$p/exe" 2>/dev/null)" = "$ZOO_BIN/$name" ] || continue
		n=$((n + 1))
		for t in /proc/"$p"/task/*; do
			st="" tr=""
			{ read -r line <"$t/stat"; } 2>/dev/null && line=${line##*) } && st=${line%% *}
			while read -r k v _; do
				[ "$k" = TracerPid: ] && tr=$v && break
			done 2>/dev/null <"$t/status"
			if [ "$st" = T ] || [ "$st" = t ] || [ "$st" = Z ] || { [ -n "$tr" ] && [ "$tr" != 0 ]; }; then
				ZERR="${t#/proc/} is left ${st}, traced by ${tr:-nobody}"
				return 1
			fi
		done
	done
	if [ "$n" != "$count" ]; then
		ZERR="$n processes of $name left, $count expected"
		return 1
	fi
}

# one_kill LABEL FAULT|@MS: a dump killed at that point; 0 killed and unharmed, 1 harmed (said in
# BAD), 2 not killed (the dump ended first)
one_kill() {
	local how=$2 rc
	# (in a subshell that says nothing: no "Killed" from bash)
	if [[ $how == @* ]]; then
		(killed_after "${how#@}" "$STASIS" dump -t "$ROOT" -D "$D/img" --leave-running -o dump.log -v0 \
			</dev/null >"$D/dump.out" 2>&1
		exit $?) 2>/dev/null
	else
		(STASIS_FAULT=$how "$STASIS" dump -t "$ROOT" -D "$D/img" --leave-running -o dump.log -v0 </dev/null >"$D/dump.out" 2>&1
		exit $?) 2>/dev/null
	fi
	rc=$?
	[ "$rc" = 137 ] || return 2
	sleep 0.02
	if ! tree_unharmed "$NAME" "$COUNT"; then
		BAD="$BAD; $1: $ZERR"
		return 1
	fi
	return 0
}

# sweep_dump NAME COUNT OCCURRENCES [POINT TIMES]: every kill point against one running tree of
# NAME (COUNT processes), each syscall step at its OCCURRENCES-th passage; then POINT (a
# STEP:N) TIMES times more, for a harm that takes a race to show
sweep_dump() {
	NAME=$1 COUNT=$2 D=$ZOO_TMP/dump-$1
	local occurrences=$3 again=${4:-} times=${5:-0} i
	local step n killed harmed label ms r
	mkdir -p "$D/img"
	if ! zoo_start "$NAME" "$D"; then
		result_fail "dump/$NAME" "$ZERR"
		return
	fi
	ROOT=$ZPID
	sleep 0.3
	if ! tree_unharmed "$NAME" "$COUNT"; then
		result_fail "dump/$NAME" "before any kill: $ZERR"
		kill_ours "$ROOT"
		return
	fi
	BAD="" killed=0 harmed=0
	for step in $INJECT_STEPS; do
		for n in $occurrences; do
			one_kill "$step:$n" "kill-at:$step:$n"
			r=$?
			[ $r = 2 ] && break
			killed=$((killed + 1))
			[ $r = 1 ] && harmed=$((harmed + 1))
			[ -n "$BAD" ] && [ $r = 1 ] && break 2
		done
	done
	for ((i = 0; i < times; i++)); do
		[ -n "$BAD" ] && break
		one_kill "$again" "kill-at:$again"
		r=$?
		[ $r = 2 ] && break
		killed=$((killed + 1))
		[ $r = 1 ] && harmed=$((harmed + 1))
	done
	for step in after-seize after-collect after-pages after-images; do
		one_kill "$step" "kill-at:$step"
		r=$?
		[ $r = 2 ] && continue
		killed=$((killed + 1))
		[ $r = 1 ] && harmed=$((harmed + 1)) && break
	done
	label="dump/$NAME/step ($killed kills at syscall steps and fault points)"
	if [ -n "$BAD" ]; then
		result_fail "$label" "$harmed harmed the tree${BAD}"
		kill_ours "$ROOT"
		return
	fi
	result_ok "$label"
	killed=0
	for ms in $TIMED_MS; do
		one_kill "@${ms}ms" "@$ms"
		r=$?
		[ $r = 2 ] && continue
		killed=$((killed + 1))
		[ $r = 1 ] && harmed=$((harmed + 1)) && break
	done
	if [ -n "$BAD" ]; then
		result_fail "dump/$NAME/time ($killed kills)" "${BAD#; }"
		kill_ours "$ROOT"
		return
	fi
	result_ok "dump/$NAME/time ($killed kills after $TIMED_START..60 ms, every 5 ms)"
	if ! zoo_stop "$ROOT" "$D" "$D/out"; then
		result_fail "dump/$NAME/passes" "$ZERR"
	elif [[ $ZVERDICT != PASS* ]]; then
		result_fail "dump/$NAME/passes" "after the kills: $ZVERDICT"
	else
		result_ok "dump/$NAME/passes${ZVERDICT#PASS}"
	fi
}

# pids_alive PID...: how many of them run (neither gone nor zombies)
pids_alive() {
	local p st n=0
	for p in "$@"; do
		st=$(sed -e 's/.*) //' "/proc/$p/stat" 2>/dev/null | cut -d' ' -f1)
		[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ] && n=$((n + 1))
	done
	echo $n
}
pids_free() {
	local p
	for p in "$@"; do [ -e "/proc/$p" ] && return 1; done
	return 0
}
none_alive() { [ "$(pids_alive "${PIDS[@]}")" = 0 ]; }
# mqueues_of PID: the POSIX message queues of the host named after PID (the zoo's) or made
# under a temporary name by stasis
mqueues_of() {
	local mnt
	mnt=$(mktemp -d) && mount -t mqueue none "$mnt" 2>/dev/null || return 0
	find "$mnt" \( -name "*-$1-*" -o -name 'stasis-mq-*' \) -printf '%f\n' | sort | tr '\n' ' '
	umount "$mnt"
	rmdir "$mnt"
}
# no watchdog of this stasis left (stasis-watch: it goes once the tree is let go or killed)
no_watchdog() {
	local p exe
	exe=$(readlink -f "$STASIS")
	for p in /proc/[0-9]*; do
		[ "$(cat "$p/comm" 2>/dev/null)" = stasis-watch ] && [ "$(readlink "$p/exe" 2>/dev/null)" = "$exe" ] && return 1
	done
	return 0
}

# restore_kill LABEL FAULT|@MS EXPECT(none|all|any): 0 as expected, 1 not (said in BAD), 2 not
# killed (the restore ended first: its tree is killed again)
restore_kill() {
	local label=$1 how=$2 expect=$3 rc n
	if [[ $how == @* ]]; then
		(killed_after "${how#@}" "$STASIS" restore -D "$D/img" -d -o restore.log -v0 \
			</dev/null >"$D/restore.out" 2>&1
		exit $?) 2>/dev/null
	else
		(STASIS_FAULT=$how "$STASIS" restore -D "$D/img" -d -o restore.log -v0 </dev/null >"$D/restore.out" 2>&1
		exit $?) 2>/dev/null
	fi
	rc=$?
	if [ "$rc" != 137 ]; then
		if [ "$rc" != 0 ]; then
			BAD="$BAD; $label: restore exited $rc ($(tail -c 200 "$D/restore.out"))"
			return 1
		fi
		expect=all
	fi
	# the watchdog's kill, or the tree going on: a moment to settle (a part alive must go)
	sleep 0.3
	n=$(pids_alive "${PIDS[@]}")
	if [ "$n" != "${#PIDS[@]}" ] || [ "$expect" = none ]; then
		wait_until 3 none_alive
		n=$(pids_alive "${PIDS[@]}")
	fi
	if [ "$n" != 0 ] && [ "$n" != "${#PIDS[@]}" ]; then
		BAD="$BAD; $label: $n of ${#PIDS[@]} processes from the images are alive"
	elif [ "$expect" = none ] && [ "$n" != 0 ]; then
		BAD="$BAD; $label: $n processes from the images are alive before the tree was let go"
	elif [ "$expect" = all ] && [ "$n" = 0 ]; then
		BAD="$BAD; $label: the tree did not go on after it was let go"
	elif [ "$n" != 0 ] && ! tree_unharmed "$NAME" "$COUNT"; then
		BAD="$BAD; $label: let go, but $ZERR"
	fi
	if ! wait_until 3 no_watchdog; then
		BAD="$BAD; $label: the watchdog (stasis-watch) is still there 3 s after"
	fi
	if [ "$expect" = none ] && [ "$(mqueues_of "$ROOT")" != "$MQ_BEFORE" ]; then
		BAD="$BAD; $label: message queues left: $(mqueues_of "$ROOT") (before: ${MQ_BEFORE:-none})"
	fi
	kill -KILL "${PIDS[@]}" 2>/dev/null
	if ! wait_until 5 pids_free "${PIDS[@]}"; then
		BAD="$BAD; $label: pids of the images not free again 5 s after the kill"
	fi
	[ -z "$BAD" ] || return 1
	if [ "$rc" != 137 ]; then
		# the restore ended first (what it made stays): as the dump left things, for the next
		[ -x "$ZOO_DIR/$NAME.after-dump" ] && STASIS=$STASIS "$ZOO_DIR/$NAME.after-dump" "$D/img" >/dev/null 2>&1
		return 2
	fi
	return 0
}

# sweep_restore NAME COUNT OCCURRENCES [time]: NAME's images (COUNT processes) restored and
# killed at each restore step's OCCURRENCES-th passage (time: and every 5 ms), then restored;
# whatever the outcome, the program's message queues go at the end
sweep_restore() {
	sweep_restore_cases "$@"
	local mnt
	mnt=$(mktemp -d) && mount -t mqueue none "$mnt" 2>/dev/null || return 0
	find "$mnt" -name "*-${ROOT:-none}-*" -delete
	umount "$mnt"
	rmdir "$mnt"
}
sweep_restore_cases() {
	NAME=$1 COUNT=$2 D=$ZOO_TMP/restore-$1
	local occurrences=$3 timed=${4:-} step n killed=0 r expect ms
	mkdir -p "$D/img"
	if ! zoo_start "$NAME" "$D"; then
		result_fail "restore/$NAME" "$ZERR"
		return
	fi
	ROOT=$ZPID
	sleep 0.3
	mapfile -t PIDS < <(tree_pids "$ROOT")
	run_stasis "$D/dump.out" 60 dump -t "$ROOT" -D "$D/img" -o dump.log -v4
	if [ "$ZRC" -ne 0 ] || ! wait_until 10 pids_free "${PIDS[@]}"; then
		result_fail "restore/$NAME" "the dump exited $ZRC"
		kill_ours "$ROOT"
		return
	fi
	# what the program's own after-dump script does (mqueue: a queue removed, to be made again)
	if [ -x "$ZOO_DIR/$NAME.after-dump" ] &&
		! STASIS=$STASIS "$ZOO_DIR/$NAME.after-dump" "$D/img" >"$D/after-dump.out" 2>&1; then
		result_fail "restore/$NAME" "after the dump: $(tail -n 1 "$D/after-dump.out")"
		return
	fi
	MQ_BEFORE=$(mqueues_of "$ROOT")
	BAD=""
	for step in restore-objects:1 restore-root:1 restore-report restore-prepared restore-exitkill-off restore-committed:1 restore-released; do
		expect=none
		case $step in restore-committed:1 | restore-released) expect=all ;; esac
		for n in $occurrences; do
			[[ $step == *:1 ]] && [ "$n" != 1 ] && break
			r=0
			restore_kill "${step%:1}:$n" "kill-at:${step%:1}:$n" $expect || r=$?
			[ $r = 2 ] && break
			[ $r = 1 ] && break 2
			killed=$((killed + 1))
		done
	done
	if [ -n "$BAD" ]; then
		result_fail "restore/$NAME/step ($killed kills)" "${BAD#; }"
		return
	fi
	result_ok "restore/$NAME/step ($killed kills, the pids free again after each)"
	killed=0
	for ms in $([ -n "$timed" ] && echo "$TIMED_MS"); do
		r=0
		restore_kill "@${ms}ms" "@$ms" any || r=$?
		[ $r = 1 ] && break
		[ $r = 0 ] && killed=$((killed + 1))
	done
	if [ -n "$BAD" ]; then
		result_fail "restore/$NAME/time ($killed kills)" "${BAD#; }"
		return
	fi
	[ -n "$timed" ] && result_ok "restore/$NAME/time ($killed kills after $TIMED_START..60 ms, every 5 ms: nothing or everything alive)"
	run_stasis "$D/restore.out" 60 restore -D "$D/img" -d -o restore.log -v4
	track_pid "$ROOT"
	if [ "$ZRC" -ne 0 ] || ! zoo_stop "$ROOT" "$D" "$D/out" || [[ $ZVERDICT != PASS* ]]; then
		result_fail "restore/$NAME/passes" "restore exited $ZRC: $ZERR $ZVERDICT"
		show_tail "$D/restore.out" "$D/img/restore.log"
	else
		result_ok "restore/$NAME/passes${ZVERDICT#PASS}"
	fi
}

sweep_dump composite 5 "1 2 3 5 8 13 21 34 55 89 144 233"
# inject-regs:8: the list of its first thread but the main one set to run, the main thread
# resting in its stub (which unmaps the scratch when let go): 1 in 12 kills there killed the
# tree while that list was in the scratch
sweep_dump threads 1 "1 3 8 21 55 144 377" inject-regs:8 20
# a thread left in a stub that cannot go through it before the next dump (stopped)
stopped_in_stub() {
	local label=dump/stopped-in-stub d=$ZOO_TMP/stopped-in-stub st
	mkdir -p "$d/img"
	if ! zoo_start mem-anon "$d"; then
		result_fail "$label" "$ZERR"
		return
	fi
	kill -STOP "$ZPID"
	sleep 0.1
	(STASIS_FAULT=kill-at:inject-regs:1 "$STASIS" dump -t "$ZPID" -D "$d/img" --leave-running -o dump.log \
		</dev/null >"$d/dump1.out" 2>&1
	exit $?) 2>/dev/null
	[ $? = 137 ] || { result_fail "$label" "the first dump was not killed"; kill_ours "$ZPID"; return; }
	run_stasis "$d/dump2.out" 60 dump -t "$ZPID" -D "$d/img" --leave-running -o dump.log -v4
	st=$(sed -e 's/.*) //' "/proc/$ZPID/stat" | cut -d' ' -f1)
	if ! clean_failure "$ZRC" || ! mentions "$d/dump2.out" "$d/img/dump.log" \
		"thread $ZPID: still in the stub that a stasis killed during an earlier dump left it in"; then
		result_fail "$label" "the second dump (exit $ZRC) did not refuse the thread in the stub"
		show_tail "$d/dump2.out" "$d/img/dump.log"
	elif [ "$st" != T ] || [ "$(tracer_of "$ZPID")" != 0 ]; then
		result_fail "$label" "after the refused dump the process is '$st', traced by $(tracer_of "$ZPID")"
	else
		kill -CONT "$ZPID"
		sleep 0.2
		run_stasis "$d/dump3.out" 60 dump -t "$ZPID" -D "$d/img" --leave-running -o dump.log -v4
		if [ "$ZRC" != 0 ]; then
			result_fail "$label" "the dump after SIGCONT exited $ZRC"
			show_tail "$d/dump3.out" "$d/img/dump.log"
		elif ! zoo_stop "$ZPID" "$d" "$d/out" || [[ $ZVERDICT != PASS* ]]; then
			result_fail "$label" "after the dumps: $ZERR $ZVERDICT"
		else
			result_ok "$label (refused while stopped, dumped once it ran)"
		fi
		return
	fi
	kill_ours "$ZPID"
}
stopped_in_stub
sweep_restore composite 5 "1 2 3 4 5 6 8 11 14" time
sweep_restore sysv-ipc 2 "1 2 3"
sweep_restore mqueue 1 "1 2"
summary
