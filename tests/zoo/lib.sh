# shellcheck shell=bash
# shellcheck disable=SC2034 # ZRC, ZVERDICT, ZERR... are results read by the sourcing scripts
# Shared helpers of tests/run-zoo.sh and tests/failure-cases.sh (sourced, bash).
#
# Every started process is tracked by pid and killed (by pid, only if it still runs one of
# our programs) by the EXIT trap; the temporary tree is removed unless ZOO_KEEP=1.

ZOO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=../tools/subreaper.sh
. "$ZOO_ROOT/tests/tools/subreaper.sh"
ZOO_DIR=$ZOO_ROOT/tests/zoo
ZOO_BIN=$ZOO_DIR/bin
ZOO_CTR_BIN=$ZOO_ROOT/tests/container/bin
STASIS=${STASIS:-$ZOO_ROOT/stasis}
ZOO_KEEP=${ZOO_KEEP:-0}

# what each program is blocked in at dump time (/proc/PID/syscall, first field)
declare -A ZOO_SYSCALL=([syscall-restart]=202 [syscall-sigwait]=128 [syscall-nanosleep]=230 [syscall-poll]=7 [syscall-sigmask]=130)
# the free 2 MiB huge pages each program needs from the pool (vm.nr_hugepages): its own, and as
# many again for its restored copy while a lazy restore's or a corruption's run may overlap
declare -A ZOO_HUGEPAGES=([hugetlb]=16)
HUGEPAGES_2M=/sys/kernel/mm/hugepages/hugepages-2048kB
ZOO_HUGEPAGES_WAS="" # the pool's size before we grew it: given back by the EXIT trap

ZOO_TMP=""
ZOO_PIDS=()
N_PASS=0
N_FAIL=0

# Close every fd the caller handed us beyond 0-2 (bash keeps its script on 255): the zoo
# programs and stasis must not inherit anything else.
close_inherited_fds() {
	local f n
	for f in "/proc/$$/fd/"*; do
		n=${f##*/}
		case $n in
		0 | 1 | 2 | 255) ;;
		*) eval "exec $n>&-" 2>/dev/null ;;
		esac
	done
}

zoo_setup_tmp() {
	close_inherited_fds
	ZOO_TMP=$(mktemp -d "${TMPDIR:-/tmp}/stasis-zoo.XXXXXX") || exit 2
	trap zoo_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

# Is PID running (not gone, not a zombie)?
# (the helpers polled often read /proc with bash's own read: no process started per look)
proc_alive() {
	local line st t
	{ read -r line <"/proc/$1/stat"; } 2>/dev/null || return 1
	st=${line##*) } && st=${st%% *}
	[ -n "$st" ] && [ "$st" != X ] || return 1
	[ "$st" != Z ] && return 0
	# a zombie main thread: the process lives while another of its threads does (pthread_exit)
	for t in "/proc/$1/task/"*; do
		[ "${t##*/}" = "$1" ] && continue
		{ read -r line <"$t/stat"; } 2>/dev/null || continue
		st=${line##*) } && st=${st%% *}
		[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ] && return 0
	done
	return 1
}

# Does PID run one of our programs (guard against pid reuse before killing)?
pid_is_ours() {
	local exe t
	exe=$(readlink "/proc/$1/exe" 2>/dev/null)
	for t in "/proc/$1/task/"*; do # (its main thread exited: a live thread's)
		[ -n "$exe" ] && break
		exe=$(readlink "$t/exe" 2>/dev/null)
	done
	[ -n "$exe" ] || return 1
	case $exe in
	"$ZOO_BIN"/* | "$ZOO_CTR_BIN"/* | "$ZOO_ROOT"/tests/tools/bin/* | "$ZOO_TMP"/* | /usr/bin/cat | /bin/cat | /usr/bin/tmux | /usr/bin/python3* | /usr/bin/redis-server | /usr/bin/redis-check-rdb | /usr/bin/tail | /usr/bin/dbus-daemon | /usr/sbin/nginx | /usr/bin/memcached | /usr/lib/postgresql/*/bin/postgres | /usr/lib/jvm/*/bin/java | /usr/bin/node | /usr/bin/valgrind* | /usr/libexec/valgrind/* | /usr/sbin/sshd | /usr/sbin/haproxy | /usr/sbin/dnsmasq | /usr/sbin/openvpn | /usr/sbin/unbound | /usr/bin/screen | /usr/sbin/php-fpm* | /usr/lib/postfix/sbin/* | /usr/sbin/named | /usr/sbin/mosquitto | /usr/bin/Xvfb | /usr/bin/xeyes | /usr/bin/xdpyinfo | /usr/sbin/apache2 | /usr/sbin/varnishd | /usr/sbin/squid | /usr/lib/squid/* | /usr/sbin/lighttpd | /usr/lib/chromium/chromium | /usr/lib/firefox-esr/* | /usr/lib/libreoffice/program/* | /usr/sbin/rsyslogd | /usr/sbin/slapd | /usr/sbin/dovecot | /usr/lib/dovecot/* | /usr/bin/qemu-system-x86_64 | /usr/sbin/smbd | /usr/bin/etcd | /usr/bin/epmd | /usr/lib/erlang/* | /usr/bin/tinyproxy | /usr/bin/pulseaudio | /usr/bin/pacat | /usr/bin/bwrap | /usr/sbin/runc | /usr/bin/firejail) return 0 ;;
	esac
	return 1
}

track_pid() { ZOO_PIDS+=("$1"); }

# Shared memory a host case's programs made and left (they did not reach their end), so that
# no run leaves it on the host: their /dev/shm files (named zoo-WHAT-PID by the program of that
# pid), their POSIX message queues (/stasis-zoo-PID-WHAT), and their SysV segments once nothing
# has them attached. After each case (its program's) and at exit (every program's: a killed
# program's processes may still be detaching then, waited for up to 2 s).
remove_left_shared_memory() {
	local id cpid nattch ours=" ${ZPID:-} " tries=0 busy mq
	[ "${1:-}" = all ] && ours=" ${ZOO_PIDS[*]} "
	[ "$ours" != "  " ] || return 0
	mq=$(mktemp -d) && { mount -t mqueue none "$mq" 2>/dev/null || { rmdir "$mq"; mq=""; }; }
	for cpid in $ours; do
		rm -f /dev/shm/zoo-*-"$cpid" ${mq:+"$mq"/stasis-zoo-"$cpid"-*}
	done
	[ -n "$mq" ] && umount "$mq" && rmdir "$mq"
	while :; do
		busy=0
		while read -r id cpid nattch; do
			[[ $ours == *" $cpid "* ]] || continue
			# (at exit, its maker must be gone: a live one with that pid is not ours)
			[ "${1:-}" = all ] && [ -d "/proc/$cpid" ] && continue
			if [ "$nattch" = 0 ]; then
				ipcrm -m "$id" 2>/dev/null
			else
				busy=1
			fi
		done < <(awk 'NR > 1 { print $2, $5, $7 }' /proc/sysvipc/shm)
		[ "$busy" = 1 ] && [ "${1:-}" = all ] && [ $((tries += 1)) -le 20 ] || break
		sleep 0.1
	done
}

# drop_net_lock PID: the network lock a dump of root PID left for its restore (nftables table
# stasis-dumped-PID, blocking its TCP connections' packets), when that restore failed
drop_net_lock() {
	command -v nft >/dev/null && nft delete table inet "stasis-dumped-$1" 2>/dev/null
	return 0
}
kill_ours() { # kill_ours PID: SIGKILL it if it is still one of ours
	local p=$1
	[ -n "$p" ] || return 0
	if proc_alive "$p" && pid_is_ours "$p"; then
		kill -KILL "$p" 2>/dev/null
	fi
	return 0
}

zoo_cleanup() {
	local p cwd
	trap '' INT TERM # (a second signal must not cut the cleanup short)
	if declare -F zoo_jobs_stop >/dev/null; then
		zoo_jobs_stop # (tests/run-zoo.sh --jobs)
	fi
	for p in "${ZOO_PIDS[@]}"; do
		kill_ours "$p"
	done
	# children of trees we started (a failed case may leave them): zoo programs in our dirs
	if [ -n "$ZOO_TMP" ]; then
		for p in /proc/[0-9]*; do
			case $(readlink "$p/exe" 2>/dev/null) in "$ZOO_BIN"/*) ;; *) continue ;; esac
			cwd=$(readlink "$p/cwd" 2>/dev/null)
			case $cwd in "$ZOO_TMP"/*) kill -KILL "${p#/proc/}" 2>/dev/null ;; esac
		done
	fi
	remove_left_shared_memory all
	if [ -n "$ZOO_HUGEPAGES_WAS" ]; then
		echo "$ZOO_HUGEPAGES_WAS" >"$HUGEPAGES_2M/nr_hugepages"
	fi
	zoo_overlay_unmount
	# the container flavour (tests/container/ctr-lib.sh): its cgroups, anything left mounted
	if declare -F ctr_cleanup >/dev/null; then
		ctr_cleanup
	fi
	if [ -n "$ZOO_TMP" ] && [ -d "$ZOO_TMP" ]; then
		if [ "$ZOO_KEEP" = 1 ]; then
			echo "# kept $ZOO_TMP" >&2
		else
			rm -rf "$ZOO_TMP"
		fi
	fi
}

# wait_until SECONDS COMMAND...: poll every 50 ms
wait_until() {
	local n=$(($1 * 20))
	shift
	while [ $n -gt 0 ]; do
		"$@" && return 0
		sleep 0.05
		n=$((n - 1))
	done
	"$@"
}

# field 22 of /proc/PID/stat: when the process started (a restored one is a new process)
proc_starttime() { stat_field "/proc/$1/stat" 19; }
# state letter (R, S, T, t, Z...)
proc_state() { stat_field "/proc/$1/stat" 0; }
# stat_field FILE N: field N after the command name of a /proc stat file (0: the state)
stat_field() {
	local line f
	{ read -r line <"$1"; } 2>/dev/null || return 0
	read -r -a f <<<"${line##*) }"
	echo "${f[$2]}"
}
tracer_of() { awk '/^TracerPid:/ {print $2}' "/proc/$1/status" 2>/dev/null; }
# count_procs NAME DIR: how many processes run tests/zoo/bin/NAME with their cwd under DIR
# (DIR makes it ours even when another zoo run is going on)
count_procs() {
	local p n=0 cwd
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/exe" 2>/dev/null)" = "$ZOO_BIN/$1" ] || continue
		cwd=$(readlink "$p/cwd" 2>/dev/null)
		case $cwd in "$2"/*) n=$((n + 1)) ;; esac
	done
	echo $n
}

not_alive() { ! proc_alive "$1"; }
pid_free() { [ ! -e "/proc/$1" ]; }
first_line_is_ready() { local l; { read -r l <"$1"; } 2>/dev/null && [ "$l" = READY ]; }
file_nonempty() { [ -s "$1" ]; }
# started_or_gone PIDFILE PID: the pid file is written, or the launcher PID has died without it
started_or_gone() { file_nonempty "$1" || ! proc_alive "$2"; }
in_syscall() { local nr; { read -r nr _ <"/proc/$1/syscall"; } 2>/dev/null && [ "$nr" = "$2" ]; }

build_zoo() {
	if ! make -s -C "$ZOO_DIR" >"$ZOO_TMP/build.log" 2>&1; then
		echo "FAIL build: make -C tests/zoo failed"
		sed 's/^/    /' "$ZOO_TMP/build.log" | tail -n 30
		return 1
	fi
}

# zoo_common_options ARG...: the options of a test script that takes no others: --keep (-k)
# keeps the temporary tree, --help (-h) prints the script's header comment; anything else is
# refused (exit 2).
zoo_common_options() {
	local a
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
}

# zoo_ready_or_exit: the zoo programs built and a stasis binary there, or the run ends as one
# failure.
zoo_ready_or_exit() {
	if ! build_zoo; then
		N_FAIL=1
		summary
		exit 1
	fi
	if [ ! -x "$STASIS" ]; then
		result_fail stasis "no stasis binary at $STASIS (run make)"
		summary
		exit 1
	fi
}

result_ok() {
	echo "ok $1"
	N_PASS=$((N_PASS + 1))
}
result_fail() {
	echo "FAIL $1: $2"
	N_FAIL=$((N_FAIL + 1))
}
# result_skip CASE WHY: a case this machine cannot run (counted neither passed nor failed)
result_skip() {
	echo "skip $1: $2"
}
summary() {
	echo "$N_PASS passed, $N_FAIL failed"
	[ "$N_FAIL" -eq 0 ]
}

# show_tail FILE...: the last lines of each existing file, indented
show_tail() {
	local f
	for f in "$@"; do
		[ -s "$f" ] || continue
		echo "    --- ${f#"$ZOO_TMP"/} (last 20 lines)"
		tail -n 20 "$f" | sed 's/^/    | /'
	done
}

# The cgroup directories in ZOO_CGROUPS (space separated), if any, for the calling (sub)shell.
zoo_join_cgroups() {
	local cg
	for cg in ${ZOO_CGROUPS:-}; do
		echo "$BASHPID" >"$cg/cgroup.procs" || return 1
	done
}

# zoo_hugepages N: at least N free 2 MiB huge pages in the pool (grown if need be; 1 if it
# cannot be)
zoo_hugepages() {
	local want=$1 free total
	free=$(cat "$HUGEPAGES_2M/free_hugepages" 2>/dev/null) || return 1
	total=$(cat "$HUGEPAGES_2M/nr_hugepages")
	[ "$free" -ge "$want" ] && return 0
	[ -n "$ZOO_HUGEPAGES_WAS" ] || ZOO_HUGEPAGES_WAS=$total
	echo $((total + want - free)) >"$HUGEPAGES_2M/nr_hugepages" 2>/dev/null
	[ "$(cat "$HUGEPAGES_2M/free_hugepages")" -ge "$want" ]
}

# zoo_prog NAME: the program's path (tests/zoo/bin, or tests/container/bin for the
# container flavour's own programs)
zoo_prog() {
	if [ -x "$ZOO_BIN/$1" ] || [ ! -x "$ZOO_CTR_BIN/$1" ]; then
		echo "$ZOO_BIN/$1"
	else
		echo "$ZOO_CTR_BIN/$1"
	fi
}

# zoo_start NAME DIR [ARGS...]
#   Starts tests/zoo/bin/NAME with cwd DIR/work, stdin /dev/null, stdout DIR/out, stderr
#   DIR/err, ZOO_PIDFILE=DIR/pid, ZOO_TMPDIR=DIR/work; in its own session (setsid), except
#   shell-job which gets `| cat > DIR/out` and stays in our session; in the cgroups (their
#   directories) listed in ZOO_CGROUPS, if set. Waits for READY and, for
#   the programs in ZOO_SYSCALL, until the program sits in its system call.
#   With the array ZOO_LAUNCH set, the program is started as ZOO_LAUNCH... PROGRAM ARGS instead
#   (the container flavour: ctr-run OPTIONS --pidfile DIR/pid --), which writes DIR/pid.
#   Sets ZPID (the program), ZLAUNCH (our child), ZCAT (shell-job's cat). On error returns 1
#   with the reason in ZERR.
ZOO_LAUNCH=()
# zoo_overlay_work DIR: with ZOO_OVERLAY (run-zoo.sh --overlay), DIR/work an overlayfs (a lower
# layer with a file and a directory, an upper one of the case's), once; sets ZERR on failure
zoo_overlay_work() {
	local d=$1
	[ -n "${ZOO_OVERLAY:-}" ] || return 0
	mountpoint -q "$d/work" && return 0
	mkdir -p "$d/layers/lower/sub" "$d/layers/upper" "$d/layers/scratch" &&
		echo lower >"$d/layers/lower/lowerfile" &&
		mount -t overlay zoo-overlay -o "lowerdir=$d/layers/lower,upperdir=$d/layers/upper,workdir=$d/layers/scratch" \
			"$d/work" && return 0
	ZERR="cannot mount an overlayfs on $d/work"
	return 1
}

# zoo_overlay_unmount: every overlayfs zoo_overlay_work mounted
zoo_overlay_unmount() {
	local m
	[ -n "$ZOO_TMP" ] || return 0
	awk -v t="$ZOO_TMP/" '$3 == "overlay" && index($2, t) == 1 { print $2 }' /proc/self/mounts |
		while read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done
}

zoo_start() {
	local name=$1 d=$2 prog launch=("${ZOO_LAUNCH[@]}")
	shift 2
	ZPID="" ZLAUNCH="" ZCAT="" ZERR=""
	mkdir -p "$d/work"
	zoo_overlay_work "$d" || return 1
	rm -f "$d/pid" "$d/out" "$d/err"
	prog=$(zoo_prog "$name")
	if [ ! -x "$prog" ]; then
		ZERR="no program $prog"
		return 1
	fi
	if [ -n "${ZOO_HUGEPAGES[$name]:-}" ] && ! zoo_hugepages "${ZOO_HUGEPAGES[$name]}"; then
		ZERR="cannot have ${ZOO_HUGEPAGES[$name]} free huge pages of 2 MiB ($HUGEPAGES_2M)"
		return 1
	fi
	if [ "$name" = shell-job ]; then
		(cd "$d/work" && ZOO_PIDFILE=$d/pid ZOO_TMPDIR=$d/work exec "${launch[@]}" "$prog" "$@" </dev/null 2>"$d/err") |
			cat >"$d/out" &
		ZCAT=$!
		disown
		track_pid "$ZCAT"
	else
		[ ${#launch[@]} -gt 0 ] || launch=(setsid)
		(cd "$d/work" && zoo_join_cgroups &&
			ZOO_PIDFILE=$d/pid ZOO_TMPDIR=$d/work exec "${launch[@]}" "$prog" "$@" \
				</dev/null >"$d/out" 2>"$d/err") &
		ZLAUNCH=$!
		disown # no "Killed" job reports; bash still reaps it
		track_pid "$ZLAUNCH"
	fi
	if ! wait_until 30 started_or_gone "$d/pid" "${ZLAUNCH:-$ZCAT}" || ! file_nonempty "$d/pid"; then
		ZERR="no pid file (after 30 s, or its launcher is gone); output: $(head -c 300 "$d/out" 2>/dev/null) $(head -c 300 "$d/err" 2>/dev/null)"
		kill_ours "$ZLAUNCH"
		return 1
	fi
	ZPID=$(cat "$d/pid")
	track_pid "$ZPID"
	if ! wait_until 30 first_line_is_ready "$d/out"; then
		ZERR="no READY after 30 s; output: $(head -c 300 "$d/out" 2>/dev/null) $(head -c 300 "$d/err" 2>/dev/null)"
		kill_ours "$ZPID"
		return 1
	fi
	local sc=${ZOO_SYSCALL[$name]:-}
	if [ -n "$sc" ] && ! wait_until 5 in_syscall "$ZPID" "$sc"; then
		ZERR="not blocked in syscall $sc after READY (/proc/$ZPID/syscall: $(cat "/proc/$ZPID/syscall" 2>/dev/null))"
		kill_ours "$ZPID"
		return 1
	fi
	return 0
}

# zoo_stop PID DIR OUTFILE: SIGTERM, wait (20 s) until it is gone, then the verdict line of
# OUTFILE in ZVERDICT. Returns 1 (reason in ZERR) if it did not exit or printed no verdict.
zoo_stop() {
	local pid=$1 d=$2 out=$3
	ZVERDICT="" ZERR=""
	if ! proc_alive "$pid"; then
		ZERR="process $pid was not running when SIGTERM was due"
	else
		kill -TERM "$pid" 2>/dev/null
		if ! wait_until 20 not_alive "$pid"; then
			ZERR="process $pid did not exit within 20 s of SIGTERM"
			kill_ours "$pid"
		fi
	fi
	if [ -n "$ZCAT" ]; then # shell-job: cat ends when the last writer is gone
		wait_until 10 not_alive "$ZCAT" || kill_ours "$ZCAT"
	fi
	ZVERDICT=$(grep -a -E '(PASS|FAIL: )' "$out" 2>/dev/null | tail -n1 | sed -e 's/^READY//')
	if [ -z "$ZERR" ] && [ -z "$ZVERDICT" ]; then
		ZERR="no verdict line; output: $(head -c 300 "$out" 2>/dev/null) $(head -c 300 "$d/err" 2>/dev/null)"
	fi
	[ -z "$ZERR" ]
}

# run_stasis OUTFILE TIMEOUT ARGS...: stasis with a time limit, stdin /dev/null, stdout and
# stderr to OUTFILE; sets ZRC. Run under the command in the array ZOO_WRAP, if set (a
# program's restore wrapper: it adds the outside world, e.g. --inherit-fd).
ZOO_WRAP=()
run_stasis() {
	local out=$1 t=$2
	shift 2
	timeout -k 5 "$t" "${ZOO_WRAP[@]}" "$STASIS" "$@" </dev/null >"$out" 2>&1
	ZRC=$? # read by the callers
}

# clean_failure RC: a deliberate failure, not a crash or a hang
clean_failure() { [ "$1" -ne 0 ] && [ "$1" -lt 124 ]; }

# mentions FILE... -- REGEX: does the output/log name it?
mentions() {
	local re=${!#} files=("${@:1:$#-1}")
	cat "${files[@]}" 2>/dev/null | grep -q -E -- "$re"
}

# target_survives CASE PID DIR: the target was left as it was: running, not stopped, not
# traced, and it PASSes after SIGTERM. Sets ZERR.
target_survives() {
	local pid=$2 d=$3 st tr
	ZERR=""
	sleep 0.2
	if ! proc_alive "$pid"; then
		ZERR="the target $pid is gone (output: $(tail -c 200 "$d/out"))"
		return 1
	fi
	st=$(proc_state "$pid")
	tr=$(tracer_of "$pid")
	if [ "$st" = T ] || [ "$st" = t ]; then
		ZERR="the target is left stopped (state $st)"
		kill_ours "$pid"
		return 1
	fi
	if [ -n "$tr" ] && [ "$tr" != 0 ]; then
		ZERR="the target is still traced by $tr"
		kill_ours "$pid"
		return 1
	fi
	if ! zoo_stop "$pid" "$d" "$d/out"; then
		return 1
	fi
	if [[ $ZVERDICT != PASS* ]]; then
		ZERR="the target's own checks after the failed dump: $ZVERDICT"
		return 1
	fi
	return 0
}
