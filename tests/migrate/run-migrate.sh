#!/bin/bash
# Live migration: chains of pre-dumps, the page server, lazy restore, and the one-command
# front end (runtime-hook/stasis-migrate), each checked by its real outcome: programs that
# verify every byte of their memory after the restore, containers whose count goes on.
#
#   tests/migrate/run-migrate.sh [--keep] [CASE...]
#
# runc/pre-dump            runc 1.1 with stasis as its criu: `runc checkpoint --pre-dump`
#                          (criu's PRE_DUMP over the RPC, the container runs on), then
#                          `runc checkpoint --parent-path ../pre` (DUMP with parent_img): the
#                          dump keeps the unchanged pages in the pre-dump; `runc restore`: the
#                          count goes on
# Environment: STASIS (default ./stasis). Output: "ok"/"FAIL" lines, "N passed, N failed".

# shellcheck source-path=SCRIPTDIR
set -u
# shellcheck source=../zoo/lib.sh
. "$(dirname "$0")/../zoo/lib.sh"
CASES=()
for a in "$@"; do
	case $a in
	--keep) ZOO_KEEP=1 ;;
	*) CASES+=("$a") ;;
	esac
done
RUNC_IDS=()

migrate_cleanup() {
	local p
	for p in "${RUNC_IDS[@]}"; do
		runc --root "$ZOO_TMP/runc-state" kill "$p" KILL >/dev/null 2>&1
		runc --root "$ZOO_TMP/runc-state" delete -f "$p" >/dev/null 2>&1
	done
	zoo_cleanup
}
zoo_setup_tmp
trap migrate_cleanup EXIT
if ! build_zoo; then
	N_FAIL=1
	summary
	exit 1
fi

# Is case NAME selected (all are, by default)?
selected() {
	[ ${#CASES[@]} -eq 0 ] && return 0
	local c
	for c in "${CASES[@]}"; do [[ $1 == "$c"* ]] && return 0; done
	return 1
}
show() { show_tail "$@"; }
has() { grep -a -q -E -- "$2" "$1" 2>/dev/null; }

# ---- runc --------------------------------------------------------------------------------
RUNC=(runc --root "$ZOO_TMP/runc-state" --criu "$STASIS")
# runc_bundle DIR: a busybox bundle whose init counts, one number every 0.2 s, on its stdout
runc_bundle() {
	local r=$1/bundle/rootfs a
	mkdir -p "$r/bin" "$r/proc" "$r/sys" "$r/dev" "$r/tmp" "$r/etc"
	cp "$(command -v busybox)" "$r/bin/busybox"
	for a in sh sleep echo; do ln -s busybox "$r/bin/$a"; done
	(cd "$1/bundle" && runc spec) || return 1
	sed -i -e 's/"terminal": true/"terminal": false/' \
		-e 's|"sh"$|"sh", "-c", "i=0; while true; do i=$((i+1)); echo $i; sleep 0.2; done"|' \
		"$1/bundle/config.json"
}
runc_status() { "${RUNC[@]}" state "$1" 2>/dev/null | sed -n 's/.*"status": *"\([a-z]*\)".*/\1/p'; }
numbers_in() { [ "$(grep -c -E '^[0-9]+$' "$1" 2>/dev/null)" -ge "$2" ]; }
runc_logs() {
	local f
	for f in "$1"/*.out "$1"/work*/*.log; do
		[ -s "$f" ] || continue
		echo "    --- ${f#"$1"/}"
		grep -a -v -E '^[0-9]+$' "$f" | tail -n 8 | sed 's/^/    | /'
	done
}

case_runc_predump() {
	local CASE=runc/pre-dump d=$ZOO_TMP/runc-pre id=stasis-migrate-pre-$$ rc last first
	mkdir -p "$d/pre" "$d/img" "$d/work-pre" "$d/work"
	runc_bundle "$d" || { result_fail "$CASE" "runc spec failed"; return; }
	RUNC_IDS+=("$id")
	(cd "$d/bundle" && "${RUNC[@]}" run -d "$id" </dev/null 2>&1) | cat >"$d/before.out" &
	if ! wait_until 20 numbers_in "$d/before.out" 3; then
		result_fail "$CASE" "the container does not count:" && show "$d/before.out"
		return
	fi
	(cd "$d" && timeout -k 5 120 "${RUNC[@]}" checkpoint --pre-dump --image-path "$d/pre" \
		--work-path "$d/work-pre" "$id" >"$d/pre-dump.out" 2>&1)
	rc=$?
	if [ "$rc" != 0 ] || [ "$(runc_status "$id")" != running ] || [ ! -s "$d/pre/inventory.img" ]; then
		result_fail "$CASE" "runc checkpoint --pre-dump exited $rc (container: $(runc_status "$id")):"
		runc_logs "$d"
		return
	fi
	local n
	n=$(grep -c -E '^[0-9]+$' "$d/before.out")
	if ! wait_until 10 numbers_in "$d/before.out" $((n + 3)); then
		result_fail "$CASE" "the container stopped counting after the pre-dump"
		return
	fi
	(cd "$d" && timeout -k 5 120 "${RUNC[@]}" checkpoint --parent-path ../pre --image-path "$d/img" \
		--work-path "$d/work" "$id" >"$d/checkpoint.out" 2>&1)
	rc=$?
	wait_until 10 test -z "$(runc_status "$id")"
	if [ "$rc" != 0 ] || [ -n "$(runc_status "$id")" ] || [ "$(readlink "$d/img/parent")" != ../pre ] ||
		! has "$d/work/dump.log" 'pages_in_parent_dump=[1-9]'; then
		result_fail "$CASE" "runc checkpoint --parent-path exited $rc (container: $(runc_status "$id"), parent link '$(readlink "$d/img/parent")'); expected pages kept in the pre-dump:"
		runc_logs "$d"
		return
	fi
	last=$(grep -E '^[0-9]+$' "$d/before.out" | tail -n 1)
	( (cd "$d/bundle" && timeout -k 5 120 "${RUNC[@]}" restore -d --image-path "$d/img" \
		--work-path "$d/work" "$id" 2>&1)
	echo $? >"$d/restore.rc") </dev/null | cat >"$d/after.out" &
	wait_until 120 test -s "$d/restore.rc"
	rc=$(cat "$d/restore.rc" 2>/dev/null)
	if [ "$rc" != 0 ] || [ "$(runc_status "$id")" != running ] || ! wait_until 10 numbers_in "$d/after.out" 1; then
		result_fail "$CASE" "runc restore exited ${rc:-none} (container: $(runc_status "$id")):"
		runc_logs "$d"
		return
	fi
	first=$(grep -E '^[0-9]+$' "$d/after.out" | head -n 1)
	if [ "$first" != $((last + 1)) ]; then
		result_fail "$CASE" "the count went $last before the checkpoint, $first after the restore"
		return
	fi
	result_ok "$CASE (counted to $last, went on from $first; $(grep -a -o 'pages=[0-9]* .*pages_in_parent_dump=[0-9]*' "$d/work/dump.log"))"
}

if selected runc; then
	if ! command -v runc >/dev/null || ! command -v busybox >/dev/null || ldd "$(command -v busybox)" >/dev/null 2>&1; then
		result_fail runc "needs runc and a static busybox (make setup installs runc and busybox-static)"
	else
		case_runc_predump
	fi
fi

summary
