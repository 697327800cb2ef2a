/*
 * Dump: freeze the task, let every kind of state collect itself, write the images, then kill
 * the task (or leave it running). Any failure before the end puts the task back exactly as it
 * was and removes the images this dump wrote.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "options.h"
#include "regs.h"
#include "restorer/restorer.h"
#include "task.h"
#include "pstree.h"
#include "shmem.h"
#include "files/files.h"
#include "ipc-ns.h"
#include "threads.h"
#include "util.h"

bool fault_injected(const char *point)
{
	return opts.fault_inject && strcmp(opts.fault_inject, point) == 0;
}

static int check_images_dir(int dirfd)
{
	int fd = openat(dirfd, ".stasis-probe", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0) {
		pr_perror("images directory %s is not writable", opts.images_dir);
		return -errno;
	}
	close(fd);
	unlinkat(dirfd, ".stasis-probe", 0);
	return 0;
}

static void new_task_images(struct dump_task *t)
{
	t->core = xzalloc(sizeof(*t->core));
	task_core__init(t->core);
	t->core->pid = t->core->tid = t->pid;
	t->core->has_stopped = true;
	t->core->stopped = t->was_stopped;
	t->mm = xzalloc(sizeof(*t->mm));
	mm__init(t->mm);
	t->pagemap = xzalloc(sizeof(*t->pagemap));
	pagemap__init(t->pagemap);
	t->fds = xzalloc(sizeof(*t->fds));
	fd_table__init(t->fds);
}

static int collect_task(struct dump_task *t)
{
	int err;

	if (ptrace(PTRACE_GETREGS, t->pid, 0, &t->regs)) {
		pr_perror("dump pid %d: cannot read registers", t->pid);
		return -errno;
	}
	if ((err = proc_read_stat(t->pid, &t->stat)) || (err = proc_read_vmas(t->pid, &t->vmas)))
		return err;
	for (size_t i = 0; i < t->vmas.n; i++) {
		if (!strcmp(t->vmas.v[i].path, "[vdso]")) {
			t->vdso_start = t->vmas.v[i].start;
			t->vdso_end = t->vmas.v[i].end;
		}
	}
	if ((err = inject_begin(&t->inj, t->pid, &t->regs, t->vdso_start, t->vdso_end)))
		return err;
	t->inj_active = true;
	for (unsigned i = 0; i < state_table_len; i++) {
		if (state_table[i] == &state_pages) {
			/* Done with syscalls inside the task: pages are read from outside. */
			t->inj_active = false;
			if ((err = inject_end(&t->inj)))
				return err;
			if (fault_injected("after-collect")) {
				pr_err("dump pid %d: injected failure after-collect", t->pid);
				return -EIO;
			}
		}
		pr_debug("dump pid %d: %s", t->pid, state_table[i]->name);
		if ((err = state_table[i]->dump(t)))
			return err;
	}
	return 0;
}

static int write_task_images(struct dump_task *t)
{
	int err;

	if ((err = image_write(t->dirfd, IMG_CORE, t->pid, &t->core->base)) ||
	    (err = image_write(t->dirfd, IMG_MM, t->pid, &t->mm->base)) ||
	    (err = image_write(t->dirfd, IMG_PAGEMAP, t->pid, &t->pagemap->base)))
		return err;
	return image_write(t->dirfd, IMG_FDS, t->pid, &t->fds->base);
}

/* The inventory last: a directory without it is not a complete image set. */
static int write_inventory(const struct dump_tree *tr, int dirfd, bool own_ipc_ns)
{
	struct utsname u;
	Inventory inv = INVENTORY__INIT;
	auto_free uint32_t *pids = xzalloc(tr->nr_tasks * sizeof(uint32_t));

	for (size_t i = 0; i < tr->nr_tasks; i++)
		pids[i] = tr->tasks[i].pid;
	uname(&u);
	inv.format_version = IMAGE_FORMAT_VERSION;
	inv.tool_version = STASIS_VERSION;
	inv.root_pid = tr->tasks[0].pid;
	inv.n_pids = tr->nr_tasks;
	inv.pids = pids;
	inv.n_tree = tr->nr_entries;
	inv.tree = tr->entries;
	inv.kernel_release = u.release;
	inv.page_size = PAGE_SIZE;
	inv.dumped_at_ns = now_ns(CLOCK_REALTIME);
	inv.has_shell_job = true;
	inv.shell_job = opts.shell_job;
	inv.has_ipc_ns = own_ipc_ns;
	inv.ipc_ns = own_ipc_ns;
	return image_write(dirfd, IMG_INVENTORY, 0, &inv.base);
}

static void remove_image(int dirfd, enum image_type type, pid_t pid)
{
	char name[64];

	image_filename(name, sizeof(name), type, pid);
	unlinkat(dirfd, name, 0);
}

/* What a failed dump wrote: every image of every type (pages-0 holds shmem's pages). */
static void remove_images(int dirfd, const struct dump_tree *tr)
{
	for (enum image_type type = IMG_INVENTORY; type < IMG_NR_TYPES; type++) {
		if (image_desc(type)->per_task)
			for (size_t i = 0; i < tr->nr_tasks; i++)
				remove_image(dirfd, type, tr->tasks[i].pid);
		if (!image_desc(type)->per_task || type == IMG_PAGES)
			remove_image(dirfd, type, 0);
	}
}

int cr_dump(void)
{
	struct dump_tree tr = { 0 };
	uint64_t start = now_ns(CLOCK_MONOTONIC), frozen_at, thawed_at, pages = 0, shared = 0;
	int dirfd = opts.images_dir_fd, err;
	bool own_ipc_ns;

	if (opts.pid <= 0) {
		pr_err("dump: no task given (-t PID)");
		return -EINVAL;
	}
	if ((err = check_images_dir(dirfd)))
		return err;
	frozen_at = now_ns(CLOCK_MONOTONIC);
	if ((err = pstree_seize(&tr, opts.pid, dirfd)))
		return err;
	if (fault_injected("after-seize")) {
		pr_err("dump pid %d: injected failure after-seize", opts.pid);
		err = -EIO;
		goto fail;
	}
	struct shmem_dump *shmem = shmem_dump_new();
	struct pipe_dump *pipes = pipe_dump_new();
	struct ghost_dump *ghosts = ghost_dump_new();
	struct unix_dump *sockets = unix_dump_new();
	struct pty_dump *ptys = pty_dump_new();
	/* first, so that the segments of the tree's own IPC namespace are known to shmem */
	err = ipc_ns_dump(&tr, shmem, dirfd, &own_ipc_ns);
	for (size_t i = 1; i < tr.nr_tasks; i++) /* parents come first: they save shared pages */
		for (size_t e = 0; e < tr.nr_entries; e++)
			if (tr.entries[e]->pid == (uint32_t)tr.tasks[i].pid)
				for (size_t k = 0; k < i; k++)
					if (tr.tasks[k].pid == (pid_t)tr.entries[e]->ppid)
						tr.tasks[i].parent = &tr.tasks[k];
	for (size_t i = 0; i < tr.nr_tasks && !err; i++) {
		tr.tasks[i].shmem = shmem;
		tr.tasks[i].pipes = pipes;
		tr.tasks[i].ghosts = ghosts;
		tr.tasks[i].sockets = sockets;
		tr.tasks[i].ptys = ptys;
		tr.tasks[i].tree_size = tr.nr_tasks;
		tr.tasks[i].tree = tr.tasks;
		tr.tasks[i].tree_pos = i;
		new_task_images(&tr.tasks[i]);
		err = collect_task(&tr.tasks[i]);
		if (!err)
			err = write_task_images(&tr.tasks[i]);
		pages += tr.tasks[i].nr_pages_written;
		shared += tr.tasks[i].nr_shared_pages;
	}
	if (err || (err = shmem_dump_all(shmem, dirfd)) || (err = pipes_dump_all(pipes, dirfd)) ||
	    (err = ghosts_dump_all(ghosts, dirfd)) || (err = unix_dump_all(sockets, dirfd)) ||
	    (err = ptys_dump_all(ptys, dirfd)) || (err = mqueues_dump_all(dirfd)) ||
	    (err = write_inventory(&tr, dirfd, own_ipc_ns)))
		goto fail;
	if (fault_injected("after-images")) {
		pr_err("dump pid %d: injected failure after-images", opts.pid);
		err = -EIO;
		goto fail;
	}
	if (opts.leave_running)
		pstree_release(&tr);
	else
		err = pstree_kill(&tr);
	thawed_at = now_ns(CLOCK_MONOTONIC);
	pr_info("dump stats: frozen_ms=%.1f total_ms=%.1f processes=%zu pages=%llu "
		"pages_shared_with_parent=%llu image_bytes=%llu",
		(thawed_at - frozen_at) / 1e6, (now_ns(CLOCK_MONOTONIC) - start) / 1e6, tr.nr_tasks,
		(unsigned long long)pages, (unsigned long long)shared,
		(unsigned long long)(pages * PAGE_SIZE));
	return err;
fail:
	for (size_t i = 0; i < tr.nr_tasks; i++)
		if (tr.tasks[i].inj_active)
			inject_end(&tr.tasks[i].inj);
	remove_images(dirfd, &tr);
	pstree_release(&tr);
	pr_err("dump pid %d failed; the tree was left running", opts.pid);
	return err;
}
