/*
 * craft: turns a good image set into a crafted one, for tests/hardening.sh's corpus (and the
 * fuzzer's seeds). Each case edits one image of DIR in place, through the engine's own image
 * code, and writes it back with the set's dump id and a valid CRC: so what the restore sees
 * is a well-formed image whose content is hostile, and it is the content's checks that must
 * refuse it.
 *
 *   craft DIR CASE PID      (PID: the process whose images are edited)
 *   craft --list            the cases, one a line
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/netfilter_ipv4/ip_tables.h>
#include <linux/xfrm.h>

#include "image.h"
#include "log.h"
#include "util.h"

static int dirfd_;
static unsigned pid_;

static void *load(enum image_type type, unsigned pid)
{
	ProtobufCMessage *m;

	if (image_read(dirfd_, type, pid, &m)) {
		fprintf(stderr, "craft: cannot read the image to edit\n");
		exit(2);
	}
	return m;
}

/* Written back as the set's own: the inventory's dump id through the set's id file. */
static void store(enum image_type type, unsigned pid, void *m)
{
	struct image_header h;
	int in = openat(dirfd_, "inventory.img", O_RDONLY), out;

	if (in < 0 || pread(in, &h, sizeof(h), 0) != sizeof(h))
		exit(2);
	close(in);
	out = openat(dirfd_, "dump-id", O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (out < 0 || write(out, h.dump_id, sizeof(h.dump_id)) != sizeof(h.dump_id))
		exit(2);
	close(out);
	if (image_write(dirfd_, type, pid, m))
		exit(2);
	unlinkat(dirfd_, "dump-id", 0);
}

static FdEntry *first_fd(FdTable *t, FdKind kind)
{
	for (size_t i = 0; i < t->n_fds; i++)
		if (t->fds[i]->kind == kind)
			return t->fds[i];
	fprintf(stderr, "craft: no fd of kind %d\n", kind);
	exit(2);
}

static void inventory_dup_pid(void)
{
	Inventory *inv = load(IMG_INVENTORY, 0);
	uint32_t *pids = malloc((inv->n_pids + 1) * sizeof(*pids));
	memcpy(pids, inv->pids, inv->n_pids * sizeof(*pids));
	pids[inv->n_pids] = inv->pids[0];
	inv->pids = pids;
	inv->n_pids++;
	store(IMG_INVENTORY, 0, inv);
}

static void inventory_pid_no_entry(void)
{
	Inventory *inv = load(IMG_INVENTORY, 0);
	uint32_t *pids = malloc((inv->n_pids + 1) * sizeof(*pids));
	memcpy(pids, inv->pids, inv->n_pids * sizeof(*pids));
	pids[inv->n_pids] = 4000000; /* no tree entry, no images */
	inv->pids = pids;
	inv->n_pids++;
	store(IMG_INVENTORY, 0, inv);
}

static void tree_unknown_parent(void)
{
	Inventory *inv = load(IMG_INVENTORY, 0);
	TreeEntry **tree = malloc((inv->n_tree + 1) * sizeof(*tree));
	TreeEntry *e = calloc(1, sizeof(*e));
	tree_entry__init(e);
	e->pid = 4000001;
	e->ppid = 4000002;
	e->pgid = e->sid = inv->root_pid;
	e->has_zombie = e->zombie = true;
	memcpy(tree, inv->tree, inv->n_tree * sizeof(*tree));
	tree[inv->n_tree] = e;
	inv->tree = tree;
	inv->n_tree++;
	store(IMG_INVENTORY, 0, inv);
}

static void fd_path(const char *path, int no_flags)
{
	FdTable *t = load(IMG_FDS, pid_);
	FdEntry *e = first_fd(t, FD_KIND__FD_REGULAR);
	e->path = (char *)path;
	if (no_flags)
		e->has_flags = false;
	store(IMG_FDS, pid_, t);
}
static void fd_no_path(void) { fd_path(NULL, 0); }
static void fd_relative_path(void) { fd_path("etc/passwd", 0); }
static void fd_dotdot_path(void) { fd_path("/tmp/../../etc/passwd", 0); }
static void fd_magic_link(void) { fd_path("/proc/self/root/etc/passwd", 0); }
static void fd_no_flags(void)
{
	FdTable *t = load(IMG_FDS, pid_);
	first_fd(t, FD_KIND__FD_REGULAR)->has_flags = false;
	store(IMG_FDS, pid_, t);
}

static void mm_file_dotdot(void)
{
	Mm *mm = load(IMG_MM, pid_);
	if (!mm->n_files)
		exit(2);
	mm->files[0]->path = "/usr/../../etc/passwd";
	store(IMG_MM, pid_, mm);
}

/* The first shared file mapping made a packet socket's rings, of fd (or, fd < 0, of a socket
 * of mm.ring_sockets that is not there). */
static void mm_ring(int fd)
{
	Mm *mm = load(IMG_MM, pid_);
	for (size_t i = 0; i < mm->n_vmas; i++) {
		VmaEntry *v = mm->vmas[i];
		if (v->kind != VMA_KIND__VMA_FILE_SHARED || v->pgoff)
			continue;
		v->kind = VMA_KIND__VMA_PACKET_RING;
		v->has_file_id = false;
		if (fd >= 0) {
			v->has_ring_fd = true;
			v->ring_fd = fd;
		} else {
			v->has_ring_socket = true;
			v->ring_socket = 3;
		}
		store(IMG_MM, pid_, mm);
		return;
	}
	fprintf(stderr, "craft: no shared file mapping at offset 0\n");
	exit(2);
}
static void mm_ring_not_packet(void)
{
	FdTable *t = load(IMG_FDS, pid_);
	mm_ring(first_fd(t, FD_KIND__FD_REGULAR)->fd);
}
static void mm_ring_no_socket(void) { mm_ring(-1); }

static void core_root_relative(void)
{
	TaskCore *c = load(IMG_CORE, pid_);
	c->root = "tmp";
	store(IMG_CORE, pid_, c);
}

static void core_cwd_dotdot(void)
{
	TaskCore *c = load(IMG_CORE, pid_);
	c->cwd = "/tmp/../..";
	store(IMG_CORE, pid_, c);
}

static void core_other_pid(void)
{
	TaskCore *c = load(IMG_CORE, pid_);
	c->pid = pid_ + 1;
	store(IMG_CORE, pid_, c);
}

static void core_controls_tsc(void)
{
	TaskCore *c = load(IMG_CORE, pid_);
	if (!c->controls)
		exit(2);
	c->controls->has_tsc = true;
	c->controls->tsc = 7;
	store(IMG_CORE, pid_, c);
}

static void core_securebits(void)
{
	TaskCore *c = load(IMG_CORE, pid_);
	c->has_securebits = true;
	c->securebits = 0x10000;
	store(IMG_CORE, pid_, c);
}

static void pagemap_run_outside(void)
{
	Pagemap *pm = load(IMG_PAGEMAP, pid_);
	if (!pm->n_runs)
		exit(2);
	pm->runs[0]->vaddr = 0x1000;
	store(IMG_PAGEMAP, pid_, pm);
}

static void pagemap_more_pages(void)
{
	Pagemap *pm = load(IMG_PAGEMAP, pid_);
	pm->nr_pages++;
	store(IMG_PAGEMAP, pid_, pm);
}

/* The first table of xtables.img, its hooks' rules said to begin past its entries. */
static void xtables_hook_outside(void)
{
	Xtables *x = load(IMG_XTABLES, 0);
	if (!x->n_tables)
		exit(2);
	for (size_t h = 0; h < x->tables[0]->n_hook_entry; h++)
		x->tables[0]->hook_entry[h] = x->tables[0]->entries.len + 8;
	store(IMG_XTABLES, 0, x);
}

/* The first table of xtables.img, its first entry said to be longer than the whole blob. */
static void xtables_entry_overrun(void)
{
	Xtables *x = load(IMG_XTABLES, 0);
	if (!x->n_tables || x->tables[0]->family != AF_INET ||
	    x->tables[0]->entries.len < sizeof(struct ipt_entry))
		exit(2);
	uint16_t next = x->tables[0]->entries.len + 64;
	memcpy(x->tables[0]->entries.data + offsetof(struct ipt_entry, next_offset), &next, sizeof(next));
	store(IMG_XTABLES, 0, x);
}

/* The first IPsec policy of xfrm.img made a socket's (a direction past XFRM_POLICY_MAX). */
static void xfrm_socket_policy(void)
{
	NetXfrm *x = load(IMG_XFRM, 0);
	if (!x->n_policies || x->policies[0]->info.len != sizeof(struct xfrm_userpolicy_info))
		exit(2);
	x->policies[0]->info.data[offsetof(struct xfrm_userpolicy_info, dir)] = XFRM_POLICY_MAX + 1;
	store(IMG_XFRM, 0, x);
}

/* The first multicast group entry of net-fdb.img, its group cut short of its protocol's size. */
static void mdb_group_short(void)
{
	NetBridgeEntries *e = load(IMG_NET_FDB, 0);
	if (!e->n_mdb || e->mdb[0]->group.len < 2)
		exit(2);
	e->mdb[0]->group.len--;
	store(IMG_NET_FDB, 0, e);
}

static const struct {
	const char *name;
	void (*edit)(void);
} cases[] = {
	{ "inventory-dup-pid", inventory_dup_pid },
	{ "inventory-pid-no-entry", inventory_pid_no_entry },
	{ "tree-unknown-parent", tree_unknown_parent },
	{ "fd-no-path", fd_no_path },
	{ "fd-relative-path", fd_relative_path },
	{ "fd-dotdot-path", fd_dotdot_path },
	{ "fd-magic-link", fd_magic_link },
	{ "fd-no-flags", fd_no_flags },
	{ "mm-file-dotdot", mm_file_dotdot },
	{ "mm-ring-not-packet", mm_ring_not_packet },
	{ "mm-ring-no-socket", mm_ring_no_socket },
	{ "core-root-relative", core_root_relative },
	{ "core-cwd-dotdot", core_cwd_dotdot },
	{ "core-other-pid", core_other_pid },
	{ "core-controls-tsc", core_controls_tsc },
	{ "core-securebits", core_securebits },
	{ "pagemap-run-outside", pagemap_run_outside },
	{ "pagemap-more-pages", pagemap_more_pages },
	{ "xtables-hook-outside", xtables_hook_outside }, /* (an image of a network namespace's) */
	{ "xtables-entry-overrun", xtables_entry_overrun },
	{ "xfrm-socket-policy", xfrm_socket_policy },
	{ "mdb-group-short", mdb_group_short },
};

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "--list")) {
		for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
			puts(cases[i].name);
		return 0;
	}
	if (argc != 4) {
		fprintf(stderr, "usage: craft DIR CASE PID | craft --list\n");
		return 2;
	}
	log_init(LOG_ERR, NULL);
	dirfd_ = open(argv[1], O_RDONLY | O_DIRECTORY);
	pid_ = strtoul(argv[3], NULL, 10);
	if (dirfd_ < 0)
		return 2;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		if (!strcmp(cases[i].name, argv[2])) {
			cases[i].edit();
			return 0;
		}
	}
	fprintf(stderr, "craft: no case %s\n", argv[2]);
	return 2;
}
