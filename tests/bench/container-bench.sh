#!/bin/bash
# A whole container through dump and restore: freezing with the cgroup freezer against
# interrupting every task with ptrace.
#
#   tests/bench/container-bench.sh      (`make bench` runs it after run-bench.sh; root)
#
# The container (tests/container/ctr-run: its own PID, mount, UTS, IPC, net and cgroup
# namespaces, a cgroup with limits, a seccomp filter) runs `tasktarget tree 100 ...`: 100
# processes, each with 64 KiB of its own, the init having filled a 256 MiB file on a tmpfs
# of the container (BENCH_CTR_TASKS, BENCH_CTR_MIB change both). Each way of freezing:
# start it, `stasis dump -t INIT --ext-mount-map auto --manage-cgroups` (with
# `--freeze-cgroup` the container's v1 freezer cgroup), `stasis restore -d --root ROOT`, then
# SIGTERM the restored init: every process checks its memory, the init its file, and it says
# PASS. Reported: dump (and frozen) and restore times from stasis's stats, image size.
# Exit status: 0 unless something broke; times are reported, never judged.
#
# Environment: STASIS, BENCH_CTR_TASKS (100), BENCH_CTR_MIB (256), BENCH_DISK_DIR (/var/tmp:
# where the images go).
set -u
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ZOO_ROOT=$(cd "$HERE/../.." && pwd)
ZOO_CTR_BIN=$ZOO_ROOT/tests/container/bin
ZOO_TMP=""
STASIS=${STASIS:-$ZOO_ROOT/stasis}
TASKS=${BENCH_CTR_TASKS:-100}
MIB=${BENCH_CTR_MIB:-256}
# shellcheck source=../container/ctr-lib.sh
. "$ZOO_ROOT/tests/container/ctr-lib.sh"

INIT=""
WORK=""
BROKEN=0

cleanup() {
	[ -n "$INIT" ] && kill -KILL "$INIT" 2>/dev/null
	if [ -n "$WORK" ]; then
		ctr_cgroup_remove "$CTR_CG_BASE"
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT

# wait_for SECONDS CMD...: until CMD succeeds
wait_for() {
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		((SECONDS >= end)) && return 1
		sleep 0.1
	done
}
gone() { ! kill -0 "$1" 2>/dev/null || grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }
stat_field() { sed -n "s/.*[[:space:]]$2=\([0-9][0-9.]*\).*/\1/p" <<<" $1" | head -n 1; }

# one_case NAME [DUMP OPTIONS...]: prints a row; BROKEN=1 on failure
one_case() {
	local name=$1 d=$WORK/$1 root stats frozen dump_ms rest_ms size verdict
	shift
	root=$d/root
	mkdir -p "$d/out" "$d/img"
	: >"$d/out/log"
	ctr_rootfs "$root"
	"$CTR_RUN" --pidfile "$d/pid" "${CTR_ROOTFS[@]}" --bind "$HERE/bin:ro" --bind "$d/out" \
		--tmpfs "/data:$((MIB + 16))m" --hostname bench --netns --seccomp \
		--cgroup "$CTR_CG_BASE/$name" --memory-limit $(((MIB + 512) << 20)) \
		--stdin /dev/null --stdout "$d/out/log" --stderr "$d/out/log" \
		-- "$HERE/bin/tasktarget" tree "$TASKS" "$d/out/verdict" /data/fill "$MIB" 2>"$d/run.err"
	INIT=$(cat "$d/pid" 2>/dev/null)
	if [ -z "$INIT" ] || ! wait_for 300 grep -q '^READY' "$d/out/log"; then
		echo "FAIL $name: the container did not get ready: $(cat "$d/run.err" "$d/out/log" 2>/dev/null | tail -n 3)"
		BROKEN=1
		return
	fi
	local opts=("$@")
	[ "${opts[0]:-}" = --freeze-cgroup ] &&
		opts[1]=$("$CTR_RUN" --cgroup-dirs "$CTR_CG_BASE/$name" | grep /freezer/)
	if ! timeout -k 10 600 "$STASIS" dump -t "$INIT" -D "$d/img" --ext-mount-map auto --manage-cgroups \
		"${opts[@]}" -o dump.log -v3 2>"$d/dump.err"; then
		echo "FAIL $name: stasis dump: $(tail -n 2 "$d/dump.err")"
		BROKEN=1
		return
	fi
	wait_for 30 gone "$INIT"
	INIT=""
	size=$(du -sm "$d/img" | cut -f1)
	if ! timeout -k 10 600 "$STASIS" restore -D "$d/img" -d --root "$root" --ext-mount-map auto \
		--manage-cgroups --pidfile "$d/rpid" -o restore.log -v3 2>"$d/restore.err"; then
		echo "FAIL $name: stasis restore: $(tail -n 2 "$d/restore.err")"
		BROKEN=1
		return
	fi
	INIT=$(cat "$d/rpid")
	kill -TERM "$INIT"
	if ! wait_for 300 gone "$INIT"; then
		echo "FAIL $name: the restored init did not exit after SIGTERM"
		BROKEN=1
		return
	fi
	INIT=""
	verdict=$(head -n 1 "$d/out/verdict" 2>/dev/null)
	if [[ $verdict != "PASS pid=1 tasks=$TASKS"* ]]; then
		echo "FAIL $name: the restored container says '${verdict:-nothing}'"
		BROKEN=1
		return
	fi
	stats=$(grep -a 'dump stats:' "$d/img/dump.log" | tail -n 1)
	frozen=$(stat_field "$stats" frozen_ms) dump_ms=$(stat_field "$stats" total_ms)
	stats=$(grep -a 'restore stats:' "$d/img/restore.log" | tail -n 1)
	rest_ms=$(stat_field "$stats" total_ms)
	printf '%-10s %10s %10s %12s %10s   %s\n' "$name" "${dump_ms:-?}" "${frozen:-?}" "${rest_ms:-?}" \
		"$size" "$verdict"
	ctr_cgroup_remove "$CTR_CG_BASE/$name"
	rm -rf "$d"
}

if [ "$(id -u)" != 0 ]; then
	echo "container bench: needs root" >&2
	exit 1
fi
make -s -C "$HERE" && make -s -C "$ZOO_ROOT/tests/container" || exit 1
WORK=$(mktemp -d "${BENCH_DISK_DIR:-/var/tmp}/stasis-ctr-bench.XXXXXX") || exit 1
ZOO_TMP=$WORK
CTR=full
CTR_CG_BASE=$(basename "$WORK")

echo "== a container of $TASKS processes with a $MIB MiB tmpfs file (images in ${BENCH_DISK_DIR:-/var/tmp})"
printf '%-10s %10s %10s %12s %10s\n' freezing "dump ms" "frozen ms" "restore ms" "images MiB"
one_case ptrace
one_case freezer --freeze-cgroup FREEZER
exit $BROKEN
