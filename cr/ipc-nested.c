/*
 * IPC namespaces that processes of the tree made (ipc-nested.img; cr/nested-ns.h): a sandbox's
 * own (bwrap --unshare-ipc, unshare -i, systemd's PrivateIPC=). Dump: per namespace its
 * sysctls and how many objects it holds, read by a helper inside it; its SysV message queues
 * and semaphore sets, with its sysctls, are saved by a helper inside it as cr/ipc-ns.c saves
 * the tree's own (ipc-nested-objects-N.img). One holding SysV shm segments or POSIX message
 * queues is refused (they are not saved yet), and so is a process of it holding a POSIX
 * message queue or a SysV segment mapped, which would be made again in its namespace, or
 * (its namespace holding semaphore sets) a SEM_UNDO list, whose adjustments the dump's kill
 * gives back. Restore: its maker, when created, unshares CLONE_NEWIPC, makes the objects
 * again with their ids and writes the sysctls; the processes below it inherit it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "files/files.h"
#include "ipc-objects.h"
#include "log.h"
#include "nested-ns.h"
#include "ns-make.h"
#include "ns-helper.h"
#include "tree-objects.h"
#include "task.h"
#include "util.h"

struct ipc_nested_state {
	IpcNested *img;
	IpcNs **objects; /* restore: by namespace, NULL if it holds none */
	struct nested_ns_view *views;
};

static struct ipc_nested_state *state_of(const struct run_ctx *ctx)
{
	return run_state(ctx, &tree_ipc_nested);
}

/* What the helper reads inside a namespace. */
struct ipc_nested_report {
	struct ipc_sysctl_values sysctls;
	int shm, sem, msg, mq; /* objects of each kind (-1: not known) */
};

/* The POSIX message queues of the calling thread's namespace, counted (-1: not known). */
static int count_mqueues(void)
{
	DIR *d = mqueue_fs_list();
	int n = 0;

	if (!d)
		return -1;
	for (struct dirent *e; (e = readdir(d));)
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(d);
	return n;
}

static int read_namespace(void *out, size_t len)
{
	struct ipc_nested_report *r = out;
	struct shm_info shm;
	struct seminfo sem;
	struct msginfo msg;

	(void)len;
	ipc_sysctls_read(&r->sysctls);
	r->shm = shmctl(0, SHM_INFO, (struct shmid_ds *)&shm) < 0 ? -1 : shm.used_ids;
	r->sem = semctl(0, 0, SEM_INFO, &sem) < 0 ? -1 : sem.semusz;
	r->msg = msgctl(0, MSG_INFO, (struct msqid_ds *)&msg) < 0 ? -1 : msg.msgpool;
	r->mq = count_mqueues();
	return 0;
}

/* What the helper that saves a namespace's objects is told. */
struct ipc_nested_save {
	int images_dir;
	uint32_t index;
};

static int save_namespace(void *out, size_t len)
{
	const struct ipc_nested_save *w = out;
	IpcNs ns = IPC_NS__INIT;
	int err;

	(void)len;
	if (!(err = ipc_ns_save_objects(&ns)))
		err = image_write(w->images_dir, IMG_IPC_NESTED_OBJECTS, w->index, &ns.base);
	return err;
}

static int collect_one(struct run_ctx *ctx, const struct dump_tree *tr, const struct nested_ns *v,
		       uint32_t index, NestedIpcNs *out)
{
	const struct dump_task *maker = &tr->tasks[v->members[0]];
	struct ipc_nested_report r;
	int err;

	out->ns_id = v->id;
	out->maker = maker->vpid;
	if (!(out->pids = xzalloc(v->n * sizeof(*out->pids))))
		return -ENOMEM;
	for (size_t m = 0; m < v->n; m++)
		out->pids[out->n_pids++] = tr->tasks[v->members[m]].vpid;
	if ((err = ns_helper_run(maker->pid, CLONE_NEWIPC, read_namespace, &r, sizeof(r)))) {
		pr_err("dump pid %u: cannot read its IPC namespace ipc:[%llu]", out->maker,
		       (unsigned long long)v->id);
		return err;
	}
	if (r.shm || r.mq || r.sem < 0 || r.msg < 0) {
		pr_err("dump pid %u: its IPC namespace ipc:[%llu], made below the tree's, holds %d SysV "
		       "shared memory segments and %d POSIX message queues (-1: not known); those of a "
		       "nested IPC namespace are not saved: not supported", out->maker,
		       (unsigned long long)v->id, r.shm, r.mq);
		return -ENOTSUP;
	}
	if ((err = ipc_sysctls_fill(&r.sysctls, &out->sysctls, &out->n_sysctls)))
		return err;
	struct ipc_nested_save w = { ctx->images_dir_fd, index };
	if ((r.sem || r.msg) && (err = ns_helper_run(maker->pid, CLONE_NEWIPC, save_namespace, &w, sizeof(w)))) {
		pr_err("dump pid %u: cannot save the message queues and semaphore sets of its IPC "
		       "namespace ipc:[%llu]", out->maker, (unsigned long long)v->id);
		return err;
	}
	out->has_objects = out->objects = r.sem || r.msg;
	pr_info("dump pid %u: its own IPC namespace ipc:[%llu], %zu processes, %d message queues, %d "
		"semaphore sets", out->maker, (unsigned long long)out->ns_id, out->n_pids, r.msg, r.sem);
	return 0;
}

static int collect_ipc_nested(struct run_ctx *ctx, struct dump_tree *tr)
{
	struct ipc_nested_state *st = state_of(ctx);
	struct nested_ns *v;
	size_t n;
	int err;

	if ((err = nested_ns_find(tr, "ipc", &v, &n)) || !n)
		return err;
	if (!(st->img = xzalloc(sizeof(*st->img))) ||
	    (ipc_nested__init(st->img), !(st->img->ns = xzalloc(n * sizeof(*st->img->ns))))) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n && !err; i++) {
		NestedIpcNs *u = xzalloc(sizeof(*u));
		if (!u) {
			err = -ENOMEM;
			break;
		}
		nested_ipc_ns__init(u);
		st->img->ns[st->img->n_ns++] = u;
		err = collect_one(ctx, tr, &v[i], i, u);
	}
	if (!err)
		tr->inv.has_ipc_nested = tr->inv.ipc_nested = true;
out:
	nested_ns_free(v, n);
	return err;
}

/* Does the maps of pid show a SysV shm segment attached? */
static bool maps_sysv(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	auto_free char *maps = read_file_at(AT_FDCWD, path, NULL);
	return maps && strstr(maps, " /SYSV");
}

/*
 * A process of a nested namespace holding a POSIX message queue or a SysV segment (of the
 * namespace it came from: its own has none) would have it made again in its own: refused. So
 * is one with a SEM_UNDO list (unshare drops the one it had: it is of its namespace's sets).
 */
static int check_members(const struct dump_tree *tr, const IpcNested *img)
{
	for (size_t i = 0; i < tr->nr_tasks; i++) {
		const struct dump_task *t = &tr->tasks[i];
		const NestedIpcNs *of = NULL;
		for (size_t k = 0; k < img->n_ns && !of; k++)
			for (size_t m = 0; m < img->ns[k]->n_pids && !of; m++)
				of = img->ns[k]->pids[m] == (uint32_t)t->vpid ? img->ns[k] : NULL;
		if (!of)
			continue;
		if (of->objects && ipc_has_undo_list(t->pid)) {
			pr_err("dump pid %u: it holds SEM_UNDO adjustments on semaphores of its IPC namespace "
			       "ipc:[%llu], made below the tree's, which the dump's kill would give back: not "
			       "supported", t->vpid, (unsigned long long)of->ns_id);
			return -ENOTSUP;
		}
		for (size_t k = 0; t->fds && k < t->fds->n_fds; k++)
			if (t->fds->fds[k]->kind == FD_KIND__FD_MQUEUE) {
				pr_err("dump pid %u fd %u: a POSIX message queue, held by a process of an IPC "
				       "namespace made below the tree's: not supported", t->vpid,
				       t->fds->fds[k]->fd);
				return -ENOTSUP;
			}
		if (maps_sysv(t->pid)) {
			pr_err("dump pid %u: a SysV shared memory segment attached by a process of an IPC "
			       "namespace made below the tree's: not supported", t->vpid);
			return -ENOTSUP;
		}
	}
	return 0;
}

static int write_ipc_nested(struct run_ctx *ctx, struct dump_tree *tr)
{
	struct ipc_nested_state *st = state_of(ctx);
	int err;

	if (!st->img)
		return 0;
	if ((err = check_members(tr, st->img)))
		return err;
	return image_write(ctx->images_dir_fd, IMG_IPC_NESTED, 0, &st->img->base);
}

static int validate_ipc_nested(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct ipc_nested_state *st = state_of(ctx);
	int err;

	if ((err = nested_ns_image_read(ctx->images_dir_fd, rt->inv->ipc_nested, IMG_IPC_NESTED,
					(ProtobufCMessage **)&st->img)) || !st->img)
		return err;
	if (!(st->views = xzalloc((st->img->n_ns + 1) * sizeof(*st->views))) ||
	    !(st->objects = xzalloc((st->img->n_ns + 1) * sizeof(*st->objects))))
		return -ENOMEM;
	for (size_t i = 0; i < st->img->n_ns; i++) {
		const NestedIpcNs *u = st->img->ns[i];
		char name[64];
		image_filename(name, sizeof(name), IMG_IPC_NESTED_OBJECTS, i);
		if ((err = ipc_sysctls_validate("ipc-nested.img", u->sysctls, u->n_sysctls)) ||
		    (u->objects && ((err = image_read(ctx->images_dir_fd, IMG_IPC_NESTED_OBJECTS, i,
						      (ProtobufCMessage **)&st->objects[i])) ||
				    (err = ipc_ns_validate_objects(name, st->objects[i])))))
			return err;
		if (u->objects && st->objects[i]->n_shm_ids) {
			pr_err("image %s: lists shm segments, which a nested IPC namespace's objects do not "
			       "hold", name);
			return -EINVAL;
		}
		st->views[i] = (struct nested_ns_view){ u->maker, u->pids, u->n_pids };
	}
	return nested_ns_validate(rt, "ipc-nested.img", st->views, st->img->n_ns);
}

/* The objects' owners and creators (saved as the host sees them) as the tree's user namespace
 * sees them: the maker makes them there. */
static int ids_here(const struct run_ctx *ctx, pid_t pid, IpcNs *ns)
{
	size_t n = ns->n_msg_queues + ns->n_sem_sets;

	for (size_t i = 0; i < n; i++) {
		SysvPerm *p = i < ns->n_msg_queues ? ns->msg_queues[i]->perm : ns->sem_sets[i - ns->n_msg_queues]->perm;
		if (!ns_make_tree_ids(ctx, false, &p->uid, 1) || !ns_make_tree_ids(ctx, false, &p->cuid, 1) ||
		    !ns_make_tree_ids(ctx, true, &p->gid, 1) || !ns_make_tree_ids(ctx, true, &p->cgid, 1)) {
			pr_err("restore pid %d: SysV object %u of its IPC namespace belongs to ids its user "
			       "namespace does not map", pid, p->id);
			return -EINVAL;
		}
	}
	return 0;
}

/*
 * ns's objects made in the calling process's new namespace, by a child of it: making each as
 * its creator changes the child's effective ids, which the maker (in a user namespace, still
 * with ids that namespace does not map) could not take back; the child is root of its user
 * namespace first.
 */
static int make_objects(const struct run_ctx *ctx, pid_t pid, IpcNs *ns)
{
	int status;
	pid_t child = fork();

	if (child == 0) {
		/* (root of its user namespace: ids it maps, to come back to after each creator) */
		if (syscall(SYS_setresgid, 0, 0, 0) || syscall(SYS_setresuid, 0, 0, 0))
			pr_debug("restore pid %d: its objects' maker stays with its ids: %m", pid);
		_exit(ids_here(ctx, pid, ns) || ipc_ns_make_objects(ns) ? 1 : 0);
	}
	if (child < 0 || waitpid(child, &status, 0) != child)
		return -errno;
	return WIFEXITED(status) && !WEXITSTATUS(status) ? 0 : -EIO;
}

int ipc_nested_make(const struct run_ctx *ctx, pid_t pid)
{
	struct ipc_nested_state *st = state_of(ctx);
	ssize_t i = st->img ? nested_ns_made_by(st->views, st->img->n_ns, pid) : -1;
	int err;

	if (i < 0)
		return 0;
	if (unshare(CLONE_NEWIPC)) {
		pr_perror("restore pid %d: cannot make its own IPC namespace", pid);
		return -errno;
	}
	if (st->objects[i] && (err = make_objects(ctx, pid, st->objects[i])))
		pr_err("restore pid %d: cannot make again the message queues and semaphore sets of its own "
		       "IPC namespace", pid);
	else if ((err = ipc_sysctls_write(st->img->ns[i]->sysctls, st->img->ns[i]->n_sysctls)))
		pr_err("restore pid %d: cannot set the sysctls of its own IPC namespace", pid);
	return err;
}

static void free_ipc_nested(void *state)
{
	struct ipc_nested_state *st = state;

	for (size_t i = 0; st->objects && st->img && i < st->img->n_ns; i++)
		if (st->objects[i])
			image_free(&st->objects[i]->base);
	free(st->objects);
	if (st->img)
		image_free(&st->img->base);
	free(st->views);
}

const struct tree_object_ops tree_ipc_nested = {
	.name = "nested IPC namespaces",
	.state_size = sizeof(struct ipc_nested_state),
	.free_state = free_ipc_nested,
	.collect = collect_ipc_nested,
	.write = write_ipc_nested,
	.validate = validate_ipc_nested,
};
