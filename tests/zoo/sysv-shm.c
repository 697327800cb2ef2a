/*
 * sysv-shm: SysV shared memory and a POSIX /dev/shm file, shared by a parent and its child.
 *   Segment A: IPC_PRIVATE, 5 pages + 10 bytes, attached read-write (inherited by the child).
 *   Segment B: a fixed key, mode 0640, 2 pages, attached read-only (by both).
 *   /dev/shm/zoo-shm-PID: 2 pages mapped MAP_SHARED by both.
 *   Segment C: IPC_PRIVATE, 3 pages, attached read-write by the parent only, locked in memory
 *   (SHM_LOCK) and removed (IPC_RMID: it lives while attached); its middle page mprotect()ed
 *   read-only, so the attach is three mappings.
 *   After restore and SIGTERM: the parent checks content, that each shmid still names its
 *   segment (key, size, attach count), that B is still read-only; then the sharing (a token
 *   written by the parent into A and into the /dev/shm file must reach the child) and that
 *   shmdt() still works; C's pages have their content and protections (rw, r, rw), the middle
 *   one can be made writable again (the attach is read-write) and C is still removed and locked.
 *   Segments and the file are removed at the end.
 * Blocks in: nanosleep everywhere.
 */
#include "zoo.h"
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/wait.h>

#define A_SIZE (5 * 4096 + 10)
#define B_SIZE (2 * 4096)
#define TOKEN_AT 100

static int ida, idb, idc;
static unsigned char *a, *b, *c, *posix;
static char posix_path[64];
static volatile sig_atomic_t child_term;

static void on_term(int sig) { (void)sig; child_term = 1; }

static void child(void)
{
	struct sigaction sa = { .sa_handler = on_term };
	sigaction(SIGTERM, &sa, NULL);
	while (!child_term)
		zoo_sleep_ms(10);
	int bad = zoo_check_fill(a + 4096, A_SIZE - 4096, 81) >= 0;
	uint64_t ta = 0, tp = 0;
	for (int i = 0; i < 500 && (ta != 0x73797376 || tp != 0x706f7378); i++) {
		memcpy(&ta, a + TOKEN_AT, 8);
		memcpy(&tp, posix + TOKEN_AT, 8);
		zoo_sleep_ms(2);
	}
	_exit(bad | (ta != 0x73797376) << 1 | (tp != 0x706f7378) << 2);
}

static void c_content(ucontext_t *u) { (void)u; a[5000] ^= 1; }
static void c_segment(ucontext_t *u)
{
	struct shmid_ds ds;
	(void)u; /* B's permissions change */
	shmctl(idb, IPC_STAT, &ds);
	ds.shm_perm.mode = 0600;
	shmctl(idb, IPC_SET, &ds);
}
static void c_sharing(ucontext_t *u)
{
	(void)u; /* the parent's view of A becomes private: its token never reaches the child */
	size_t len = 6 * 4096;
	void *copy = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memcpy(copy, a, A_SIZE);
	shmdt(a);
	mremap(copy, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, a);
}

static void c_pieces(ucontext_t *u) { (void)u; mprotect(c + 4096, 4096, PROT_READ | PROT_WRITE); }
static void c_locked(ucontext_t *u) { (void)u; shmctl(idc, SHM_UNLOCK, NULL); }

static const struct zoo_corruption corruptions[] = {
	{ "content", c_content, 0 },
	{ "locked", c_locked, 0 },
	{ "pieces", c_pieces, 0 },
	{ "segment", c_segment, 0 },
	{ "sharing", c_sharing, 0 },
};

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	key_t key = 0x5a000000 | (getpid() & 0xffffff);
	ida = shmget(IPC_PRIVATE, A_SIZE, IPC_CREAT | 0600);
	idb = shmget(key, B_SIZE, IPC_CREAT | IPC_EXCL | 0640);
	if (ida < 0 || idb < 0)
		zoo_die("shmget: %s", strerror(errno));
	a = shmat(ida, NULL, 0);
	b = shmat(idb, NULL, 0);
	if (a == (void *)-1 || b == (void *)-1)
		zoo_die("shmat: %s", strerror(errno));
	zoo_fill(a + 4096, A_SIZE - 4096, 81);
	zoo_fill(b, B_SIZE, 82);
	shmdt(b);
	b = shmat(idb, NULL, SHM_RDONLY);
	snprintf(posix_path, sizeof(posix_path), "/dev/shm/zoo-shm-%d", getpid());
	int fd = open(posix_path, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || ftruncate(fd, 2 * 4096))
		zoo_die("%s: %s", posix_path, strerror(errno));
	posix = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	pid_t kid = fork();
	if (kid == 0)
		child();
	if ((idc = shmget(IPC_PRIVATE, 3 * 4096, IPC_CREAT | 0600)) < 0 || (c = shmat(idc, NULL, 0)) == (void *)-1 ||
	    shmctl(idc, SHM_LOCK, NULL) || shmctl(idc, IPC_RMID, NULL))
		zoo_die("segment C: %s", strerror(errno));
	zoo_fill(c, 3 * 4096, 83);
	if (mprotect(c + 4096, 4096, PROT_READ))
		zoo_die("mprotect C: %s", strerror(errno));
	zoo_check_maps = 0; /* two corruptions change mappings on purpose */
	zoo_ready();
	zoo_wait();

	struct shmid_ds ds;
	CHECK("content", zoo_check_fill(a + 4096, A_SIZE - 4096, 81) < 0 &&
			 zoo_check_fill(b, B_SIZE, 82) < 0, "segment content differs");
	CHECK("segment", shmctl(ida, IPC_STAT, &ds) == 0 && ds.shm_segsz == A_SIZE && ds.shm_nattch == 2,
	      "segment A (id %d): size %zu, %lu attaches", ida, (size_t)ds.shm_segsz, (unsigned long)ds.shm_nattch);
	CHECK("segment", shmctl(idb, IPC_STAT, &ds) == 0 && ds.shm_perm.__key == key &&
			 ds.shm_segsz == B_SIZE && ds.shm_nattch == 2 && (ds.shm_perm.mode & 0777) == 0640,
	      "segment B (id %d): key %#x, %lu attaches, mode %o", idb, ds.shm_perm.__key,
	      (unsigned long)ds.shm_nattch, ds.shm_perm.mode & 0777);
	char perms[8] = "";
	unsigned long s, e;
	CHECK("segment", zoo_map_of((unsigned long)b, &s, &e, perms) == 0 && perms[1] == '-',
	      "segment B is not attached read-only (%s)", perms);
	char pc[3][8] = { "", "", "" };
	for (int i = 0; i < 3; i++)
		zoo_map_of((unsigned long)c + i * 4096, &s, &e, pc[i]);
	CHECK("pieces", pc[0][1] == 'w' && pc[1][1] == '-' && pc[2][1] == 'w' && pc[1][0] == 'r',
	      "segment C's pages are %s, %s, %s (expected rw, r-, rw)", pc[0], pc[1], pc[2]);
	CHECK("content", zoo_check_fill(c, 3 * 4096, 83) < 0, "segment C's content differs");
	CHECK("pieces", mprotect(c + 4096, 4096, PROT_READ | PROT_WRITE) == 0 && (c[4096] ^= 1, c[4096] ^= 1, 1),
	      "segment C's middle page cannot be made writable again: %s", strerror(errno));
	CHECK("segment", shmctl(idc, IPC_STAT, &ds) == 0 && ds.shm_nattch == 3 && (ds.shm_perm.mode & SHM_DEST),
	      "segment C (id %d): %lu attaches, mode %#o (expected removed, 3 attaches: one a mapping)", idc,
	      (unsigned long)ds.shm_nattch, ds.shm_perm.mode);
	CHECK("locked", shmctl(idc, IPC_STAT, &ds) == 0 && (ds.shm_perm.mode & SHM_LOCKED),
	      "segment C (id %d) is no longer locked in memory (SHM_LOCK): mode %#o", idc, ds.shm_perm.mode);
	kill(kid, SIGTERM);
	uint64_t ta = 0x73797376, tp = 0x706f7378;
	memcpy(a + TOKEN_AT, &ta, 8);
	memcpy(posix + TOKEN_AT, &tp, 8);
	int st = 0;
	waitpid(kid, &st, 0);
	int code = WIFEXITED(st) ? WEXITSTATUS(st) : 255;
	CHECK("content", code != 255 && !(code & 1), "child: segment content differs (%d)", code);
	CHECK("sharing", code == 255 || !(code & 2), "the child did not see the parent's write to A");
	CHECK("sharing", code == 255 || !(code & 4), "the child did not see the write to %s", posix_path);
	CHECK("segment", shmdt(b) == 0, "shmdt of B: %s", strerror(errno));
	shmdt(a);
	shmdt(c);
	shmctl(ida, IPC_RMID, NULL);
	shmctl(idb, IPC_RMID, NULL);
	unlink(posix_path);
	return zoo_finish("3 SysV segments (1 removed and locked, attached in 3 pieces), 1 /dev/shm file, 2 processes");
}
