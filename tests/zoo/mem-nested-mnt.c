/*
 * mem-nested-mnt: memory and a file of a mount that only a child's mount namespace has (as a
 * service's PrivateTmp= is, and criu's zdtm mapfile_priv): the file is reached by nothing but
 * the child's mount table, and no fd is left open on the mapped ones.
 *   child:  unshare(CLONE_NEWNS), every mount a slave (MS_REC | MS_SLAVE on /), a tmpfs on
 *           W/mnt with three files: "shared" (2 pages) mapped MAP_SHARED and written through
 *           the mapping, "private" (2 pages of a pattern) mapped MAP_PRIVATE with its first
 *           page written (copied on write), "held" open as fd 60 (read-write, offset 3).
 * After restore and SIGTERM (passed on to the child), the child checks: the shared mapping
 * holds what was written, and a write through it now reaches the file (read by its path);
 * the private mapping's first page is its own copy, its second still the file's, and a write
 * to the file now shows through that second page alone; fd 60 is W/mnt/held at offset 3,
 * writable. The parent reports each.
 * --hidden: the child first maps W/under/file (MAP_PRIVATE, its page read) and then mounts a
 * tmpfs on W/under, whose path then leads to nothing: tests/failure-cases.sh expects the dump
 * to refuse that mapping by name (its file cannot be opened again by its path). The file's
 * first byte still reads through the mapping after SIGTERM.
 * --fifo: the child also holds W/mnt/fifo, a named pipe of its tmpfs, open (fd 61);
 * --bound-socket: the child also holds a unix socket bound to W/mnt/sock, listening (fd 62):
 * stasis makes both before the tree runs, where that tmpfs is not, so tests/failure-cases.sh
 * expects the dump to refuse each by name.
 * Blocks in: nanosleep (parent: zoo_wait loop; child: pause loop).
 */
#include "zoo.h"
#include <sched.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#define PAGE 4096
enum { B_SHARED = 1, B_PRIVATE = 2, B_HELD = 4, B_HIDDEN = 8 };

static char mnt[4200], under[4200];
static int hidden, fifo, bound_socket; /* --hidden, --fifo, --bound-socket */
static char *hidden_map;
static volatile sig_atomic_t child_go;

static void c_child(ucontext_t *u) { (void)u; } /* (the child corrupts itself: it has the state) */
static const struct zoo_corruption corruptions[] = {
	{ "shared-map", c_child, 0 },  /* the child's shared mapping becomes an anonymous copy */
	{ "private-map", c_child, 0 }, /* the child writes to its private mapping's second page */
	{ "held-fd", c_child, 0 },     /* the child moves fd 60 to offset 0 */
};
static int corrupting(const char *tag) { return zoo_corr && !strcmp(zoo_corr->tag, tag); }

static void on_term(int sig) { (void)sig; child_go = 1; }

static char *map_file(const char *name, int prot_flags, size_t len, char fill)
{
	char f[4300];
	snprintf(f, sizeof(f), "%s/%s", mnt, name);
	int fd = open(f, O_RDWR | O_CREAT, 0600);
	char page[PAGE];
	memset(page, fill, sizeof(page));
	for (size_t off = 0; fd >= 0 && off < len; off += PAGE)
		if (pwrite(fd, page, PAGE, off) != PAGE)
			_exit(5);
	char *m = fd < 0 ? MAP_FAILED : mmap(NULL, len, PROT_READ | PROT_WRITE, prot_flags, fd, 0);
	if (m == MAP_FAILED)
		_exit(6);
	close(fd);
	return m;
}

static int file_byte(const char *name, off_t off)
{
	char f[4300], c;
	snprintf(f, sizeof(f), "%s/%s", mnt, name);
	int fd = open(f, O_RDONLY);
	int got = fd >= 0 && pread(fd, &c, 1, off) == 1 ? (unsigned char)c : -1;
	if (fd >= 0)
		close(fd);
	return got;
}

static int child_checks(char *shared, char *priv)
{
	int bits = 0;
	char f[4300];

	if (corrupting("shared-map")) {
		char copy[2 * PAGE];
		memcpy(copy, shared, sizeof(copy));
		mmap(shared, sizeof(copy), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		memcpy(shared, copy, sizeof(copy));
	}
	if (corrupting("private-map"))
		priv[PAGE + 9] = 'x';
	if (corrupting("held-fd"))
		lseek(60, 0, SEEK_SET);
	bits |= hidden && hidden_map[0] != 'h' ? B_HIDDEN : 0;
	/* shared: what was written, then a write through it reaches the file */
	bits |= shared[0] != 'W' || shared[PAGE + 1] != 'V' || shared[5] != 's' ? B_SHARED : 0;
	shared[7] = 'N';
	bits |= file_byte("shared", 7) != 'N' ? B_SHARED : 0;
	/* private: its own first page; the second still the file's, following it */
	bits |= priv[0] != 'C' || priv[1] != 'p' || priv[PAGE + 9] != 'p' ? B_PRIVATE : 0;
	snprintf(f, sizeof(f), "%s/private", mnt);
	int fd = open(f, O_WRONLY);
	if (fd < 0 || pwrite(fd, "FF", 2, PAGE + 9) != 2 || pwrite(fd, "G", 1, 0) != 1)
		bits |= B_PRIVATE;
	if (fd >= 0)
		close(fd);
	bits |= priv[PAGE + 9] != 'F' || priv[0] != 'C' ? B_PRIVATE : 0;
	/* fd 60: the held file, at offset 3, writable */
	struct stat a, b;
	snprintf(f, sizeof(f), "%s/held", mnt);
	bits |= fstat(60, &a) || stat(f, &b) || a.st_ino != b.st_ino || a.st_dev != b.st_dev ||
			lseek(60, 0, SEEK_CUR) != 3 || write(60, "!", 1) != 1 || file_byte("held", 3) != '!'
		? B_HELD : 0;
	return bits;
}

static void run_child(int ready)
{
	struct sigaction sa = { .sa_handler = on_term };
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	sigaction(SIGTERM, &sa, NULL);
	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) ||
	    mount("zoo-mem-nested", mnt, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m"))
		_exit(2);
	if (hidden) {
		char f[4300];
		snprintf(f, sizeof(f), "%s/file", under);
		int fd = open(f, O_RDONLY);
		hidden_map = fd < 0 ? MAP_FAILED : mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
		if (hidden_map == MAP_FAILED || hidden_map[0] != 'h' ||
		    mount("zoo-mem-hiding", under, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k"))
			_exit(7);
		close(fd);
	}
	char path[4300];
	snprintf(path, sizeof(path), "%s/fifo", mnt);
	int ff = fifo && !mkfifo(path, 0600) ? open(path, O_RDWR) : -1;
	if (fifo && (ff < 0 || dup2(ff, 61) != 61 || close(ff)))
		_exit(8);
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int named = snprintf(addr.sun_path, sizeof(addr.sun_path), "%s/sock", mnt) < (int)sizeof(addr.sun_path);
	int l = bound_socket ? socket(AF_UNIX, SOCK_STREAM, 0) : -1;
	if (bound_socket && (l < 0 || !named || bind(l, (struct sockaddr *)&addr, sizeof(addr)) ||
			     listen(l, 1) || dup2(l, 62) != 62 || close(l)))
		_exit(9);
	char *shared = map_file("shared", MAP_SHARED, 2 * PAGE, 's');
	char *priv = map_file("private", MAP_PRIVATE, 2 * PAGE, 'p');
	shared[0] = 'W';
	shared[PAGE + 1] = 'V';
	priv[0] = 'C';
	char f[4300];
	snprintf(f, sizeof(f), "%s/held", mnt);
	int fd = open(f, O_RDWR | O_CREAT, 0600);
	if (fd < 0 || write(fd, "abcdef", 6) != 6 || lseek(fd, 3, SEEK_SET) != 3 || dup2(fd, 60) != 60)
		_exit(3);
	close(fd);
	char c = 0;
	if (write(ready, &c, 1) != 1)
		_exit(4);
	close(ready);
	while (!child_go)
		pause();
	_exit(child_checks(shared, priv));
}

int main(int argc, char **argv)
{
	int st = 0;

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	hidden = argc > 1 && !strcmp(argv[argc - 1], "--hidden");
	fifo = argc > 1 && !strcmp(argv[argc - 1], "--fifo");
	bound_socket = argc > 1 && !strcmp(argv[argc - 1], "--bound-socket");
	snprintf(mnt, sizeof(mnt), "%s/mnt", zoo_tmpdir());
	snprintf(under, sizeof(under), "%s/under", zoo_tmpdir());
	char f[4300];
	snprintf(f, sizeof(f), "%s/file", under);
	if (mkdir(mnt, 0700) || mkdir(under, 0700) || zoo_write_file(f, "hidden\n", 7))
		zoo_die("setup: %s", strerror(errno));
	pid_t child = zoo_child_when_ready(run_child, "set up its tmpfs");
	zoo_ready();
	zoo_wait();

	kill(child, SIGTERM);
	if (waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st) >= 16)
		zoo_failf("child", "the child was killed or failed (status %#x)", st);
	int bits = WEXITSTATUS(st);
	CHECK("shared-map", !(bits & B_SHARED), "the child's shared mapping of W/mnt/shared lost what was "
	      "written, or a write through it does not reach the file");
	CHECK("private-map", !(bits & B_PRIVATE), "the child's private mapping of W/mnt/private lost its own "
	      "first page, or its second page does not follow the file");
	CHECK("held-fd", !(bits & B_HELD), "the child's fd 60 is not W/mnt/held at offset 3, writable");
	CHECK("hidden", !(bits & B_HIDDEN), "the child's mapping of the hidden W/under/file lost its content");
	return zoo_finish("2 mappings and an fd of a tmpfs of a child's mount namespace");
}
