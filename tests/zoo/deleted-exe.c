/*
 * deleted-exe: a program whose executable was deleted while it runs (as a package upgrade
 * replaces a daemon's binary). It copies its own binary into $ZOO_TMPDIR, runs the copy
 * (execve, same pid), and the copy deletes itself before READY.
 * After restore and SIGTERM: /proc/self/exe is "COPY (deleted)" with no link left, its code
 * still runs (a function in the binary's text is called), and a fork of it works.
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <sys/stat.h>
#include <sys/wait.h>

static char copy[4200];

static int __attribute__((noinline)) in_text(int x)
{
	return x * 3 + 1;
}

static void c_exe(ucontext_t *u) { (void)u; copy[0] = 'X'; } /* expect another path */
static const struct zoo_corruption corruptions[] = {
	{ "exe", c_exe, 0 },
};

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[argc - 1], "--as-copy")) {
		argv[--argc] = NULL;
		snprintf(copy, sizeof(copy), "%s/exe-copy", getenv("ZOO_TMPDIR") ? getenv("ZOO_TMPDIR") : "/tmp");
		if (unlink(copy))
			zoo_die("unlink %s: %s", copy, strerror(errno));
	} else {
		snprintf(copy, sizeof(copy), "%s/exe-copy", getenv("ZOO_TMPDIR") ? getenv("ZOO_TMPDIR") : "/tmp");
		int in = open("/proc/self/exe", O_RDONLY), out = open(copy, O_WRONLY | O_CREAT | O_TRUNC, 0755);
		char buf[65536];
		ssize_t n;
		while (in >= 0 && out >= 0 && (n = read(in, buf, sizeof(buf))) > 0)
			if (write(out, buf, n) != n)
				zoo_die("copy: %s", strerror(errno));
		if (in < 0 || out < 0)
			zoo_die("copy %s: %s", copy, strerror(errno));
		close(in);
		close(out);
		char *args[argc + 2];
		for (int i = 0; i < argc; i++)
			args[i] = argv[i];
		args[argc] = "--as-copy";
		args[argc + 1] = NULL;
		execv(copy, args);
		zoo_die("exec %s: %s", copy, strerror(errno));
	}
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	zoo_check_maps = 0; /* the deleted binary comes back as a new file: new inode number */
	zoo_ready();
	zoo_wait();

	char link[4300] = "", want[4300];
	ssize_t n = readlink("/proc/self/exe", link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = 0;
	snprintf(want, sizeof(want), "%s (deleted)", copy);
	struct stat st;
	CHECK("exe", !strcmp(link, want) && stat("/proc/self/exe", &st) == 0 && st.st_nlink == 0,
	      "/proc/self/exe is '%s' (%lu links), expected '%s'", link, (unsigned long)st.st_nlink, want);
	CHECK("exe", in_text(14) == 43, "code in the deleted binary's text misbehaves");
	pid_t kid = fork();
	if (kid == 0)
		_exit(in_text(1) == 4 ? 0 : 1);
	int s = 0;
	waitpid(kid, &s, 0);
	CHECK("exe", WIFEXITED(s) && WEXITSTATUS(s) == 0, "a fork of it failed (%#x)", s);
	return zoo_finish("running from a deleted executable");
}
