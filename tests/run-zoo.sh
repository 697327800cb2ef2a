#!/bin/bash
# The process zoo: every program in tests/zoo sets up one kind of state, is checkpointed and
# restored by stasis, and verifies its state after SIGTERM.
#
#   tests/run-zoo.sh [--no-cr | --cr-only] [--no-corrupt | --corrupt-only] [--predump N [--dedup]]
#                    [--lazy] [--cycles N]
#                    [--leave-running] [--keep] [--jobs N]
#                    [--container[=full|pidns|userns] | --overlay] [NAME...]
#
# For each program (default: all of tests/zoo/*.c; unsupported-fd gets no checkpoint case,
# tests/failure-cases.sh checks that its dump fails):
#   NAME/plain       run without checkpoint, SIGTERM: must print PASS
#   NAME/corrupt     once per corruption TAG (bin/NAME --list-corruptions): run with
#                    --corrupt=TAG, SIGTERM: must print FAIL naming TAG (else the check is
#                    defective and cannot fail)
#   NAME/checkpoint  start (setsid, stdout to a file, stdin /dev/null), wait for READY,
#                    stasis dump -t PID -D IMG -o dump.log -v4, the process must be gone,
#                    stasis restore -D IMG -d --pidfile F -o restore.log -v4, the same PID must
#                    run, let it run 0.5 s, SIGTERM, wait (20 s): its output must be exactly
#                    "READY\n" followed by one PASS line.
#                    shell-job instead runs as `shell-job | cat`, dump/restore get --shell-job,
#                    and restore's stdout is a fresh pipe to another cat: PASS must come
#                    through that one. tcp-* programs, netns-inet and netns-veth are dumped with
#                    --tcp-established, uprobes with --allow-uprobes. ext-unix is dumped with
#                    --ext-unix-sk and restored
#                    under `bin/ext-unix --restore-wrapper WORKDIR --`, which connects a new
#                    socket to its outside server and adds --inherit-fd for it (in a
#                    container flavour its server is started first, `ext-unix --daemon`;
#                    tcp-accept-queue's clients likewise, `tcp-accept-queue --daemon`).
# --predump N: the checkpoint case first runs N rounds of `stasis pre-dump` (0.1 s apart, the
# program running), each round's directory the parent of the next, then the dump with
# --prev-images-dir naming the last round; its log must show pages kept in the parent dump.
# $ZOO_TMPDIR/fork-after exists from the start and $ZOO_TMPDIR/round-1 once the first round is
# done (mem-dirty forks then). --dedup adds --auto-dedup to every round and the dump.
# --cycles N: the checkpoint case dumps and restores N times (default 1), each time after the
# restored program ran 0.5 s: a restored program must be as dumpable as it was first.
# --leave-running: the checkpoint case's dump has --leave-running and there is no restore: the
# same process must run on (not stopped) and PASS; with --cycles it is dumped so N times.
# --lazy: the restore is lazy (--lazy-pages: the program runs before its memory is in, its
# first touches served by the lazy-pages server the restore starts); restore.log must show
# that server's work; $ZOO_TMPDIR/lazy-restore exists.
# --container[=full] runs every program (and tests/container/ctr-state) as the init of a
# container made by tests/container/ctr-run, --container=pidns in a PID namespace only
# (tests/container/ctr-lib.sh says how), --container=userns as full in a user namespace of its
# own too: NAME/ctr-plain (pidns-plain) must PASS with pid 1
# of its PID namespace (run first for ctr-state and user-ns, whose corruptions run there too,
# else only after a failed checkpoint case: does the program pass there without C/R?);
# NAME/ctr-checkpoint (pidns-checkpoint) as above, except that the
# restored init has a new host pid (--pidfile), which must be pid 1 of a PID namespace
# running the same program, and that nothing stasis made stays mounted on the host;
# ctr-state also gets ctr-corrupt, ctr-checks-can-fail and one case per aspect of its
# container checked from the outside after the restore (ctr-hostname, ctr-mounts, ...).
# `make test-containers` runs both flavours; `make test-slow` the full one and a subset of pidns
# (tests/run-tests.sh).
# --overlay gives every case a work directory (where its program makes its files) that is an
# overlayfs, as a container's root is under Docker, Podman and containerd: a layer below
# holding a file "lowerfile" and a directory "sub" (the image's), the case's own layer above;
# unmounted at the end.
# --jobs N runs N programs at once, each program's cases in order in a job of its own, whose
# lines are printed whole when it ends; the programs of SERIAL below run alone once the others
# are done.
# --no-cr skips the checkpoint cases (while the engine is not there yet), --cr-only runs only
# them (for another build of stasis, under ASan/UBSan say); --no-corrupt skips the corrupt cases
# (make test: 638 of the host zoo's 950 program runs are corruptions, which prove the programs'
# checks, not stasis), --corrupt-only runs only them (make test-slow); --keep keeps the
# temporary directory. Environment: STASIS (default ./stasis), ZOO_KEEP=1.
# Output: one line per case ("ok NAME/what" or "FAIL NAME/what: reason"), then
# "N passed, N failed"; exit status non-zero if anything failed.

# shellcheck source-path=SCRIPTDIR
set -u
# shellcheck source=zoo/lib.sh
. "$(dirname "$0")/zoo/lib.sh"

NO_CR=0
CR_ONLY=0
CORRUPT=yes # no: no corrupt cases, only: nothing else (host flavour)
PREDUMP=0
CYCLES=1
DEDUP=()
LAZY=()
LEAVE=()
CTR=""       # the container flavour: full, pidns, or none
CASE_TAG=""  # ctr- or pidns- before the case names of a container flavour
CTR_DUMP_OPTS=()    # a container flavour's dump and restore options
CTR_RESTORE_OPTS=()
JOBS=1
NAMES=()
while [ $# -gt 0 ]; do
	a=$1
	shift
	case $a in
	--predump)
		PREDUMP=${1:-}
		shift
		[[ $PREDUMP =~ ^[0-9]+$ ]] || { echo "--predump needs a number of rounds" >&2; exit 2; }
		;;
	--cycles)
		CYCLES=${1:-}
		shift
		[[ $CYCLES =~ ^[1-9][0-9]*$ ]] || { echo "--cycles needs a number of rounds" >&2; exit 2; }
		;;
	--jobs)
		JOBS=${1:-}
		shift
		[[ $JOBS =~ ^[1-9][0-9]*$ ]] || { echo "--jobs needs a number of programs at once" >&2; exit 2; }
		;;
	--dedup) DEDUP=(--auto-dedup) ;;
	--lazy) LAZY=(--lazy-pages) ;;
	--leave-running) LEAVE=(--leave-running) ;;
	--no-cr) NO_CR=1 ;;
	--cr-only) CR_ONLY=1 ;;
	--no-corrupt) CORRUPT=no ;;
	--corrupt-only) CORRUPT=only ;;
	--keep | -k) ZOO_KEEP=1 ;;
	--container | --container=full) CTR=full ;;
	--container=pidns) CTR=pidns ;;
	--container=userns) CTR=userns ;;
	--overlay) export ZOO_OVERLAY=1 ;;
	-h | --help)
		sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	-*)
		echo "unknown option $a" >&2
		exit 2
		;;
	*) NAMES+=("$a") ;;
	esac
done

if [ -n "$CTR" ] && [ -n "${ZOO_OVERLAY:-}" ]; then
	echo "--overlay is for programs on the host: not with --container" >&2
	exit 2
fi
zoo_setup_tmp
if ! build_zoo; then
	N_FAIL=1
	summary
	exit 1
fi
if [ -n "$CTR" ]; then
	# shellcheck source=container/ctr-lib.sh
	. "$ZOO_ROOT/tests/container/ctr-lib.sh"
	if ! ctr_setup "$CTR"; then
		N_FAIL=1
		summary
		exit 1
	fi
	case $CTR in full) CASE_TAG=ctr- ;; pidns) CASE_TAG=pidns- ;; *) CASE_TAG=userns- ;; esac
fi
if [ ${#NAMES[@]} -eq 0 ]; then
	for f in "$ZOO_DIR"/*.c; do
		NAMES+=("$(basename "$f" .c)")
	done
	[ "$CTR" = full ] && NAMES+=(ctr-state)
fi
# programs whose dump must fail: only their plain and corrupt runs here (the dump is
# tests/failure-cases.sh's business)
NO_CHECKPOINT=" unsupported-fd shared-tables "
# programs whose state a PID namespace's init cannot have (the kernel drops every stop signal
# an init sends itself): not run in the container flavours (said, counted neither way)
NOT_AS_INIT=" stopped-root "
# programs whose dumped root is a daemon they make (a double fork, its pid in the pid file),
# not the program started: a container's init is the program started (said, counted neither way)
DAEMON_ROOT=" daemon-session "
# programs that are the init of a container in a user namespace of their own: run only in the
# userns flavour, their corruptions there too
USERNS_ONLY=" user-ns "
# programs with a peer outside the tree, a daemon (PROG --daemon DIR) that the init of a PID
# namespace cannot start: started first in the container flavours
OUTSIDE_DAEMON=" ext-unix tcp-accept-queue "
# programs whose outside peer talks to them over the host's loopback: not run in the flavours
# with a network namespace of their own (full, userns; said, counted neither way; a client
# across a veth into the tree's own namespace is tests/net/run-netns.sh's)
HOST_NET_ONLY=" tcp-accept-queue "
# programs whose dump --leave-running must refuse (what it would read from them cannot be put
# back: tests/failure-cases.sh checks each refusal): not run with --leave-running (said,
# counted neither way)
LEAVE_REFUSED=" tcp-reset udp unix-backlog "
# programs that find their own processes in /proc by the pids their PID namespace gives them:
# the pidns flavour keeps the host's /proc, where those pids are others' (said, counted neither
# way; the full flavour runs them with a /proc of their own)
OWN_PROC_ONLY=" file-leases inotify-nested-mnt ns-files-tree netns-inet netns-private netns-mounted netns-veth zombie-helper "
# programs run alone with --jobs (after the others): hugetlb grows the host's pool of huge
# pages for itself; those with ptys need their /dev/pts/N back at the restore, which another
# program's new pty may have taken meanwhile; mount-ns-pivot's parent checks that the host's
# mount table is as it was (others' mounts come and go)
SERIAL=" hugetlb file-attrs pty pty-hangup pty-locked mount-ns-pivot "
# programs that need the host's /dev (a container's has no /dev/kmsg to log to), or name their
# binary by its host path (uprobes): host flavour only
HOST_ONLY=" kmsg-reader uprobes "
# programs whose system calls a container engine's default seccomp profile refuses (io_uring:
# Docker's, Podman's and ctr-run's): not run in the flavours with that profile (full, userns;
# said, counted neither way), the pidns flavour runs them
SECCOMP_REFUSED=" io-uring io-uring-ring-fds io-uring-buffers io-uring-files io-uring-inflight "

# ---------------------------------------------------------------------------------------
# start_prog NAME DIR [ARGS...]: zoo_start, in a container with a container flavour
start_prog() {
	if [ -n "$CTR" ]; then
		ctr_start "$@"
	else
		zoo_start "$@"
	fi
}

case_plain() {
	local name=$1 d=$ZOO_TMP/$1.${CASE_TAG}plain c=$1/${CASE_TAG}plain
	if ! start_prog "$name" "$d"; then
		result_fail "$c" "$ZERR"
		return
	fi
	sleep 0.3
	if ! zoo_stop "$ZPID" "$d" "$d/out"; then
		result_fail "$c" "$ZERR"
		return
	fi
	if [[ $ZVERDICT != PASS* ]]; then
		result_fail "$c" "without any checkpoint: $ZVERDICT"
		return
	fi
	result_ok "$c"
}

case_corrupt() {
	local name=$1 tags tag bad="" n=0 d c=$1/${CASE_TAG}corrupt
	tags=$("$(zoo_prog "$name")" --list-corruptions 2>&1)
	if [ -z "$tags" ]; then
		result_fail "$c" "the program lists no corruptions"
		return
	fi
	for tag in $tags; do
		n=$((n + 1))
		d=$ZOO_TMP/$name.${CASE_TAG}corrupt-$tag
		if ! start_prog "$name" "$d" "--corrupt=$tag"; then
			bad="$bad; $tag: $ZERR"
			continue
		fi
		sleep 0.2
		if ! zoo_stop "$ZPID" "$d" "$d/out"; then
			bad="$bad; $tag: $ZERR"
			continue
		fi
		case $ZVERDICT in
		"FAIL: $tag: "* | "FAIL: "*"; $tag: "*) ;;
		FAIL:*) bad="$bad; $tag: FAIL does not name '$tag:' ($ZVERDICT)" ;;
		*) bad="$bad; $tag: the check cannot fail, got '$ZVERDICT'" ;;
		esac
		[ -n "$CTR" ] && ctr_case_done "$name" "$d"
	done
	if [ -n "$bad" ]; then
		result_fail "$c" "${bad#; }"
	else
		result_ok "$c ($n: $(echo "$tags" | tr '\n' ' ' | sed 's/ $//'))"
	fi
}

cr_logs() { # cr_logs DIR: what to show when a checkpoint case fails
	show_tail "$1/pre-dump.out" "$1/dump.out" "$1/img/dump.log" "$1/restore.out" "$1/img/restore.log" "$1/out" "$1/out2" "$1/err"
}

# pre_dumps DIR PID SHELL_ARGS...: --predump rounds into DIR/pre-1..N; ZPARENT gets the
# dump's --prev-images-dir arguments. Returns 1 (reason in ZERR) if a round failed.
pre_dumps() {
	local d=$1 pid=$2 k parent=()
	shift 2
	ZPARENT=()
	for ((k = 1; k <= PREDUMP; k++)); do
		mkdir -p "$d/pre-$k"
		run_stasis "$d/pre-dump.out" 60 pre-dump -t "$pid" -D "$d/pre-$k" "${parent[@]}" "${DEDUP[@]}" "$@" \
			-o pre-dump.log -v4
		if [ "$ZRC" -ne 0 ]; then
			ZERR="stasis pre-dump round $k exited $ZRC"
			show_tail "$d/pre-$k/pre-dump.log"
			return 1
		fi
		[ $k = 1 ] && touch "$d/work/round-1"
		parent=(--prev-images-dir "../pre-$k")
		sleep 0.1
	done
	ZPARENT=("${parent[@]}")
	return 0
}

# checkpoint_round: one dump and restore of case_checkpoint's program (its variables: name, d,
# c, pid, shell, wrap; pid becomes the restored one's). Returns 1 when it failed, reported.
checkpoint_round() {
	rm -f "$d/restore.rc" "$d/restored.pid"
	sleep 0.3
	local started rpid stopped
	started=$(proc_starttime "$pid")
	stopped=$(proc_state "$pid")
	[ -n "$CTR" ] && ctr_before_dump "$name" "$d" "$pid"

	ZPARENT=()
	if [ "$PREDUMP" -gt 0 ] && ! pre_dumps "$d" "$pid" "${shell[@]}" "${CTR_DUMP_OPTS[@]}"; then
		result_fail "$c" "$ZERR"
		kill_ours "$pid"
		return 1
	fi
	run_stasis "$d/dump.out" 120 dump -t "$pid" -D "$d/img" "${shell[@]}" "${ZPARENT[@]}" "${DEDUP[@]}" \
		"${LEAVE[@]}" "${CTR_DUMP_OPTS[@]}" -o dump.log -v4
	if [ "$ZRC" -ne 0 ]; then
		result_fail "$c" "stasis dump exited $ZRC"
		cr_logs "$d"
		kill_ours "$pid"
		return 1
	fi
	if [ ${#LEAVE[@]} -gt 0 ]; then
		# the same process runs on (not restored), stopped only if it was (job control)
		if ! proc_alive "$pid" || [ "$(proc_starttime "$pid")" != "$started" ] ||
			{ [ "$(proc_state "$pid")" = T ] && [ "$stopped" != T ]; }; then
			result_fail "$c" "pid $pid does not run on after dump --leave-running (state $(proc_state "$pid"))"
			cr_logs "$d"
			kill_ours "$pid"
			return 1
		fi
		return 0
	fi
	if [ "$PREDUMP" -gt 0 ] && ! grep -q 'pages_in_parent_dump=[1-9]' "$d/img/dump.log"; then
		result_fail "$c" "after $PREDUMP pre-dumps the dump kept no page in its parent"
		cr_logs "$d"
		kill_ours "$pid"
		return 1
	fi
	# between dump and restore, a program may check its images or change the world as a reboot
	# would: tests/zoo/NAME.after-dump IMGDIR (STASIS is set, ZOO_ROUND the round of --cycles)
	if [ -x "$ZOO_DIR/$name.after-dump" ] &&
		! STASIS=$STASIS ZOO_ROUND=$cycle "$ZOO_DIR/$name.after-dump" "$d/img" >"$d/after-dump.out" 2>&1; then
		result_fail "$c" "after the dump: $(tail -n 1 "$d/after-dump.out")"
		kill_ours "$pid"
		return 1
	fi
	if ! wait_until 10 not_alive "$pid"; then
		result_fail "$c" "pid $pid still running after a dump without --leave-running"
		cr_logs "$d"
		kill_ours "$pid"
		return 1
	fi
	if [ -n "$ZCAT" ]; then
		wait_until 10 not_alive "$ZCAT" || kill_ours "$ZCAT"
	fi
	if ! wait_until 10 pid_free "$pid"; then
		result_fail "$c" "pid $pid not free after the dump (zombie not reaped?)"
		return 1
	fi
	[ -n "$CTR" ] && ctr_after_dump "$name" "$d"

	if [ "$name" = shell-job ]; then
		# restore's stdout is a new pipe to a new cat; stasis (with -d) exits, cat ends when
		# the restored program exits
		{
			timeout -k 5 60 "$STASIS" restore -D "$d/img" -d --shell-job --pidfile "$d/restored.pid" \
				"${LAZY[@]}" "${CTR_RESTORE_OPTS[@]}" -o restore.log -v4 </dev/null 2>"$d/restore.out"
			echo $? >"$d/restore.rc"
		} | cat >"$d/out2" &
		ZCAT=$!
		disown
		track_pid "$ZCAT"
		wait_until 70 file_nonempty "$d/restore.rc"
		ZRC=$(cat "$d/restore.rc" 2>/dev/null || echo "none")
	else
		ZCAT=""
		ZOO_WRAP=("${wrap[@]}")
		run_stasis "$d/restore.out" 60 restore -D "$d/img" -d --pidfile "$d/restored.pid" "${LAZY[@]}" \
			"${CTR_RESTORE_OPTS[@]}" -o restore.log -v4
		ZOO_WRAP=()
	fi
	track_pid "$pid"
	ZLAUNCH=""
	if [ "$ZRC" != 0 ]; then
		result_fail "$c" "stasis restore exited $ZRC"
		cr_logs "$d"
		drop_net_lock "$pid"
		kill_ours "$pid"
		kill_ours "$ZCAT"
		return 1
	fi
	rpid=$(cat "$d/restored.pid" 2>/dev/null)
	if [ -n "$CTR" ]; then
		# a container's init comes back with a new host pid
		[ -n "$rpid" ] && track_pid "$rpid"
		if ! ctr_check_restored "$d" "$rpid"; then
			result_fail "$c" "$ZERR"
			cr_logs "$d"
			kill_ours "$rpid"
			kill_ours "$ZCAT"
			return 1
		fi
		pid=$rpid
		if ! ctr_after_restore "$name" "$d" "$pid"; then
			result_fail "$c" "$ZERR"
			kill_ours "$pid"
			kill_ours "$ZCAT"
			return 1
		fi
	else
		if [ "$rpid" != "$pid" ]; then
			result_fail "$c" "--pidfile says '$rpid', expected $pid"
			cr_logs "$d"
			kill_ours "$pid"
			kill_ours "$rpid"
			kill_ours "$ZCAT"
			return 1
		fi
		if ! proc_alive "$pid"; then
			result_fail "$c" "restored pid $pid is not running (output: $(tail -c 300 "$d/out"))"
			cr_logs "$d"
			kill_ours "$ZCAT"
			return 1
		fi
		if [ "$(proc_starttime "$pid")" = "$started" ]; then
			result_fail "$c" "pid $pid has the start time of the dumped process: it was never replaced"
			kill_ours "$pid"
			kill_ours "$ZCAT"
			return 1
		fi
		if ! pid_is_ours "$pid"; then
			result_fail "$c" "pid $pid runs $(readlink "/proc/$pid/exe"), not the zoo program"
			cr_logs "$d"
			kill_ours "$ZCAT"
			return 1
		fi
	fi
	return 0
}

case_checkpoint() {
	local name=$1 d=$ZOO_TMP/$1.${CASE_TAG}cr c=$1/${CASE_TAG}checkpoint pid shell=()
	mkdir -p "$d/img"
	if [ ! -x "$STASIS" ]; then
		result_fail "$c" "no stasis binary at $STASIS (run make)"
		return
	fi
	[ "$PREDUMP" -gt 0 ] && mkdir -p "$d/work" && touch "$d/work/fork-after"
	# (a lazy restore shares no private page with a forked process: cow then does not ask it)
	[ ${#LAZY[@]} -gt 0 ] && mkdir -p "$d/work" && touch "$d/work/lazy-restore"
	[ ${#LEAVE[@]} -gt 0 ] && mkdir -p "$d/work" && touch "$d/work/left-running"
	if [[ $OUTSIDE_DAEMON == *" $name "* ]] && [ -n "$CTR" ]; then
		# its daemon must be outside the tree: a PID namespace's init cannot start one there
		mkdir -p "$d/work"
		if ! "$ZOO_BIN/$name" --daemon "$d/work"; then
			result_fail "$c" "$name --daemon: no daemon"
			return
		fi
		track_pid "$(cat "$d/work/daemon.pid")"
	fi
	if ! start_prog "$name" "$d"; then
		result_fail "$c" "$ZERR"
		return
	fi
	pid=$ZPID
	[ "$name" = shell-job ] && shell=(--shell-job)
	[[ $name == file-l* ]] && shell=(--file-locks) # file-locks, file-leases
	[[ $name == tcp-* || $name == netns-inet || $name == netns-veth ]] && shell=(--tcp-established)
	[ "$name" = uprobes ] && shell=(--allow-uprobes)
	local wrap=()
	if [ "$name" = ext-unix ]; then
		shell=(--ext-unix-sk)
		wrap=("$ZOO_BIN/ext-unix" --restore-wrapper "$d/work" --)
	fi
	local cycle
	for ((cycle = 1; cycle <= CYCLES; cycle++)); do
		# each later round dumps the restored program again (its images so far kept as img.N)
		[ "$cycle" -gt 1 ] && mv "$d/img" "$d/img.$((cycle - 1))" && mkdir -p "$d/img"
		checkpoint_round || return
		sleep 0.5
	done

	local out=$d/out
	[ "$name" = shell-job ] && [ ${#LEAVE[@]} -eq 0 ] && out=$d/out2
	if ! zoo_stop "$pid" "$d" "$out"; then
		result_fail "$c" "$ZERR"
		cr_logs "$d"
		return
	fi
	if [[ $ZVERDICT != PASS* ]]; then
		result_fail "$c" "$ZVERDICT"
		cr_logs "$d"
		return
	fi
	# the output file must read exactly READY + verdict (fd 1 offset restored)
	local expect
	if [ "$name" = shell-job ] && [ ${#LEAVE[@]} -eq 0 ]; then
		expect=$(printf 'READY\n')
		if [ "$(cat "$d/out")" != "$expect" ] || [ "$(cat "$d/out2")" != "$ZVERDICT" ]; then
			result_fail "$c" "pipe output: before '$(head -c 200 "$d/out")', after '$(head -c 200 "$d/out2")'"
			return
		fi
	else
		expect=$(printf 'READY\n%s' "$ZVERDICT")
		if [ "$(cat "$d/out")" != "$expect" ] || [ "$(tail -c 1 "$d/out" | od -An -c | tr -d ' ')" != '\n' ]; then
			result_fail "$c" "stdout file is not 'READY' + verdict: '$(head -c 200 "$d/out" | tr '\n\0' '|@')'"
			return
		fi
	fi
	if [ ${#LAZY[@]} -gt 0 ] &&
		! wait_until 20 grep -q 'lazy-pages: [0-9]* processes, [0-9]* pages copied in' "$d/img/restore.log"; then
		result_fail "$c" "a lazy restore, but restore.log shows no lazy-pages server at work"
		cr_logs "$d"
		return
	fi
	result_ok "$c${ZVERDICT#PASS}"
}

# one program: its cases in the flavour asked for
run_cases() {
	local name=$1
	if [ -z "$CTR" ]; then
		if [ "$CR_ONLY" = 0 ]; then
			[ "$CORRUPT" = only ] || case_plain "$name"
			remove_left_shared_memory
			[ "$CORRUPT" = no ] || case_corrupt "$name"
			remove_left_shared_memory
		fi
		[ "$CORRUPT" = only ] || [ "$NO_CR" = 1 ] || [[ $NO_CHECKPOINT == *" $name "* ]] || case_checkpoint "$name"
		remove_left_shared_memory
		return
	fi
	# containers: the programs' corruptions were proven on the host; ctr-state's and the
	# user-namespace programs' here. A plain run first for those and with --no-cr; else only
	# once a checkpoint case has failed: does the program pass in the container without C/R?
	local plain_first=0 failed_before=$N_FAIL
	[ "$name" = ctr-state ] || [[ $USERNS_ONLY == *" $name "* ]] || [ "$NO_CR" = 1 ] ||
		[[ $NO_CHECKPOINT == *" $name "* ]] && plain_first=1
	if [ "$CR_ONLY" = 0 ] && [ "$plain_first" = 1 ]; then
		case_plain "$name"
		ctr_case_done "$name" "$ZOO_TMP/$name.${CASE_TAG}plain"
		if [ "$name" = ctr-state ]; then
			# (its corruptions need a full container's rights: proven in the full flavour)
			[ "$CTR" = full ] && case_corrupt "$name"
			ctr_case_checks_fail
		fi
		[[ $USERNS_ONLY == *" $name "* ]] && case_corrupt "$name"
	fi
	if [ "$NO_CR" = 0 ] && [[ $NO_CHECKPOINT != *" $name "* ]]; then
		case_checkpoint "$name"
		ctr_case_done "$name" "$ZOO_TMP/$name.${CASE_TAG}cr"
		[[ $OUTSIDE_DAEMON == *" $name "* ]] &&
			kill_ours "$(cat "$ZOO_TMP/$name.${CASE_TAG}cr/work/daemon.pid" 2>/dev/null)"
	fi
	if [ "$CR_ONLY" = 0 ] && [ "$plain_first" = 0 ] && [ "$N_FAIL" != "$failed_before" ]; then
		case_plain "$name"
		ctr_case_done "$name" "$ZOO_TMP/$name.${CASE_TAG}plain"
	fi
}

# ---- --jobs: programs at once ----------------------------------------------------------------
declare -A JOB_NAME=() # pid of a running job -> its program
JOB_DIR=$ZOO_TMP/jobs
# job_start NAME: run_cases NAME in a job of its own; its lines, counts and started pids into
# JOB_DIR/NAME.*
job_start() {
	local name=$1
	mkdir -p "$JOB_DIR"
	(
		N_PASS=0 N_FAIL=0 ZOO_PIDS=()
		# (a TERM waits for the command running, stasis say, as it does in the run itself)
		trap 'printf "%s\n" "${ZOO_PIDS[@]}" >"$JOB_DIR/$name.pids"; exit 143' TERM
		run_cases "$name" >"$JOB_DIR/$name.out" 2>&1
		printf '%s\n' "${ZOO_PIDS[@]}" >"$JOB_DIR/$name.pids"
		echo "$N_PASS $N_FAIL" >"$JOB_DIR/$name.counts"
	) &
	JOB_NAME[$!]=$name
}
# job_wait: one job ended (job_ended)
job_wait() {
	local pid=""
	wait -n -p pid
	if [ -n "$pid" ] && [ -n "${JOB_NAME[$pid]:-}" ]; then
		job_ended "$pid"
		return
	fi
	for pid in "${!JOB_NAME[@]}"; do # (none left to wait for: those gone)
		kill -0 "$pid" 2>/dev/null || job_ended "$pid"
	done
}
# job_ended PID: its lines printed, its counts added, its pids ours to clean up
job_ended() {
	local name=${JOB_NAME[$1]} p f
	unset "JOB_NAME[$1]"
	cat "$JOB_DIR/$name.out"
	mapfile -t -O ${#ZOO_PIDS[@]} ZOO_PIDS 2>/dev/null <"$JOB_DIR/$name.pids"
	if read -r p f <"$JOB_DIR/$name.counts" 2>/dev/null; then
		N_PASS=$((N_PASS + p)) N_FAIL=$((N_FAIL + f))
	else
		result_fail "$name" "its job ended before its cases did"
	fi
}
# (at exit, from zoo_cleanup: the jobs still running stopped, their programs then killed)
zoo_jobs_stop() {
	local pid
	for pid in "${!JOB_NAME[@]}"; do
		kill -TERM "$pid" 2>/dev/null
	done
	for pid in "${!JOB_NAME[@]}"; do
		wait "$pid"
		mapfile -t -O ${#ZOO_PIDS[@]} ZOO_PIDS 2>/dev/null <"$JOB_DIR/${JOB_NAME[$pid]}.pids"
	done
}
LATER=()

for name in "${NAMES[@]}"; do
	if [ ! -f "$ZOO_DIR/$name.c" ] && { [ "$CTR" != full ] && [ "$CTR" != userns ] || [ "$name" != ctr-state ]; }; then
		result_fail "$name" "no such zoo program (tests/zoo/$name.c)"
		continue
	fi
	if [ "$CTR" != userns ] && [[ $USERNS_ONLY == *" $name "* ]]; then
		echo "not run: $name (the init of a container in a user namespace: --container=userns)"
		continue
	fi
	if { [ "$CTR" = full ] || [ "$CTR" = userns ]; } && [[ $HOST_NET_ONLY == *" $name "* ]]; then
		echo "not run: $name (its peer outside the tree cannot reach a container's own network namespace over loopback: tests/net/run-netns.sh)"
		continue
	fi
	if [ -n "$CTR" ] && [[ $HOST_ONLY == *" $name "* ]]; then
		echo "not run: $name (it needs the host's /dev/kmsg)"
		continue
	fi
	if { [ "$CTR" = full ] || [ "$CTR" = userns ]; } && [[ $SECCOMP_REFUSED == *" $name "* ]]; then
		echo "not run: $name (a container engine's default seccomp profile refuses its system calls, as the container's does; --container=pidns runs it)"
		continue
	fi
	if [ "$CTR" = pidns ] && [[ $OWN_PROC_ONLY == *" $name "* ]]; then
		echo "not run: $name (it looks for its processes in /proc by their pids in its PID namespace; the host's /proc shows others there)"
		continue
	fi
	if [ -n "$CTR" ] && [[ $NOT_AS_INIT == *" $name "* ]]; then
		echo "not run: $name (a namespace's init cannot be stopped by a signal it sends itself)"
		continue
	fi
	if [ ${#LEAVE[@]} -gt 0 ] && [[ $LEAVE_REFUSED == *" $name "* ]]; then
		echo "not run: $name (its dump with --leave-running must refuse: tests/failure-cases.sh)"
		continue
	fi
	if [ -n "$CTR" ] && [[ $DAEMON_ROOT == *" $name "* ]]; then
		echo "not run: $name (its dumped root is a daemon it makes, not a namespace's init)"
		continue
	fi
	if [ "$JOBS" = 1 ]; then
		run_cases "$name"
	elif [[ $SERIAL == *" $name "* ]]; then
		LATER+=("$name")
	else
		while [ ${#JOB_NAME[@]} -ge "$JOBS" ]; do job_wait; done
		job_start "$name"
	fi
done
while [ ${#JOB_NAME[@]} -gt 0 ]; do job_wait; done
for name in "${LATER[@]}"; do
	run_cases "$name"
done
summary
