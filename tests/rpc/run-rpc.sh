#!/bin/bash
# The engines' face of stasis: criu's RPC (stasis swrk), libcriu, --action-script, and real
# runc. Every case starts `stasis swrk` the way engines do and checks real outcomes: the
# answers on the wire, the processes (dumped ones gone or still running, restored ones with
# their pid and their own PASS verdict after SIGTERM), the files left in the directories.
#
#   tests/rpc/run-rpc.sh [--keep]
#
# rpc/version, rpc/check, rpc/features   VERSION 3.17.0 "stasis", CHECK, FEATURE_CHECK (as
#                          `stasis check --feature` answers; memory tracking, lazy pages: yes)
# rpc/dump-restore         composite (5 processes) dumped and restored through images_dir_fd
#                          and work_dir_fd that only the client holds (close-on-exec, as runc's):
#                          log and stats-dump / stats-restore in the work directory, decoded
# rpc/notify               notify_scripts: every notification in criu's order, each answered;
#                          the restored tree is swrk's child (WAIT_PID gets its exit status)
# rpc/notify-refused       an engine answering post-dump with a failure: the dump fails naming
#                          it, the program runs on unharmed, no images remain
# rpc/run-fails            a dump failing midway (STASIS_FAULT): cr_errno and cr_errmsg with the
#                          engine's first and last error, the program untouched, no images; a
#                          restore refused up front names the missing kernel feature
# rpc/refused              lazy_pages on a dump without ps, inherit_fd of a closed fd,
#                          PAGE_SERVER without ps: refused
#                          by name, the program untouched
# rpc/malformed            bytes that are not a criu_req: an error answer, then VERSION is
#                          answered on the same connection
# rpc/two-requests         one connection, two DUMPs: leave_running, notify_scripts and the log
#                          file of the first do not reach the second
# rpc/config-file          config_file applies after the RPC options (leave-running in it wins;
#                          its log-file=NAME, criu's NAME=ARG form, names the log)
# libcriu/*                a C program linked with libcriu.so.2: version, check, features, a
#                          refused dump (errno and message), dump with a notify callback, and
#                          criu_restore_child (the restored program is its child, PASS)
# cli/action-script        --action-script runs at each point with CRTOOLS_SCRIPT_ACTION (and
#                          CRTOOLS_INIT_PID at restore); a failing script fails the dump
# runc/checkpoint-restore  runc 1.1 with stasis as its criu (--criu): a busybox container that
#                          counts on its stdout (a pipe, as Docker's shim gives it) is checkpointed
#                          (--work-path: log and stats there) and restored; the count goes on
# runc/checkpoint-refused  the same container with its stdout a file of the host: the dump fails
#                          with stasis's message naming the container's init and that fd, the
#                          container runs on
# ... (ASan)               malformed, two-requests and notify again with stasis under ASan/UBSan
# Environment: STASIS (default ./stasis). Output: "ok"/"FAIL" lines, then "N passed, N failed".

# shellcheck source-path=SCRIPTDIR
set -u
# shellcheck source=../zoo/lib.sh
. "$(dirname "$0")/../zoo/lib.sh"
[ "${1:-}" = --keep ] && ZOO_KEEP=1

RPC_DIR=$ZOO_ROOT/tests/rpc
CLIENT=$RPC_DIR/bin/rpc-client
LIBC_CLIENT=$RPC_DIR/bin/libcriu-client
RUNC_IDS=()

rpc_cleanup() {
	local p stasis_exe
	stasis_exe=$(readlink -f "$STASIS")
	for p in /proc/[0-9]*; do # a stasis swrk still running in one of our directories
		[ "$(readlink "$p/exe" 2>/dev/null)" = "$stasis_exe" ] || continue
		case $(readlink "$p/cwd" 2>/dev/null) in "$ZOO_TMP"/*) kill -KILL "${p#/proc/}" 2>/dev/null ;; esac
	done
	for p in "${RUNC_IDS[@]}"; do
		runc --root "$ZOO_TMP/runc-state" kill "$p" KILL >/dev/null 2>&1
		runc --root "$ZOO_TMP/runc-state" delete -f "$p" >/dev/null 2>&1
	done
	zoo_cleanup
}

zoo_setup_tmp
trap rpc_cleanup EXIT
if ! build_zoo || ! make -s -C "$RPC_DIR" >"$ZOO_TMP/rpc-build.log" 2>&1; then
	echo "FAIL build: $(tail -n 5 "$ZOO_TMP/rpc-build.log" 2>/dev/null)"
	N_FAIL=1
	summary
	exit 1
fi

# rpc OUT REQUEST...: the raw client, its answers in OUT
rpc() {
	local out=$1
	shift
	timeout -k 5 120 "$CLIENT" "$STASIS" "$@" >"$out" 2>&1
}
# has FILE REGEX: does a line of FILE match?
has() { grep -q -E -- "$2" "$1" 2>/dev/null; }
show() { sed 's/^/    | /' "$1" | tail -n 20; }
# start NAME DIR: a zoo program, ZPID set; fails the case (returns 1) if it does not start
start() {
	if ! zoo_start "$1" "$2"; then
		result_fail "$CASE" "$ZERR"
		return 1
	fi
	sleep 0.3
}
# verdict PID DIR: SIGTERM the restored program, its PASS line or the case fails
verdict() {
	if ! zoo_stop "$1" "$2" "$2/out" || [[ $ZVERDICT != PASS* ]]; then
		result_fail "$CASE" "the restored program: ${ZERR:-$ZVERDICT}"
		return 1
	fi
}
gone() { wait_until 10 not_alive "$1" && wait_until 10 pid_free "$1"; }
untouched() { # untouched PID STARTTIME: still running, the same process, not traced
	proc_alive "$1" && [ "$(proc_starttime "$1")" = "$2" ] && [ "$(tracer_of "$1")" = 0 ]
}

# ---------------------------------------------------------------------------------------
CASE=rpc/version
rpc "$ZOO_TMP/version.out" version
if has "$ZOO_TMP/version.out" '^version success=1 version=3\.17\.0 name=stasis$' &&
	has "$ZOO_TMP/version.out" '^swrk exit=0$'; then
	result_ok "$CASE"
else
	result_fail "$CASE" "answer:" && show "$ZOO_TMP/version.out"
fi

CASE=rpc/check
rpc "$ZOO_TMP/check.out" check
if has "$ZOO_TMP/check.out" '^check success=1$'; then result_ok "$CASE"; else
	result_fail "$CASE" "answer:" && show "$ZOO_TMP/check.out"
fi

# what `stasis check --feature NAME` says for criu's names of the three (0 or 1)
cli_feature() { "$STASIS" check --feature "$1" >/dev/null 2>&1 && echo 1 || echo 0; }
FEATURES="mem_track:$(cli_feature mem_dirty_track),lazy_pages:$(cli_feature lazy_pages),pidfd_store:$(cli_feature pidfd_store)"
CASE="rpc/features ($FEATURES)"
rpc "$ZOO_TMP/features.out" features
if has "$ZOO_TMP/features.out" "^features success=1 features=$FEATURES\$" &&
	has "$ZOO_TMP/features.out" 'mem_track:1,lazy_pages:1'; then
	result_ok "$CASE"
else
	result_fail "$CASE" "answer:" && show "$ZOO_TMP/features.out"
fi

case_dump_restore() {
	CASE=rpc/dump-restore
	local d=$ZOO_TMP/dr pid
	mkdir -p "$d/img" "$d/wd"
	start composite "$d" || return
	pid=$ZPID
	rpc "$d/dump.out" "dump,images=$d/img,work=$d/wd,pid=$pid,log=dump.log,level=4"
	if ! has "$d/dump.out" '^dump success=1$' || ! gone "$pid"; then
		result_fail "$CASE" "dump (pid $pid $(proc_alive "$pid" && echo "still running")):"
		show "$d/dump.out"
		show "$d/wd/dump.log"
		return
	fi
	if [ ! -s "$d/img/inventory.img" ] || [ ! -s "$d/wd/dump.log" ] || [ -e "$d/img/dump.log" ] ||
		! "$CLIENT" --stats "$d/wd/stats-dump" >"$d/stats-dump.txt" ||
		! has "$d/stats-dump.txt" 'frozen_time=[1-9][0-9]* .*pages_written=[1-9]'; then
		result_fail "$CASE" "after the dump: images, dump.log and stats-dump in the work directory:"
		find "$d/img" "$d/wd" -maxdepth 1 | sed 's/^/    | /'
		show "$d/stats-dump.txt"
		return
	fi
	rpc "$d/restore.out" "restore,images=$d/img,work=$d/wd,log=restore.log,level=4"
	if ! has "$d/restore.out" "^restore success=1 pid=$pid\$" || ! proc_alive "$pid"; then
		result_fail "$CASE" "restore:"
		show "$d/restore.out"
		show "$d/wd/restore.log"
		kill_ours "$pid"
		return
	fi
	track_pid "$pid"
	if ! "$CLIENT" --stats "$d/wd/stats-restore" >"$d/stats-restore.txt" ||
		! has "$d/stats-restore.txt" 'restore_time=[1-9][0-9]* pages_restored=[1-9]'; then
		result_fail "$CASE" "stats-restore:" && show "$d/stats-restore.txt"
		kill_ours "$pid"
		return
	fi
	sleep 0.5
	verdict "$pid" "$d" || return
	result_ok "$CASE ($(cat "$d/stats-dump.txt"))"
}
case_dump_restore

case_notify() { # case_notify BINARY LABEL
	CASE="rpc/notify$2"
	local d=$ZOO_TMP/notify$2 pid
	mkdir -p "$d/img"
	start mem-anon "$d" || return
	pid=$ZPID
	timeout -k 5 120 "$CLIENT" "$1" "dump,images=$d/img,pid=$pid,notify=1,log=dump.log,level=4" \
		>"$d/dump.out" 2>&1
	local want_dump="notify pre-dump pid=$pid
notify network-lock pid=$pid
notify post-dump pid=$pid
dump success=1
swrk exit=0"
	if [ "$(cat "$d/dump.out")" != "$want_dump" ] || ! gone "$pid"; then
		result_fail "$CASE" "dump: expected the three dump notifications in criu's order, got:"
		show "$d/dump.out"
		return
	fi
	# the restore and WAIT_PID on one connection: the tree is swrk's child until it exits
	timeout -k 5 120 "$CLIENT" "$1" "restore,images=$d/img,notify=1,log=restore.log,level=4" \
		"wait_pid,pid=$pid" >"$d/restore.out" 2>&1 &
	local client=$!
	if ! wait_until 30 has "$d/restore.out" '^restore success='; then
		result_fail "$CASE" "no restore answer:" && show "$d/restore.out"
		kill "$client" 2>/dev/null
		return
	fi
	track_pid "$pid"
	sleep 0.5
	verdict "$pid" "$d" || { kill "$client" 2>/dev/null; return; }
	wait "$client"
	local want_restore="notify pre-restore pid=0
notify setup-namespaces pid=$pid
notify post-setup-namespaces pid=$pid
notify post-restore pid=$pid
notify network-unlock pid=$pid
notify pre-resume pid=$pid
notify post-resume pid=$pid
restore success=1 pid=$pid
wait_pid success=1 status=0
swrk exit=0"
	if [ "$(cat "$d/restore.out")" != "$want_restore" ]; then
		result_fail "$CASE" "restore: expected the restore notifications in criu's order and WAIT_PID's exit status 0, got:"
		show "$d/restore.out"
		return
	fi
	result_ok "$CASE"
}
case_notify "$STASIS" ""

case_notify_refused() {
	CASE=rpc/notify-refused
	local d=$ZOO_TMP/notify-refused pid started
	mkdir -p "$d/img"
	start mem-anon "$d" || return
	pid=$ZPID
	started=$(proc_starttime "$pid")
	rpc "$d/dump.out" "dump,images=$d/img,pid=$pid,notify=1,fail_at=post-dump"
	if ! has "$d/dump.out" '^notify network-unlock' ||
		! has "$d/dump.out" '^dump success=0 errno=[0-9]+ errmsg="stasis: notify post-dump: the engine answered that it failed' ||
		! untouched "$pid" "$started" || [ -e "$d/img/inventory.img" ]; then
		result_fail "$CASE" "expected a failed dump naming post-dump, the network unlocked, the program untouched, no images:"
		show "$d/dump.out"
		find "$d/img" -mindepth 1 | sed 's/^/    | /'
		kill_ours "$pid"
		return
	fi
	verdict "$pid" "$d" || return
	result_ok "$CASE"
}
case_notify_refused

case_run_fails() {
	CASE=rpc/run-fails
	local d=$ZOO_TMP/run-fails pid started
	mkdir -p "$d/img" "$d/img2"
	start mem-anon "$d" || return
	pid=$ZPID
	started=$(proc_starttime "$pid")
	STASIS_FAULT=after-pages rpc "$d/dump.out" "dump,images=$d/img,pid=$pid,log=dump.log"
	local msg="stasis: dump pid $pid: injected failure after-pages (dump pid $pid failed; the tree was left running)"
	if ! has "$d/dump.out" "^dump success=0 errno=5 errmsg=\"$(printf '%s' "$msg" | sed 's/[][().]/\\&/g')\"\$" ||
		! untouched "$pid" "$started" || [ -e "$d/img/inventory.img" ] || [ -e "$d/img/stats-dump" ]; then
		result_fail "$CASE" "a dump failing after the pages: expected cr_errmsg '$msg', the program untouched, no images:"
		show "$d/dump.out"
		kill_ours "$pid"
		return
	fi
	rpc "$d/dump2.out" "dump,images=$d/img2,pid=$pid,leave_running=1"
	STASIS_FAULT=kernel-lacks:clone3_set_tid rpc "$d/restore.out" "restore,images=$d/img2"
	if ! has "$d/restore.out" '^restore success=0 errno=95 errmsg="stasis: restore: this kernel lacks clone3 .*nothing was started"$' ||
		! untouched "$pid" "$started"; then
		result_fail "$CASE" "a restore refused up front: expected the missing kernel feature in cr_errmsg:"
		show "$d/dump2.out"
		show "$d/restore.out"
		kill_ours "$pid"
		return
	fi
	verdict "$pid" "$d" || return
	result_ok "$CASE"
}
case_run_fails

case_refused() {
	CASE=rpc/refused
	local d=$ZOO_TMP/refused pid started
	mkdir -p "$d/img"
	start mem-anon "$d" || return
	pid=$ZPID
	started=$(proc_starttime "$pid")
	rpc "$d/out.rpc" "dump,images=$d/img,pid=$pid,lazy_pages=1" \
		"restore,images=$d/img,inherit=99:pipe:[1]" page_server
	if ! has "$d/out.rpc" '^dump success=0 errno=22 errmsg="stasis: dump --lazy-pages: no --page-server ADDRESS:PORT to serve the pages on .*"$' ||
		! has "$d/out.rpc" '^restore success=0 errno=95 errmsg="stasis: inherit_fd: fd 99 \(for pipe:\[1\]\) is not open in the swrk process"$' ||
		! has "$d/out.rpc" '^page_server success=0 errno=22 errmsg="stasis: PAGE_SERVER: the request names no ps \(port, address\)"$' ||
		! untouched "$pid" "$started" || [ -n "$(ls -A "$d/img")" ]; then
		result_fail "$CASE" "expected each refused by name, the program untouched, nothing written:"
		show "$d/out.rpc"
		kill_ours "$pid"
		return
	fi
	verdict "$pid" "$d" || return
	result_ok "$CASE"
}
case_refused

case_malformed() { # case_malformed BINARY LABEL
	CASE="rpc/malformed$2"
	local out=$ZOO_TMP/malformed$2.out
	timeout -k 5 60 "$CLIENT" "$1" garbage version >"$out" 2>&1
	if has "$out" '^EMPTY success=0 errno=74 errmsg="stasis: a malformed request \(13 bytes\): not a criu_req"$' &&
		has "$out" '^version success=1 version=3\.17\.0' && has "$out" '^swrk exit=0$'; then
		result_ok "$CASE"
	else
		result_fail "$CASE" "expected an error answer, then VERSION answered on the same connection:"
		show "$out"
	fi
}
case_malformed "$STASIS" ""

case_two_requests() { # case_two_requests BINARY LABEL
	CASE="rpc/two-requests$2"
	local d=$ZOO_TMP/two$2 a b
	mkdir -p "$d/img1" "$d/img2"
	start mem-anon "$d/a" || return
	a=$ZPID
	start mem-anon "$d/b" || return
	b=$ZPID
	timeout -k 5 120 "$CLIENT" "$1" \
		"dump,images=$d/img1,pid=$a,leave_running=1,notify=1,log=first.log,level=4" \
		"dump,images=$d/img2,pid=$b" >"$d/out.rpc" 2>&1
	# leave_running: the network is unlocked once the images are written
	local want="notify pre-dump pid=$a
notify network-lock pid=$a
notify post-dump pid=$a
notify network-unlock pid=$a
dump success=1
dump success=1
swrk exit=0"
	local why=""
	[ "$(cat "$d/out.rpc")" = "$want" ] || why="the answers (notifications only for the first)"
	proc_alive "$a" || why="$why; the first program (leave_running) is gone"
	gone "$b" || why="$why; the second program, dumped without leave_running, still runs"
	[ -z "$(find "$d/img2" -name '*.log')" ] || why="$why; a log file in the second images directory"
	! grep -q "pid $b" "$d/img1/first.log" || why="$why; the first request's log got the second's lines"
	if [ -n "$why" ]; then
		result_fail "$CASE" "${why#; }:"
		show "$d/out.rpc"
		kill_ours "$a"
		return
	fi
	verdict "$a" "$d/a" || return
	result_ok "$CASE"
}
case_two_requests "$STASIS" ""

case_config_file() {
	CASE=rpc/config-file
	local d=$ZOO_TMP/config pid
	mkdir -p "$d/img"
	printf '# applied after the RPC options\nleave-running\nlog-file=by-config.log\n' >"$d/runc.conf"
	start mem-anon "$d" || return
	pid=$ZPID
	rpc "$d/out.rpc" "dump,images=$d/img,pid=$pid,leave_running=0,config=$d/runc.conf"
	if ! has "$d/out.rpc" '^dump success=1$' || ! proc_alive "$pid" || [ ! -s "$d/img/inventory.img" ] ||
		[ ! -s "$d/img/by-config.log" ]; then
		result_fail "$CASE" "expected a dump that leaves the program running (config_file's leave-running), its log in by-config.log (config_file's log-file=NAME):"
		show "$d/out.rpc"
		kill_ours "$pid"
		return
	fi
	verdict "$pid" "$d" || return
	result_ok "$CASE"
}
case_config_file

# ---- libcriu ---------------------------------------------------------------------------
libcriu() { # libcriu OUT ARGS...
	local out=$1
	shift
	timeout -k 5 120 "$LIBC_CLIENT" "$STASIS" "$@" >"$out" 2>&1
}

CASE=libcriu/version-check-features
libcriu "$ZOO_TMP/lc-version.out" version
libcriu "$ZOO_TMP/lc-check.out" check
libcriu "$ZOO_TMP/lc-features.out" features
if has "$ZOO_TMP/lc-version.out" '^version 31700 check_version\(31500\)=1 check_version\(99999999\)=0$' &&
	has "$ZOO_TMP/lc-check.out" '^check 0$' &&
	has "$ZOO_TMP/lc-features.out" "^features 0 $(echo "$FEATURES" | tr ':,' '= ')\$"; then
	result_ok "$CASE"
else
	result_fail "$CASE" "answers:"
	show "$ZOO_TMP/lc-version.out"
	show "$ZOO_TMP/lc-check.out"
	show "$ZOO_TMP/lc-features.out"
fi

case_libcriu_cr() {
	CASE=libcriu/dump-restore-child
	local d=$ZOO_TMP/libcriu pid started client
	mkdir -p "$d/img"
	start mem-anon "$d" || return
	pid=$ZPID
	started=$(proc_starttime "$pid")
	libcriu "$d/refused.out" refused "$d/img" "$pid"
	if ! has "$d/refused.out" '^refused -52 errno=95 msg=stasis: exec_cmd: running a command' ||
		! untouched "$pid" "$started"; then
		result_fail "$CASE" "a dump with exec_cmd: expected -EBADE, errno EOPNOTSUPP and the message:"
		show "$d/refused.out"
		kill_ours "$pid"
		return
	fi
	libcriu "$d/dump.out" dump "$d/img" "$pid"
	if [ "$(cat "$d/dump.out")" != "notify pre-dump pid=$pid
notify network-lock pid=$pid
notify post-dump pid=$pid
dump 0" ] || ! gone "$pid"; then
		result_fail "$CASE" "criu_dump with a notify callback:"
		show "$d/dump.out"
		return
	fi
	"$LIBC_CLIENT" "$STASIS" restore "$d/img" >"$d/restore.out" 2>&1 &
	client=$!
	if ! wait_until 30 has "$d/restore.out" '^restore '; then
		result_fail "$CASE" "no answer to criu_restore_child:" && show "$d/restore.out"
		kill "$client" 2>/dev/null
		return
	fi
	track_pid "$pid"
	local ppid
	ppid=$(awk '/^PPid:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
	if ! has "$d/restore.out" "^restore $pid\$" || [ "$ppid" != "$client" ]; then
		result_fail "$CASE" "criu_restore_child: pid $pid with parent ${ppid:-none}, the client is $client:"
		show "$d/restore.out"
		kill_ours "$pid"
		return
	fi
	sleep 0.5
	verdict "$pid" "$d" || return
	wait "$client"
	if ! has "$d/restore.out" '^child exit 0$'; then
		result_fail "$CASE" "the client did not reap its restored child:" && show "$d/restore.out"
		return
	fi
	result_ok "$CASE"
}
case_libcriu_cr

# ---- the command line's --action-script ---------------------------------------------------
case_action_script() {
	CASE=cli/action-script
	local d=$ZOO_TMP/action pid started
	mkdir -p "$d/img" "$d/img2"
	# shellcheck disable=SC2016 # expanded by the script's shell
	local script='echo "$CRTOOLS_SCRIPT_ACTION ${CRTOOLS_INIT_PID:-none}" >>'"$d/actions"
	start mem-anon "$d" || return
	pid=$ZPID
	started=$(proc_starttime "$pid")
	# shellcheck disable=SC2016
	run_stasis "$d/fail.out" 60 dump -t "$pid" -D "$d/img2" \
		--action-script '[ "$CRTOOLS_SCRIPT_ACTION" != post-dump ]'
	if [ "$ZRC" = 0 ] || ! has "$d/fail.out" "action script .* failed at post-dump" ||
		! untouched "$pid" "$started"; then
		result_fail "$CASE" "a script failing at post-dump: the dump must fail naming it, the program untouched:"
		show "$d/fail.out"
		kill_ours "$pid"
		return
	fi
	run_stasis "$d/dump.out" 60 dump -t "$pid" -D "$d/img" --action-script "$script"
	if [ "$ZRC" != 0 ] || ! gone "$pid"; then
		result_fail "$CASE" "dump exited $ZRC:" && show "$d/dump.out"
		return
	fi
	run_stasis "$d/restore.out" 60 restore -D "$d/img" -d --action-script "$script"
	track_pid "$pid"
	local want="pre-dump none
network-lock none
post-dump none
pre-restore none
setup-namespaces $pid
post-setup-namespaces $pid
post-restore $pid
network-unlock $pid
pre-resume $pid
post-resume $pid"
	if [ "$ZRC" != 0 ] || [ "$(cat "$d/actions" 2>/dev/null)" != "$want" ]; then
		result_fail "$CASE" "restore exited $ZRC; the scripts saw (expected every point, the pid at restore):"
		show "$d/actions"
		show "$d/restore.out"
		kill_ours "$pid"
		return
	fi
	sleep 0.3
	verdict "$pid" "$d" || return
	result_ok "$CASE"
}
case_action_script

# ---- real runc ---------------------------------------------------------------------------
# shellcheck source=runc-lib.sh
. "$ZOO_ROOT/tests/rpc/runc-lib.sh"

# A container whose stdio are pipes (as Docker's shim gives them): checkpoint, restore, the
# count goes on. Every message of runc's and stasis's goes through the RPC.
case_runc_cr() {
	CASE=runc/checkpoint-restore
	local d=$ZOO_TMP/runc-cr id=stasis-rpc-cr-$$ rc last first
	mkdir -p "$d/img" "$d/work"
	runc_bundle "$d" || { result_fail "$CASE" "runc spec failed"; return; }
	RUNC_IDS+=("$id")
	(cd "$d/bundle" && "${RUNC[@]}" run -d "$id" </dev/null 2>&1) | cat >"$d/before.out" &
	if ! wait_until 20 numbers_in "$d/before.out" 2; then
		result_fail "$CASE" "the container does not count:" && show "$d/before.out"
		return
	fi
	(cd "$d" && timeout -k 5 120 "${RUNC[@]}" checkpoint --image-path "$d/img" --work-path "$d/work" \
		"$id" >"$d/checkpoint.out" 2>&1)
	rc=$?
	wait_until 10 test -z "$(runc_status "$id")"
	if [ "$rc" != 0 ] || [ -n "$(runc_status "$id")" ] || [ ! -s "$d/img/inventory.img" ] ||
		! "$CLIENT" --stats "$d/work/stats-dump" >"$d/stats-dump.txt"; then
		result_fail "$CASE" "runc checkpoint exited $rc (container: $(runc_status "$id")):"
		runc_logs "$d"
		return
	fi
	last=$(grep -E '^[0-9]+$' "$d/before.out" | tail -n 1)
	runc_restore "$d" "$id" "$d/img"
	rc=$RESTORE_RC
	if [ "$rc" != 0 ] || [ "$(runc_status "$id")" != running ] ||
		! wait_until 10 numbers_in "$d/after.out" 1; then
		result_fail "$CASE" "runc restore exited ${rc:-none} (container: $(runc_status "$id")):"
		runc_logs "$d"
		return
	fi
	first=$(grep -E '^[0-9]+$' "$d/after.out" | head -n 1)
	if [ "$first" != $((last + 1)) ] || ! "$CLIENT" --stats "$d/work/stats-restore" >/dev/null; then
		result_fail "$CASE" "the count went $last before the checkpoint, $first after the restore (or no stats-restore)"
		return
	fi
	result_ok "$CASE (counted to $last, went on from $first; $(cat "$d/stats-dump.txt"))"
}

# A container whose stdout is a file of the host: not supported yet, refused by name before
# anything is touched; the container runs on.
case_runc_refused() {
	CASE=runc/checkpoint-refused
	local d=$ZOO_TMP/runc-refused id=stasis-rpc-refused-$$ rc init started
	mkdir -p "$d/img"
	runc_bundle "$d" || { result_fail "$CASE" "runc spec failed"; return; }
	RUNC_IDS+=("$id")
	if ! (cd "$d/bundle" && "${RUNC[@]}" run -d "$id" </dev/null >"$d/container.out" 2>&1); then
		result_fail "$CASE" "runc run failed:" && show "$d/container.out"
		return
	fi
	init=$(runc_init "$id")
	started=$(proc_starttime "$init")
	sleep 1
	(cd "$d" && timeout -k 5 120 "${RUNC[@]}" checkpoint --image-path "$d/img" "$id" \
		>"$d/checkpoint.out" 2>&1)
	rc=$?
	echo "    runc checkpoint exited $rc and said:"
	show "$d/checkpoint.out"
	echo "    stasis's dump.log says:"
	grep -a 'Error' "$d/img/dump.log" 2>/dev/null | sed 's/^/    | /'
	local why=""
	[ "$rc" != 0 ] || why="runc checkpoint succeeded: files of the host work now, update this case"
	! has "$d/checkpoint.out" 'version check failed|connection reset|CRIU is missing' ||
		why="$why; runc did not get past the version check"
	has "$d/checkpoint.out" 'criu failed' || why="$why; no 'criu failed' from runc"
	has "$d/img/dump.log" "Error: dump pid $init fd 1: .*container.out" ||
		why="$why; dump.log has no error of stasis's naming the container's init ($init) and its stdout"
	untouched "$init" "$started" || why="$why; the container's init is not running untouched"
	if [ -n "$why" ]; then
		result_fail "$CASE" "${why#; }"
	else
		result_ok "$CASE"
	fi
}

if ! command -v runc >/dev/null || ! command -v busybox >/dev/null || ldd "$(command -v busybox)" >/dev/null 2>&1; then
	result_fail runc "needs runc and a static busybox (make setup installs runc and busybox-static)"
else
	case_runc_cr
	case_runc_refused
fi

# ---- the same protocol cases with stasis under ASan/UBSan ----------------------------------
if [ -x "$ZOO_ROOT/build-asan/stasis" ]; then
	export ASAN_OPTIONS=detect_leaks=1:exitcode=125 UBSAN_OPTIONS=print_stacktrace=1:exitcode=125
	case_malformed "$ZOO_ROOT/build-asan/stasis" " (ASan)"
	case_two_requests "$ZOO_ROOT/build-asan/stasis" " (ASan)"
	case_notify "$ZOO_ROOT/build-asan/stasis" " (ASan)"
fi

summary
