#!/bin/bash
# containerd alone (Debian's containerd 1.6, its runc shim, runc 1.1), driven by `ctr`, stasis
# being the `criu` runc finds on PATH (containerd's shims inherit its environment). A
# containerd of our own runs with its root, state and sockets in a temporary directory. The
# image is an OCI archive of a busybox tree made here (no registry), imported with
# `ctr images import`.
#
# containerd/checkpoint-restore  a container counting into a file of a host directory (bound
#                                at /out): `ctr containers checkpoint --task` makes a checkpoint
#                                image (the container runs on; the images in it are stasis's),
#                                the task and container are removed, `ctr containers restore
#                                --live` makes them again from the checkpoint: the count goes on
#                                from where it was checkpointed
#
#   tests/e2e/containerd.sh     (root; needs containerd, runc, busybox-static, python3)
set -u
E2E_NAME=containerd
# shellcheck source=e2e-lib.sh
. "$(dirname "$0")/e2e-lib.sh"

ID=ct1
cleanup() {
	if [ -n "$CTRD_PID" ]; then
		c tasks kill -s KILL $ID >/dev/null 2>&1
		wait_for 10 eval '! c tasks ls 2>/dev/null | grep -q RUNNING'
		c tasks rm $ID >/dev/null 2>&1
		c containers rm $ID >/dev/null 2>&1
	fi
	stop_containerd
	# containerd's cgroup of the namespace (/stasis-e2e/ID below it): gone if empty
	for d in /sys/fs/cgroup/*/stasis-e2e /sys/fs/cgroup/stasis-e2e; do
		[ -d "$d" ] || continue
		rmdir "$d"/*/ 2>/dev/null
		rmdir "$d" 2>/dev/null
	done
	e2e_cleanup
}
trap cleanup EXIT
c() { ctr -a "$WORK/containerd.sock" -n stasis-e2e "$@"; }

need containerd ctr runc busybox cc python3
e2e_setup
start_containerd || finish
make_rootfs "$WORK/rootfs" || finish

IMAGE=docker.io/library/stasis-bb:latest
tar -C "$WORK/rootfs" -cf "$WORK/rootfs.tar" . &&
	oci_archive "$WORK/rootfs.tar" "$WORK/image.tar" $IMAGE &&
	c images import "$WORK/image.tar" >"$WORK/import.out" 2>&1
if ! c images ls -q | grep -q -x $IMAGE; then
	fail containerd/image "ctr images import failed" "$WORK/import.out"
	finish
fi

# The checkpoint image holds the images as a tar blob: its file names
checkpoint_files() {
	local d
	for d in $(c content ls -q); do
		c content get "$d" 2>/dev/null | tar -t 2>/dev/null
	done
}

mkdir -p "$WORK/out"
last() { numbers "$WORK/out/count" | tail -n 1; }
count_lines() { numbers "$WORK/out/count" | wc -l; }
if ! c run -d --null-io --mount "type=bind,src=$WORK/out,dst=/out,options=rbind:rw" $IMAGE $ID \
	sh -c 'i=0; while true; do i=$((i+1)); echo $i >>/out/count; sleep 1; done' >"$WORK/run.out" 2>&1 ||
	! wait_for 20 eval '[ "$(count_lines)" -ge 2 ]'; then
	fail containerd/run "the container does not count" "$WORK/run.out" "$WORK/containerd.log"
	finish
fi
v0=$(last)
if ! timed T_CKPT c containers checkpoint --task $ID stasis-e2e/$ID:cp >"$WORK/ckpt.out" 2>&1; then
	fail containerd/checkpoint-restore "ctr containers checkpoint --task failed" "$WORK/ckpt.out" "$WORK/containerd.log"
	finish
fi
n=$(count_lines)
if ! wait_for 10 eval '[ "$(count_lines)" -gt $n ]'; then
	fail containerd/checkpoint-restore "the container stopped counting after the checkpoint" "$WORK/containerd.log"
	finish
fi
if ! checkpoint_files | grep -q -x -E '(\./)?mount-ns\.img'; then
	fail containerd/checkpoint-restore "the checkpoint image holds no stasis images"
	finish
fi
c tasks kill -s KILL $ID >/dev/null 2>&1
wait_for 10 eval '! c tasks ls 2>/dev/null | grep -q RUNNING'
c tasks rm $ID >/dev/null 2>&1
c containers rm $ID >"$WORK/rm.out" 2>&1
v1=$(last)
n=$(count_lines)
if ! timed T_REST c containers restore --live $ID stasis-e2e/$ID:cp >"$WORK/restore.out" 2>&1 ||
	! wait_for 10 eval '[ "$(count_lines)" -gt $n ]'; then
	fail containerd/checkpoint-restore "ctr containers restore --live failed" "$WORK/restore.out" "$WORK/containerd.log" \
		$(find "$WORK/containerd-state" -name 'restore.log' 2>/dev/null)
	finish
fi
first=$(numbers "$WORK/out/count" | sed -n "$((n + 1))p")
# checkpointed while it counted on from v0; killed at v1
if [ "$first" -le "$v0" ] || [ "$first" -gt $((v1 + 1)) ]; then
	fail containerd/checkpoint-restore "checkpointed between $v0 and $v1, the restored count went on from $first"
else
	ok "containerd/checkpoint-restore (checkpointed at $v0+, killed at $v1, restored: went on from $first; checkpoint $T_CKPT ms, restore $T_REST ms)"
fi
finish
