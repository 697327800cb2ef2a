#!/bin/bash
# stress-sweep: stress-ng's stressors (programs written by others, each holding one kind of
# kernel object in states nobody listed) checkpointed mid-run. Not part of make test.
#
#   run.sh [STRESSOR...]     no STRESSOR: every stressor of this stress-ng
#
# For each: `stress-ng --STRESSOR 1 --timeout 5s --verify` started in a session of its own in
# a directory of its own, `stasis dump -t PID --file-locks` after 1.5 s, `stasis restore -d
# --file-locks`, then stress-ng's own verdict once it ends (up to 15 s): "successful run
# completed" and no "stress-ng: fail:" / "stress-ng: error:" line.
# Environment: STASIS (the tree's ./stasis; a sanitizer build flags its reports: exit 125),
# SWEEP_DIR (/tmp/stress-sweep: NAME/{out,img/dump.log,img/restore.log}).
# Output, one line per stressor: NAME ok | DUMPFAIL | RESTFAIL | HANG | BAD | SKIP, the reason.
# A DUMPFAIL or RESTFAIL by name is often the right answer (io_uring, CLONE_VM, ptrace, tun);
# a BAD or HANG is the program finding its state wrong after the restore.
set -u
here=$(cd "$(dirname "$0")" && pwd)
STASIS=${STASIS:-$here/../../stasis}
SWEEP_DIR=${SWEEP_DIR:-/tmp/stress-sweep}
command -v stress-ng >/dev/null || { echo "stress-ng is not installed (apt-get install stress-ng)" >&2; exit 2; }
[ $# -gt 0 ] || set -- $(stress-ng --stressors)
mkdir -p "$SWEEP_DIR"

# What the host had before the sweep: SysV semaphores, queues and segments, POSIX message
# queues (seen through an mqueue mount of the sweep's own). A stressor killed mid-run leaves its
# own behind (16,000 semaphore sets and queues, 256 message queues in a whole sweep: later
# stressors and tests then fail with ENOSPC); those are removed after each stressor.
ipc_ids() { ipcs -"$1" 2>/dev/null | awk '/^0x/{print $2}' | sort; }
MQ_DIR=$SWEEP_DIR/.mqueue
mkdir -p "$MQ_DIR"
mount -t mqueue none "$MQ_DIR" 2>/dev/null || MQ_DIR=""
trap '[ -z "$MQ_DIR" ] || umount "$MQ_DIR"' EXIT
for k in s q m; do ipc_ids $k >"$SWEEP_DIR/.ipc-$k"; done
[ -z "$MQ_DIR" ] || ls "$MQ_DIR" | sort >"$SWEEP_DIR/.ipc-mq"
remove_ipc_leftovers() {
	local k id name
	for k in s q m; do
		for id in $(ipc_ids $k | comm -13 "$SWEEP_DIR/.ipc-$k" -); do
			ipcrm -$k "$id" 2>/dev/null
		done
	done
	[ -n "$MQ_DIR" ] || return 0
	for name in $(ls "$MQ_DIR" | sort | comm -13 "$SWEEP_DIR/.ipc-mq" -); do
		rm -f "$MQ_DIR/$name"
	done
}

# running PID: there, and not a zombie (it is init's child: reaped whenever init gets to it)
running() { local st; st=$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) && [ "$st" != Z ]; }

first_error() { grep -h -m1 -E 'Error|ERROR|runtime error' "$@" 2>/dev/null | head -n 1 | cut -c1-300; }

sweep_one() {
	local s=$1 d=$SWEEP_DIR/$1 pid i rc
	rm -rf "$d"
	mkdir -p "$d/img"
	# (not a child of this shell, setsid -f: its pid written by the shell it replaces)
	(cd "$d" && exec setsid -f sh -c 'echo $$ >pid; exec stress-ng "$@"' sh "--$s" 1 --timeout 5s --verify \
		--temp-path "$d" </dev/null >"$d/out" 2>&1)
	sleep 1.5
	pid=$(cat "$d/pid")
	if ! running "$pid"; then
		echo "$s SKIP $(grep -v '^stress-ng: info' "$d/out" | head -n 2 | tr '\n' '|' | cut -c1-200)"
		return
	fi
	"$STASIS" dump -t "$pid" -D "$d/img" -o dump.log --file-locks >"$d/dump.err" 2>&1
	rc=$?
	if [ $rc -ne 0 ]; then
		echo "$s DUMPFAIL (exit $rc) $(first_error "$d/img/dump.log" "$d/dump.err")"
		kill -KILL -- "-$pid" 2>/dev/null
		return
	fi
	"$STASIS" restore -D "$d/img" -o restore.log -d --file-locks >"$d/rst.err" 2>&1
	rc=$?
	if [ $rc -ne 0 ]; then
		echo "$s RESTFAIL (exit $rc) $(first_error "$d/img/restore.log" "$d/rst.err")"
		kill -KILL -- "-$pid" 2>/dev/null
		return
	fi
	for i in $(seq 150); do
		running "$pid" || break
		sleep 0.1
	done
	if running "$pid"; then
		kill -KILL -- "-$pid" 2>/dev/null
		echo "$s HANG (still running 15 s after the restore)"
	elif grep -q 'successful run completed' "$d/out" && ! grep -qE '^stress-ng: (fail|error):' "$d/out"; then
		echo "$s ok" # (stress-ng's own failure lines; an info line may say fp-error or non-failing)
	else
		echo "$s BAD $(grep -E '^stress-ng: (fail|error):|unsuccessful' "$d/out" | head -n 3 | tr '\n' '|' | cut -c1-300)"
	fi
}

for s in "$@"; do
	sweep_one "$s"
	remove_ipc_leftovers
done
