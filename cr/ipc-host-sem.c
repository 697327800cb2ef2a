/*
 * SEM_UNDO on SysV semaphores: of the host's IPC namespace that the tree uses (a tree that
 * shares the host's namespace: cr/ipc-ns.c does not save them, they outlive the tree), or of
 * the tree's own (saved by cr/ipc-sem.c with their values while frozen; the namespace is kept
 * open past the tree's end, and the adjustments are added to the restored sets for their
 * processes to take again). A process that
 * holds one taken with SEM_UNDO (Apache's accept mutex, "Mutex sysvsem") has the kernel apply
 * its adjustment (semadj) when the dump kills it: the semaphore is given back, and the
 * restored holder would believe it holds what another process may take too.
 *
 * Dump: while the tree is frozen the values of every host set it used are read, with the
 * process that operated last on each semaphore (a lock's holder); once the killed tree is
 * gone, a semaphore whose value changed, last by the exit of one of the tree's processes, had
 * the holder's adjustment applied: {holder, set, semaphore, adjustment} goes to
 * host-sems.img. (The holder, not the process that exited last: a waiter the holder's undo
 * woke up was granted the semaphore by the kernel and gave it back at its own exit.) The
 * host's semaphores themselves are left as the kill left them.
 * Restore: the process takes the adjustment again in its own context before it is let go,
 * semop(-adjustment, SEM_UNDO | IPC_NOWAIT): the value is what it was at the dump and the
 * process has the kernel's adjustment again (given back should it die, as before).
 *
 * Not kept: several processes' adjustments on one semaphore (its last operator while frozen
 * is given the sum). (Restored threads share their process's undo list: CLONE_SYSVSEM.)
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sem.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image.h"
#include "log.h"
#include "task.h"
#include "tree-objects.h"
#include "tree.h"
#include "util.h"

#define IMAGE_NAME "host-sems.img"

union semun {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
	struct seminfo *__buf;
};

/* A semaphore of a host set the tree used, as it was while the tree was frozen. */
struct frozen_sem {
	int set;
	unsigned short num;
	int value;
	long pid; /* the host pid of its last operation (GETPID) */
};

struct host_sem_state {
	struct frozen_sem *sems; /* dump */
	size_t nr;
	int tree_ns;             /* dump: fd + 1 of the tree's own IPC namespace, kept past its end */
	HostSems *img;           /* restore: host-sems.img, NULL if there is none */
};

static struct host_sem_state *state_of(const struct run_ctx *ctx)
{
	return run_state(ctx, &tree_host_sems);
}

static bool in_host_ns(pid_t root)
{
	struct stat self, tree;
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/ns/ipc", root);
	return !stat("/proc/thread-self/ns/ipc", &self) && !stat(path, &tree) &&
	       self.st_dev == tree.st_dev && self.st_ino == tree.st_ino;
}

static int note_set(struct host_sem_state *st, int id, int nsems)
{
	struct frozen_sem *more = xreallocarray(st->sems, st->nr + nsems, sizeof(*more));

	if (!more)
		return -ENOMEM;
	st->sems = more;
	for (int k = 0; k < nsems; k++) {
		int v = semctl(id, k, GETVAL);
		if (v >= 0)
			st->sems[st->nr++] = (struct frozen_sem){ .set = id, .num = k, .value = v,
								  .pid = semctl(id, k, GETPID) };
	}
	return 0;
}

/* The calling thread into IPC namespace fd (from own, its own: fd + 1 back in *own). */
static int enter_ns(int fd, int *own)
{
	if ((*own = open("/proc/thread-self/ns/ipc", O_RDONLY | O_CLOEXEC)) < 0 || setns(fd, CLONE_NEWIPC)) {
		int err = -errno;
		pr_perror("dump: cannot enter the tree's IPC namespace");
		if (*own >= 0)
			close(*own);
		return err;
	}
	return 0;
}

static void leave_ns(int own)
{
	if (setns(own, CLONE_NEWIPC))
		pr_perror("dump: cannot go back to stasis's IPC namespace");
	close(own);
}

/* The values of every set one of whose semaphores the tree operated on last. */
static int scan_sets(struct host_sem_state *st, struct dump_tree *tr)
{
	struct seminfo info;
	int max, err;

	if ((max = semctl(0, 0, SEM_INFO, (union semun){ .__buf = &info })) < 0)
		return 0; /* no SysV semaphores here */
	for (int idx = 0; idx <= max; idx++) {
		struct semid_ds ds;
		int id = semctl(idx, 0, SEM_STAT_ANY, (union semun){ .buf = &ds });
		if (id < 0)
			continue;
		for (unsigned long k = 0; k < ds.sem_nsems; k++) {
			if (dump_tree_task(tr, semctl(id, k, GETPID))) {
				if ((err = note_set(st, id, ds.sem_nsems)))
					return err;
				break;
			}
		}
	}
	return 0;
}

/*
 * Frozen: the host's sets the tree used, or those of its own IPC namespace (entered, and kept
 * open: it outlives the tree for tree_gone to read).
 */
static int collect_host_sems(struct run_ctx *ctx, struct dump_tree *tr)
{
	struct host_sem_state *st = state_of(ctx);
	char path[64];
	int fd, own, err;

	if (ctx->opts->leave_running)
		return 0;
	if (in_host_ns(tr->tasks[0].pid))
		return scan_sets(st, tr);
	snprintf(path, sizeof(path), "/proc/%d/ns/ipc", tr->tasks[0].pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		err = -errno;
		pr_perror("dump: cannot open %s", path);
		return err;
	}
	st->tree_ns = fd + 1;
	if ((err = enter_ns(fd, &own)))
		return err;
	err = scan_sets(st, tr);
	leave_ns(own);
	return err;
}

static void free_undos(HostSemUndo **undos, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(undos[i]);
	free(undos);
}

/*
 * The tree is gone: what its exit gave back (SEM_UNDO) is written down for the restore, the
 * semaphores left as they are. No adjustment: no image (an earlier dump's goes).
 */
static int host_sems_tree_gone(struct run_ctx *ctx, const struct dump_tree *tr, int images_dir)
{
	struct host_sem_state *st = state_of(ctx);
	HostSems img = HOST_SEMS__INIT;
	HostSemUndo **undos = NULL;
	size_t n = 0;
	int own = -1, err = 0;

	if (st->tree_ns && st->nr && (err = enter_ns(st->tree_ns - 1, &own)))
		return err;
	for (size_t i = 0; i < st->nr; i++) {
		const struct frozen_sem *f = &st->sems[i];
		int now = semctl(f->set, f->num, GETVAL);
		long last = semctl(f->set, f->num, GETPID);
		const struct dump_task *t = dump_tree_task(tr, f->pid);
		HostSemUndo *u, **more;
		if (now < 0 || now == f->value)
			continue;
		if (!t || !dump_tree_task(tr, last)) {
			pr_warn("dump: host SysV semaphore set %d #%u went from %d to %d while the tree was "
				"killed, last by pid %ld outside the tree: not taken again at the restore",
				f->set, f->num, f->value, now, last);
			continue;
		}
		if (!(more = xreallocarray(undos, n + 1, sizeof(*undos))) || !(u = xmalloc(sizeof(*u)))) {
			if (more)
				undos = more;
			err = -ENOMEM;
			break;
		}
		undos = more;
		host_sem_undo__init(u);
		u->pid = t->vpid;
		u->set_id = f->set;
		u->num = f->num;
		u->adjust = now - f->value;
		undos[n++] = u;
		pr_info("dump pid %u: its exit applied its SEM_UNDO adjustment %+d to SysV semaphore "
			"set %d #%u (%d to %d): taken again by it at the restore",
			t->vpid, u->adjust, f->set, f->num, f->value, now);
	}
	if (own >= 0)
		leave_ns(own);
	img.has_own_ns = img.own_ns = st->tree_ns != 0;
	if (!err && n) {
		img.n_undos = n;
		img.undos = undos;
		err = image_write_in_place(images_dir, IMG_HOST_SEMS, 0, &img.base);
	} else if (!err && unlinkat(images_dir, IMAGE_NAME, 0) && errno != ENOENT) {
		err = -errno;
		pr_perror("cannot remove an earlier dump's %s", IMAGE_NAME);
	}
	free_undos(undos, n);
	return err;
}

static int validate_host_sems(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct host_sem_state *st = state_of(ctx);
	int err;

	if (faccessat(ctx->images_dir_fd, IMAGE_NAME, F_OK, 0))
		return 0;
	if ((err = image_read(ctx->images_dir_fd, IMG_HOST_SEMS, 0, (ProtobufCMessage **)&st->img)))
		return err;
	if (st->img->own_ns != rt->inv->ipc_ns) {
		pr_err("image %s: its sets are %s IPC namespace's, inventory.img says the tree %s", IMAGE_NAME,
		       st->img->own_ns ? "the tree's own" : "the host's",
		       rt->inv->ipc_ns ? "had its own" : "shared the host's");
		return -EINVAL;
	}
	for (size_t i = 0; i < st->img->n_undos; i++) {
		const HostSemUndo *u = st->img->undos[i];
		if (!pstree_task(rt, u->pid) || u->set_id < 0 || u->num > 0xffff || !u->adjust ||
		    u->adjust < -32767 || u->adjust > 32767) {
			pr_err("image %s: adjustment %d of pid %u on set %d #%u: no such process of the "
			       "tree, or out of range", IMAGE_NAME, u->adjust, u->pid, u->set_id, u->num);
			return -EINVAL;
		}
	}
	return 0;
}

static void free_host_sems(void *state)
{
	struct host_sem_state *st = state;

	free(st->sems);
	if (st->tree_ns)
		close(st->tree_ns - 1);
	if (st->img)
		image_free(&st->img->base);
}

/*
 * The tree's own namespace, stasis in it with its sets made again (cr/ipc-ns.c) with the values
 * they had while the tree was frozen: the adjustments are added (no SEM_UNDO: stasis keeps
 * none), for their processes to take again.
 */
static int prepare_host_sems(struct run_ctx *ctx, struct restore_tree *rt)
{
	const HostSems *img = state_of(ctx)->img;

	(void)rt;
	for (size_t i = 0; img && img->own_ns && i < img->n_undos; i++) {
		const HostSemUndo *u = img->undos[i];
		struct sembuf op = { .sem_num = u->num, .sem_op = u->adjust, .sem_flg = IPC_NOWAIT };
		if (semop(u->set_id, &op, 1)) {
			int err = -errno;
			pr_perror("image %s: cannot add the SEM_UNDO adjustment %+d of pid %u to SysV "
				  "semaphore set %d #%u", IMAGE_NAME, u->adjust, u->pid, u->set_id, u->num);
			return err;
		}
	}
	return 0;
}

const struct tree_object_ops tree_host_sems = {
	.name = "host SysV semaphores",
	.state_size = sizeof(struct host_sem_state),
	.free_state = free_host_sems,
	.collect = collect_host_sems,
	.tree_gone = host_sems_tree_gone,
	.validate = validate_host_sems,
	.prepare = prepare_host_sems,
};

/*
 * In the restored process, before it is let go: its adjustments taken again, with SEM_UNDO.
 * A set gone since the dump is warned about (the process finds it gone, as if removed while it
 * ran); a semaphore someone else took meanwhile fails the restore, before anything runs: the
 * process would hold it together with them (what it took already the kernel gives back).
 */
static int restore_host_sems(struct restore_task *t)
{
	const HostSems *img = state_of(t->ctx)->img;

	for (size_t i = 0; img && i < img->n_undos; i++) {
		const HostSemUndo *u = img->undos[i];
		struct sembuf op = { .sem_num = u->num, .sem_op = -u->adjust, .sem_flg = SEM_UNDO | IPC_NOWAIT };
		if (u->pid != (uint32_t)t->pid)
			continue;
		if (semop(u->set_id, &op, 1) == 0)
			continue;
		if (errno == EINVAL || errno == EIDRM) {
			pr_warn("restore pid %d: host SysV semaphore set %d is gone: its SEM_UNDO "
				"adjustment %+d on #%u is not taken again", t->pid, u->set_id, u->adjust, u->num);
			continue;
		}
		if (errno == EAGAIN) {
			pr_err("restore pid %d: host SysV semaphore set %d #%u, which it held (SEM_UNDO "
			       "adjustment %+d), was taken by another process since the dump", t->pid,
			       u->set_id, u->num, u->adjust);
			return -EBUSY;
		}
		int err = -errno;
		pr_perror("restore pid %d: cannot take host SysV semaphore set %d #%u again (%+d, "
			  "SEM_UNDO)", t->pid, u->set_id, u->num, -u->adjust);
		return err;
	}
	return 0;
}

const struct state_ops state_host_sems = {
	.name = "host SysV semaphores",
	.restore = restore_host_sems,
};
