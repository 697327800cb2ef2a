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
 * process that operated last on each semaphore, and which processes have a SEM_UNDO list at
 * all (kcmp KCMP_SYSVSEM against stasis's, none). Two or more such holders: once the images
 * are in place, before the rest of the tree is killed, each holder is killed apart (children
 * first; the tree dies with stasis from then on, PTRACE_O_EXITKILL) and the semaphores read
 * after each exit: what changed with the exiting process as the last operator (the kernel
 * makes it so for every semaphore its undo changes) is its own adjustment. A frozen waiter of
 * the tree granted what an exit gave back gives it back at its own exit: that is the first
 * one's. A change by anyone else is warned about by pid and name. The init of a PID namespace
 * (its death kills the rest of it) goes with the others, and once the tree is gone what they
 * gave back is the one holder's left among them, or (holders not told apart) the last
 * operator's while frozen. {holder, set, semaphore, adjustment} goes to host-sems.img. The
 * host's semaphores themselves are left as the kill left them.
 * Restore: the process takes the adjustment again in its own context before it is let go,
 * semop(-adjustment, SEM_UNDO | IPC_NOWAIT): the value is what it was at the dump and the
 * process has the kernel's adjustment again (given back should it die, as before).
 *
 * Not kept: an adjustment the kernel cut to the semaphore's range at the exit (warned
 * about), nor the processes that shared one list (CLONE_SYSVSEM without threads: the last to
 * exit is given it). An operation from outside between two exits apart but before the second
 * one's give-back is counted as its. (Restored threads share their process's undo list:
 * CLONE_SYSVSEM.)
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sem.h>
#include <linux/kcmp.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "image.h"
#include "ipc-objects.h"
#include "log.h"
#include "proc.h"
#include "pstree.h"
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
	int value;       /* then as the last exit apart left it */
	long pid;        /* the host pid of its last operation (GETPID), likewise */
	size_t owed_to;  /* index + 1 of the process killed apart whose give-back a frozen
			    waiter of the tree was granted: the waiter's exit gives it back */
};

/* An adjustment the kill gave back: HostSemUndo's fields. */
struct given_back {
	uint32_t vpid;
	int set;
	unsigned short num;
	int adjust;
};

struct host_sem_state {
	struct frozen_sem *sems; /* dump */
	size_t nr;
	size_t *apart;           /* dump: the processes (tasks[] indexes) killed apart, children first */
	size_t nr_apart;
	bool *holder;            /* dump: per tasks[] index: it has a SEM_UNDO list */
	size_t nr_holders;
	struct given_back *given; /* dump: what the exits gave back, room for given_room made while
				     frozen (nothing is allocated once the images are in place) */
	size_t nr_given, given_room;
	HostSemUndo *undos, **undo_refs; /* dump: host-sems.img's, given_room each */
	bool given_full;         /* (cannot be: each process and semaphore has one) */
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
 * Has it a SEM_UNDO list (made by its first semop with SEM_UNDO, kept to its end)? stasis has
 * none: the same (NULL) as its, no. Cannot tell: yes.
 */
bool ipc_has_undo_list(pid_t pid)
{
	return syscall(SYS_kcmp, getpid(), pid, KCMP_SYSVSEM, 0, 0) != 0;
}

/* The init of a PID namespace: its death kills the namespace's other processes with it. */
static int is_pid_ns_init(pid_t pid, bool *init)
{
	uint32_t *pids;
	size_t n;
	int err = proc_nspids(pid, &pids, &n);

	if (err)
		return err;
	*init = n > 1 && pids[n - 1] == 1;
	free(pids);
	return 0;
}

/*
 * Which processes hold SEM_UNDO lists. Two or more: each is killed apart (children first, so
 * that no parent's death signals its children; the init of a PID namespace, whose death kills
 * the rest of it, with the others after), its exit's give-back read alone.
 */
static int find_holders(struct host_sem_state *st, struct dump_tree *tr)
{
	int err;

	if (!(st->apart = xreallocarray(NULL, tr->nr_tasks, sizeof(*st->apart))) ||
	    !(st->holder = xzalloc(tr->nr_tasks * sizeof(*st->holder))))
		return -ENOMEM;
	for (size_t i = tr->nr_tasks; i-- > 0;) {
		bool init;
		if (!ipc_has_undo_list(tr->tasks[i].pid))
			continue;
		st->holder[i] = true;
		st->nr_holders++;
		if ((err = is_pid_ns_init(tr->tasks[i].pid, &init)))
			return err;
		if (!init)
			st->apart[st->nr_apart++] = i;
	}
	if (st->nr_holders < 2)
		st->nr_apart = 0; /* one holder: whatever the kill gives back is its */
	/* each semaphore: a give-back of each process killed apart, one of the rest */
	st->given_room = (st->nr_apart + 1) * st->nr;
	if (!(st->given = xreallocarray(NULL, st->given_room, sizeof(*st->given))) ||
	    !(st->undos = xreallocarray(NULL, st->given_room, sizeof(*st->undos))) ||
	    !(st->undo_refs = xreallocarray(NULL, st->given_room, sizeof(*st->undo_refs))))
		return -ENOMEM;
	pr_debug("dump: %zu processes hold SEM_UNDO lists, %zu to be killed apart", st->nr_holders,
		 st->nr_apart);
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
	if (in_host_ns(tr->tasks[0].pid)) {
		err = scan_sets(st, tr);
	} else {
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
	}
	return err || !st->nr ? err : find_holders(st, tr);
}

static void note_given(struct host_sem_state *st, const struct dump_task *t, const struct frozen_sem *f,
		       int adjust)
{
	for (size_t i = 0; i < st->nr_given; i++) {
		struct given_back *g = &st->given[i];
		if (g->vpid == t->vpid && g->set == f->set && g->num == f->num) {
			g->adjust += adjust;
			return;
		}
	}
	if (st->nr_given == st->given_room) {
		pr_err("dump pid %u: no room for its SEM_UNDO adjustment %+d on SysV semaphore set %d #%u",
		       t->vpid, adjust, f->set, f->num);
		st->given_full = true;
		return;
	}
	st->given[st->nr_given++] = (struct given_back){ .vpid = t->vpid, .set = f->set, .num = f->num,
							  .adjust = adjust };
}

static const char *comm_of(long pid, char *buf, size_t len)
{
	char path[64];
	ssize_t n = -1;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
	if (pid > 0 && (fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
		n = read(fd, buf, len - 1);
		close(fd);
	}
	if (n <= 0)
		return "?";
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return buf;
}

static void warn_outside(const struct frozen_sem *f, int now, long last, const char *when)
{
	char comm[32];

	pr_warn("dump: host SysV semaphore set %d #%u went from %d to %d %s, last by pid %ld (%s) "
		"outside the tree: not taken again at the restore", f->set, f->num, f->value, now, when,
		last, comm_of(last, comm, sizeof(comm)));
}

/*
 * Each semaphore as tasks[gone] (index + 1; 0: none, the tree still frozen) left it at its
 * exit: what changed with it as the last operation is its give-back (the kernel makes the
 * exiting process the last operator of a semaphore its undo changes); a frozen waiter of the
 * tree that its give-back woke was granted it (the waiter's give-back at its own exit is the
 * gone one's); anyone else is outside the tree.
 */
static void read_exit(struct host_sem_state *st, const struct dump_tree *tr, size_t gone)
{
	const struct dump_task *t = gone ? &tr->tasks[gone - 1] : NULL;

	for (size_t k = 0; k < st->nr; k++) {
		struct frozen_sem *f = &st->sems[k];
		int now = semctl(f->set, f->num, GETVAL);
		long last = semctl(f->set, f->num, GETPID);
		const struct dump_task *by = dump_tree_task(tr, last);
		if (now < 0 || (now == f->value && last == f->pid))
			continue;
		if (t && last == t->tgid) {
			const struct dump_task *owner = f->owed_to ? &tr->tasks[f->owed_to - 1] : t;
			f->owed_to = 0;
			if (now != f->value) {
				note_given(st, owner, f, now - f->value);
				pr_debug("dump pid %u: its exit applied its SEM_UNDO adjustment %+d to SysV "
					"semaphore set %d #%u (%d to %d)%s", owner->vpid, now - f->value, f->set,
					f->num, f->value, now, owner == t ? "" : ", given back by the waiter it woke");
			}
			if (now == f->value || (now == 0 && now < f->value) || (now >= 32767 && now > f->value))
				pr_warn("dump pid %u: SysV semaphore set %d #%u is %d after its exit: the "
					"kernel may have cut its SEM_UNDO adjustment to the range",
					owner->vpid, f->set, f->num, now);
		} else if (t && by && !by->killed_alone) {
			f->owed_to = gone;
			if (now != f->value)
				note_given(st, t, f, now - f->value);
			pr_info("dump pid %u: what its exit gave back of SysV semaphore set %d #%u (%d to %d) "
				"was granted to pid %u of the tree, which waited for it: its give-back at its "
				"exit is pid %u's", t->vpid, f->set, f->num, f->value, now, by->vpid, t->vpid);
		} else {
			warn_outside(f, now, last, t ? "while the tree was killed" : "while the tree was frozen");
		}
		f->value = now;
		f->pid = last;
	}
}

/*
 * The tree frozen, the images in place: the holders of SEM_UNDO lists are killed one at a
 * time, the semaphores read after each exit. The tree dies with stasis from the first kill:
 * none of it runs on. What goes wrong leaves the rest to the kill of the others (warned).
 */
static void kill_holders_apart(struct run_ctx *ctx, struct dump_tree *tr)
{
	struct host_sem_state *st = state_of(ctx);
	int own = -1;

	if (!st->nr_apart)
		return;
	if (pstree_die_with_stasis(tr) || (st->tree_ns && enter_ns(st->tree_ns - 1, &own))) {
		pr_warn("dump: the SEM_UNDO adjustments of the tree's %zu holders are not told apart: the "
			"last operator of each semaphore is given them all", st->nr_holders);
		return;
	}
	read_exit(st, tr, 0);
	for (size_t i = 0; i < st->nr_apart; i++) {
		if (pstree_kill_one(tr, st->apart[i])) {
			pr_warn("dump pid %u: its exit was not seen: the adjustments of the rest of the "
				"tree's SEM_UNDO holders are not told apart", tr->tasks[st->apart[i]].vpid);
			break;
		}
		read_exit(st, tr, st->apart[i] + 1);
		/* (STASIS_FAULT=kill-at:kill-apart: stasis dies, part of the tree killed) */
		(void)run_fault(ctx, "kill-apart");
	}
	if (own >= 0)
		leave_ns(own);
}

/*
 * Whose the remainder is (what the kill of the others gave back): the holder of a SEM_UNDO list
 * left to it, if it is the only one; else (holders not told apart) the last operator while the
 * tree was frozen. NULL: the last change was not the tree's.
 */
static const struct dump_task *remainder_of(const struct host_sem_state *st, const struct dump_tree *tr,
					    const struct frozen_sem *f, long last)
{
	const struct dump_task *t = NULL, *by = dump_tree_task(tr, last);
	size_t left = 0;

	if (!by || by->killed_alone)
		return NULL;
	for (size_t i = 0; st->holder && i < tr->nr_tasks; i++) {
		if (st->holder[i] && !tr->tasks[i].killed_alone) {
			t = &tr->tasks[i];
			left++;
		}
	}
	if (left == 1)
		return t;
	t = dump_tree_task(tr, f->pid);
	return t && !t->killed_alone ? t : NULL;
}

/*
 * The tree is gone: what its exit gave back (SEM_UNDO) is written down for the restore, the
 * semaphores left as they are. No adjustment: no image (an earlier dump's goes).
 */
static int host_sems_tree_gone(struct run_ctx *ctx, const struct dump_tree *tr, int images_dir)
{
	struct host_sem_state *st = state_of(ctx);
	HostSems img = HOST_SEMS__INIT;
	size_t n = 0;
	int own = -1, err = 0;

	if (st->tree_ns && st->nr && (err = enter_ns(st->tree_ns - 1, &own)))
		return err;
	for (size_t i = 0; i < st->nr && !err; i++) {
		const struct frozen_sem *f = &st->sems[i];
		int now = semctl(f->set, f->num, GETVAL);
		long last = semctl(f->set, f->num, GETPID);
		const struct dump_task *t;
		if (now < 0 || now == f->value)
			continue;
		if (!(t = remainder_of(st, tr, f, last))) {
			warn_outside(f, now, last, "while the tree was killed");
			continue;
		}
		note_given(st, t, f, now - f->value);
		pr_info("dump pid %u: its exit applied its SEM_UNDO adjustment %+d to SysV semaphore "
			"set %d #%u (%d to %d)", t->vpid, now - f->value, f->set, f->num, f->value, now);
	}
	if (own >= 0)
		leave_ns(own);
	if (st->given_full)
		err = -ENOSPC;
	for (size_t i = 0; !err && i < st->nr_given; i++) {
		const struct given_back *g = &st->given[i];
		HostSemUndo *u = &st->undos[n];
		if (!g->adjust)
			continue; /* (a waiter's give-back its waker's) */
		host_sem_undo__init(u);
		u->pid = g->vpid;
		u->set_id = g->set;
		u->num = g->num;
		u->adjust = g->adjust;
		st->undo_refs[n++] = u;
		pr_info("dump pid %u: SEM_UNDO adjustment %+d on SysV semaphore set %d #%u: taken again "
			"by it at the restore", g->vpid, g->adjust, g->set, g->num);
	}
	img.has_own_ns = img.own_ns = st->tree_ns != 0;
	if (!err && n) {
		img.n_undos = n;
		img.undos = st->undo_refs;
		err = image_write_in_place(images_dir, IMG_HOST_SEMS, 0, &img.base);
	} else if (!err && unlinkat(images_dir, IMAGE_NAME, 0) && errno != ENOENT) {
		err = -errno;
		pr_perror("cannot remove an earlier dump's %s", IMAGE_NAME);
	}
	return err;
}

static int validate_host_sems(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct host_sem_state *st = state_of(ctx);
	int err;

	if ((err = image_read_optional(ctx->images_dir_fd, IMG_HOST_SEMS, 0, (ProtobufCMessage **)&st->img)) ||
	    !st->img)
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
	free(st->apart);
	free(st->holder);
	free(st->given);
	free(st->undos);
	free(st->undo_refs);
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
	.kill_apart = kill_holders_apart,
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
