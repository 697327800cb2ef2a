#!/usr/bin/env python3
"""
idmapped-mount.py DIR: a process in a mount namespace of its own holding an idmapped mount (a
tmpfs at DIR/src with a file of uid 1000, bound at DIR/idm through a user namespace mapping
1000 to 2000: mount_setattr(MOUNT_ATTR_IDMAP)). Prints "READY" once the file shows uid 2000
at DIR/idm, then sleeps until killed; "FAIL: ..." and exit 1 if the kernel refuses.
"""
import ctypes
import os
import subprocess
import sys
import time

CLONE_NEWNS, MS_PRIVATE, MS_REC = 0x00020000, 1 << 18, 1 << 14
SYS_OPEN_TREE, SYS_MOVE_MOUNT, SYS_MOUNT_SETATTR = 428, 429, 442
OPEN_TREE_CLONE, OPEN_TREE_CLOEXEC, AT_EMPTY_PATH, AT_FDCWD = 1, 0o2000000, 0x1000, -100
MOVE_MOUNT_F_EMPTY_PATH, MOUNT_ATTR_IDMAP = 4, 0x00100000

libc = ctypes.CDLL(None, use_errno=True)


class MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def check(ret, what):
    if ret < 0:
        print(f"FAIL: {what}: {os.strerror(ctypes.get_errno())}", flush=True)
        sys.exit(1)
    return ret


def main():
    d = sys.argv[1]
    src, idm = os.path.join(d, "src"), os.path.join(d, "idm")
    os.makedirs(src, exist_ok=True)
    os.makedirs(idm, exist_ok=True)
    check(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "make / private")
    check(libc.mount(b"stasis-idmap", src.encode(), b"tmpfs", 0, b"size=1m"), "tmpfs")
    f = os.path.join(src, "f")
    with open(f, "w") as out:
        out.write("owned\n")
    os.chown(f, 1000, 1000)
    holder = subprocess.Popen(["unshare", "--user", "sleep", "60"])
    for _ in range(100):  # (in its user namespace once its uid_map may be written)
        if os.readlink(f"/proc/{holder.pid}/ns/user") != os.readlink("/proc/self/ns/user"):
            break
        time.sleep(0.02)
    for name in ("uid_map", "gid_map"):
        with open(f"/proc/{holder.pid}/{name}", "w") as out:
            out.write("1000 2000 1\n")
    userns = os.open(f"/proc/{holder.pid}/ns/user", os.O_RDONLY)
    holder.kill()
    holder.wait()
    tree = check(libc.syscall(SYS_OPEN_TREE, AT_FDCWD, src.encode(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC),
                 "open_tree")
    attr = MountAttr(MOUNT_ATTR_IDMAP, 0, 0, userns)
    check(libc.syscall(SYS_MOUNT_SETATTR, tree, b"", AT_EMPTY_PATH, ctypes.byref(attr),
                       ctypes.sizeof(attr)), "mount_setattr(MOUNT_ATTR_IDMAP)")
    check(libc.syscall(SYS_MOVE_MOUNT, tree, b"", AT_FDCWD, idm.encode(), MOVE_MOUNT_F_EMPTY_PATH),
          "move_mount")
    os.close(tree)
    os.close(userns)
    uid = os.stat(os.path.join(idm, "f")).st_uid
    if uid != 2000:
        print(f"FAIL: the idmapped mount shows uid {uid}, not 2000", flush=True)
        sys.exit(1)
    print("READY", flush=True)
    while True:
        time.sleep(60)


main()
