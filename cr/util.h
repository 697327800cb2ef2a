#ifndef STASIS_UTIL_H
#define STASIS_UTIL_H

#include <dirent.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <unistd.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#ifndef PAGE_SIZE
#define PAGE_SIZE 4096UL
#endif
#define PAGE_ALIGN(x) (((x) + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1))

/*
 * Memory. Every allocation of the engine comes from here: a failure is logged once, here
 * ("out of memory: N bytes"), errno is ENOMEM, and the caller returns -ENOMEM (or NULL) up
 * the normal error path without a message of its own.
 */
void *xmalloc(size_t size);
void *xzalloc(size_t size);   /* zeroed */
char *xstrdup(const char *s); /* NULL is copied as "" */
void *xmemdup(const void *p, size_t len); /* a copy of len bytes (len 0: one byte, zero) */
/* p resized to n elements of size bytes; NULL on failure, and p is left as it was. */
void *xreallocarray(void *p, size_t n, size_t size);
/* Room for one more element after the n in *array (elements of size bytes), its capacity *cap
 * doubled when full (the array must have been grown only so): 0, or -ENOMEM (*array kept). */
int xgrow(void *array, size_t *cap, size_t n, size_t size);
/* printf into a new string (NULL: out of memory, said). */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
/* Tests (STASIS_FAULT=alloc-N): the nth allocation from now on fails (0: none does). */
void alloc_fail_at(unsigned long n);

/* Full read/write, retrying on EINTR and short transfers. write_all returns 0 or -1. */
ssize_t read_all(int fd, void *buf, size_t len);
int write_all(int fd, const void *buf, size_t len);

/* Reads a whole small file (from /proc) into a NUL-terminated malloc'd buffer; NULL with errno
 * set (ENOMEM: the allocator said so; any other is the caller's to judge and name). */
char *read_file_at(int dirfd, const char *path, size_t *len_out);
/*
 * A /proc file that the kernel makes whole in one go (single_open: PID/stat, PID/status,
 * PID/limits...): a read that does not fill the buffer had all of it, no read for the end.
 */
char *read_proc_record(const char *path);

/* cleanup helpers */
static inline void close_fdp(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}
void free_ptr(void *p);
#define auto_close __attribute__((cleanup(close_fdp)))
#define auto_free __attribute__((cleanup(free_ptr)))

uint64_t now_ns(int clock);

/* A page of zeroes? Checks a cache line at a time: a page with data is rejected at once. */
bool page_is_zero(const void *page);

bool ends_with(const char *s, const char *suffix);
/* A hash of the string (FNV-1a), for tables indexed by path. */
uint64_t str_hash(const char *s);

/* Directory name of dirfd open for reading (openat with O_RDONLY | O_DIRECTORY | O_CLOEXEC |
 * flags): NULL with errno set if it cannot be. */
DIR *opendir_at(int dirfd, const char *name, int flags);

/*
 * Socket sk's buffer (opt: SO_SNDBUF or SO_RCVBUF) made to hold need bytes: through the plain
 * option where net.core.[rw]mem_max allows (all that a process of a user namespace may do),
 * else force_opt (SO_SNDBUFFORCE, SO_RCVBUFFORCE). 0 (also if it held them already), or -errno.
 */
int sock_buf_room(int sk, int opt, int force_opt, size_t need);

/* One message of len bytes on socket sk, with fd riding along (SCM_RIGHTS; -1: none):
 * 0 or -errno (-EIO: sent short). */
int send_with_fd(int sk, const void *msg, size_t len, int fd);
/* One message of up to len bytes from sk, the fd it carried in *fd (close-on-exec; else -1):
 * recvmsg's result (0 at the end of the connection). */
ssize_t recv_with_fd(int sk, void *msg, size_t len, int *fd);

/* A copy of fd number fd of process (or thread) pid (pidfd_getfd: the same open file), or -errno. */
int task_fd_copy(pid_t pid, int fd);

/*
 * A child with pids[i] as its pid at PID-namespace level i (0: the innermost one it will be
 * in), made with CLONE_* flags, telling its parent of its exit with exit_signal (SIGCHLD as
 * fork; a CLONE_PARENT one: ours), in the cgroup of cgroup_fd (-1: its parent's).
 */
pid_t clone_with_pid(const uint32_t *pids, size_t levels, uint64_t flags, int exit_signal, int cgroup_fd);

#endif
