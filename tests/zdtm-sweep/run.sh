#!/bin/bash
# Runs criu's zdtm "static" test programs against stasis, host flavour only:
# start the test, stasis dump, stasis restore, SIGTERM, read its verdict.
# See README.md beside this file for where the zdtm sources come from.
#
#   run.sh [-b] [-n] [NAME...]     no NAME: every test of static/Makefile's lists with a source
#     -b   also run each test once without C/R first (else only when C/R failed)
#     -n   ns flavour: the test runs in a PID namespace of its own under ns-init.c (as zdtm's
#          ns flavour; only the PID namespace: mounts, network and IPC stay the host's), the
#          dumped tree is that namespace's whole tree; results in $ZDTM_RESULTS (default
#          $ZDTM_DIR/results-ns)
# Environment: ZDTM_DIR (/work/zdtm), ZDTM_RESULTS ($ZDTM_DIR/results), STASIS (the tree's ./stasis), ZDTM_TIMEOUT (30 s),
#   ZDTM_SUITE=transition: the tests of $ZDTM_DIR/transition instead of static (results in
#   $ZDTM_DIR/results-transition),
#   ZDTM_NONROOT=1: tests without 'suid' in .desc run as uid 18943 (as zdtm.py does)
# Results: $ZDTM_DIR/results/NAME/{verdict,dump.log,restore.log,out,...},
#          one line per test in $ZDTM_DIR/results/summary.tsv (NAME VERDICT REASON).
# Verdicts: PASS, FAIL (stasis's: dump/restore failed, test said FAIL, or hung),
# KFAIL (the test fails or hangs without C/R too: harness/kernel), SKIP (reason).
set -u
here=$(cd "$(dirname "$0")" && pwd)
ZDTM_DIR=${ZDTM_DIR:-/work/zdtm}
STASIS=${STASIS:-$(cd "$here/../.." && pwd)/stasis}
TMO=${ZDTM_TIMEOUT:-30}
SUITE=${ZDTM_SUITE:-static} # or transition: tests that keep changing state while dumped
SD=$ZDTM_DIR/$SUITE
baseline_always=0 ns=0
while [ $# -gt 0 ]; do
	case $1 in
	-b) baseline_always=1 ;;
	-n) ns=1 ;;
	*) break ;;
	esac
	shift
done
RES=${ZDTM_RESULTS:-$ZDTM_DIR/results$([ "$SUITE" != static ] && echo "-$SUITE")$([ $ns = 1 ] && echo -ns)}
mkdir -p "$RES"
NSINIT=$RES/ns-init
if [ $ns = 1 ] && ! cc -O2 -Wall -Werror -o "$NSINIT" "$here/ns-init.c"; then
	echo "cannot build $here/ns-init.c" >&2
	exit 1
fi
chmod 755 "$ZDTM_DIR" "$SD"

# desc NAME KEY: a field of NAME.desc (a python dict literal), "" if none
desc() {
	[ -f "$SD/$1.desc" ] || return 0
	python3 - "$SD/$1.desc" "$2" <<'EOF'
import ast, sys
try:
    d = ast.literal_eval(open(sys.argv[1]).read())
except Exception:
    d = {}
v = d.get(sys.argv[2], '')
print(' '.join(v) if isinstance(v, list) else v)
EOF
}

# every process whose session is one of the given ids
session_pids() {
	local s
	for s in "$@"; do ps -e -o pid=,sid= | awk -v s="$s" '$2 == s { print $1 }'; done
}
# kill_sessions ID...: every process of those sessions, and every process whose cwd is
# in the current test's results dir (orphans that made sessions of their own)
kill_sessions() {
	local p c
	for p in $(session_pids "$@"); do [ "$p" != $$ ] && kill -9 "$p" 2>/dev/null; done
	[ -n "${CUR:-}" ] || return 0
	for p in /proc/[0-9]*; do
		c=$(readlink "$p/cwd" 2>/dev/null) || continue
		case "$c" in "$RES/$CUR/"*) kill -9 "${p#/proc/}" 2>/dev/null ;; esac
	done
}

# end_test ID...: kill_sessions ID..., and in the ns flavour the namespace's init (the rest of
# the namespace goes with it)
end_test() {
	kill_sessions "$@"
	[ $ns = 1 ] && [ -n "${ROOT:-}" ] && kill -9 "$ROOT" 2>/dev/null
	return 0
}

# ns_host_pid ROOT NSPID: the host pid of the process NSPID of ROOT's PID namespace
ns_host_pid() {
	local ns p
	ns=$(readlink "/proc/$1/ns/pid") || return 1
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/ns/pid" 2>/dev/null)" = "$ns" ] || continue
		awk -v n="$2" '/^NSpid:/ { found = $NF == n } END { exit !found }' "$p/status" 2>/dev/null &&
			{ echo "${p#/proc/}"; return 0; }
	done
	return 1
}

# start_test NAME WD: launches the test in WD; sets TPID (the daemon) and ROOT (the tree to
# dump: the test, or in the ns flavour its namespace's init), or returns 1
start_test() {
	local name=$1 wd=$2 args t=0
	args=$(make -s -C "$SD" "$name.args")
	echo "$SD/$name $args" >"$wd/../cmd"
	if [ $ns = 1 ]; then
		(cd "$wd" && exec setsid unshare --pid --fork "$NSINIT" "$SD/$name" $args) >"$wd/../start.log" 2>&1 &
		LPID=$!
		# unshare waits for the init, which lives on once the test daemonized
		while kill -0 $LPID 2>/dev/null && [ ! -s "$wd/$name.pid" ] && [ $t -lt $((TMO * 10)) ]; do
			sleep 0.1; t=$((t + 1))
		done
		sleep 0.1
		ROOT=$(pgrep -P $LPID | head -1)
		[ -n "$ROOT" ] && [ -s "$wd/$name.pid" ] || { kill_sessions $LPID; return 1; }
		TPID=$(ns_host_pid "$ROOT" "$(cat "$wd/$name.pid")")
		[ -n "$TPID" ] && return 0
		kill_sessions $LPID
		return 1
	fi
	(cd "$wd" && exec setsid "$SD/$name" $args) >"$wd/../start.log" 2>&1 &
	LPID=$!
	# the launcher exits once the test daemonized (or died)
	while kill -0 $LPID 2>/dev/null && [ $t -lt $((TMO * 10)) ]; do sleep 0.1; t=$((t + 1)); done
	if kill -0 $LPID 2>/dev/null; then kill_sessions $LPID; return 1; fi
	wait $LPID 2>/dev/null
	TPID=$(cat "$wd/$name.pid" 2>/dev/null)
	ROOT=$TPID
	[ -n "$TPID" ] && kill -0 "$TPID" 2>/dev/null
}

# undo_rules: deletes the iptables INPUT rules a test added and left (the socket-tcp-closed
# tests add one, and remove it only if they get that far)
undo_rules() {
	local r
	command -v iptables >/dev/null || return 0
	iptables -S INPUT 2>/dev/null | while read -r r; do
		grep -qxF -- "$r" "$RES/.rules-before" 2>/dev/null && continue
		# shellcheck disable=SC2086 # (the rule's words)
		[[ $r == "-A INPUT "* ]] && iptables -w -D ${r#-A } 2>/dev/null
	done
}

# running PID: alive and not a zombie (the ns flavour's init reaps nothing)
running() {
	local st
	st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
	[ "${st%% *}" != Z ]
}

# stop_test NAME WD: SIGTERM, wait for the exit, 0 if the outfile says PASS
stop_test() {
	local name=$1 wd=$2 t=0
	kill -TERM "$TPID" 2>/dev/null
	while running "$TPID" && [ $t -lt $((TMO * 10)) ]; do sleep 0.1; t=$((t + 1)); done
	if running "$TPID"; then
		STOPMSG="hung after SIGTERM"
		end_test "$TPID" $LPID
		return 1
	fi
	sleep 0.2
	end_test "$TPID" $LPID
	if grep -qw PASS "$wd/$name.out" 2>/dev/null; then return 0; fi
	STOPMSG=$(grep -h -E 'FAIL|ERR' "$wd/$name.out" "$wd/$name.out.inprogress" 2>/dev/null | tail -1)
	[ -n "$STOPMSG" ] || STOPMSG="no PASS in the outfile"
	return 1
}

# err_line LOG: the line that says why stasis failed
err_line() {
	local l
	l=$(grep -a -m1 'Error' "$1" 2>/dev/null)
	[ -n "$l" ] || l=$(grep -a -i -E 'error|fail|refus|unsupported|cannot|can.t ' "$1" 2>/dev/null | tail -1)
	[ -n "$l" ] || l=$(tail -1 "$1" 2>/dev/null)
	echo "$l" | cut -c1-300
}

verdict() { # NAME VERDICT REASON
	echo "$2" >"$RES/$1/verdict"
	echo "$3" >"$RES/$1/reason"
	printf '%s\t%s\t%s\n' "$1" "$2" "$3" | tee -a "$RES/summary.tsv"
}

# baseline NAME: run the test without C/R; 0 if it passes
baseline() {
	local name=$1 wd=$RES/$1/base
	rm -rf "$wd"; mkdir -p "$wd"; chmod 777 "$wd" "$RES/$name"
	start_test "$name" "$wd" || { BASEMSG="did not start: $(cat "$wd/../start.log" "$wd/$name".out* 2>/dev/null | grep -E 'FAIL|ERR|exited' | head -1)"; return 1; }
	sleep 1
	stop_test "$name" "$wd" || { BASEMSG=$STOPMSG; return 1; }
}

run_one() {
	local name=$1 flavor want flags opts dopts ropts feature arch wd img u crfail=0 rc
	CUR=$name
	rm -rf "${RES:?}/$name"; mkdir -p "$RES/$name"
	sed -i "/^$(printf '%s' "$name" | sed 's/[.]/\\&/g')\t/d" "$RES/summary.tsv" 2>/dev/null
	if [ ! -x "$SD/$name" ] && [ ! -e "$SD/$name.c" ]; then
		verdict "$name" SKIP "no source ($SD/$name.c)"; return
	fi
	if [ ! -x "$SD/$name" ]; then
		make -s -C "$SD" "$name" >"$RES/$name/build.log" 2>&1 ||
			{ verdict "$name" SKIP "build failed: $(grep -m1 -E 'error|No rule' "$RES/$name/build.log" | cut -c1-200)"; return; }
	fi
	flavor=$(desc "$name" flavor); flags=$(desc "$name" flags)
	feature=$(desc "$name" feature); arch=$(desc "$name" arch)
	opts="$(desc "$name" opts) $(cat "$SD/$name.opts" 2>/dev/null)"
	dopts=$(desc "$name" dopts); ropts=$(desc "$name" ropts) # dump only, restore only
	[[ " $flags " == *" noauto "* ]] && { verdict "$name" SKIP "noauto in .desc"; return; }
	want=$([ $ns = 1 ] && echo ns || echo h)
	[ -n "$flavor" ] && [[ " $flavor " != *" $want "* ]] && { verdict "$name" SKIP "flavor '$flavor' (no $want flavour)"; return; }
	[ -n "$arch" ] && [[ " $arch " != *" x86_64 "* ]] && { verdict "$name" SKIP "arch $arch"; return; }
	for f in $feature; do
		"$STASIS" check --feature "$f" >/dev/null 2>&1 || { verdict "$name" SKIP "feature $f unsupported (stasis check)"; return; }
	done
	if [ -x "$SD/$name.checkskip" ]; then
		(cd "$SD" && "./$name.checkskip") >"$RES/$name/checkskip.log" 2>&1 ||
			{ verdict "$name" SKIP "$name.checkskip: $(tail -1 "$RES/$name/checkskip.log")"; return; }
	fi
	[[ " $flags " == *" crfail "* ]] && crfail=1
	# zdtm runs tests without 'suid' as unprivileged ids; the index lacks many
	# .desc files (deduplicated), so that is only done with ZDTM_NONROOT=1
	if [ "${ZDTM_NONROOT:-0}" != 1 ] || [[ " $flags " == *" suid "* ]]; then
		unset ZDTM_UID ZDTM_GID ZDTM_GROUPS
	else
		export ZDTM_UID=18943 ZDTM_GID=58467 ZDTM_GROUPS="27495 48244"
	fi
	if [ $baseline_always = 1 ] && ! baseline "$name"; then
		verdict "$name" KFAIL "fails without C/R: $BASEMSG"; return
	fi
	wd=$RES/$name/wd; img=$RES/$name/img
	mkdir -p "$wd" "$img"; chmod 777 "$wd" "$RES/$name"
	printf 'opts: %s\ndopts: %s\nropts: %s\n' "$opts" "$dopts" "$ropts" >"$RES/$name/opts"
	if ! start_test "$name" "$wd"; then
		verdict "$name" KFAIL "did not start: $(cat "$RES/$name/start.log" "$wd/$name".out* 2>/dev/null | grep -E 'FAIL|ERR|exited' | head -1)"; return
	fi
	sleep 0.5
	DUMPED=$ROOT
	timeout -k 5 "$TMO" "$STASIS" dump -t "$ROOT" -D "$img" --shell-job -o dump.log -v4 $opts $dopts >"$RES/$name/dump.stderr" 2>&1
	rc=$?; cp "$img/dump.log" "$RES/$name/dump.log" 2>/dev/null
	if [ $rc != 0 ]; then
		end_test "$TPID" $LPID
		if [ $crfail = 1 ]; then verdict "$name" PASS "crfail: dump failed as expected"; return; fi
		[ $rc = 124 ] && { verdict "$name" FAIL "dump: timeout (${TMO}s)"; return; }
		verdict "$name" FAIL "dump: $(err_line "$RES/$name/dump.log")"; return
	fi
	# the dumped tree is gone (stasis kills it); wait for it
	for _ in $(seq 50); do kill -0 "$TPID" 2>/dev/null || kill -0 "$ROOT" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$TPID" 2>/dev/null || kill -0 "$ROOT" 2>/dev/null; then
		end_test "$TPID"
		verdict "$name" FAIL "dump: tree still alive after dump"; return
	fi
	rm -f "$RES/$name/root.pid"
	timeout -k 5 "$TMO" "$STASIS" restore -D "$img" --shell-job -d -o restore.log -v4 --pidfile "$RES/$name/root.pid" \
		$opts $ropts >"$RES/$name/restore.stderr" 2>&1
	rc=$?; cp "$img/restore.log" "$RES/$name/restore.log" 2>/dev/null
	if [ $ns = 1 ] && [ $rc = 0 ]; then # the same test in the restored namespace
		ROOT=$(cat "$RES/$name/root.pid" 2>/dev/null)
		TPID=$(ns_host_pid "$ROOT" "$(cat "$wd/$name.pid")") || TPID=none
	fi
	if [ $rc != 0 ] || ! kill -0 "$TPID" 2>/dev/null; then
		nft delete table inet "stasis-dumped-$DUMPED" 2>/dev/null # (the network lock its dump left)
		end_test "$TPID" $LPID
		if [ $crfail = 1 ]; then verdict "$name" PASS "crfail: restore failed as expected"; return; fi
		[ $rc = 124 ] && { verdict "$name" FAIL "restore: timeout (${TMO}s)"; return; }
		[ $rc = 0 ] && { verdict "$name" FAIL "restore: rc 0 but pid $TPID is not alive"; return; }
		verdict "$name" FAIL "restore: $(err_line "$RES/$name/restore.log")"; return
	fi
	if [ $crfail = 1 ]; then
		end_test "$TPID" $LPID
		verdict "$name" FAIL "crfail: dump and restore succeeded"; return
	fi
	sleep 0.5
	if stop_test "$name" "$wd"; then verdict "$name" PASS ""; return; fi
	cp "$wd/$name.out"* "$RES/$name/" 2>/dev/null
	local why="after restore: $STOPMSG"
	# the test's own verdict failed: does it pass without C/R?
	if [ $baseline_always = 0 ] && ! baseline "$name"; then
		verdict "$name" KFAIL "fails without C/R too: $BASEMSG"; return
	fi
	verdict "$name" FAIL "$why"
}

if [ $# = 0 ]; then
	# every test of the Makefile's lists whose source is present
	all=$(make -s -C "$SD" list); set --
	for t in $all; do [ -e "$SD/$t.c" ] && set -- "$@" "$t"; done
	echo "$# of $(echo $all | wc -w) tests have their source in $SD" >&2
fi
[ -x "$STASIS" ] || { echo "no stasis binary at $STASIS" >&2; exit 1; }
touch "$RES/summary.tsv"
command -v iptables >/dev/null && iptables -S INPUT >"$RES/.rules-before" 2>/dev/null
for t in "$@"; do run_one "$t"; undo_rules; done
