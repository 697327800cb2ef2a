#!/bin/bash
# The engine's path against stasis's own command line, on the same 1 GiB container workload
# (tests/e2e/memcheck.c: BENCH_MIB MiB filled with a pattern, checked word by word on SIGTERM).
#
#   tests/bench/docker-bench.sh      (`make bench` runs it after run-bench.sh; root; needs
#                                     docker.io, containerd, runc, busybox-static)
#
# Docker: `docker checkpoint create` + `docker start --checkpoint` of a container running
# memcheck (a containerd and dockerd of our own, state in a temporary directory; images on the
# same file system as below). stasis's share of each is timed by the `criu` Docker's runc
# runs: a wrapper that times each `stasis swrk`.
# CLI: the same workload in a runc container (runc spec's defaults), `stasis dump -t INIT`
# and `stasis restore -d --root ROOTFS` (as tests/e2e/runc-cli.sh).
# Each restored memcheck must say PASS. Reported: each time, and the overhead of the engine's
# path over the CLI in %: the whole of it, and stasis's own swrk runs inside it.
#
# Environment: STASIS, BENCH_MIB (default 1024)
set -u
E2E_NAME=bench-docker
# shellcheck source=../e2e/e2e-lib.sh
. "$(dirname "$0")/../e2e/e2e-lib.sh"
MIB=${BENCH_MIB:-1024}
RUNC_ID=""

cleanup() {
	[ -n "$RUNC_ID" ] && runc delete -f "$RUNC_ID" >/dev/null 2>&1
	[ -n "${RPID:-}" ] && kill -KILL "$RPID" 2>/dev/null
	stop_docker
	e2e_cleanup
}
trap cleanup EXIT

need dockerd containerd ctr runc busybox cc python3
e2e_setup
# criu for Docker's runc: stasis, each swrk run's wall time appended to swrk-times
rm "$WORK/bin/criu"
cat >"$WORK/bin/criu" <<EOF
#!/bin/bash
t0=\$(date +%s%N)
"$STASIS" "\$@"
rc=\$?
echo "\$1 \$(((\$(date +%s%N) - t0) / 1000000))" >>"$WORK/swrk-times"
exit \$rc
EOF
chmod +x "$WORK/bin/criu"
# the swrk run of each request (runc asks VERSION in a swrk of its own first): the longest
swrk_ms() { awk '$1 == "swrk" && $2 > m {m = $2} END {print m + 0}' "$WORK/swrk-times" 2>/dev/null; }
pct() { awk "BEGIN { printf \"%+.0f\", ($1 / $2 - 1) * 100 }"; }

start_docker || finish
docker_import bb:latest || finish

# ---- Docker -----------------------------------------------------------------------------------
dk run -d --name mem --network none bb:latest memcheck "$MIB" >"$WORK/run.out" 2>&1
if ! wait_for 120 eval 'dk logs mem 2>&1 | grep -q "^tick"'; then
	fail bench/docker "memcheck does not tick" "$WORK/run.out"
	finish
fi
: >"$WORK/swrk-times"
if ! timed D_CKPT dk checkpoint create mem cp >"$WORK/ckpt.out" 2>&1; then
	fail bench/docker "docker checkpoint create failed" "$WORK/ckpt.out"
	finish
fi
D_CKPT_SWRK=$(swrk_ms)
: >"$WORK/swrk-times"
if ! docker_start_checkpoint mem cp "$WORK/start.out"; then
	fail bench/docker "docker start --checkpoint failed" "$WORK/start.out"
	finish
fi
D_REST=$T_START
D_REST_SWRK=$(swrk_ms)
sleep 1
dk stop -t 120 mem >/dev/null 2>&1
if [ "$(dk inspect -f '{{.State.ExitCode}}' mem)" != 0 ] || ! dk logs mem 2>&1 | grep -q '^PASS'; then
	fail bench/docker "the restored memcheck did not PASS: $(dk logs mem 2>&1 | tail -n 1)"
	finish
fi
ok "bench/docker ($MIB MiB: docker checkpoint create $D_CKPT ms (stasis swrk $D_CKPT_SWRK ms), docker start --checkpoint $D_REST ms (stasis swrk $D_REST_SWRK ms); $(dk logs mem 2>&1 | grep '^PASS'))"
dk rm -f mem >/dev/null 2>&1
stop_docker
DOCKERD_PID=""

# ---- stasis's command line, the same workload in a runc container -----------------------------
B=$WORK/bundle
make_rootfs "$B/rootfs" || finish
(cd "$B" && runc spec) && python3 - "$B/config.json" "$MIB" "$WORK/out" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["process"]["terminal"] = False
c["process"]["args"] = ["sh", "-c", "exec memcheck %s >/out/memcheck.log" % sys.argv[2]]
c["mounts"].append({"destination": "/out", "type": "bind", "source": sys.argv[3], "options": ["rbind", "rw"]})
json.dump(c, open(sys.argv[1], "w"))
PY
mkdir -p "$WORK/out" "$WORK/img"
RUNC_ID=stasis-bench-$$
(cd "$B" && runc run -d "$RUNC_ID" </dev/null >/dev/null 2>&1)
if ! wait_for 120 grep -q '^tick' "$WORK/out/memcheck.log"; then
	fail bench/cli "memcheck does not tick in the runc container" "$WORK/out/memcheck.log"
	finish
fi
INIT=$(runc state "$RUNC_ID" | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p')
if ! timed C_DUMP "$STASIS" dump -t "$INIT" -D "$WORK/img" -o dump.log --ext-mount-map auto 2>"$WORK/dump.err"; then
	fail bench/cli "stasis dump failed" "$WORK/dump.err" "$WORK/img/dump.log"
	finish
fi
if ! timed C_REST "$STASIS" restore -D "$WORK/img" -d --root "$B/rootfs" --ext-mount-map auto \
	--pidfile "$WORK/rpid" -o restore.log 2>"$WORK/restore.err"; then
	fail bench/cli "stasis restore failed" "$WORK/restore.err" "$WORK/img/restore.log"
	finish
fi
RPID=$(cat "$WORK/rpid")
sleep 1
kill -TERM "$RPID"
wait_for 120 eval '! kill -0 $RPID 2>/dev/null'
if ! grep -q '^PASS' "$WORK/out/memcheck.log"; then
	fail bench/cli "the restored memcheck did not PASS: $(tail -n 1 "$WORK/out/memcheck.log")"
	finish
fi
ok "bench/cli ($MIB MiB: stasis dump $C_DUMP ms, stasis restore $C_REST ms; $(grep '^PASS' "$WORK/out/memcheck.log"))"

echo
printf '%-34s %12s %12s %12s\n' "$MIB MiB container" "dump (ms)" "restore (ms)" "total (ms)"
printf '%-34s %12s %12s %12s\n' "stasis CLI" "$C_DUMP" "$C_REST" $((C_DUMP + C_REST))
printf '%-34s %12s %12s %12s\n' "Docker (checkpoint / start)" "$D_CKPT" "$D_REST" $((D_CKPT + D_REST))
printf '%-34s %12s %12s %12s\n' "  of which stasis swrk" "$D_CKPT_SWRK" "$D_REST_SWRK" $((D_CKPT_SWRK + D_REST_SWRK))
echo "overhead of Docker's path over the CLI: $(pct $((D_CKPT + D_REST)) $((C_DUMP + C_REST)))% (dump $(pct "$D_CKPT" "$C_DUMP")%, restore $(pct "$D_REST" "$C_REST")%)"
echo "overhead of stasis's own runs inside it: $(pct $((D_CKPT_SWRK + D_REST_SWRK)) $((C_DUMP + C_REST)))%; the rest is Docker and containerd moving the images (a tar into containerd's content store and back, each way)"
finish
