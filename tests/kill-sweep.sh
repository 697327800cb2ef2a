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
#                            after-images
#   dump/TARGET/time         the same dump SIGKILLed after 0, 3, 6 ... 60 ms
#   After each kill every process of the tree is alive, neither stopped nor traced; at the end
#   the tree passes its own checks (SIGTERM: PASS). A kill that did not happen (the dump had
#   fewer steps) is not counted.
#
#   tests/kill-sweep.sh [--keep] [--base STASIS]   (--base: another build to compare, not judged)
# Output: one line per case with the counts, then "N passed, N failed".

# shellcheck source-path=SCRIPTDIR
set -u
# shellcheck source=zoo/lib.sh
. "$(dirname "$0")/zoo/lib.sh"

for a in "$@"; do
	case $a in
	--keep | -k) ZOO_KEEP=1 ;;
	-h | --help)
		sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "unknown argument $a" >&2
		exit 2
		;;
	esac
done

zoo_setup_tmp
if ! build_zoo; then
	N_FAIL=1
	summary
	exit 1
fi

INJECT_STEPS="inject-regs inject-mask inject-entry inject-exit inject-unmask inject-done"

# tree_pids PID: PID and its descendants
tree_pids() {
	local p=$1 c
	echo "$p"
	for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do
		tree_pids "$c"
	done
}

# tree_unharmed NAME COUNT: ROOT's tree has COUNT processes of NAME, each thread alive,
# neither stopped nor traced. Sets ZERR.
tree_unharmed() {
	local name=$1 count=$2 p t st tr n=0
	for p in $(tree_pids "$ROOT"); do
		[ "$(readlink "/proc/$p/exe" 2>/dev/null)" = "$ZOO_BIN/$name" ] || continue
		n=$((n + 1))
		for t in /proc/"$p"/task/*; do
			st=$(sed -e 's/.*) //' "$t/stat" 2>/dev/null | cut -d' ' -f1)
			tr=$(awk '/^TracerPid:/ {print $2}' "$t/status" 2>/dev/null)
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
		(timeout -s KILL "$(awk "BEGIN { printf \"%.3f\", ${how#@} / 1000 }")" \
			"$STASIS" dump -t "$ROOT" -D "$D/img" --leave-running -o dump.log -v0 </dev/null >"$D/dump.out" 2>&1
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

# sweep_dump NAME COUNT OCCURRENCES: every kill point against one running tree of NAME (COUNT
# processes), each syscall step at its OCCURRENCES-th passage
sweep_dump() {
	NAME=$1 COUNT=$2 D=$ZOO_TMP/dump-$1
	local occurrences=$3
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
	for ms in $(seq 0 3 60); do
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
	result_ok "dump/$NAME/time ($killed kills after 0..60 ms)"
	if ! zoo_stop "$ROOT" "$D" "$D/out"; then
		result_fail "dump/$NAME/passes" "$ZERR"
	elif [[ $ZVERDICT != PASS* ]]; then
		result_fail "dump/$NAME/passes" "after the kills: $ZVERDICT"
	else
		result_ok "dump/$NAME/passes${ZVERDICT#PASS}"
	fi
}

sweep_dump composite 5 "1 2 3 5 8 13 21 34 55 89 144 233"
sweep_dump threads 1 "1 3 8 21 55 144 377"
summary
