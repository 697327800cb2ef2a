#!/usr/bin/env bash
# The whole suite: unit tests (plain and under ASan/UBSan), the process zoo (also with stasis
# built with ASan/UBSan, after chains of pre-dumps, restored lazily, inside containers), the
# failure cases, cgroups and the freezer (both also under ASan/UBSan), live network
# connections, the engines' face (RPC, libcriu, runc), live migration, real applications, the
# container engines end to end (tests/e2e/run-e2e.sh).
#
#   tests/run-tests.sh [quick | slow | all]
#
# quick (make test, about 5 minutes on 2 cores): unit tests (plain and ASan/UBSan), the process
# zoo's plain and checkpoint cases, hardening. slow (make test-slow, CI runs it after make test):
# every other part (the zoo's corruptions and the failure cases among them). all (default): both.
# Each part prints "N passed, N failed" last; this adds them up into one such line, and says
# how long each part took.
#
# STASIS_TEST_BUDGET=SECONDS (CI sets it, .ci/run): the time this run may take. A part that
# would not end within it (by how long it took on the slowest machine CI ran on, its first
# number below) is not run; each such part is named ("not run: ... time budget"), and the last
# line counts them. The slow parts come in the order they are kept in: what would be dropped
# first comes last.
set -u
# shellcheck source=tools/subreaper.sh
. "$(dirname "$0")/tools/subreaper.sh"
cd "$(dirname "$0")/.." || exit 2
SELECTION=${1:-all}
case $SELECTION in
quick | slow | all) ;;
*)
	echo "tests/run-tests.sh: unknown selection '$SELECTION' (quick, slow or all)" >&2
	exit 2
	;;
esac
BUDGET=${STASIS_TEST_BUDGET:-}
if [ -n "$BUDGET" ] && ! [[ $BUDGET =~ ^[0-9]+$ ]]; then
	echo "tests/run-tests.sh: STASIS_TEST_BUDGET must be a number of seconds, not '$BUDGET'" >&2
	exit 2
fi
total_pass=0
total_fail=0
parts_failed=()
parts_not_run=()

# run_part quick|slow SECONDS NAME COMMAND...: runs the part if the selection holds it (and,
# with a budget, if SECONDS, about how long it takes on a slow machine, are left of it)
run_part() {
	local group=$1 expect=$2 name=$3
	shift 3
	[ "$SELECTION" = all ] || [ "$SELECTION" = "$group" ] || return 0
	if [ -n "$BUDGET" ] && [ $((SECONDS + expect)) -gt "$BUDGET" ]; then
		echo "=== $name: not run: it takes about $expect s, $((BUDGET - SECONDS)) s of the time budget are left"
		parts_not_run+=("$name")
		return
	fi
	local log start
	log=$(mktemp)
	start=$SECONDS
	echo "=== $name"
	"$@" 2>&1 | tee "$log"
	local rc=${PIPESTATUS[0]}
	local line
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
	rm -f "$log"
	echo "=== $name: $((SECONDS - start)) s"
	if [ -z "$line" ]; then
		echo "=== $name: no summary line (exit $rc)"
		total_fail=$((total_fail + 1))
		parts_failed+=("$name")
		return
	fi
	local p f
	p=$(echo "$line" | awk '{print $1}')
	f=$(echo "$line" | awk '{print $3}')
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		total_fail=$((total_fail + 1))
	fi
	[ "$rc" -ne 0 ] && parts_failed+=("$name")
}

run_part quick 0 "unit" make -s -C tests/unit run
run_part quick 0 "unit (ASan/UBSan)" make -s -C tests/unit run-asan
# (the zoo's flavours run 2 programs at once: each case waits for its program more than it
# works, and 2 at once took 40% of the time alone did; the corruptions, no stasis in them, 4)
run_part quick 0 "process zoo (plain and checkpoint cases)" tests/run-zoo.sh --jobs 2 --no-corrupt
run_part quick 0 "hardening: image files and directories, untrusted images" tests/hardening.sh

# ---- slow: what would be dropped first for time comes last ---------------------------------
# the engines end to end: what users run
run_part slow 400 "containers end to end (make e2e): LXC (busybox, veth, macvlan, systemd, tun/tap), runc, containerd, Docker, Podman, the host's reboot cycle (stasis-host)" tests/e2e/run-e2e.sh
# (the failure cases under ASan/UBSan only: the same cases and verdicts, and memory errors; a
# sanitizer report, a leak included, exits 125: never a clean failure)
SANITIZED=(env ASAN_OPTIONS=detect_leaks=1:exitcode=125 UBSAN_OPTIONS=print_stacktrace=1:exitcode=125
	STASIS="$PWD/build-asan/stasis")
run_part slow 480 "failure cases, stasis under ASan/UBSan" "${SANITIZED[@]}" tests/failure-cases.sh
run_part slow 25 "engines' face: criu RPC (swrk), libcriu, --action-script, runc" tests/rpc/run-rpc.sh
run_part slow 55 "live migration: runc pre-dumps, the page server, lazy restore" tests/migrate/run-migrate.sh
run_part slow 30 "cgroups and the freezer" tests/cgroup-cases.sh
run_part slow 50 "cgroups and the freezer, stasis under ASan/UBSan" "${SANITIZED[@]}" tests/cgroup-cases.sh
run_part slow 80 "network: live connections, the lock" tests/net/run-net.sh
run_part slow 25 "network: a namespace of its own (links, bridges, addresses, nexthops, routes, rules, neighbours, sysctls, qdiscs, nftables, legacy iptables, IPsec policies)" tests/net/run-netns.sh
run_part slow 30 "network namespace, stasis under ASan/UBSan" "${SANITIZED[@]}" tests/net/run-netns.sh
run_part slow 10 "network: tun/tap devices made in the engine's namespace, stasis under ASan/UBSan" "${SANITIZED[@]}" tests/net/run-tun-engine.sh
run_part slow 220 "stasis killed at many instants harms no one" tests/kill-sweep.sh
run_part slow 150 "applications" tests/apps/run-apps.sh
# the engine built with ASan/UBSan (make asan) dumps and restores the zoo again, each program
# after a pre-dump round (live migration's path: the pre-dump, then a dump on top of its
# images; the plain dump without a pre-dump is make test's), and then once more running
# restored (as a host's reboot cycles do to every container: a restored program must be as
# dumpable as it was first)
run_part slow 570 "process zoo, stasis under ASan/UBSan, one pre-dump round before each dump, each program dumped and restored twice running" \
	"${SANITIZED[@]}" tests/run-zoo.sh --jobs 2 --cr-only --predump 1 --cycles 2
# the zoo inside containers (make test-containers has both flavours whole): every program as
# the init of a whole container (PID, mount, UTS, IPC, cgroup and net namespaces, its own
# root and /proc, seccomp, cgroup limits; ctr-state also a time namespace, checked from the
# outside), then as the init of a PID namespace only, for the programs whose state meets the
# host's /proc, IPC namespace, session or daemons there (pids of /proc files, pidfds and
# threads as the host's /proc names them, SysV IPC, a shell job, an outside server), and those
# a container's seccomp profile refuses (io_uring)
run_part slow 245 "process zoo in containers" tests/run-zoo.sh --jobs 2 --container
run_part slow 25 "process zoo in a PID namespace with the host's /proc" tests/run-zoo.sh --jobs 2 --container=pidns \
	files-proc proc-dead pidfd pidfd-reaped pidfd-thread tree orphan-group orphan-session stop-signals sysv-ipc sysv-shm sem-undo-host sem-undo-multi \
	shell-job ext-unix unix-peercred time-ns time-ns-nested creds syscall-poll seccomp-strict zombie-status io-uring io-uring-ring-fds io-uring-buffers io-uring-files io-uring-inflight
# as the init of a whole container in a user namespace of its own (mapping 0-65535 to
# 100000-165535, which owns all its other namespaces), for the programs whose state a process
# there can have (not fanotify, mknod, sched classes, TIOCVHANGUP...), user-ns the namespace
# itself, ctr-state the container from the outside (its time namespace owned by the user
# namespace too)
run_part slow 75 "process zoo in containers in a user namespace" tests/run-zoo.sh --jobs 2 --container=userns \
	ctr-state user-ns time-ns tree threads sessions nested-ns mount-ns-pivot pid-ns-session pid-ns-unshared ipc-ns-nested pty fds pipes unix-pair unix-server unix-dgram-client udp posix-timers itimers timerfds \
	signals creds sysv-ipc sysv-shm mqueue shared-anon mem-anon seccomp-profile file-locks \
	file-leases proc-knobs event-fds epoll-targets inotify cow-pair netns-inet netns-veth netns-mounted tcp-established tcp-closing tcp-reset tcp-md5 tcp-connecting
# a few of them twice in a row: the kernel tunes a connection's buffers past the host's limits,
# and the namespaces a dump frees lend their inode numbers to those a restore makes
run_part slow 20 "process zoo in containers in a user namespace, dumped and restored twice" \
	tests/run-zoo.sh --jobs 2 --cr-only --container=userns --cycles 2 tcp-established tcp-closing sysv-ipc tree threads
# the same, the root cloned by a launcher as on kernels before 6.11 (no fd of a PID namespace
# before its init): STASIS_FAULT pretends the pidfd ioctl is missing
run_part slow 10 "process zoo in a user namespace, the root cloned as before Linux 6.11" \
	env STASIS_FAULT=kernel-lacks:pidfd_pid_ns tests/run-zoo.sh --cr-only --container=userns tree threads
# longer pre-dump chains for a few (mem-dirty writes all the time, in the patterns that stress
# the tracking)
run_part slow 15 "pre-dump chains of 3 rounds" tests/run-zoo.sh --jobs 2 --cr-only --predump 3 mem-dirty mem-anon cow \
	tree fork-churn threads shared-anon madvise
run_part slow 15 "pre-dump chains of 10 rounds, --auto-dedup" tests/run-zoo.sh --cr-only --predump 10 --dedup \
	mem-dirty cow tree
# (lazy pages change how memory comes back: the programs whose state is memory, mappings,
# threads and processes touching it, and signals delivered on restored stacks; every program:
# tests/run-zoo.sh --cr-only --lazy)
run_part slow 40 "process zoo, restored lazily (--lazy-pages): the programs of memory, threads and stacks" \
	tests/run-zoo.sh --jobs 2 --cr-only --lazy aio composite cow-pair cow deleted-exe deleted-files fork-churn \
	huge-reserve hugetlb madvise many-maps mem-256m mem-anon mem-dirty mem-file mem-file-names mem-kinds \
	mem-shared-readonly mem-unreadable memfd-exec memfd-secret memfd mm-fields regs-fpu regs-gp rseq \
	seccomp-stack shared-anon signals sysv-shm thread-churn threads tls tree vdso-clock vdso-moved \
	worker-pool
# the programs whose files matter, their work directory an overlayfs as a container's root is
# (file handles there cannot be opened: inotify watches, files removed but linked elsewhere)
run_part slow 15 "process zoo on overlayfs" tests/run-zoo.sh --jobs 2 --overlay --cr-only inotify mem-file-names files-unlinked \
	ghost-sparse deleted-exe mem-file file-locks file-leases unix-bound unix-gone-names fifo-hup fds
# the dump alone, the program left running (docker checkpoint --leave-running, pre-copy
# migration's rounds): it must go on unharmed and PASS
run_part slow 130 "process zoo dumped with --leave-running: each program goes on unharmed" \
	tests/run-zoo.sh --jobs 2 --cr-only --leave-running

# every check of every zoo program shown to fail when its state is corrupted (two thirds of the
# zoo's program runs, which prove the programs' checks, not stasis: moved here when the quick
# part passed 15 minutes on a slower machine)
run_part slow 200 "process zoo: every corruption, each check can fail" tests/run-zoo.sh --jobs 4 --corrupt-only
# (5 s each here; make fuzz alone runs 30 s each, FUZZ_SECONDS=N longer)
run_part slow 100 "fuzzing: every image decoder, the restore's checks of whole image sets (5 s each)" make -s -j2 fuzz FUZZ_SECONDS=5

echo
[ ${#parts_failed[@]} -gt 0 ] && echo "failed parts: ${parts_failed[*]}"
not_run=""
if [ ${#parts_not_run[@]} -gt 0 ]; then
	printf 'not run (time budget of %s s): %s\n' "$BUDGET" "$(printf '%s; ' "${parts_not_run[@]}" | sed 's/; $//')"
	not_run=", ${#parts_not_run[@]} part(s) not run (time budget)"
fi
echo "$total_pass passed, $total_fail failed$not_run ($SELECTION: $((SECONDS / 60)) min)"
[ "$total_fail" -eq 0 ]
