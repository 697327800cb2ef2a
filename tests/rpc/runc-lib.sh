# shellcheck shell=bash
# Real runc with stasis as its criu, for tests/rpc/run-rpc.sh and tests/migrate/run-migrate.sh
# (sourced after tests/zoo/lib.sh and zoo_setup_tmp: runc's state lives in the run's ZOO_TMP).

RUNC=(runc --root "$ZOO_TMP/runc-state" --criu "$STASIS")

# runc_bundle DIR [SECONDS]: a busybox bundle in DIR/bundle whose init counts on its stdout,
# one number every SECONDS (default 1)
runc_bundle() {
	local r=$1/bundle/rootfs a
	mkdir -p "$r/bin" "$r/proc" "$r/sys" "$r/dev" "$r/tmp" "$r/etc"
	cp "$(command -v busybox)" "$r/bin/busybox"
	for a in sh sleep echo; do ln -s busybox "$r/bin/$a"; done
	(cd "$1/bundle" && runc spec) || return 1
	sed -i -e 's/"terminal": true/"terminal": false/' \
		-e 's|"sh"$|"sh", "-c", "i=0; while true; do i=$((i+1)); echo $i; sleep '"${2:-1}"'; done"|' \
		"$1/bundle/config.json"
}
runc_init() { "${RUNC[@]}" state "$1" 2>/dev/null | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p'; }
runc_status() { "${RUNC[@]}" state "$1" 2>/dev/null | sed -n 's/.*"status": *"\([a-z]*\)".*/\1/p'; }
# runc_restore DIR ID IMAGES [OPTIONS...]: `runc restore -d [OPTIONS] --image-path IMAGES` of
# container ID from DIR/bundle (work path DIR/work) in the background, its output in
# DIR/after.out; waits up to 120 s; RESTORE_RC gets its exit status (empty: it did not end)
runc_restore() {
	local d=$1 id=$2 images=$3
	shift 3
	( (cd "$d/bundle" && timeout -k 5 120 "${RUNC[@]}" restore -d "$@" --image-path "$images" \
		--work-path "$d/work" "$id" 2>&1)
	echo $? >"$d/restore.rc") </dev/null | cat >"$d/after.out" &
	wait_until 120 test -s "$d/restore.rc"
	RESTORE_RC=$(cat "$d/restore.rc" 2>/dev/null)
}
# numbers_in FILE N: at least N lines of the count in FILE
numbers_in() { [ "$(grep -c -E '^[0-9]+$' "$1" 2>/dev/null)" -ge "$2" ]; }
# runc_logs DIR: what runc and stasis said (the outputs in DIR, the logs in its work dirs)
runc_logs() {
	local f
	for f in "$1"/*.out "$1"/work*/*.log; do
		[ -s "$f" ] || continue
		echo "    --- ${f#"$1"/}"
		grep -a -v -E '^[0-9]+$' "$f" | tail -n 8 | sed 's/^/    | /'
	done
}
