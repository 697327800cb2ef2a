/* Readers of /proc/PID files used by the dump. */
#ifndef STASIS_PROC_H
#define STASIS_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * The readers below take a pid, or PROC_SELF for the caller: in a new task of a restore the
 * caller's pid is not what /proc calls it (another PID namespace).
 */
#define PROC_SELF 0
/* "/proc/PID/NAME" (or "/proc/self/NAME") into buf. */
void proc_path(char *buf, size_t len, pid_t pid, const char *name);

struct proc_vma {
	uint64_t start, end, pgoff;
	uint32_t prot;
	bool shared;
	bool growsdown;
	char vmflags[160]; /* smaps' VmFlags, "rd wr mr mw me ac" (cut short if longer) */
	uint64_t dev, ino;
	char path[512]; /* "" for anonymous, "[heap]", "/usr/lib/..." */
	bool name_mangled; /* path is not the file's path: cut short, or a newline shown as \012 */
};

struct proc_vmas {
	struct proc_vma *v;
	size_t n;
};

/* The mapping's file as root can open it, whatever its name: /proc/PID/map_files/START-END. */
#define MAP_FILES_PATH_SIZE 96
void map_files_path(char out[static MAP_FILES_PATH_SIZE], pid_t pid, uint64_t start, uint64_t end);

/* Parses /proc/PID/smaps (layout and VmFlags). */
int proc_read_vmas(pid_t pid, struct proc_vmas *out);
/* The layout alone (/proc/PID/maps: no VmFlags, no page-table walk, so much cheaper). */
int proc_read_layout(pid_t pid, struct proc_vmas *out);
/* The first mapping of l (in address order) that ends after addr: its index, or l->n. */
size_t proc_vma_index(const struct proc_vmas *l, uint64_t addr);
/* The mapping of l that starts at start, or NULL. */
const struct proc_vma *proc_vma_at(const struct proc_vmas *l, uint64_t start);
/* Where l's vDSO ([vdso]) is: *start and *end, both 0 when it has none (unmapped). */
void proc_vdso_range(const struct proc_vmas *l, uint64_t *start, uint64_t *end);
void proc_vmas_free(struct proc_vmas *vmas);

/* Fields of /proc/PID/stat; index as in proc(5) (1 = pid, 3 = state, 26 = startcode). */
struct proc_stat {
	char state;
	int ppid, pgid, sid;
	unsigned flags;       /* field 9: the kernel's PF_* bits */
	unsigned long tty_nr; /* field 7: the controlling terminal's device */
	uint64_t start_code, end_code, start_stack;
	uint64_t start_data, end_data, start_brk, arg_start, arg_end, env_start, env_end;
	int exit_code; /* field 52: a zombie's status as wait() reports it */
	int exit_signal; /* field 38: what its parent gets at its exit (clone()'s, SIGCHLD for fork) */
};
int proc_read_stat(pid_t pid, struct proc_stat *st);

/* One "Name:\tvalue" line of /proc/PID/status, as a number parsed in base. */
int proc_status_field(pid_t pid, const char *name, int base, uint64_t *val);

/* NSpid: pid's pid at each PID-namespace level, outermost (stasis's) first; malloc'd.
 * -ESRCH, nothing logged, if pid is gone. */
int proc_nspids(pid_t pid, uint32_t **pids, size_t *n);

/* The numbered entries of /proc/PID/<dir> ("task": thread ids, "fd": fds), sorted. */
int proc_list_numbers(pid_t pid, const char *dir, int **out, size_t *n);
/* Is x in such a list (of n, sorted)? */
bool proc_numbers_hold(const int *list, size_t n, int x);
/*
 * A process whose main thread has exited (pthread_exit, SYS_exit) lives on in its other threads
 * while /proc shows it as a zombie: the tid of one of them that still runs, or 0 (a process
 * that is really a zombie, or gone). Negative: out of memory.
 */
pid_t proc_live_thread(pid_t pid);
/* A thread of io_uring's (its io-wq worker or SQPOLL thread, PF_IO_WORKER): it never runs in
 * user space, is not dumped, and the kernel makes new ones as the rings need them. */
bool proc_is_io_worker(pid_t tid);
/* Every process (the numbered entries of /proc), sorted. */
int proc_list_pids(int **out, size_t *n);
/* A list of numbers sorted for proc_numbers_hold. */
void proc_sort_numbers(int *list, size_t n);
/*
 * A running process, none of ids (sorted), whose session or group id is one of ids (a pid stays
 * taken while it is): true with *holder, *id and *session (else the group) set; false if there
 * is none or it cannot be told. Allocates nothing of stasis's (a dump calls it once the tree is
 * killed, when it can no longer fail).
 */
bool proc_find_id_holder(const int *ids, size_t n, pid_t *holder, int *id, bool *session);

/* readlink of /proc/PID/<name> into buf. */
int proc_readlink(pid_t pid, const char *name, char *buf, size_t len);

#endif
