/* One options struct, filled by the command line (and later the RPC server). */
#ifndef STASIS_OPTIONS_H
#define STASIS_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>

#define STASIS_VERSION "0.1"

/* --inherit-fd fd[N]:KEY: fd N of the restoring caller stands for the outside object KEY. */
struct inherit_fd {
	int fd;
	const char *key; /* "socket:[INODE]", "pipe:[INODE]" */
};

struct stasis_opts {
	int pid;                  /* dump: -t */
	const char *images_dir;   /* -D */
	int images_dir_fd;        /* opened -D */
	const char *log_file;     /* -o, relative to -D like criu */
	int verbosity;            /* -v N */
	bool leave_running;       /* --leave-running */
	bool shell_job;           /* --shell-job */
	bool restore_detached;    /* -d */
	bool file_locks;          /* --file-locks */
	bool ext_unix_sk;         /* --ext-unix-sk */
	const char *pidfile;      /* --pidfile */
	struct inherit_fd *inherit_fds; /* --inherit-fd, restore (looked up in cr/files/external.c) */
	size_t nr_inherit_fds;
	const char *fault_inject; /* STASIS_FAULT=<point>: fail the dump there, for tests */
};

extern struct stasis_opts opts;

int cr_dump(void);
int cr_restore(void);

/* Returns nonzero when STASIS_FAULT names this point (tests inject dump failures). */
bool fault_injected(const char *point);

#endif
