# shellcheck shell=bash
# shellcheck disable=SC2034 # CTR_* arrays and ZOO_LAUNCH are read by tests/run-zoo.sh and lib.sh
# The container flavours of the process zoo (sourced by tests/run-zoo.sh after tests/zoo/lib.sh):
#
#   full   each program is the init (pid 1) of a container made by ctr-run: new PID, mount,
#          UTS, IPC, cgroup and net namespaces, its root a fresh directory under the zoo's
#          temporary directory with host /usr (and /bin, /lib, /lib64, /sbin: symlinks into
#          usr/ on a merged-/usr host, read-only binds otherwise), tests/zoo/bin and
#          tests/container/bin bound read-only at the same paths, the case's work directory
#          bound read-write and its out and err files bound (file bind mounts) and opened
#          inside as stdout and stderr; --hostname zoo-NAME, --netns, --seccomp (not for
#          seccomp-strict: strict mode cannot be entered under a filter; not for bpf-map:
#          Docker's profile refuses bpf(), a privileged container's is not), --cgroup (one
#          cgroup per case, removed after it). ctr-state also gets --timens.
#          Dumped with --ext-mount-map auto --manage-cgroups, restored with --root ROOT and the
#          same.
#   pidns  ctr-run --only-pidns: only a PID namespace; dumped and restored without options.
#   userns full, in a user namespace of its own too (--userns $CTR_USERNS_MAP: root there is
#          host uid 100000), which owns all its other namespaces; its root directory, work
#          directory and out and err files belong to that uid (the init writes to them as
#          root of its namespace). Dumped and restored as full.
#
# After the restore the init has a new host pid: it must be pid 1 of a PID namespace (NSpid
# ends with 1) running the same program. Every checkpoint case also checks that nothing new is
# mounted on the host afterwards; ctr-state's case checks the container from the outside
# (hostname, mount table, /tmp and /dev files, cgroups and limits, seccomp, time offsets, net
# links: ctr_snapshot) and ctr-state/ctr-checks-can-fail proves each of those comparisons
# reports a different container.

CTR_BIN=$ZOO_CTR_BIN
CTR_RUN=$CTR_BIN/ctr-run
CTR_DIR=$ZOO_ROOT/tests/container
CTR_CG_BASE="" # this run's cgroup, under the launcher's own cgroup in each hierarchy
CTR_DUMP_OPTS=()
CTR_RESTORE_OPTS=()
CTR_MEMORY_LIMIT=1073741824
CTR_PIDS_LIMIT=1024
CTR_STATE_CHECKED=0 # ctr-state's outside checks ran in this case
CTR_ROOTFS=()
CTR_USERNS_MAP=0:100000:65536 # the userns flavour's uid and gid map (INNER:OUTER:COUNT)

# the aspects ctr_snapshot records, one result line each for ctr-state
CTR_ASPECTS=(hostname mounts files cgroup limits seccomp timens net)

ctr_setup() { # ctr_setup FLAVOUR: build the helpers
	CTR=$1
	CTR_CG_BASE=$(basename "$ZOO_TMP")
	if ! make -s -C "$CTR_DIR" >"$ZOO_TMP/ctr-build.log" 2>&1; then
		echo "FAIL build: make -C tests/container failed"
		sed 's/^/    /' "$ZOO_TMP/ctr-build.log" | tail -n 30
		return 1
	fi
	if [ "$CTR" = full ] || [ "$CTR" = userns ]; then
		CTR_DUMP_OPTS=(--ext-mount-map auto --manage-cgroups)
		# the root of a user namespace is another uid: it needs a way to its files
		if [ "$CTR" = userns ]; then chmod 755 "$ZOO_TMP"; fi
	fi
}

# ctr_rootfs ROOT: a fresh ROOT; CTR_ROOTFS, the ctr-run options that give it the host's
# programs and libraries: /usr, and /bin, /lib, /lib64, /sbin as the host has them (symlinks
# into usr/, or read-only binds)
ctr_rootfs() {
	local root=$1 l
	rm -rf "$root"
	mkdir -p "$root"
	CTR_ROOTFS=(--root "$root" --bind /usr:ro)
	for l in bin lib lib64 sbin; do
		if [ -L "/$l" ]; then
			ln -s "$(readlink "/$l")" "$root/$l"
		elif [ -d "/$l" ]; then
			CTR_ROOTFS+=(--bind "/$l:ro")
		fi
	done
}

# ctr_launcher NAME DIR: sets ZOO_LAUNCH, the ctr-run command line for the case in DIR
ctr_launcher() {
	local name=$1 d=$2 id root
	id=$(basename "$d")
	if [ "$CTR" = pidns ]; then
		ZOO_LAUNCH=("$CTR_RUN" --only-pidns --pidfile "$d/pid")
		[ "$name" = shell-job ] && ZOO_LAUNCH+=(--no-setsid)
		ZOO_LAUNCH+=(--)
		return
	fi
	root=$ZOO_TMP/roots/$id
	ctr_rootfs "$root"
	ZOO_LAUNCH=("$CTR_RUN" --pidfile "$d/pid" "${CTR_ROOTFS[@]}")
	# (zoo_start's redirections make out and err before ctr-run binds them)
	# (ext-unix sees its work directory, where the daemon outside bound its sockets, at another
	# path: the name its datagram socket is connected to is the daemon's, not the one it used)
	local work=$d/work
	[ "$name" = ext-unix ] && work=/ext-seen
	ZOO_LAUNCH+=(--bind "$ZOO_BIN:ro" --bind "$CTR_BIN:ro" --bind "$d/work:$work" --bind "$d/out"
		--bind "$d/err" --cwd "$work" --stdin /dev/null --stderr "$d/err"
		--hostname "zoo-$name" --netns --cgroup "$CTR_CG_BASE/$id"
		--memory-limit "$CTR_MEMORY_LIMIT" --pids-limit "$CTR_PIDS_LIMIT")
	if [ "$name" = shell-job ]; then
		ZOO_LAUNCH+=(--no-setsid) # its stdout is our pipe
	else
		ZOO_LAUNCH+=(--stdout "$d/out")
	fi
	# (no process under a seccomp filter can enter strict mode; Docker's profile refuses bpf():
	# a privileged container's maps)
	[ "$name" = seccomp-strict ] || [ "$name" = bpf-map ] || ZOO_LAUNCH+=(--seccomp)
	[ "$name" = ctr-state ] && ZOO_LAUNCH+=(--timens)
	case $name in # they set sysctls: IPC ones, ping_group_range
	sysv-ipc | ping-socket) ZOO_LAUNCH+=(--proc-sys-rw) ;;
	esac
	if [ "$CTR" = userns ]; then
		local outer=${CTR_USERNS_MAP#*:}
		outer=${outer%%:*}
		chown "$outer:$outer" "$root"
		ZOO_LAUNCH+=(--userns "$CTR_USERNS_MAP")
		# zoo_start makes the work directory, out and err just before the launch
		ZOO_LAUNCH=(bash -c 'chown "$0" "$1/work" "$1/out" "$1/err" && shift && exec "$@"'
			"$outer:$outer" "$d" "${ZOO_LAUNCH[@]}")
	fi
	[ "$work" = "$d/work" ] || ZOO_LAUNCH=(env ZOO_TMPDIR="$work" "${ZOO_LAUNCH[@]}")
	ZOO_LAUNCH+=(--)
	CTR_RESTORE_OPTS=(--root "$root" --ext-mount-map auto --manage-cgroups)
}

# ctr_start NAME DIR [ARGS...]: zoo_start in a container; the init must be pid 1 of its own
# PID namespace
ctr_start() {
	local name=$1 d=$2
	ctr_launcher "$name" "$d"
	zoo_start "$@"
	local rc=$?
	ZOO_LAUNCH=()
	[ $rc -eq 0 ] || return 1
	if ! ctr_is_init "$ZPID"; then
		ZERR="pid $ZPID is not pid 1 of a PID namespace ($(grep NSpid "/proc/$ZPID/status" 2>/dev/null))"
		kill_ours "$ZPID"
		return 1
	fi
}

# is PID pid 1 of a PID namespace below ours?
ctr_is_init() {
	local ns
	ns=$(awk '/^NSpid:/ {print NF, $NF}' "/proc/$1/status" 2>/dev/null)
	[ "${ns#* }" = 1 ] && [ "${ns%% *}" -ge 3 ]
}

# ctr_check_restored DIR RPID: the restored init runs and is the same program as the dumped
# one (DIR/exe, ctr_before_dump); reason in ZERR
ctr_check_restored() {
	local d=$1 rpid=$2 exe
	ZERR=""
	if [ -z "$rpid" ] || ! proc_alive "$rpid"; then
		ZERR="the restored init (--pidfile: '$rpid') is not running"
	elif ! ctr_is_init "$rpid"; then
		ZERR="restored pid $rpid is not pid 1 of a PID namespace ($(grep NSpid "/proc/$rpid/status"))"
	elif exe=$(readlink "/proc/$rpid/exe") && [ "$exe" != "$(cat "$d/exe")" ]; then
		ZERR="restored pid $rpid runs '$exe', the dumped init ran '$(cat "$d/exe")'"
	fi
	[ -z "$ZERR" ]
}

# ---- the host's mount table -----------------------------------------------------------

# Mount points that are others' running beside this case, left out: in /tmp outside ZOO_TMP
# (other tests' and engines'), named network namespaces in /run/netns (tests/net; stasis names
# none), container engines' storage and state (tests/e2e: Docker, Podman, containerd).
CTR_OTHERS_MOUNTS='^/(tmp|run/netns|var/lib/containers|var/lib/docker|var/lib/containerd|run/containers|run/docker|run/containerd|run/libpod)/'
# host_mounts DIR: the host's mount points (and their options) that the case in DIR must not
# leave: in ZOO_TMP those under DIR and under its container's root (roots/ID), not other
# cases' (run-zoo.sh --jobs runs them beside it); outside it, those not others' as above
host_mounts() {
	awk -v t="$ZOO_TMP/" -v d="$1/" -v r="$ZOO_TMP/roots/${1##*/}/" -v others="$CTR_OTHERS_MOUNTS" \
		'{ m = $5 "/" } index(m, d) == 1 || index(m, r) == 1 || (index(m, t) != 1 && $5 !~ others) {
			print $5, $(NF - 2)
		}' /proc/self/mountinfo | sort
}

# ctr_host_mounts_check DIR/host-mounts: no mount point that is not in that file (host_mounts
# DIR); a new one must show in two looks 0.5 s apart (others' tests mount things for a moment)
ctr_host_mounts_check() {
	local new d=${1%/*}
	new=$(comm -13 "$1" <(host_mounts "$d"))
	[ -z "$new" ] && return 0
	sleep 0.5
	new=$(comm -12 <(echo "$new") <(comm -13 "$1" <(host_mounts "$d")))
	[ -z "$new" ] && return 0
	ZERR="left mounted on the host: $(echo "$new" | head -n 5 | tr '\n' ';')"
	return 1
}

# ---- the container seen from the outside -----------------------------------------------

# ctr_cg_mount CONTROLLER: the host's mount point of the v1 hierarchy with CONTROLLER, or of
# the cgroup2 hierarchy for ""
ctr_cg_mount() {
	awk -v c="$1" '{
		for (i = 7; $i != "-"; i++) ;
		if (c == "" && $(i + 1) == "cgroup2") { print $5; exit }
		if (c != "" && $(i + 1) == "cgroup") {
			n = split($(i + 3), o, ",")
			for (k = 1; k <= n; k++) if (o[k] == c) { print $5; exit }
		}
	}' /proc/self/mountinfo
}

# ctr_limits PID: the memory and pids limits of the cgroups PID is in
ctr_limits() {
	local ctrls path mnt f
	while IFS=: read -r _ ctrls path; do
		for f in memory:memory.limit_in_bytes pids:pids.max :memory.max :pids.max; do
			case ",$ctrls," in ",${f%%:*},") ;; *) continue ;; esac
			mnt=$(ctr_cg_mount "${f%%:*}")
			[ -n "$mnt" ] && [ -e "$mnt$path/${f#*:}" ] && echo "${f#*:} $(cat "$mnt$path/${f#*:}")"
		done
	done <"/proc/$1/cgroup"
}

# ctr_snapshot PID DIR: what the outside sees of PID's container, one file per aspect
ctr_snapshot() {
	local pid=$1 s=$2
	mkdir -p "$s"
	nsenter -t "$pid" -u hostname >"$s/hostname" 2>&1
	# mount point, root, fs type, source, options, super options, propagation (no ids)
	awk '{
		prop = ""
		for (i = 7; $i != "-"; i++) { split($i, w, ":"); prop = prop (prop == "" ? "" : ",") w[1] }
		print $5, $4, $(i + 1), $(i + 2), $6, $(i + 3), (prop == "" ? "private" : prop)
	}' "/proc/$pid/mountinfo" 2>&1 | sort >"$s/mounts"
	python3 "$CTR_DIR/list-files.py" "/proc/$pid/root" /tmp/ctr /dev >"$s/files" 2>&1
	{
		cat "/proc/$pid/cgroup"
		echo "inside:"
		nsenter -t "$pid" -C cat "/proc/$pid/cgroup"
	} >"$s/cgroup" 2>&1
	ctr_limits "$pid" >"$s/limits" 2>&1
	grep -E '^(Seccomp|Seccomp_filters|NoNewPrivs):' "/proc/$pid/status" >"$s/seccomp" 2>&1
	# to the hour: the tree's clocks go on from where they stood when it was frozen, so the
	# offsets shrink by the time it spent in its images (ctr-state checks that from inside)
	awk '{ printf "%s %d h\n", $1, int(($2 + 1800) / 3600) }' "/proc/$pid/timens_offsets" >"$s/timens" 2>&1
	nsenter -t "$pid" -n ip -o link show 2>&1 | awk '{print $2, $3}' >"$s/net"
}

# ctr_compare ASPECT BEFORE AFTER: the same? Else ZERR says how they differ
ctr_compare() {
	local a=$1 x=$2/$1 y=$3/$1
	ZERR=""
	cmp -s "$x" "$y" && return 0
	ZERR="$a differs: $(diff "$x" "$y" | grep '^[<>]' | head -n 6 | sed 's/^</was:/; s/^>/now:/' | tr '\n' ';')"
	return 1
}

# ctr_expect BEFORE: the snapshot of a fresh ctr-state container is what ctr-run made
ctr_expect() {
	local s=$1 bad=""
	grep -qx "zoo-ctr-state" "$s/hostname" || bad="$bad; hostname '$(cat "$s/hostname")'"
	grep -q "^memory.* $CTR_MEMORY_LIMIT\$" "$s/limits" || bad="$bad; no memory limit $CTR_MEMORY_LIMIT"
	grep -q "^pids.max $CTR_PIDS_LIMIT\$" "$s/limits" || bad="$bad; no pids limit $CTR_PIDS_LIMIT"
	grep -q "^Seccomp:.2" "$s/seccomp" || bad="$bad; not in seccomp filter mode"
	grep -q "^monotonic 48 h$" "$s/timens" || bad="$bad; timens offsets '$(tr '\n' ' ' <"$s/timens")'"
	grep -q "^/tmp/ctr/xattr .*user.stasis=1" "$s/files" || bad="$bad; no xattr in /tmp/ctr"
	[ "$(grep -c . "$s/net")" = 1 ] && grep -q "^lo: <.*UP" "$s/net" || bad="$bad; links '$(tr '\n' ' ' <"$s/net")'"
	grep -q "^/ $ZOO_TMP/roots/" "$s/mounts" || bad="$bad; its root is not under $ZOO_TMP/roots"
	[ "$(sed -n '/^inside:/,$p' "$s/cgroup" | grep -vc ':/$')" = 1 ] ||
		bad="$bad; cgroup namespace root is not its cgroup"
	ZERR=${bad#; }
	[ -z "$ZERR" ]
}

# ---- hooks of tests/run-zoo.sh case_checkpoint ------------------------------------------

ctr_before_dump() { # NAME DIR PID
	host_mounts "$2" >"$2/host-mounts"
	readlink "/proc/$3/exe" >"$2/exe"
	CTR_STATE_CHECKED=0
	if [ "$1" = ctr-state ]; then
		ctr_snapshot "$3" "$2/before"
		if ! ctr_expect "$2/before"; then
			result_fail "ctr-state/ctr-setup" "the container is not what ctr-run should make: $ZERR"
		fi
	fi
}

# between dump and restore: ctr-state's cgroups are removed (as after a reboot), so that the
# restore has to make them again with their limits (--manage-cgroups)
ctr_after_dump() { # NAME DIR
	[ "$1" = ctr-state ] && [ "$CTR" != pidns ] && ctr_cgroup_remove "$CTR_CG_BASE/$(basename "$2")"
	return 0
}

# after the restore, before SIGTERM; returns 1 (ZERR) if the case failed
ctr_after_restore() { # NAME DIR RPID
	local a
	ctr_host_mounts_check "$2/host-mounts" || return 1
	[ "$1" = ctr-state ] || return 0
	CTR_STATE_CHECKED=1
	ctr_snapshot "$3" "$2/after"
	for a in "${CTR_ASPECTS[@]}"; do
		if ctr_compare "$a" "$2/before" "$2/after"; then
			result_ok "ctr-state/ctr-$a"
		else
			result_fail "ctr-state/ctr-$a" "$ZERR"
		fi
	done
	return 0
}

# after every case: the case's containers are gone, its cgroups removed; ctr-state's outside
# checks that never ran are failures
ctr_case_done() { # NAME DIR
	local p pids=()
	for p in "$2/pid" "$2/restored.pid"; do
		[ -s "$p" ] && pids+=("$(cat "$p")") && kill_ours "$(cat "$p")"
	done
	# pidns: the host's IPC namespace keeps the SysV shm segments a killed init made (keyed
	# by its pid there, 1, they would stop the next run)
	if [ "$CTR" = pidns ] && [ ${#pids[@]} -gt 0 ]; then
		for p in $(ipcs -m -p | awk -v pids=" ${pids[*]} " '$1 ~ /^[0-9]+$/ && index(pids, " " $3 " ") {print $1}'); do
			ipcrm -m "$p"
		done
	fi
	if [ "$1" = ctr-state ] && [[ $2 == *cr ]] && [ "$CTR_STATE_CHECKED" = 0 ] && [ "$NO_CR" = 0 ]; then
		for p in "${CTR_ASPECTS[@]}"; do
			result_fail "ctr-state/ctr-$p" "not checked: no restored container (see ctr-state/ctr-checkpoint)"
		done
	fi
	CTR_STATE_CHECKED=0
	[ "$CTR" != pidns ] && ctr_cgroup_remove "$CTR_CG_BASE/$(basename "$2")"
	return 0
}

# ctr_cgroup_remove PATH: rmdir PATH and everything below it in every hierarchy (once its
# processes are gone: retried for 5 s)
ctr_cgroup_remove() {
	local dir n
	for dir in $("$CTR_RUN" --cgroup-dirs "$1" 2>/dev/null); do
		[ -d "$dir" ] || continue
		for n in $(seq 50); do
			find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null
			[ -d "$dir" ] || break
			sleep 0.1
		done
		[ -d "$dir" ] && echo "# cannot remove cgroup $dir: tasks $(tr '\n' ' ' <"$dir/cgroup.procs" 2>/dev/null)" >&2
	done
}

# ctr-state/ctr-checks-can-fail: a fresh ctr-state container looked at twice, 0.5 s apart,
# must compare the same in every aspect (no false alarm), and a second container that differs
# in every aspect (another hostname, another root with one more tmpfs, a changed file, other
# limits, no seccomp, no time namespace, the host's network) must differ in each; a mount
# under the zoo's directory on the host must be found by the host mount check
ctr_case_checks_fail() {
	local a d=$ZOO_TMP/ctr-state.checks pid other bad=""
	mkdir -p "$d"
	host_mounts "$d" >"$d/host-mounts"
	if ! ctr_start ctr-state "$d"; then
		result_fail "ctr-state/ctr-checks-can-fail" "$ZERR"
		return
	fi
	pid=$ZPID
	ctr_snapshot "$pid" "$d/a"
	ctr_expect "$d/a" || bad="$bad; $ZERR"
	sleep 0.5
	ctr_snapshot "$pid" "$d/a2"
	kill_ours "$pid"
	for a in "${CTR_ASPECTS[@]}"; do
		ctr_compare "$a" "$d/a" "$d/a2" || bad="$bad; the same container twice: $ZERR"
	done
	mkdir -p "$d/b/work"
	ctr_rootfs "$ZOO_TMP/roots/ctr-state.checks-b"
	if ! (cd "$d/b/work" && "$CTR_RUN" "${CTR_ROOTFS[@]}" --pidfile "$d/b/pid" \
		--bind "$ZOO_BIN:ro" --hostname other --tmpfs /extra --cgroup "$CTR_CG_BASE/checks-b" \
		--memory-limit 512M --pids-limit 99 -- "$ZOO_BIN/signals" </dev/null >"$d/b/out" 2>"$d/b/err"); then
		result_fail "ctr-state/ctr-checks-can-fail" "ctr-run: $(cat "$d/b/err")"
		return
	fi
	other=$(cat "$d/b/pid")
	track_pid "$other"
	chmod 0600 "/proc/$other/root/tmp/ctr/file"
	ctr_snapshot "$other" "$d/b/snap"
	kill_ours "$other"
	ctr_cgroup_remove "$CTR_CG_BASE/checks-b"
	for a in "${CTR_ASPECTS[@]}"; do
		ctr_compare "$a" "$d/a" "$d/b/snap" && bad="$bad; $a: no difference found"
	done
	mkdir -p "$d/leak"
	if mount -t tmpfs -o size=4k ctr-leak-probe "$d/leak"; then
		ctr_host_mounts_check "$d/host-mounts" && bad="$bad; host mounts: $d/leak not found"
		umount "$d/leak"
	else
		bad="$bad; cannot mount the probe tmpfs"
	fi
	if [ -n "$bad" ]; then
		result_fail "ctr-state/ctr-checks-can-fail" "${bad#; }"
	else
		result_ok "ctr-state/ctr-checks-can-fail (${#CTR_ASPECTS[@]} aspects and host mounts)"
	fi
}

# the EXIT trap (from zoo_cleanup, after the processes are killed): this run's cgroups; any
# mount left on the host under the zoo's directory is unmounted (and the directory kept if
# that fails), so that removing the directory never walks into a host file system
ctr_cleanup() {
	local m left
	[ -n "$CTR_CG_BASE" ] && ctr_cgroup_remove "$CTR_CG_BASE"
	[ -n "$ZOO_TMP" ] || return 0
	while read -r m; do
		echo "# unmounting $m, left on the host" >&2
		umount -l "$m"
	done < <(awk -v t="$ZOO_TMP/" 'index($5, t) == 1 {print $5}' /proc/self/mountinfo | sort -r)
	left=$(awk -v t="$ZOO_TMP/" 'index($5, t) == 1 {print $5}' /proc/self/mountinfo)
	if [ -n "$left" ]; then
		echo "# still mounted under $ZOO_TMP, not removing it: $left" >&2
		ZOO_KEEP=1
	fi
}
