#!/bin/bash
# runc alone (Debian's runc 1.1) through criu's RPC, stasis being the `criu` on PATH: the cases
# tests/rpc does not cover. The container (runc spec's defaults) counts into /out/count (a
# bind of a host directory) through an fd its shell and each `sleep` share; its stdio are
# /dev/null. Each case after the first checkpoints the container the one before restored.
# runc's state is in a temporary directory.
#
# runc/other-id            `runc checkpoint` of container A, `runc restore` as container B: B
#                          runs, the count goes on from A's
# runc/work-path           --work-path: dump.log, restore.log, stats-dump and stats-restore are
#                          there, none in the images directory
# runc/leave-running       `runc checkpoint --leave-running`: the container runs on (status
#                          running, not paused; the same init), counting; killed and restored
#                          from that checkpoint, the count goes on from it
# runc/manage-cgroups-mode `--manage-cgroups-mode full` on checkpoint and restore: stasis gets
#                          mode full on the dump (runc 1.1 sends no mode on restore: soft, the
#                          default); the restored processes are in the same cgroups as before
# runc/postgres            PostgreSQL 15 as a container's init (this machine's /usr bound
#                          read-only, its data in the container's root), a table of 500 rows:
#                          `runc checkpoint`, `runc restore` as another id; the restored server
#                          (its postmaster's new backend) takes a row, counts 501, checkpoints
# runc/cgroupns            a container in a cgroup namespace of its own (its cgroup v1/v2
#                          filesystems mounted inside it, which stasis sees rooted at the
#                          container's cgroups), restored as another id: each cgroup mount shows
#                          the root of the restored namespace, which is the new container's
#                          cgroups; the count goes on
# runc/lazy-pages          `runc checkpoint --lazy-pages --page-server 127.0.0.1:PORT --status-fd`
#                          (the dump serves its pages, "\0" once it listens), `stasis lazy-pages`
#                          fetching from it, `runc restore --lazy-pages` as another id: the count
#                          goes on, the checkpoint and the lazy-pages server return 0 once the
#                          pages are fetched
# runc/userns              a container in a user namespace of its own (ids 0-65535 mapped to
#                          100000-165535), restored as runc's child (--restore-sibling): the same
#                          maps, the count goes on
#
#   tests/e2e/runc.sh     (root; needs runc, busybox-static)
set -u
E2E_NAME=runc
# shellcheck source=e2e-lib.sh
. "$(dirname "$0")/e2e-lib.sh"

IDS=()
cleanup() {
	local id
	for id in "${IDS[@]}"; do
		rc kill "$id" KILL >/dev/null 2>&1
		rc delete -f "$id" >/dev/null 2>&1
	done
	e2e_cleanup
}
trap cleanup EXIT
# runc's own messages go to runc.log: a container's stdio must not be a file of the host (not
# supported yet: the dump refuses it), so run and restore give it /dev/null
rc() { runc --root "$WORK/state" --log "$WORK/runc.log" "$@"; }

need runc busybox cc python3
e2e_setup
B=$WORK/bundle
OUT=$WORK/out
make_bundle "$B" "$OUT" || finish

count_lines() { numbers "$OUT/count" | wc -l; }
last() { numbers "$OUT/count" | tail -n 1; }
line() { numbers "$OUT/count" | sed -n "$1p"; }
status() { rc state "$1" 2>/dev/null | sed -n 's/.*"status": *"\([a-z]*\)".*/\1/p'; }
init_of() { rc state "$1" 2>/dev/null | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p'; }
counts_on() { local n; n=$(count_lines); wait_for 5 eval '[ "$(count_lines)" -gt '"$n"' ]'; }
logs_of() { echo "$WORK/$1.out" "$WORK/runc.log" "$2/dump.log" "$2/restore.log"; }

# checkpoint CASE ID DIR ARGS...: `runc checkpoint` into DIR/img (work: DIR/work), timed
checkpoint() {
	local case=$1 id=$2 d=$3
	shift 3
	mkdir -p "$d/img" "$d/work"
	if ! timed T_CKPT rc checkpoint --image-path "$d/img" --work-path "$d/work" "$@" "$id" \
		>"$WORK/$id.out" 2>&1; then
		# shellcheck disable=SC2046
		fail "$case" "runc checkpoint $* $id failed" $(logs_of "$id" "$d/work")
		return 1
	fi
}
# restore CASE ID DIR ARGS...: `runc restore -d` from DIR, timed; the container counts
restore() {
	local case=$1 id=$2 d=$3 n
	shift 3
	n=$(count_lines)
	IDS+=("$id")
	if ! (cd "$B" && timed T_REST rc restore -d --image-path "$d/img" --work-path "$d/work" "$@" "$id" \
		</dev/null >/dev/null 2>&1 && echo "$T_REST" >"$WORK/t_rest") ||
		[ "$(status "$id")" != running ] || ! wait_for 10 eval '[ "$(count_lines)" -gt '"$n"' ]'; then
		# shellcheck disable=SC2046
		fail "$case" "runc restore $* $id failed (status: $(status "$id"))" $(logs_of "$id" "$d/work")
		return 1
	fi
	T_REST=$(cat "$WORK/t_rest")
	FIRST=$(line $((n + 1)))
}

# ---- runc/other-id, runc/work-path ----------------------------------------------------------
IDS+=(stasis-a)
(cd "$B" && rc run -d stasis-a </dev/null >/dev/null 2>&1)
if ! wait_for 20 eval '[ "$(count_lines)" -ge 2 ]'; then
	fail runc/run "the container does not count" "$WORK/runc.log"
	finish
fi
D=$WORK/c1
if checkpoint runc/other-id stasis-a "$D"; then
	lastv=$(last)
	if [ -n "$(status stasis-a)" ]; then
		fail runc/other-id "stasis-a still exists after the checkpoint ($(status stasis-a))"
	elif restore runc/other-id stasis-b "$D"; then
		if [ "$FIRST" = $((lastv + 1)) ]; then
			ok "runc/other-id (stasis-a counted to $lastv, stasis-b went on from $FIRST; checkpoint $T_CKPT ms, restore $T_REST ms)"
		else
			fail runc/other-id "stasis-a counted to $lastv, stasis-b went on from $FIRST"
		fi
		why=""
		for f in dump.log restore.log stats-dump stats-restore; do
			[ -s "$D/work/$f" ] || why="$why; no $f in the work path"
			[ -e "$D/img/$f" ] && why="$why; $f in the images directory"
		done
		stasis_images "$D/img" || why="$why; no stasis images"
		if [ -z "$why" ]; then ok "runc/work-path (logs and stats in --work-path only)"; else
			fail runc/work-path "${why#; }"
		fi
	fi
fi

# ---- runc/leave-running ---------------------------------------------------------------------
case_leave_running() {
	local D=$WORK/c2 init v0 v1
	init=$(init_of stasis-b)
	v0=$(last)
	checkpoint runc/leave-running stasis-b "$D" --leave-running || return
	if [ "$(status stasis-b)" != running ] || [ "$(init_of stasis-b)" != "$init" ] || ! counts_on; then
		fail runc/leave-running "after the checkpoint: status $(status stasis-b), init $(init_of stasis-b) (was $init); expected running, the same init, counting"
		return
	fi
	rc kill stasis-b KILL >/dev/null 2>&1
	wait_for 10 eval '[ "$(status stasis-b)" != running ]'
	rc delete -f stasis-b >/dev/null 2>&1
	v1=$(last)
	restore runc/leave-running stasis-b "$D" || return
	if [ "$FIRST" -le "$v0" ] || [ "$FIRST" -gt $((v1 + 1)) ]; then
		fail runc/leave-running "checkpointed between $v0 and $v1, the restored count went on from $FIRST"
		return
	fi
	ok "runc/leave-running (ran on, same init; killed at $v1, restored: went on from $FIRST; checkpoint $T_CKPT ms)"
}
case_leave_running

# ---- runc/manage-cgroups-mode ---------------------------------------------------------------
case_cgroups_mode() {
	local D=$WORK/c3 before lastv
	before=$(cat "/proc/$(init_of stasis-b)/cgroup" 2>/dev/null)
	checkpoint runc/manage-cgroups-mode stasis-b "$D" --manage-cgroups-mode full || return
	lastv=$(last)
	if ! grep -q 'criu_opts:.* manage_cgroups_mode=4' "$D/work/dump.log"; then
		fail runc/manage-cgroups-mode "the dump request did not carry mode full (4)" "$D/work/dump.log"
		return
	fi
	restore runc/manage-cgroups-mode stasis-b "$D" --manage-cgroups-mode full || return
	if [ "$(cat "/proc/$(init_of stasis-b)/cgroup" 2>/dev/null)" != "$before" ] || [ "$FIRST" != $((lastv + 1)) ]; then
		fail runc/manage-cgroups-mode "count $lastv then $FIRST; cgroups before: $(echo "$before" | tr '\n' ' '); after: $(tr '\n' ' ' <"/proc/$(init_of stasis-b)/cgroup")"
		return
	fi
	ok "runc/manage-cgroups-mode (full on dump; the same cgroups after restore; went on from $FIRST)"
}
case_cgroups_mode

# ---- runc/cgroupns --------------------------------------------------------------------------
# cgroup_view PID: PID's cgroup mounts' roots and its cgroups, as its cgroup namespace shows them
cgroup_view() {
	nsenter -C -t "$1" sh -c "awk '\$9 ~ /^cgroup/ {print \$4}' /proc/$1/mountinfo; cut -d: -f3 /proc/$1/cgroup" | sort -u | tr '\n' ' '
}
case_cgroupns() {
	local D=$WORK/c6 lastv init view
	B=$WORK/bundle-cgroupns
	OUT=$WORK/out-cgroupns
	make_bundle "$B" "$OUT" cgroupns || return
	IDS+=(stasis-cg)
	(cd "$B" && rc run -d stasis-cg </dev/null >/dev/null 2>&1)
	if ! wait_for 20 eval '[ "$(count_lines)" -ge 1 ]'; then
		fail runc/cgroupns "the container in a cgroup namespace does not count" "$WORK/runc.log"
		return
	fi
	checkpoint runc/cgroupns stasis-cg "$D" || return
	lastv=$(last)
	restore runc/cgroupns stasis-cg2 "$D" || return
	init=$(init_of stasis-cg2)
	view=$(cgroup_view "$init")
	if [ "$view" != "/ " ] || ! grep -q ':/stasis-cg2$' "/proc/$init/cgroup" || [ "$FIRST" != $((lastv + 1)) ]; then
		fail runc/cgroupns "count $lastv then $FIRST; in its cgroup namespace the restored init's cgroup mounts' roots and cgroups: '$view' (expected '/ '); from the host: $(tr '\n' ' ' <"/proc/$init/cgroup")"
		return
	fi
	ok "runc/cgroupns (cgroup mounts made anew in the restored namespace, rooted at stasis-cg2's cgroups; went on from $FIRST; checkpoint $T_CKPT ms, restore $T_REST ms)"
}
case_cgroupns

# ---- runc/lazy-pages ------------------------------------------------------------------------
case_lazy_pages() {
	local D=$WORK/c7 lastv port ready cpid lpid rc_ckpt rc_lp
	B=$WORK/bundle
	OUT=$WORK/out
	# one directory for images and work (the lazy-pages server listens in the restore's work
	# directory)
	mkdir -p "$D/img"
	ln -s img "$D/work"
	port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	local pipe lazy_r lazy_w
	exec {pipe}<> <(:)
	exec {lazy_r}</proc/self/fd/$pipe {lazy_w}>/proc/self/fd/$pipe
	exec {pipe}>&-
	rc checkpoint --lazy-pages --page-server "127.0.0.1:$port" --status-fd "$lazy_w" \
		--image-path "$D/img" --work-path "$D/img" stasis-b >"$WORK/lazy.out" 2>&1 &
	cpid=$!
	exec {lazy_w}>&-
	ready=$(timeout 20 dd if=/proc/self/fd/$lazy_r bs=1 count=1 2>/dev/null | od -An -c | tr -d ' ')
	exec {lazy_r}>&-
	if [ "$ready" != '\0' ]; then
		kill "$cpid" 2>/dev/null
		wait "$cpid"
		fail runc/lazy-pages "no \\0 on --status-fd (got '$ready')" "$WORK/lazy.out" "$D/img/dump.log"
		return
	fi
	lastv=$(last)
	"$STASIS" lazy-pages --page-server --address 127.0.0.1 --port "$port" -D "$D/img" \
		-o lazy-pages.log -v4 >"$WORK/lazy-pages.out" 2>&1 &
	lpid=$!
	if ! restore runc/lazy-pages stasis-l "$D" --lazy-pages; then
		kill "$cpid" "$lpid" 2>/dev/null
		wait "$cpid" "$lpid"
		return
	fi
	wait "$cpid"
	rc_ckpt=$?
	wait "$lpid"
	rc_lp=$?
	if [ "$rc_ckpt" != 0 ] || [ "$rc_lp" != 0 ] || [ "$FIRST" != $((lastv + 1)) ]; then
		fail runc/lazy-pages "checkpoint exit $rc_ckpt, stasis lazy-pages exit $rc_lp; count $lastv then $FIRST" "$WORK/lazy.out" "$D/img/dump.log" "$WORK/lazy-pages.out" "$D/img/lazy-pages.log"
		return
	fi
	ok "runc/lazy-pages (the dump served its pages on port $port, restored lazily as stasis-l: went on from $FIRST; restore $T_REST ms)"
}
case_lazy_pages

# ---- runc/userns ----------------------------------------------------------------------------
case_userns() {
	local D=$WORK/c4 lastv init map
	chmod 755 "$WORK" # the container's root (host uid 100000) walks to its bundle and /out
	B=$WORK/bundle-userns
	OUT=$WORK/out-userns
	make_bundle "$B" "$OUT" userns || return
	chmod 777 "$OUT"
	IDS+=(stasis-u)
	(cd "$B" && rc run -d stasis-u </dev/null >/dev/null 2>&1)
	if ! wait_for 20 eval '[ "$(count_lines)" -ge 2 ]'; then
		fail runc/userns "the container in a user namespace does not count" "$WORK/runc.log"
		return
	fi
	checkpoint runc/userns stasis-u "$D" || return
	lastv=$(last)
	restore runc/userns stasis-v "$D" || return
	init=$(init_of stasis-v)
	map=$(awk '{print $1, $2, $3}' "/proc/$init/uid_map" 2>/dev/null)
	if [ "$map" != "0 100000 65536" ] || [ "$(awk '/^Uid:/ {print $2}' "/proc/$init/status")" != 100000 ] ||
		[ "$FIRST" != $((lastv + 1)) ]; then
		fail runc/userns "count $lastv then $FIRST; the restored init's uid_map: '$map', $(grep ^Uid: "/proc/$init/status")"
		return
	fi
	ok "runc/userns (a user namespace of its own, restored as runc's child: uid_map $map, went on from $FIRST; checkpoint $T_CKPT ms, restore $T_REST ms)"
}
case_userns

# ---- runc/postgres --------------------------------------------------------------------------
case_postgres() {
	local D=$WORK/c5 R=$WORK/bundle-pg/rootfs init n
	local pg=/usr/lib/postgresql/15/bin
	if [ ! -x "$pg/postgres" ] || ! command -v psql >/dev/null; then
		fail runc/postgres "PostgreSQL 15 is not installed (make setup installs postgresql-15)"
		return
	fi
	mkdir -p "$R"/{usr,etc,tmp,proc,sys,dev,data,var/run/postgresql}
	for l in bin lib lib64 sbin; do ln -s "usr/$l" "$R/$l"; done
	cp /etc/passwd /etc/group "$R/etc/"
	chown postgres:postgres "$R/data" "$R/var/run/postgresql"
	chmod 1777 "$R/tmp"
	(cd "$WORK/bundle-pg" && runc spec) && python3 - "$WORK/bundle-pg/config.json" "$pg" \
		"$(id -u postgres)" "$(id -g postgres)" <<'PY'
import json, sys
path, pg, uid, gid = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
c = json.load(open(path))
c["process"]["terminal"] = False
c["process"]["user"] = {"uid": uid, "gid": gid}
c["process"]["args"] = ["sh", "-c", pg + "/initdb -N -A trust -D /data/pg >/tmp/initdb.log 2>&1 && exec " + pg +
                        "/postgres -D /data/pg -c listen_addresses=127.0.0.1 -c fsync=off"]
c["root"]["readonly"] = False
c["mounts"].append({"destination": "/usr", "type": "bind", "source": "/usr", "options": ["rbind", "ro"]})
json.dump(c, open(path, "w"), indent=1)
PY
	IDS+=(stasis-pg)
	(cd "$WORK/bundle-pg" && rc run -d stasis-pg </dev/null >/dev/null 2>&1)
	init=$(init_of stasis-pg)
	sql() { nsenter -n -t "$1" psql -h 127.0.0.1 -U postgres -At -X -c "$2" 2>&1; }
	if [ -z "$init" ] || ! wait_for 30 eval 'sql "$init" "select 1" | grep -qx 1'; then
		fail runc/postgres "the server does not answer in its container: $(cat "$R/tmp/initdb.log" 2>/dev/null | tail -n 3)" "$WORK/runc.log"
		return
	fi
	sql "$init" "create table t (i int); insert into t select generate_series(1, 500)" >/dev/null
	checkpoint runc/postgres stasis-pg "$D" || return
	IDS+=(stasis-pg2)
	if ! (cd "$WORK/bundle-pg" && timed T_REST rc restore -d --image-path "$D/img" --work-path "$D/work" stasis-pg2 \
		</dev/null >/dev/null 2>&1) || [ "$(status stasis-pg2)" != running ]; then
		# shellcheck disable=SC2046
		fail runc/postgres "runc restore failed (status: $(status stasis-pg2))" $(logs_of stasis-pg2 "$D/work")
		return
	fi
	init=$(init_of stasis-pg2)
	n=$(sql "$init" "insert into t values (0); select count(*) from t; checkpoint" | tr '\n' ' ')
	if [ "$n" != "INSERT 0 1 501 CHECKPOINT " ] && [ "$n" != "501 CHECKPOINT " ]; then
		fail runc/postgres "the restored server answered '$n', expected 501 rows and a CHECKPOINT" "$D/work/restore.log"
		return
	fi
	ok "runc/postgres (500 rows before the checkpoint; restored as another id: a new backend takes a row, 501, CHECKPOINT; checkpoint $T_CKPT ms, restore $T_REST ms)"
}
case_postgres
finish
