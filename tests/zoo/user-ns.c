/*
 * user-ns: the init of a container in a user namespace of its own (run only as such: tests/
 * run-zoo.sh --container=userns; anywhere else it says so and fails), root there. It notes its
 * uid_map, gid_map, setgroups, the owner of its user namespace, its capabilities, its host
 * name and which of its namespaces (pid, mnt, uts, ipc, net, cgroup) its user namespace owns
 * (the PID namespace at least), and forks a child that becomes uid 1000 (saved 1002) and gid
 * 1000 and makes a file in /tmp (owned 1000:1000 then, host uid 101000 with the flavour's map).
 * After restore and SIGTERM: the same maps, setgroups, owner, capabilities and owned
 * namespaces; it is still uid and gid 0; the child's ids (its /proc status, in the namespace's
 * view) and the file's owner are as they were; and it still acts as root of what its user
 * namespace owns: sets its host name again, mounts a tmpfs and a new proc in /tmp.
 * Blocks in: nanosleep (zoo_wait loop); the child in pause.
 */
#include "zoo.h"
#include <grp.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#define CHILD_FILE "/tmp/user-ns-child"
#define PROBE_DIR "/tmp/user-ns-probe"

static const char *const kinds[] = { "pid", "mnt", "uts", "ipc", "net", "cgroup" };
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

struct state {
	char uid_map[512], gid_map[512], setgroups[16], hostname[65];
	char cap_eff[32];
	uid_t owner;
	unsigned owned; /* bit per kinds[]: owned by our user namespace */
};
static struct state before, now;
static pid_t child;
static volatile int *cmd; /* shared with the child: 1 = change its effective uid */

static void status_line(pid_t pid, const char *key, char *out, size_t len)
{
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	out[0] = 0;
	if (zoo_read_file(path, buf, sizeof(buf)) < 0)
		return;
	char *p = strstr(buf, key);
	if (!p)
		return;
	p += strlen(key);
	while (*p == ' ' || *p == '\t')
		p++;
	snprintf(out, len, "%.*s", (int)strcspn(p, "\n"), p);
}

static ino_t ino_of_fd(int fd)
{
	struct stat st;
	return fd >= 0 && fstat(fd, &st) == 0 ? st.st_ino : 0;
}

static void read_state(struct state *s)
{
	char path[64];
	memset(s, 0, sizeof(*s));
	zoo_read_file("/proc/self/uid_map", s->uid_map, sizeof(s->uid_map));
	zoo_read_file("/proc/self/gid_map", s->gid_map, sizeof(s->gid_map));
	zoo_read_file("/proc/self/setgroups", s->setgroups, sizeof(s->setgroups));
	gethostname(s->hostname, sizeof(s->hostname) - 1);
	status_line(getpid(), "\nCapEff:", s->cap_eff, sizeof(s->cap_eff));
	int user = open("/proc/self/ns/user", O_RDONLY | O_CLOEXEC);
	s->owner = (uid_t)-1;
	if (user >= 0 && ioctl(user, NS_GET_OWNER_UID, &s->owner))
		s->owner = (uid_t)-1;
	ino_t me = ino_of_fd(user);
	for (unsigned i = 0; i < NKINDS; i++) {
		snprintf(path, sizeof(path), "/proc/self/ns/%s", kinds[i]);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		int owner = fd >= 0 ? ioctl(fd, NS_GET_USERNS) : -1; /* EPERM: owned above ours */
		if (owner >= 0 && ino_of_fd(owner) == me)
			s->owned |= 1u << i;
		if (owner >= 0)
			close(owner);
		if (fd >= 0)
			close(fd);
	}
	if (user >= 0)
		close(user);
}

static __attribute__((noreturn)) void child_main(void)
{
	gid_t g = 1000;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (setgroups(1, &g) || setresgid(1000, 1000, 1000) || setresuid(1000, 1000, 1002))
		_exit(3);
	int fd = open(CHILD_FILE, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		_exit(4);
	close(fd);
	for (;;) {
		if (*cmd == 1) { /* corruption: another effective uid (its saved one) */
			if (setresuid(-1, 1002, -1) == 0)
				*cmd = 0;
		}
		zoo_sleep_ms(5);
	}
}

static void c_child_ids(ucontext_t *u)
{
	(void)u;
	*cmd = 1;
	for (int i = 0; i < 400 && *cmd; i++)
		zoo_sleep_ms(5);
}
static void c_file_owner(ucontext_t *u) { (void)u; if (chown(CHILD_FILE, 1001, 1001)) {} }
static void c_hostname(ucontext_t *u) { (void)u; if (sethostname("corrupted", 9)) {} }
/* no CAP_SYS_ADMIN any more: capabilities differ, and nothing of what it owns obeys it */
static void c_caps(ucontext_t *u)
{
	struct { uint32_t version; int pid; } hdr = { 0x20080522, 0 }; /* _LINUX_CAPABILITY_VERSION_3 */
	struct { uint32_t eff, prm, inh; } data[2];
	(void)u;
	if (syscall(SYS_capget, &hdr, data) == 0) {
		data[0].eff &= ~(1u << 21); /* CAP_SYS_ADMIN */
		syscall(SYS_capset, &hdr, data);
	}
}
/* into a user namespace of its own, nested: its maps, owner and ownerships all differ */
static void c_ns_owner(ucontext_t *u) { (void)u; if (unshare(CLONE_NEWUSER)) {} }
static const struct zoo_corruption corruptions[] = {
	{ "child-ids", c_child_ids, 0 },
	{ "file-owner", c_file_owner, 0 },
	{ "hostname", c_hostname, 0 },
	{ "caps", c_caps, 0 },
	{ "ns-owner", c_ns_owner, 0 },
};

/* As root of what its user namespace owns: a tmpfs and a new proc mounted (and gone again). */
static void check_mounts(void)
{
	mkdir(PROBE_DIR, 0700);
	int ok = CHECK("mounts", mount("probe", PROBE_DIR, "tmpfs", 0, "size=64k") == 0,
		       "cannot mount a tmpfs on " PROBE_DIR ": %s", strerror(errno));
	if (ok)
		umount2(PROBE_DIR, MNT_DETACH);
	ok = CHECK("mounts", mount("proc", PROBE_DIR, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) == 0,
		   "cannot mount a new proc on " PROBE_DIR ": %s", strerror(errno));
	if (ok) {
		char self[64] = "";
		CHECK("mounts", readlink(PROBE_DIR "/self", self, sizeof(self) - 1) > 0 && !strcmp(self, "1"),
		      "the new proc's self is '%s', not 1", self);
		umount2(PROBE_DIR, MNT_DETACH);
	}
	rmdir(PROBE_DIR);
}

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	char map[512] = "";
	zoo_read_file("/proc/self/uid_map", map, sizeof(map));
	if (getpid() != 1 || strstr(map, "4294967295"))
		zoo_die("not the init of a container in a user namespace of its own (run it with "
			"tests/run-zoo.sh --container=userns)");
	if (getuid() != 0 || getgid() != 0)
		zoo_die("not root of its user namespace (uid %d gid %d)", (int)getuid(), (int)getgid());
	cmd = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (cmd == MAP_FAILED)
		zoo_die("mmap: %s", strerror(errno));
	unlink(CHILD_FILE);
	child = fork();
	if (child < 0)
		zoo_die("fork: %s", strerror(errno));
	if (!child)
		child_main();
	struct stat st;
	for (int i = 0; i < 400 && stat(CHILD_FILE, &st); i++)
		zoo_sleep_ms(5);
	if (stat(CHILD_FILE, &st))
		zoo_die("the child made no %s", CHILD_FILE);
	read_state(&before);
	if (!(before.owned & 1))
		zoo_die("its PID namespace is not owned by its user namespace");
	zoo_ready();
	zoo_wait();

	read_state(&now);
	CHECK("ns-owner", now.owned == before.owned,
	      "its user namespace owns namespaces %#x of pid,mnt,uts,ipc,net,cgroup, before %#x",
	      now.owned, before.owned);
	CHECK("ns-owner", !strcmp(now.uid_map, before.uid_map) && !strcmp(now.gid_map, before.gid_map),
	      "uid_map '%s' gid_map '%s', before '%s' '%s'", now.uid_map, now.gid_map, before.uid_map,
	      before.gid_map);
	CHECK("ns-owner", !strcmp(now.setgroups, before.setgroups), "setgroups '%s', before '%s'",
	      now.setgroups, before.setgroups);
	CHECK("ns-owner", now.owner == before.owner, "the owner of its user namespace is uid %d, before %d",
	      (int)now.owner, (int)before.owner);
	CHECK("caps", !strcmp(now.cap_eff, before.cap_eff), "CapEff %s, before %s", now.cap_eff,
	      before.cap_eff);
	CHECK("uid", getuid() == 0 && geteuid() == 0 && getgid() == 0, "uid %d euid %d gid %d, not 0",
	      (int)getuid(), (int)geteuid(), (int)getgid());
	CHECK("hostname", !strcmp(now.hostname, before.hostname), "host name '%s', before '%s'",
	      now.hostname, before.hostname);
	CHECK("hostname", sethostname(before.hostname, strlen(before.hostname)) == 0,
	      "cannot set its host name: %s", strerror(errno));
	char uids[64], gids[64];
	status_line(child, "\nUid:", uids, sizeof(uids));
	status_line(child, "\nGid:", gids, sizeof(gids));
	CHECK("child-ids", !strcmp(uids, "1000\t1000\t1002\t1000") && !strcmp(gids, "1000\t1000\t1000\t1000"),
	      "the child's Uid '%s' Gid '%s', expected 1000 1000 1002 1000 / 1000 x4", uids, gids);
	CHECK("file-owner", stat(CHILD_FILE, &st) == 0 && st.st_uid == 1000 && st.st_gid == 1000,
	      "%s is owned by %d:%d, expected 1000:1000", CHILD_FILE, (int)st.st_uid, (int)st.st_gid);
	check_mounts();
	if (kill(child, SIGKILL) == 0) /* (not from a nested user namespace: its death signal does) */
		waitpid(child, NULL, 0);
	unlink(CHILD_FILE);
	return zoo_finish("root of its user namespace, a child as uid 1000, namespaces it owns");
}
