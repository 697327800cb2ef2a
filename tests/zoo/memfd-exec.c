/*
 * memfd-exec: memfds a program runs with execveat(fd, "", ..., AT_EMPTY_PATH), in the states
 * such a memfd can be left in. memfd_create()'s own file holds no write access on the memfd;
 * a file reopened for writing through /proc does, and exec is then refused (ETXTBSY).
 *   fd 40 "zoo-script": a shell script ("exit 42"), offset 5, not close-on-exec, also held by a
 *         child (fork): parent and child each run it after restore and get 42.
 *   fd 41 "zoo-sealed": a script ("exit 43") sealed F_SEAL_WRITE|SHRINK|GROW|SEAL: runs, its
 *         seals are those, a write is refused.
 *   fd 42 "zoo-noexec": MFD_NOEXEC_SEAL (F_SEAL_EXEC, mode 0666): exec refused with EACCES,
 *         chmod +x refused.
 *   fd 43 "zoo-writer" (O_APPEND, memfd_create's) and fd 44, the same memfd reopened
 *         O_RDWR through /proc: exec refused (ETXTBSY) while fd 44 is open; once it is closed,
 *         fd 43 runs ("exit 44").
 *   fd 45 "zoo-mapped": mapped MAP_SHARED, its script ("exit 45") written through the mapping:
 *         runs (the mapping holds no write access either).
 *   fd 46 "zoo-future": mapped MAP_SHARED writable, then sealed F_SEAL_FUTURE_WRITE: write()
 *         refused, the mapping still writes the object (seen through the fd).
 * Blocks in: nanosleep everywhere.
 */
#include "zoo.h"
#include <sys/mman.h>
#include <sys/wait.h>

#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#endif
#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif
#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC 0x0020
#endif
#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif

enum { SCRIPT = 40, SEALED, NOEXEC, WRITER, REOPENED, MAPPED, FUTURE };
#define SEALS (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)
#define PAGE 4096

static char *mapped, *future;
static volatile sig_atomic_t child_term;

static void on_term(int sig) { (void)sig; child_term = 1; }

/* Exit status of the program in memfd fd (-1: not run, *err says why). */
static int run(int fd, int *err)
{
	int pipefd[2], st = 0, e = 0;
	if (pipe2(pipefd, O_CLOEXEC))
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		char *argv[] = { "zoo-memfd", NULL }, *envp[] = { NULL };
		syscall(SYS_execveat, fd, "", argv, envp, AT_EMPTY_PATH);
		e = errno;
		write(pipefd[1], &e, sizeof(e));
		_exit(127);
	}
	close(pipefd[1]);
	ssize_t n = read(pipefd[0], &e, sizeof(e));
	close(pipefd[0]);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	*err = n == sizeof(e) ? e : 0;
	return n == sizeof(e) || !WIFEXITED(st) ? -1 : WEXITSTATUS(st);
}

static int make(const char *name, unsigned flags, const char *text, int at)
{
	int fd = memfd_create(name, flags);
	if (fd < 0 || (text && write(fd, text, strlen(text)) != (ssize_t)strlen(text)) ||
	    dup3(fd, at, 0) != at)
		zoo_die("memfd %s: %s", name, strerror(errno));
	close(fd);
	return at;
}

static void reopen_at(int fd, int at)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	int r = open(path, O_RDWR);
	if (r < 0 || dup3(r, at, 0) != at)
		zoo_die("reopen %s: %s", path, strerror(errno));
	close(r);
}

static void child(void)
{
	struct sigaction sa = { .sa_handler = on_term };
	int err;
	sigaction(SIGTERM, &sa, NULL);
	close(REOPENED); /* the parent's writer only */
	while (!child_term)
		zoo_sleep_ms(10);
	if (zoo_corr && !strcmp(zoo_corr->tag, "child"))
		reopen_at(SCRIPT, 60);
	_exit(run(SCRIPT, &err) == 42 ? 0 : 1);
}

/* a writer of fd 40's memfd: its exec is refused */
static void c_exec(ucontext_t *u) { (void)u; reopen_at(SCRIPT, 61); }
static void c_content(ucontext_t *u) { (void)u; pwrite(SCRIPT, "1", 1, 15); }
/* fd 41 becomes a fresh memfd of the same script, unsealed */
static void c_sealed(ucontext_t *u)
{
	(void)u;
	make("zoo-sealed", MFD_EXEC, "#!/bin/sh\nexit 43\n", SEALED);
}
/* fd 42 becomes an executable memfd */
static void c_noexec(ucontext_t *u)
{
	(void)u;
	make("zoo-noexec", MFD_EXEC, "#!/bin/sh\nexit 0\n", NOEXEC);
}
static void c_writer(ucontext_t *u) { (void)u; close(REOPENED); }
static void c_flags(ucontext_t *u) { (void)u; fcntl(WRITER, F_SETFL, 0); }
static void c_mapped(ucontext_t *u) { (void)u; mapped[16] = '9'; }
static void c_future(ucontext_t *u)
{
	(void)u; /* the mapping becomes a private copy: its writes no longer reach the memfd */
	void *copy = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memcpy(copy, future, PAGE);
	mremap(copy, PAGE, PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, future);
}
static void c_child(ucontext_t *u) { (void)u; /* the child opens a writer itself */ }

static const struct zoo_corruption corruptions[] = {
	{ "exec", c_exec, 0 },     { "content", c_content, 0 }, { "sealed", c_sealed, 0 },
	{ "noexec", c_noexec, 0 }, { "writer", c_writer, 0 },   { "flags", c_flags, 0 },
	{ "mapped", c_mapped, 0 }, { "future", c_future, 0 },   { "child", c_child, 0 },
};

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	struct stat st;
	int err;

	make("zoo-script", MFD_EXEC, "#!/bin/sh\nexit 42\n", SCRIPT);
	lseek(SCRIPT, 5, SEEK_SET);
	make("zoo-sealed", MFD_EXEC | MFD_ALLOW_SEALING, "#!/bin/sh\nexit 43\n", SEALED);
	if (fcntl(SEALED, F_ADD_SEALS, SEALS))
		zoo_die("seal: %s", strerror(errno));
	make("zoo-noexec", MFD_NOEXEC_SEAL, "#!/bin/sh\nexit 0\n", NOEXEC);
	make("zoo-writer", MFD_EXEC, "#!/bin/sh\nexit 44\n", WRITER);
	fcntl(WRITER, F_SETFL, O_APPEND);
	reopen_at(WRITER, REOPENED);
	make("zoo-mapped", MFD_EXEC, NULL, MAPPED);
	make("zoo-future", MFD_EXEC | MFD_ALLOW_SEALING, NULL, FUTURE);
	if (ftruncate(MAPPED, PAGE) || ftruncate(FUTURE, PAGE) ||
	    (mapped = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, MAPPED, 0)) == MAP_FAILED ||
	    (future = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, FUTURE, 0)) == MAP_FAILED ||
	    fcntl(FUTURE, F_ADD_SEALS, F_SEAL_FUTURE_WRITE))
		zoo_die("mapped memfds: %s", strerror(errno));
	memcpy(mapped, "#!/bin/sh\nexit 45\n", 18);
	memset(mapped + 18, '\n', PAGE - 18);
	strcpy(future, "before");
	if (run(SCRIPT, &err) != 42 || run(SEALED, &err) != 43 || run(MAPPED, &err) != 45 ||
	    run(WRITER, &err) != -1 || err != ETXTBSY || run(NOEXEC, &err) != -1 || err != EACCES)
		zoo_die("exec before the dump does not behave as expected");
	pid_t kid = fork();
	if (kid == 0)
		child();
	zoo_check_maps = 0; /* the future corruption replaces a mapping on purpose */
	zoo_check_fds = 0;  /* the exec corruption opens a writer on purpose */
	zoo_ready();
	zoo_wait();

	int code = run(SCRIPT, &err);
	CHECK("exec", code == 42 || (code == -1 && err != ETXTBSY),
	      "fd 40 does not run: %s", strerror(err));
	CHECK("content", code == -1 || code == 42, "fd 40's script exits %d, not 42", code);
	CHECK("content", fcntl(SCRIPT, F_GETFD) == 0 && lseek(SCRIPT, 0, SEEK_CUR) == 5,
	      "fd 40 is close-on-exec or not at offset 5");
	code = run(SEALED, &err);
	CHECK("sealed", code == 43, "fd 41 exits %d (%s), not 43", code, strerror(err));
	CHECK("sealed", fcntl(SEALED, F_GET_SEALS) == SEALS && pwrite(SEALED, "x", 1, 0) < 0 &&
				errno == EPERM,
	      "fd 41 has seals %#x, not %#x, or takes a write", fcntl(SEALED, F_GET_SEALS), SEALS);
	code = run(NOEXEC, &err);
	CHECK("noexec", code == -1 && err == EACCES, "fd 42 exec: exit %d (%s), not EACCES", code,
	      strerror(err));
	CHECK("noexec", fcntl(NOEXEC, F_GET_SEALS) == F_SEAL_EXEC && !fstat(NOEXEC, &st) &&
				(st.st_mode & 0777) == 0666 && fchmod(NOEXEC, 0777) < 0,
	      "fd 42: seals %#x, mode %o, or chmod +x allowed", fcntl(NOEXEC, F_GET_SEALS),
	      st.st_mode & 0777);
	code = run(WRITER, &err);
	CHECK("writer", code == -1 && err == ETXTBSY, "fd 43 runs (exit %d, %s) while fd 44 writes it",
	      code, strerror(err));
	close(REOPENED);
	code = run(WRITER, &err);
	CHECK("writer", code == 44, "fd 43 exits %d (%s) once fd 44 is closed, not 44", code,
	      strerror(err));
	CHECK("flags", fcntl(WRITER, F_GETFL) & O_APPEND, "fd 43 lost O_APPEND");
	code = run(MAPPED, &err);
	CHECK("mapped", code == 45, "fd 45 (mapped) exits %d (%s), not 45", code, strerror(err));
	char back[8] = "";
	strcpy(future, "after!");
	CHECK("future", pread(FUTURE, back, 6, 0) == 6 && !memcmp(back, "after!", 6),
	      "the mapping's write is not in fd 46's memfd (\"%.6s\")", back);
	CHECK("future", fcntl(FUTURE, F_GET_SEALS) == F_SEAL_FUTURE_WRITE &&
				pwrite(FUTURE, "x", 1, 0) < 0 && errno == EPERM,
	      "fd 46 has seals %#x or takes a write", fcntl(FUTURE, F_GET_SEALS));
	kill(kid, SIGTERM);
	int cst = 0;
	waitpid(kid, &cst, 0);
	CHECK("child", WIFEXITED(cst) && WEXITSTATUS(cst) == 0, "the child could not run fd 40");
	return zoo_finish("exec of memfds: plain, sealed, noexec, with a writer, mapped; a child");
}
