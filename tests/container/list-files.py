#!/usr/bin/env python3
"""list-files.py ROOT DIR...: one line per file under each DIR (inside ROOT, e.g.
/proc/PID/root), sorted: path, type, mode, owner, link count, device number, size, content
hash, symlink target, extended attributes. A directory on another file system (a mount point)
is listed but not entered. Used by tests/container/ctr-lib.sh to compare a container's files
before the dump and after the restore."""
import hashlib
import os
import stat
import sys


def describe(path, shown):
    st = os.lstat(path)
    kind = stat.S_IFMT(st.st_mode)
    fields = [shown, "mode=%o" % st.st_mode, "owner=%d:%d" % (st.st_uid, st.st_gid),
              "nlink=%d" % st.st_nlink]
    if stat.S_ISCHR(kind) or stat.S_ISBLK(kind):
        fields.append("rdev=%d:%d" % (os.major(st.st_rdev), os.minor(st.st_rdev)))
    if stat.S_ISREG(kind):
        with open(path, "rb") as f:
            fields.append("size=%d sha256=%s" % (st.st_size, hashlib.sha256(f.read()).hexdigest()[:16]))
    if stat.S_ISLNK(kind):
        fields.append("-> " + os.readlink(path))
    try:
        for name in sorted(os.listxattr(path, follow_symlinks=False)):
            value = os.getxattr(path, name, follow_symlinks=False)
            fields.append("%s=%s" % (name, value.decode(errors="replace")))
    except OSError:
        pass
    return " ".join(fields), st


def main():
    root = sys.argv[1]
    lines = []
    for top in sys.argv[2:]:
        base = root + top
        top_dev = os.lstat(base).st_dev
        for dirpath, dirs, files in os.walk(base):
            for name in dirs + files:
                path = os.path.join(dirpath, name)
                line, st = describe(path, path[len(root):])
                lines.append(line)
                if name in dirs and st.st_dev != top_dev:
                    dirs.remove(name)  # a mount point: not entered
    print("\n".join(sorted(lines)))


if __name__ == "__main__":
    main()
