/*
 * A container workload that watches files of its image with inotify, as config reloaders, dev
 * servers and dbus-daemon do: the directory /etc (IN_CREATE) and the file /bin/busybox
 * (IN_ATTRIB), both of the image's layer (on the container's overlayfs, whose file handles
 * cannot be opened: a checkpoint must find them another way), and /out/up, a file it writes at
 * its start (the overlay's upper layer; IN_MODIFY). It says "watching", then "tick N" once a
 * second, and "event TAG NAME" for each event it reads, TAG being which of its watches the
 * event's wd is ("unknown-wd" for none of them). It also holds /bin/podipc of the image open and
 * mapped after removing it (a whiteout hides it: deleted, yet its inode is still linked in the
 * layer, which overlayfs gives no handle to reach). Once it has seen all three events (a file
 * "new" made in /etc, busybox touched, /out/up written), it checks that the removed file reads
 * as before through its fd and its mapping and is still gone, and prints "PASS watchcheck" or
 * "FAIL watchcheck: WHAT". Built static: the image is a busybox tree.
 */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <unistd.h>

static const struct {
	const char *path, *tag;
	unsigned mask;
} watches[] = {
	{ "/etc", "etc-create", IN_CREATE },
	{ "/bin/busybox", "busybox-attrib", IN_ATTRIB },
	{ "/out/up", "up-modify", IN_MODIFY },
};
#define NR_WATCHES (sizeof(watches) / sizeof(watches[0]))

int main(void)
{
	int wd[NR_WATCHES], seen = 0, fd = inotify_init1(IN_CLOEXEC), tick = 0;
	int up = open("/out/up", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	char buf[4096] __attribute__((aligned(8)));

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (fd < 0 || up < 0 || write(up, "up\n", 3) != 3) {
		perror("watchcheck: inotify or /out/up");
		return 1;
	}
	close(up);
	for (size_t i = 0; i < NR_WATCHES; i++)
		if ((wd[i] = inotify_add_watch(fd, watches[i].path, watches[i].mask)) < 0) {
			perror(watches[i].path);
			return 1;
		}
	char head[64], again[64];
	int held = open("/bin/podipc", O_RDONLY | O_CLOEXEC);
	char *map = held < 0 ? MAP_FAILED : mmap(NULL, sizeof(head), PROT_READ, MAP_PRIVATE, held, 0);
	if (map == MAP_FAILED || pread(held, head, sizeof(head), 0) != sizeof(head) || unlink("/bin/podipc")) {
		perror("watchcheck: /bin/podipc");
		return 1;
	}
	printf("watching\n");
	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, 1000) <= 0) {
			printf("tick %d\n", ++tick);
			continue;
		}
		ssize_t n = read(fd, buf, sizeof(buf));
		for (char *at = buf; n > 0 && at < buf + n;) {
			struct inotify_event *e = (struct inotify_event *)at;
			const char *tag = "unknown-wd";
			for (size_t i = 0; i < NR_WATCHES; i++)
				if (e->wd == wd[i] && (e->mask & watches[i].mask)) {
					tag = watches[i].tag;
					if (i != 0 || !strcmp(e->name, "new"))
						seen |= 1 << i;
				}
			printf("event %s %s\n", tag, e->len ? e->name : "-");
			at += sizeof(*e) + e->len;
		}
		if (seen == (1 << NR_WATCHES) - 1) {
			if (pread(held, again, sizeof(again), 0) != sizeof(again) || memcmp(again, head, sizeof(head)))
				printf("FAIL watchcheck: the removed /bin/podipc reads otherwise through its fd\n");
			else if (memcmp(map, head, sizeof(head)))
				printf("FAIL watchcheck: the removed /bin/podipc's mapping reads otherwise\n");
			else if (!access("/bin/podipc", F_OK))
				printf("FAIL watchcheck: the removed /bin/podipc is there again\n");
			else
				printf("PASS watchcheck\n");
			seen = 0;
		}
	}
}
