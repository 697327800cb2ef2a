/*
 * uprobes: a process an observability tool probes (a uprobe on one of its functions, as eBPF
 * agents place them): a child in a mount namespace of its own mounts tracefs there and sets
 * "p:stasis_zoo_uprobes BINARY:OFFSET" on probed() (enabled, one of an earlier run removed
 * first); the program calls probed() until the kernel's
 * [uprobes] area shows it was hit. Its code page now holds the probe's breakpoint (int3).
 * Dumped with --allow-uprobes; the probe stays set across the restore.
 *   Checks after the restore: probed() runs and returns what it should (a breakpoint the kernel
 *   does not know there raises SIGTRAP: caught, a FAIL), and so does unprobed(), never probed.
 * Corruptions: breakpoint (an int3 the kernel does not know, written over unprobed()'s first
 * byte through /proc/self/mem).
 * At the end the child removes the probe. Host flavour only (the probe names the binary by the
 * host's path).
 * Blocks in: zoo_wait.
 */
#include "zoo.h"
#include <sched.h>
#include <stdbool.h>
#include <setjmp.h>
#include <sys/mount.h>
#include <sys/wait.h>

static sigjmp_buf trap_jump;
static volatile sig_atomic_t trapped;

__attribute__((noinline, used)) int probed(int x)
{
	__asm__ volatile("" ::: "memory");
	return x * 2 + 1;
}

/* The same, never probed: the corruption's int3 goes here (in probed() the kernel would take
 * it for the probe's own, and step over it) */
__attribute__((noinline, used)) int unprobed(int x)
{
	__asm__ volatile("" ::: "memory");
	return x * 3 + 1;
}

static void on_trap(int sig)
{
	(void)sig;
	trapped = 1;
	siglongjmp(trap_jump, 1);
}

/* Probe event's enable file set to on, in tracefs mounted at dir; whether it could. */
static bool set_enable(const char *dir, const char *event, bool on)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/events/uprobes/%s/enable", dir, event);
	int fd = open(path, O_WRONLY);
	bool ok = fd >= 0 && write(fd, on ? "1" : "0", 1) == 1;
	if (fd >= 0)
		close(fd);
	return ok;
}

/* In a child of a mount namespace of its own (no mount seen outside): text appended to tracefs's
 * uprobe_events, the probe event turned on after it (on) or off before it (an enabled event
 * cannot be removed). 0 or an errno. */
static int tracefs_write(const char *text, const char *event, bool on)
{
	pid_t c = fork();
	int st;

	if (c < 0)
		return errno;
	if (c == 0) {
		char dir[] = "/tmp/zoo-tracefs-XXXXXX";
		if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) || !mkdtemp(dir))
			_exit(10);
		int ok = !mount("nodev", dir, "tracefs", 0, NULL);
		char path[256];
		if (ok && !on)
			set_enable(dir, event, false);
		snprintf(path, sizeof(path), "%s/uprobe_events", dir);
		int fd = ok ? open(path, O_WRONLY | O_APPEND) : -1;
		ok = fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text);
		if (fd >= 0)
			close(fd);
		if (ok && on)
			ok = set_enable(dir, event, true);
		umount(dir);
		rmdir(dir);
		_exit(ok ? 0 : 11);
	}
	if (waitpid(c, &st, 0) != c)
		return errno;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : EIO;
}

static void c_breakpoint(ucontext_t *u)
{
	(void)u;
	int fd = open("/proc/self/mem", O_RDWR);
	uint8_t int3 = 0xcc;
	if (fd >= 0) {
		if (pwrite(fd, &int3, 1, (off_t)(uintptr_t)unprobed) != 1)
			(void)0;
		close(fd);
	}
}
static const struct zoo_corruption corruptions[] = {
	{ "breakpoint", c_breakpoint, 0 },
};

/* probed's offset in the binary file: its address less its mapping's start, plus the offset. */
static long file_offset(const char *exe)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[1024], path[800];
	unsigned long lo, hi, off, at = (unsigned long)(uintptr_t)probed;
	long found = -1;

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "%lx-%lx %*s %lx %*s %*s %799s", &lo, &hi, &off, path) == 4 && at >= lo && at < hi &&
		    !strcmp(path, exe))
			found = (long)(at - lo + off);
	if (f)
		fclose(f);
	return found;
}

static bool uprobes_area(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[1024];
	bool found = false;

	while (f && fgets(line, sizeof(line), f))
		found |= strstr(line, "[uprobes]") != NULL;
	if (f)
		fclose(f);
	return found;
}

int main(int argc, char **argv)
{
	char exe[800], text[1024];
	const char *event = "stasis_zoo_uprobes";
	volatile int sum = 0;

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		zoo_die("readlink /proc/self/exe: %s", strerror(errno));
	exe[n] = 0;
	long off = file_offset(exe);
	if (off < 0)
		zoo_die("cannot find probed() in /proc/self/maps");
	snprintf(text, sizeof(text), "-:%s\n", event);
	tracefs_write(text, event, false); /* (an earlier run's, killed before it removed it) */
	snprintf(text, sizeof(text), "p:%s %s:%#lx\n", event, exe, off);
	int err = tracefs_write(text, event, true);
	if (err)
		zoo_die("setting a uprobe through tracefs: %s", strerror(err));
	for (int i = 0; i < 200 && !uprobes_area(); i++) {
		sum += probed(i);
		usleep(5000);
	}
	if (!uprobes_area())
		zoo_die("the uprobe was never hit (no [uprobes] area)");
	struct sigaction sa = { .sa_handler = on_trap };
	sigaction(SIGTRAP, &sa, NULL);
	zoo_ready();
	zoo_wait();

	int got = -1, other = -1;
	if (!sigsetjmp(trap_jump, 1)) {
		got = probed(20);
		other = unprobed(20);
	}
	snprintf(text, sizeof(text), "-:%s\n", event);
	tracefs_write(text, event, false);
	CHECK("breakpoint", !trapped && got == 41 && other == 61, "probed() and unprobed() %s (returned %d, %d)",
	      trapped ? "trapped (SIGTRAP)" : "ran", got, other);
	return zoo_finish("a process hit by a uprobe (its probe set across the restore)");
}
