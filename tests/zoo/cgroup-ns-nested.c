/*
 * cgroup-ns-nested: a cgroup namespace a process of the tree made below the tree's (a
 * container's service with a cgroup namespace of its own). The root forks A, which makes its own
 * cgroup namespace (unshare) rooted at its cgroups, then forks B, which inherits it.
 * After restore and SIGTERM, A and B each look at themselves again (on SIGUSR1, through shared
 * memory): A and B share one cgroup namespace, not the root's; each sees its /proc/self/cgroup
 * exactly as before the dump (A: every hierarchy at "/", the namespace's root).
 * Blocks in: nanosleep (zoo_wait loop) in the root, pause() in A and B.
 */
#include "zoo.h"
#include <sched.h>
#include <sys/mman.h>

#define VIEW_MAX 2048

struct view {
	uint64_t ns;
	char cgroups[VIEW_MAX];
};

struct shared {
	struct view before[2], now[2]; /* A, B */
	volatile int asked, answered[2];
	volatile int unshare_b, join_root_a; /* corruptions */
};

static struct shared *sh;
static pid_t kids[2];

static void look(struct view *v)
{
	struct stat st;
	v->ns = stat("/proc/self/ns/cgroup", &st) ? 0 : st.st_ino;
	if (zoo_read_file("/proc/self/cgroup", v->cgroups, sizeof(v->cgroups)) < 0)
		v->cgroups[0] = 0;
}

static volatile sig_atomic_t asked;
static void on_usr1(int sig) { (void)sig; asked = 1; }

/* A (who 0) or B (who 1): looks at itself once set up, and again when asked. */
static void member(int who)
{
	look(&sh->before[who]);
	while (!asked)
		pause();
	if (who == 1 && sh->unshare_b)
		unshare(CLONE_NEWCGROUP);
	if (who == 0 && sh->join_root_a) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/ns/cgroup", (int)getppid());
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0 && !setns(fd, CLONE_NEWCGROUP))
			close(fd);
	}
	look(&sh->now[who]);
	sh->answered[who] = 1;
	for (;;)
		pause();
}

static void run_a(void)
{
	signal(SIGUSR1, on_usr1);
	if (unshare(CLONE_NEWCGROUP))
		zoo_die("unshare(CLONE_NEWCGROUP): %s", strerror(errno));
	pid_t b = fork();
	if (b < 0)
		zoo_die("fork: %s", strerror(errno));
	if (!b)
		member(1);
	kids[1] = b;
	member(0);
}

static void c_shared(ucontext_t *u) { (void)u; sh->unshare_b = 1; }
static void c_nested(ucontext_t *u) { (void)u; sh->join_root_a = 1; }

static const struct zoo_corruption corruptions[] = {
	{ "shared", c_shared, 0 },
	{ "nested", c_nested, 0 },
};

/* Every line of a /proc/PID/cgroup text ends at "/" (its namespace's root). */
static int all_at_root(const char *text)
{
	for (const char *l = text; *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : l + strlen(l)) {
		const char *end = strchr(l, '\n') ? strchr(l, '\n') : l + strlen(l);
		if (end - l < 2 || memcmp(end - 2, ":/", 2))
			return 0;
	}
	return 1;
}

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		zoo_die("mmap: %s", strerror(errno));
	memset(sh, 0, sizeof(*sh));
	kids[0] = fork();
	if (kids[0] < 0)
		zoo_die("fork: %s", strerror(errno));
	if (!kids[0])
		run_a();
	for (int i = 0; i < 500 && (!sh->before[0].ns || !sh->before[1].ns); i++)
		zoo_sleep_ms(10);
	if (!sh->before[0].ns || !sh->before[1].ns)
		zoo_die("A or B did not look at itself");
	struct stat st;
	uint64_t root_ns = stat("/proc/self/ns/cgroup", &st) ? 0 : st.st_ino;
	if (sh->before[0].ns == root_ns || sh->before[1].ns != sh->before[0].ns ||
	    !all_at_root(sh->before[0].cgroups))
		zoo_die("set up wrong: A's namespace %llu, B's %llu, the root's %llu; A sees %s",
			(unsigned long long)sh->before[0].ns, (unsigned long long)sh->before[1].ns,
			(unsigned long long)root_ns, sh->before[0].cgroups);
	zoo_ready();
	zoo_wait();
	zoo_begin_verify();

	/* B is A's child: the root signals A's group of two through A's pid and B's (in shared memory) */
	char path[64], text[64];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)kids[0], (int)kids[0]);
	pid_t b = zoo_read_file(path, text, sizeof(text)) > 0 ? atoi(text) : 0;
	kill(kids[0], SIGUSR1);
	if (b > 0)
		kill(b, SIGUSR1);
	for (int i = 0; i < 500 && (!sh->answered[0] || !sh->answered[1]); i++)
		zoo_sleep_ms(10);
	CHECK("nested", sh->answered[0] && sh->answered[1], "A or B (pid %d) did not answer", (int)b);
	root_ns = stat("/proc/self/ns/cgroup", &st) ? 0 : st.st_ino;
	CHECK("nested", sh->now[0].ns != root_ns, "A is in the root's cgroup namespace cgroup:[%llu]",
	      (unsigned long long)root_ns);
	CHECK("shared", sh->now[1].ns == sh->now[0].ns, "B is in cgroup:[%llu], A in cgroup:[%llu]",
	      (unsigned long long)sh->now[1].ns, (unsigned long long)sh->now[0].ns);
	for (int w = 0; w < 2; w++)
		CHECK("nested", !strcmp(sh->now[w].cgroups, sh->before[w].cgroups),
		      "%s sees its cgroups as [%s], saw [%s]", w ? "B" : "A", sh->now[w].cgroups,
		      sh->before[w].cgroups);
	kill(kids[0], SIGKILL);
	if (b > 0)
		kill(b, SIGKILL);
	waitpid(kids[0], NULL, 0);
	return zoo_finish("A's own cgroup namespace, B in it too");
}
