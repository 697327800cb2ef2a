/*
 * mm-fields: what /proc shows from the mm struct.
 *   The program copies its executable to $ZOO_TMPDIR/mm-fields-exe and executes the copy
 *   (same pid) with extra arguments (with spaces, an
 *   empty one, UTF-8, "x=y") and an extra environment variable, so cmdline and environ are
 *   not trivial. Compared after restore, byte for byte: /proc/self/cmdline, /proc/self/environ,
 *   /proc/self/auxv; readlink /proc/self/exe and its dev/inode; getauxval() of the usual
 *   entries; the mm fields in /proc/self/stat (start/end code, start stack, start/end data,
 *   start brk, arg start/end, env start/end) and the kernel's brk (brk(0)).
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <linux/prctl.h>
#include <sys/auxv.h>
#include <sys/prctl.h>

#define STAGE2 "--mm-stage2"
#define ENVVAR "ZOO_MM_VAR"

struct blob {
	char data[16384];
	ssize_t len;
};
static struct blob cmdline[2], environ_[2], auxv[2];
static char exe[2][600];
static struct stat exe_st[2];
static unsigned long statf[2][11], brk_now[2];
static unsigned long auxvals[2][16];
static const unsigned long auxkeys[] = { AT_PHDR,   AT_PHENT,  AT_PHNUM,  AT_PAGESZ, AT_BASE,
					 AT_ENTRY,  AT_UID,    AT_EUID,   AT_GID,    AT_EGID,
					 AT_HWCAP,  AT_CLKTCK, AT_RANDOM, AT_HWCAP2, AT_EXECFN,
					 AT_SYSINFO_EHDR };
/* /proc/PID/stat field numbers (1-based) of the mm fields */
static const int statnum[11] = { 26, 27, 28, 45, 46, 47, 48, 49, 50, 51, 0 };
static const char *const statname[11] = { "start_code", "end_code", "start_stack", "start_data", "end_data",
					  "start_brk",  "arg_start", "arg_end",	    "env_start",  "env_end" };
static char **g_argv;

static int read_stat(unsigned long *out)
{
	static char buf[4096];
	if (zoo_read_file("/proc/self/stat", buf, sizeof(buf)) < 0)
		return -1;
	char *p = strrchr(buf, ')'); /* comm may contain spaces */
	if (!p)
		return -1;
	int field = 2;
	unsigned long vals[64] = { 0 };
	for (p++; *p && field < 60;) {
		while (*p == ' ')
			p++;
		if (!*p || *p == '\n')
			break;
		field++;
		vals[field] = strtoul(p, NULL, 10);
		while (*p && *p != ' ')
			p++;
	}
	for (int i = 0; statnum[i]; i++)
		out[i] = vals[statnum[i]];
	return field >= 51 ? 0 : -1;
}

static void snapshot(int k)
{
	cmdline[k].len = zoo_read_file("/proc/self/cmdline", cmdline[k].data, sizeof(cmdline[k].data));
	environ_[k].len = zoo_read_file("/proc/self/environ", environ_[k].data, sizeof(environ_[k].data));
	auxv[k].len = zoo_read_file("/proc/self/auxv", auxv[k].data, sizeof(auxv[k].data));
	ssize_t l = readlink("/proc/self/exe", exe[k], sizeof(exe[k]) - 1);
	exe[k][l > 0 ? l : 0] = 0;
	stat("/proc/self/exe", &exe_st[k]);
	read_stat(statf[k]);
	brk_now[k] = (unsigned long)syscall(SYS_brk, 0);
	for (unsigned i = 0; i < sizeof(auxkeys) / sizeof(auxkeys[0]); i++)
		auxvals[k][i] = getauxval(auxkeys[i]);
}

/* PR_SET_MM_MAP with the current values, one of them changed by the caller. */
static int set_mm_map(void (*edit)(struct prctl_mm_map *m))
{
	static __u64 av[128];
	unsigned long f[11];
	struct prctl_mm_map m;
	ssize_t n = zoo_read_file("/proc/self/auxv", (char *)av, sizeof(av));
	if (read_stat(f) < 0 || n <= 0)
		return -1;
	memset(&m, 0, sizeof(m));
	m.start_code = f[0], m.end_code = f[1], m.start_stack = f[2];
	m.start_data = f[3], m.end_data = f[4], m.start_brk = f[5];
	m.arg_start = f[6], m.arg_end = f[7], m.env_start = f[8], m.env_end = f[9];
	m.brk = (unsigned long)syscall(SYS_brk, 0);
	m.auxv = av;
	m.auxv_size = (unsigned)n;
	m.exe_fd = -1;
	edit(&m);
	return prctl(PR_SET_MM, PR_SET_MM_MAP, &m, sizeof(m), 0);
}

static void edit_auxv(struct prctl_mm_map *m)
{
	for (__u64 *a = m->auxv; a < m->auxv + m->auxv_size / 8 && a[0] != AT_NULL; a += 2)
		if (a[0] == AT_CLKTCK)
			a[1] += 1;
}
static void edit_env(struct prctl_mm_map *m) { m->env_end -= 1; }


static void c_cmdline(ucontext_t *u) { (void)u; g_argv[1][0] ^= 0x20; }
static void c_environ(ucontext_t *u)
{
	(void)u;
	char *v = getenv(ENVVAR);
	if (v)
		v[0] ^= 0x20;
}
static void c_auxv(ucontext_t *u)
{
	(void)u;
	if (set_mm_map(edit_auxv) < 0)
		zoo_die("PR_SET_MM_MAP (auxv): %s", strerror(errno));
}
static void c_mmstat(ucontext_t *u)
{
	(void)u;
	if (set_mm_map(edit_env) < 0)
		zoo_die("PR_SET_MM_MAP (env_end): %s", strerror(errno));
}
/*
 * PR_SET_MM_MAP cannot change exe_file while the old one is mapped (EBUSY), so the program
 * runs from a copy in $ZOO_TMPDIR and this corruption renames that copy.
 */
static void c_exe(ucontext_t *u)
{
	char to[700];
	(void)u;
	snprintf(to, sizeof(to), "%s.moved", exe[0]);
	if (rename(exe[0], to) < 0)
		zoo_die("rename %s: %s", exe[0], strerror(errno));
}
static const struct zoo_corruption corruptions[] = {
	{ "exe", c_exe, 0 },
	{ "cmdline", c_cmdline, 0 },
	{ "environ", c_environ, 0 },
	{ "auxv", c_auxv, 0 },
	{ "mmstat", c_mmstat, 0 },
};

static void cmp_blob(const char *tag, const char *what, const struct blob *a, const struct blob *b)
{
	if (a->len != b->len) {
		zoo_failf(tag, "%s is %zd bytes, was %zd", what, b->len, a->len);
		return;
	}
	for (ssize_t i = 0; i < a->len; i++)
		if (a->data[i] != b->data[i]) {
			zoo_failf(tag, "%s differs at byte %zd", what, i);
			return;
		}
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) /* answer before stage 1 makes a copy of the binary */
		if (!strcmp(argv[i], "--list-corruptions"))
			zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	if (argc < 2 || strcmp(argv[argc - 1], STAGE2)) {
		/*
		 * stage 1: copy the executable into $ZOO_TMPDIR (see c_exe) and exec the copy with a
		 * richer command line and environment
		 */
		static char self[1 << 20];
		char copy[700];
		ssize_t len = zoo_read_file("/proc/self/exe", self, sizeof(self));
		if (len <= 0 || len >= (ssize_t)sizeof(self) - 1)
			zoo_die("cannot read /proc/self/exe");
		zoo_prog = "mm-fields";
		snprintf(copy, sizeof(copy), "%s/mm-fields-exe", zoo_tmpdir());
		if (zoo_write_file(copy, self, (size_t)len) < 0 || chmod(copy, 0755) < 0)
			zoo_die("cannot write %s: %s", copy, strerror(errno));
		if (!getenv("ZOO_TMPDIR"))
			setenv("ZOO_MM_OWN_TMPDIR", zoo_tmpdir(), 1);
		setenv("ZOO_TMPDIR", zoo_tmpdir(), 1);
		char *nargv[argc + 6];
		int n = 0;
		for (int i = 0; i < argc; i++)
			nargv[n++] = argv[i];
		nargv[n++] = "arg with  spaces";
		nargv[n++] = "";
		nargv[n++] = "\xce\xa9mega-\xc3\xbc";
		nargv[n++] = "x=y";
		nargv[n++] = STAGE2;
		nargv[n] = NULL;
		setenv(ENVVAR, "value with spaces = and \xe2\x82\xac", 1);
		execv(copy, nargv);
		zoo_die("execv %s: %s", copy, strerror(errno));
	}
	g_argv = argv;
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	snapshot(0);
	if (cmdline[0].len <= 0 || environ_[0].len <= 0 || auxv[0].len <= 0 || !exe[0][0] || !statf[0][0] ||
	    !statf[0][9])
		zoo_die("cannot read /proc/self/{cmdline,environ,auxv,exe}");

	zoo_ready();
	zoo_wait();
	snapshot(1);

	cmp_blob("cmdline", "/proc/self/cmdline", &cmdline[0], &cmdline[1]);
	cmp_blob("environ", "/proc/self/environ", &environ_[0], &environ_[1]);
	cmp_blob("auxv", "/proc/self/auxv", &auxv[0], &auxv[1]);
	CHECK("exe", !strcmp(exe[0], exe[1]), "/proc/self/exe is '%s', was '%s'", exe[1], exe[0]);
	CHECK("exe", exe_st[0].st_dev == exe_st[1].st_dev && exe_st[0].st_ino == exe_st[1].st_ino,
	      "/proc/self/exe is another file (dev/inode)");
	for (int i = 0; statnum[i]; i++)
		CHECK("mmstat", statf[0][i] == statf[1][i], "%s is %#lx, was %#lx", statname[i], statf[1][i], statf[0][i]);
	CHECK("mmstat", brk_now[0] == brk_now[1], "brk is %#lx, was %#lx", brk_now[1], brk_now[0]);
	for (unsigned i = 0; i < sizeof(auxkeys) / sizeof(auxkeys[0]); i++)
		CHECK("auxv", auxvals[0][i] == auxvals[1][i], "getauxval(%lu) is %#lx, was %#lx", auxkeys[i],
		      auxvals[1][i], auxvals[0][i]);
	const char *own = getenv("ZOO_MM_OWN_TMPDIR");
	if (own) {
		char path[700];
		snprintf(path, sizeof(path), "%s/mm-fields-exe", own);
		unlink(path);
		strcat(path, ".moved");
		unlink(path);
		rmdir(own);
	}
	return zoo_finish(NULL);
}
