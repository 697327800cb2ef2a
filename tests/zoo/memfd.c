/*
 * memfd: a memfd ("zoo-memfd", 3 pages + 100 bytes) held at fd 33 with offset 1234 and mapped
 * MAP_SHARED, by a parent and its child (both inherit fd and mapping).
 *   After restore and SIGTERM, each process checks: the content through the fd and through
 *   the mapping, the size, the fd's name "/memfd:zoo-memfd (deleted)" and offset, that the
 *   mapping and the fd are the same object (inode); then the sharing: the parent writes a
 *   token through its mapping, the child must read it through its fd.
 * The parent also maps a second memfd ("zoo-private", 3 pages, no fd left) MAP_PRIVATE and
 * changes its middle page: after restore the mapping shows the file's pages 0 and 2 and its
 * own page 1, and a write to the file's page 2 shows through (not copied) while the file's
 * page 1 is unchanged.
 * Blocks in: nanosleep everywhere.
 */
#include "zoo.h"
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define FD 33
#define SIZE (3 * 4096 + 100)
#define OFFSET 1234
#define TOKEN_AT 5000

static unsigned char *map, *priv;
static volatile sig_atomic_t child_term;

static void on_term(int sig) { (void)sig; child_term = 1; }

/* Bits: 1 content, 2 identity (name, size, inode), 4 offset, 8 sharing */
static int check_object(void)
{
	int bad = 0;
	unsigned char buf[SIZE];
	char link[128] = "";
	struct stat st, mst;
	char mf[96];

	if (pread(FD, buf, SIZE, 0) != SIZE || zoo_check_fill(buf, TOKEN_AT, 71) >= 0 ||
	    zoo_check_fill(map, TOKEN_AT, 71) >= 0)
		bad |= 1;
	ssize_t n = readlink("/proc/self/fd/33", link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = 0;
	snprintf(mf, sizeof(mf), "/proc/self/map_files/%lx-%lx", (unsigned long)map,
		 (unsigned long)map + 4 * 4096);
	if (strcmp(link, "/memfd:zoo-memfd (deleted)") || fstat(FD, &st) || st.st_size != SIZE ||
	    stat(mf, &mst) || mst.st_ino != st.st_ino || fcntl(FD, F_GET_SEALS) != (F_SEAL_SHRINK | F_SEAL_GROW))
		bad |= 2;
	if (lseek(FD, 0, SEEK_CUR) != OFFSET)
		bad |= 4;
	return bad;
}

static void child(void)
{
	struct sigaction sa = { .sa_handler = on_term };
	sigaction(SIGTERM, &sa, NULL);
	while (!child_term)
		zoo_sleep_ms(10);
	int bad = check_object();
	uint64_t token = 0;
	for (int i = 0; i < 500 && token != 0x6d656d66; i++) {
		pread(FD, &token, 8, TOKEN_AT);
		zoo_sleep_ms(2);
	}
	if (token != 0x6d656d66)
		bad |= 8;
	_exit(bad);
}

static void c_content(ucontext_t *u) { (void)u; map[100] ^= 1; }
static void c_offset(ucontext_t *u) { (void)u; lseek(FD, 7, SEEK_SET); }
/* fd 33 becomes another memfd of the same name and size, without seals */
static void c_size(ucontext_t *u)
{
	(void)u;
	int fd = memfd_create("zoo-memfd", MFD_CLOEXEC);
	ftruncate(fd, SIZE);
	dup3(fd, FD, O_CLOEXEC);
	close(fd);
}
static void c_sharing(ucontext_t *u)
{
	(void)u; /* the parent's mapping becomes a private copy: its token never reaches the child */
	void *copy = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memcpy(copy, map, SIZE);
	mremap(copy, 4 * 4096, 4 * 4096, MREMAP_MAYMOVE | MREMAP_FIXED, map);
}

static void c_private(ucontext_t *u) { (void)u; priv[3 * 4096 - 1] ^= 1; }
static const struct zoo_corruption corruptions[] = {
	{ "private", c_private, 0 },
	{ "content", c_content, 0 },
	{ "offset", c_offset, 0 },
	{ "identity", c_size, 0 },
	{ "sharing", c_sharing, 0 },
};

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	int fd = memfd_create("zoo-memfd", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0 || ftruncate(fd, SIZE) || fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) ||
	    dup3(fd, FD, O_CLOEXEC) != FD)
		zoo_die("memfd: %s", strerror(errno));
	close(fd);
	map = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, FD, 0);
	if (map == MAP_FAILED)
		zoo_die("mmap: %s", strerror(errno));
	zoo_fill(map, TOKEN_AT, 71);
	lseek(FD, OFFSET, SEEK_SET);
	pid_t kid = fork();
	if (kid == 0)
		child();
	int pfd = memfd_create("zoo-private", MFD_CLOEXEC);
	unsigned char file[3 * 4096], mine[4096];
	zoo_fill(file, sizeof(file), 72);
	zoo_fill(mine, sizeof(mine), 73);
	if (pfd < 0 || write(pfd, file, sizeof(file)) != sizeof(file) ||
	    (priv = mmap(NULL, sizeof(file), PROT_READ | PROT_WRITE, MAP_PRIVATE, pfd, 0)) == MAP_FAILED)
		zoo_die("private memfd mapping: %s", strerror(errno));
	close(pfd);
	memcpy(priv + 4096, mine, 4096);
	zoo_sleep_ms(50);
	zoo_check_maps = 0; /* the sharing corruption replaces the mapping on purpose */
	zoo_ready();
	zoo_wait();

	int bad = check_object(), st = 0;
	CHECK("content", !(bad & 1), "memfd content differs in the parent");
	CHECK("identity", !(bad & 2), "memfd name, size or inode differs in the parent");
	CHECK("offset", !(bad & 4), "fd 33 offset is %ld", (long)lseek(FD, 0, SEEK_CUR));
	CHECK("private", !memcmp(priv, file, 4096) && !memcmp(priv + 4096, mine, 4096) &&
				 !memcmp(priv + 8192, file + 8192, 4096),
	      "the private memfd mapping's content differs");
	char mf[96], back[8] = "";
	snprintf(mf, sizeof(mf), "/proc/self/map_files/%lx-%lx", (unsigned long)priv, (unsigned long)priv + 3 * 4096);
	pfd = open(mf, O_RDWR);
	CHECK("private", pfd >= 0 && pwrite(pfd, "through", 7, 8192) == 7 && !memcmp(priv + 8192, "through", 7) &&
				 pread(pfd, back, 7, 4096) == 7 && !memcmp(back, file + 4096, 7),
	      "the private mapping is not a copy-on-write view of its memfd: %s", strerror(errno));
	if (pfd >= 0)
		close(pfd);
	kill(kid, SIGTERM);
	uint64_t token = 0x6d656d66;
	memcpy(map + TOKEN_AT, &token, 8);
	waitpid(kid, &st, 0);
	int code = WIFEXITED(st) ? WEXITSTATUS(st) : 255;
	CHECK("content", code != 255 && !(code & 1), "child: memfd content differs (code %d)", code);
	CHECK("identity", code == 255 || !(code & 2), "child: memfd name, size or inode differs");
	CHECK("offset", code == 255 || !(code & 4), "child: fd 33 offset differs");
	CHECK("sharing", code == 255 || !(code & 8), "the child did not see the parent's write");
	return zoo_finish("2 processes, fd and mapping; a private mapping of another memfd");
}
