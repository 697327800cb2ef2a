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

/* Process trees are the next step; refuse them cleanly for now. */
static int check_no_children(pid_t pid)
{
	auto_free int *tids = NULL;
	size_t n;

	if (proc_list_numbers(pid, "task", &tids, &n)) {
		pr_err("dump pid %d: no such process", pid);
		return -ESRCH;
	}
	for (size_t i = 0; i < n; i++) {
		char path[96];
		auto_free char *children = NULL;

		snprintf(path, sizeof(path), "/proc/%d/task/%d/children", pid, tids[i]);
		children = read_file_at(AT_FDCWD, path, NULL);
		if (children && children[0]) {
			children[strcspn(children, "\n")] = 0;
			pr_err("dump pid %d: has child processes (%s); process trees are not supported "
			       "yet",
			       pid, children);
			return -ENOTSUP;
		}
	}
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

static int write_images(struct dump_task *t)
{
	struct utsname u;
	Inventory inv = INVENTORY__INIT;
	uint32_t pids[1] = { t->pid };
	int err;

	uname(&u);
	inv.format_version = IMAGE_FORMAT_VERSION;
	inv.tool_version = STASIS_VERSION;
	inv.root_pid = t->pid;
	inv.n_pids = 1;
	inv.pids = pids;
	inv.kernel_release = u.release;
	inv.page_size = PAGE_SIZE;
	inv.dumped_at_ns = now_ns(CLOCK_REALTIME);
	inv.has_shell_job = true;
	inv.shell_job = opts.shell_job;

	if ((err = image_write(t->dirfd, IMG_CORE, t->pid, &t->core->base)) ||
	    (err = image_write(t->dirfd, IMG_MM, t->pid, &t->mm->base)) ||
	    (err = image_write(t->dirfd, IMG_PAGEMAP, t->pid, &t->pagemap->base)) ||
	    (err = image_write(t->dirfd, IMG_FDS, t->pid, &t->fds->base)))
		return err;
	/* The inventory last: a directory without it is not a complete image set. */
	return image_write(t->dirfd, IMG_INVENTORY, 0, &inv.base);
}

static void remove_images(int dirfd, pid_t pid)
{
	static const enum image_type types[] = { IMG_INVENTORY, IMG_CORE, IMG_MM, IMG_PAGEMAP,
						 IMG_FDS, IMG_PAGES };
	char name[64];

	for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
		image_filename(name, sizeof(name), types[i], pid);
		unlinkat(dirfd, name, 0);
	}
}

static int kill_frozen_task(struct dump_task *t)
{
	int status;

	if (kill(t->pid, SIGKILL)) {
		pr_perror("dump pid %d: cannot kill after dump", t->pid);
		return -errno;
	}
	/* As tracer of every thread we see each die; the parent reaps the process. */
	threads_reap_killed(t);
	while (waitpid(t->pid, &status, __WALL) < 0 && errno == EINTR)
		;
	return 0;
}

int cr_dump(void)
{
	struct dump_task t = { .pid = opts.pid, .dirfd = opts.images_dir_fd };
	uint64_t start = now_ns(CLOCK_MONOTONIC), frozen_at, thawed_at;
	bool seized = false;
	int err;

	if (opts.pid <= 0) {
		pr_err("dump: no task given (-t PID)");
		return -EINVAL;
	}
	if ((err = check_images_dir(t.dirfd)) || (err = check_no_children(t.pid)))
		return err;
	frozen_at = now_ns(CLOCK_MONOTONIC);
	if ((err = task_seize(t.pid, &t.was_stopped)))
		return err;
	seized = true;
	t.threads = xzalloc(RST_MAX_THREADS * sizeof(*t.threads));
	if ((err = threads_seize(&t)))
		goto fail;
	new_task_images(&t);
	if (fault_injected("after-seize")) {
		pr_err("dump pid %d: injected failure after-seize", t.pid);
		err = -EIO;
		goto fail;
	}
	if ((err = collect_task(&t)) || (err = write_images(&t)))
		goto fail;
	if (fault_injected("after-images")) {
		pr_err("dump pid %d: injected failure after-images", t.pid);
		err = -EIO;
		goto fail;
	}
	if (opts.leave_running) {
		threads_release(&t);
		err = regs_undo_freeze_eintr(t.pid, &t.regs);
		err = err ? err : task_release(t.pid, t.was_stopped);
	} else {
		err = kill_frozen_task(&t);
	}
	thawed_at = now_ns(CLOCK_MONOTONIC);
	pr_info("dump stats: frozen_ms=%.1f total_ms=%.1f pages=%llu image_bytes=%llu",
		(thawed_at - frozen_at) / 1e6, (now_ns(CLOCK_MONOTONIC) - start) / 1e6,
		(unsigned long long)t.nr_pages_written,
		(unsigned long long)(t.nr_pages_written * PAGE_SIZE));
	proc_vmas_free(&t.vmas);
	return err;
fail:
	if (t.inj_active)
		inject_end(&t.inj);
	if (seized) {
		threads_release(&t);
		if (t.regs.rip)
			regs_undo_freeze_eintr(t.pid, &t.regs);
		task_release(t.pid, t.was_stopped);
	}
	remove_images(t.dirfd, t.pid);
	proc_vmas_free(&t.vmas);
	pr_err("dump pid %d failed; the task was left running", t.pid);
	return err;
}
