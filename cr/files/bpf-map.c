/*
 * BPF maps (FD_BPF_MAP): hash, array, their per-CPU and LRU kinds and LPM tries, saved with
 * their attributes (fdinfo, BPF_OBJ_GET_INFO_BY_FD) and every entry (read on a copy of the
 * fd), made again by BPF_MAP_CREATE, filled, and frozen if they were. Refused by name: other
 * map types (programs, maps of maps, rings, queues), a map offloaded to a device, one with a
 * NUMA node, a map held outside the tree (used by a BPF program on the host, held by a process
 * outside the tree, pinned in a bpf filesystem stasis sees: after restore those would go on
 * with the old map), and a map the tree reaches through two open files (two opens of one map
 * would come back as two maps). A mapping of a map is refused by cr/mm.c. An fd opened
 * read-only or write-only (BPF_F_RDONLY/WRONLY at BPF_MAP_CREATE: the fd's access, not kept
 * in map_flags) has its entries read through an fd of stasis's opened by the map's id, and is
 * opened again by id with its access once made. The map's id and BTF are new after restore; an
 * LRU map nearly full may evict a few entries as it is filled again (warned).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "files.h"
#include "log.h"
#include "proc.h"
#include "tree-objects.h"
#include "util.h"

#define BPF_MAP_MAX_KEY 512              /* the kernel's limit for hash keys (its stack) */
#define BPF_MAP_MAX_VALUE (1u << 20)
#define BPF_MAP_MAX_ENTRIES (1u << 24)
#define BPF_MAP_MAX_BYTES (1ull << 30)   /* of an image's entries */

static long sys_bpf(int cmd, union bpf_attr *attr)
{
	return syscall(SYS_bpf, cmd, attr, sizeof(*attr));
}

/* BPF_OBJ_GET_INFO_BY_FD: what the kernel says of the map or program behind fd; -errno. */
static int obj_info(int fd, void *info, uint32_t len)
{
	union bpf_attr a = { 0 };

	a.info.bpf_fd = fd;
	a.info.info_len = len;
	a.info.info = (uintptr_t)info;
	return sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &a) ? -errno : 0;
}

/*
 * A new fd on map id, its access as open_flags (0, BPF_F_RDONLY or BPF_F_WRONLY): a map's fd
 * is read-only or write-only by how it was opened (BPF_F_RDONLY at BPF_MAP_CREATE is not kept in
 * map_flags), and another open of the map by id is the only way to another access.
 */
static int map_fd_by_id(uint32_t id, uint32_t open_flags)
{
	union bpf_attr a = { 0 };

	a.map_id = id;
	a.open_flags = open_flags;
	long fd = sys_bpf(BPF_MAP_GET_FD_BY_ID, &a);
	return fd < 0 ? -errno : (int)fd;
}

/* Is the file of an fd's /proc link (path) a BPF map? */
static bool links_to_map(const char *path)
{
	char link[32] = "";

	return readlink(path, link, sizeof(link) - 1) > 0 && !strcmp(link, "anon_inode:bpf-map");
}

static const char *map_type_name(uint32_t type)
{
	switch (type) {
	case BPF_MAP_TYPE_HASH: return "hash";
	case BPF_MAP_TYPE_ARRAY: return "array";
	case BPF_MAP_TYPE_PERCPU_HASH: return "per-CPU hash";
	case BPF_MAP_TYPE_PERCPU_ARRAY: return "per-CPU array";
	case BPF_MAP_TYPE_LRU_HASH: return "LRU hash";
	case BPF_MAP_TYPE_LRU_PERCPU_HASH: return "LRU per-CPU hash";
	case BPF_MAP_TYPE_LPM_TRIE: return "LPM trie";
	case BPF_MAP_TYPE_PROG_ARRAY: return "program array";
	case BPF_MAP_TYPE_PERF_EVENT_ARRAY: return "perf event array";
	case BPF_MAP_TYPE_ARRAY_OF_MAPS: return "array of maps";
	case BPF_MAP_TYPE_HASH_OF_MAPS: return "hash of maps";
	case BPF_MAP_TYPE_RINGBUF: return "ring buffer";
	case BPF_MAP_TYPE_QUEUE: return "queue";
	case BPF_MAP_TYPE_STACK: return "stack";
	case BPF_MAP_TYPE_BLOOM_FILTER: return "bloom filter";
	default: return "other";
	}
}

static bool type_supported(uint32_t type)
{
	switch (type) {
	case BPF_MAP_TYPE_HASH: case BPF_MAP_TYPE_ARRAY: case BPF_MAP_TYPE_PERCPU_HASH:
	case BPF_MAP_TYPE_PERCPU_ARRAY: case BPF_MAP_TYPE_LRU_HASH: case BPF_MAP_TYPE_LRU_PERCPU_HASH:
	case BPF_MAP_TYPE_LPM_TRIE:
		return true;
	default:
		return false;
	}
}

static bool is_percpu(uint32_t type)
{
	return type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_ARRAY ||
	       type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
}

static bool is_array(uint32_t type)
{
	return type == BPF_MAP_TYPE_ARRAY || type == BPF_MAP_TYPE_PERCPU_ARRAY;
}

/* The number of possible CPUs (the per-CPU values' slots): the last of the "0-N" list + 1. */
static int possible_cpus(void)
{
	char buf[128] = "";
	int fd = open("/sys/devices/system/cpu/possible", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);

	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = 0;
	const char *last = buf;
	for (const char *c = buf; *c; c++)
		if (*c == ',' || *c == '-')
			last = c + 1;
	int cpus = atoi(last) + 1;
	return cpus > 0 && cpus <= 8192 ? cpus : -EIO;
}

/* The bytes of one value as user space reads and writes it. */
static uint64_t value_len(uint32_t type, uint32_t value_size, uint32_t nr_cpus)
{
	return is_percpu(type) ? ((value_size + 7ull) & ~7ull) * nr_cpus : value_size;
}

/* ---- the maps this dump has met: one open file per map ---- */

struct bpf_map_seen {
	uint32_t id;
	pid_t pid;
	int fd;
};

/* A map held outside the tree: its id and who holds it (a process, or a pin's path). */
struct bpf_map_outside {
	uint32_t id;
	char holder[96];
};

struct bpf_maps_state {
	struct bpf_map_seen *seen;
	size_t n;
	bool outside_listed;             /* the host's other holders of maps, listed once */
	struct bpf_map_outside *outside;
	size_t n_outside;
};

static void free_bpf_maps(void *state)
{
	struct bpf_maps_state *st = state;

	free(st->seen);
	free(st->outside);
}

const struct tree_object_ops tree_bpf_maps = {
	.name = "BPF maps",
	.state_size = sizeof(struct bpf_maps_state),
	.free_state = free_bpf_maps,
};

static int see_map(struct dump_task *t, int fd, uint32_t id)
{
	struct bpf_maps_state *st = run_state(t->ctx, &tree_bpf_maps);

	for (size_t i = 0; i < st->n; i++)
		if (st->seen[i].id == id) {
			pr_err("dump pid %d fd %d: BPF map %u is also pid %d's fd %d, another open file of "
			       "it (not supported: they would come back as two maps)", t->pid, fd, id,
			       st->seen[i].pid, st->seen[i].fd);
			return -ENOTSUP;
		}
	struct bpf_map_seen *more = xreallocarray(st->seen, st->n + 1, sizeof(*more));
	if (!more)
		return -ENOMEM;
	st->seen = more;
	st->seen[st->n++] = (struct bpf_map_seen){ id, t->pid, fd };
	return 0;
}

static int add_outside(struct bpf_maps_state *st, uint32_t id, const char *holder)
{
	struct bpf_map_outside *more = xreallocarray(st->outside, st->n_outside + 1, sizeof(*more));

	if (!more)
		return -ENOMEM;
	st->outside = more;
	more[st->n_outside].id = id;
	snprintf(more[st->n_outside].holder, sizeof(more->holder), "%s", holder);
	st->n_outside++;
	return 0;
}

static bool in_tree(const struct dump_task *t, pid_t pid)
{
	for (size_t i = 0; i < t->tree_size; i++)
		if (t->tree[i].pid == pid)
			return true;
	return false;
}

/* The maps of processes outside the tree (their fds' fdinfo map_id). */
static int list_held_outside(const struct dump_task *t, struct bpf_maps_state *st)
{
	DIR *proc = opendir("/proc");
	struct dirent *d;
	int err = 0;

	if (!proc)
		return -errno;
	while (!err && (d = readdir(proc))) {
		pid_t pid = atoi(d->d_name);
		auto_free int *fds = NULL;
		size_t n = 0;
		if (pid <= 0 || pid == getpid() || in_tree(t, pid) || proc_list_numbers(pid, "fd", &fds, &n))
			continue; /* (gone meanwhile) */
		for (size_t i = 0; i < n && !err; i++) {
			char path[64];
			uint64_t id;
			snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fds[i]);
			if (!links_to_map(path))
				continue;
			snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", pid, fds[i]);
			auto_free char *info = read_file_at(AT_FDCWD, path, NULL);
			if (info && fdinfo_u64(info, "map_id:", 10, &id)) {
				snprintf(path, sizeof(path), "pid %d", pid);
				err = add_outside(st, id, path);
			}
		}
	}
	closedir(proc);
	return err;
}

/* The maps pinned in the bpf filesystem below path (directories at most 8 deep). */
static int list_pins(struct bpf_maps_state *st, const char *path, int depth)
{
	DIR *dir = opendir(path);
	struct dirent *d;
	int err = 0;

	if (!dir)
		return 0; /* (removed meanwhile) */
	while (!err && (d = readdir(dir))) {
		char sub[4096], self[64];
		if (!strcmp(d->d_name, ".") || !strcmp(d->d_name, "..") ||
		    snprintf(sub, sizeof(sub), "%s/%s", path, d->d_name) >= (int)sizeof(sub))
			continue;
		if (d->d_type == DT_DIR) {
			if (depth < 8)
				err = list_pins(st, sub, depth + 1);
			continue;
		}
		union bpf_attr a = { 0 };
		a.pathname = (uintptr_t)sub;
		a.file_flags = BPF_F_RDONLY;
		int fd = sys_bpf(BPF_OBJ_GET, &a);
		if (fd < 0)
			continue; /* (a program or a link pinned: not opened read-only) */
		struct bpf_map_info info = { 0 };
		snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
		if (links_to_map(self) && !obj_info(fd, &info, sizeof(info))) {
			snprintf(self, sizeof(self), "pinned at %.50s", sub);
			err = add_outside(st, info.id, self);
		}
		close(fd);
	}
	closedir(dir);
	return err;
}

/* The maps each BPF program loaded on the host uses ("BPF program N NAME"). */
static int list_programs(struct bpf_maps_state *st)
{
	union bpf_attr a;
	int err = 0;

	for (uint32_t prog = 0; !err;) {
		memset(&a, 0, sizeof(a));
		a.start_id = prog;
		if (sys_bpf(BPF_PROG_GET_NEXT_ID, &a))
			return errno == ENOENT ? 0 : -errno;
		prog = a.next_id;
		memset(&a, 0, sizeof(a));
		a.prog_id = prog;
		auto_close int fd = sys_bpf(BPF_PROG_GET_FD_BY_ID, &a);
		if (fd < 0) {
			if (errno == ENOENT)
				continue; /* (unloaded meanwhile) */
			return -errno;
		}
		struct bpf_prog_info info = { 0 };
		if ((err = obj_info(fd, &info, sizeof(info))) || !info.nr_map_ids)
			continue;
		uint32_t n = info.nr_map_ids;
		auto_free uint32_t *maps = xreallocarray(NULL, n, sizeof(*maps));
		if (!maps)
			return -ENOMEM;
		info = (struct bpf_prog_info){ .nr_map_ids = n, .map_ids = (uintptr_t)maps };
		if ((err = obj_info(fd, &info, sizeof(info))))
			break;
		char holder[64];
		snprintf(holder, sizeof(holder), "used by BPF program %u%s%.*s", prog, info.name[0] ? " " : "",
			 (int)sizeof(info.name), info.name);
		for (uint32_t i = 0; i < n && i < info.nr_map_ids && !err; i++)
			err = add_outside(st, maps[i], holder);
	}
	return err;
}

/*
 * Who outside the tree holds map id ("used by BPF program N NAME", "pid N", "pinned at PATH"),
 * NULL if none: listed once per dump.
 */
static int held_outside(const struct dump_task *t, uint32_t id, const char **holder)
{
	struct bpf_maps_state *st = run_state(t->ctx, &tree_bpf_maps);
	int err = 0;

	*holder = NULL;
	if (!st->outside_listed) {
		FILE *f = fopen("/proc/self/mountinfo", "re");
		char line[4096], mnt[4096], type[64];
		if (!f)
			return -errno;
		while (!err && fgets(line, sizeof(line), f)) {
			const char *sep = strstr(line, " - ");
			if (sep && sscanf(sep, " - %63s", type) == 1 && !strcmp(type, "bpf") &&
			    sscanf(line, "%*s %*s %*s %*s %4095s", mnt) == 1)
				err = list_pins(st, mnt, 0);
		}
		fclose(f);
		if (err || (err = list_programs(st)) || (err = list_held_outside(t, st)))
			return err;
		st->outside_listed = true;
	}
	for (size_t i = 0; i < st->n_outside && !*holder; i++)
		if (st->outside[i].id == id)
			*holder = st->outside[i].holder;
	return 0;
}

/* Every entry of the map behind fd into m->entries (arrays: those not all zeros). */
static int read_entries(int fd, BpfMap *m, uint64_t vlen)
{
	uint64_t rec = m->key_size + vlen, room = 0;
	auto_free char *prev = xzalloc(m->key_size);
	union bpf_attr a;
	bool first = true;

	if (!prev)
		return -ENOMEM;
	m->n_entries = 0;
	m->has_entries = true;
	for (uint64_t steps = 0; m->n_entries < m->max_entries && steps <= 2ull * m->max_entries; steps++) {
		if (m->n_entries == room) {
			room = room ? 2 * room : 64;
			uint8_t *more = xreallocarray(m->entries.data, room, rec);
			if (!more)
				return -ENOMEM;
			m->entries.data = more;
		}
		uint8_t *key = m->entries.data + m->n_entries * rec, *value = key + m->key_size;
		memset(&a, 0, sizeof(a));
		a.map_fd = fd;
		a.key = first ? 0 : (uintptr_t)prev;
		a.next_key = (uintptr_t)key;
		if (sys_bpf(BPF_MAP_GET_NEXT_KEY, &a))
			return errno == ENOENT ? 0 : -errno;
		first = false;
		memcpy(prev, key, m->key_size);
		memset(&a, 0, sizeof(a));
		a.map_fd = fd;
		a.key = (uintptr_t)key;
		a.value = (uintptr_t)value;
		if (sys_bpf(BPF_MAP_LOOKUP_ELEM, &a)) {
			if (errno == ENOENT)
				continue; /* (deleted meanwhile) */
			return -errno;
		}
		bool zero = true;
		for (uint64_t i = 0; i < vlen && zero; i++)
			zero = !value[i];
		if (!(is_array(m->map_type) && zero)) {
			m->n_entries++;
			m->entries.len += rec;
		}
	}
	return 0;
}

static int dump_bpf_map(struct dump_task *t, const struct fd_probe *p, FdEntry *e)
{
	uint64_t type, key_size, value_size, max_entries, flags, extra = 0, id, frozen = 0;

	if (strcmp(p->link, "anon_inode:bpf-map"))
		return 0;
	if (!fdinfo_u64(p->info, "map_type:", 10, &type) || !fdinfo_u64(p->info, "key_size:", 10, &key_size) ||
	    !fdinfo_u64(p->info, "value_size:", 10, &value_size) ||
	    !fdinfo_u64(p->info, "max_entries:", 10, &max_entries) ||
	    !fdinfo_u64(p->info, "map_flags:", 16, &flags) || !fdinfo_u64(p->info, "map_id:", 10, &id)) {
		pr_err("dump pid %d fd %d: its fdinfo lacks a BPF map's attributes", t->pid, p->fd);
		return -EINVAL;
	}
	fdinfo_u64(p->info, "map_extra:", 16, &extra);
	fdinfo_u64(p->info, "frozen:", 10, &frozen);
	if (!type_supported(type)) {
		pr_err("dump pid %d fd %d: BPF map %llu is a %s map (type %llu): not supported", t->pid, p->fd,
		       (unsigned long long)id, map_type_name(type), (unsigned long long)type);
		return -ENOTSUP;
	}
	if (flags & (BPF_F_RDONLY | BPF_F_WRONLY | BPF_F_NUMA_NODE)) {
		pr_err("dump pid %d fd %d: BPF map %llu has map_flags 0x%llx (BPF_F_RDONLY, BPF_F_WRONLY or "
		       "BPF_F_NUMA_NODE): not supported", t->pid, p->fd, (unsigned long long)id,
		       (unsigned long long)flags);
		return -ENOTSUP;
	}
	const char *holder;
	int err = held_outside(t, id, &holder);
	if (err) {
		pr_err("dump pid %d fd %d: cannot list who else holds BPF map %llu: %s", t->pid, p->fd,
		       (unsigned long long)id, strerror(-err));
		return err;
	}
	if (holder) {
		pr_err("dump pid %d fd %d: BPF map %llu is also held outside the tree (%s; not supported: "
		       "after restore the tree would have another map, the holder the old one)", t->pid, p->fd,
		       (unsigned long long)id, holder);
		return -ENOTSUP;
	}
	if ((err = see_map(t, p->fd, id)))
		return err;

	/* (a read-only or write-only fd's entries are read through one of stasis's own) */
	auto_close int copy = (p->flags & O_ACCMODE) == O_RDWR ? task_fd_copy(t->pid, p->fd) : map_fd_by_id(id, 0);
	struct bpf_map_info info = { 0 };
	if ((err = copy < 0 ? copy : obj_info(copy, &info, sizeof(info)))) {
		pr_err("dump pid %d fd %d: cannot read BPF map %llu: %s", t->pid, p->fd, (unsigned long long)id,
		       strerror(-err));
		return err;
	}
	if (info.ifindex) {
		pr_err("dump pid %d fd %d: BPF map %llu is offloaded to interface %u: not supported", t->pid,
		       p->fd, (unsigned long long)id, info.ifindex);
		return -ENOTSUP;
	}
	BpfMap *m = xzalloc(sizeof(*m));
	if (!m)
		return -ENOMEM;
	bpf_map__init(m);
	e->bpf_map = m;
	e->has_flags = true;
	e->flags = p->flags;
	m->map_type = type;
	m->key_size = key_size;
	m->value_size = value_size;
	m->max_entries = max_entries;
	m->map_flags = flags;
	m->has_frozen = m->frozen = frozen;
	m->has_map_extra = extra != 0;
	m->map_extra = extra;
	if (info.name[0] && !(m->name = strndup(info.name, sizeof(info.name))))
		return -ENOMEM;
	if (is_percpu(type)) {
		int cpus = possible_cpus();
		if (cpus < 0) {
			pr_err("dump pid %d fd %d: cannot read the number of possible CPUs", t->pid, p->fd);
			return cpus;
		}
		m->has_nr_cpus = true;
		m->nr_cpus = cpus;
	}
	if ((err = read_entries(copy, m, value_len(type, value_size, m->nr_cpus)))) { /* (freed with e) */
		pr_err("dump pid %d fd %d: cannot read the entries of BPF map %llu: %s", t->pid, p->fd,
		       (unsigned long long)id, strerror(-err));
		return err;
	}
	pr_info("dump pid %d fd %d: BPF %s map %llu '%s', %u entries", t->pid, p->fd, map_type_name(type),
		(unsigned long long)id, m->name ? m->name : "", m->n_entries);
	return 1;
}

static int validate_bpf_map(const struct restore_task *t, const FdEntry *e)
{
	const BpfMap *m = e->bpf_map;

	if (!m || !type_supported(m->map_type) || !m->key_size || m->key_size > BPF_MAP_MAX_KEY ||
	    !m->value_size || m->value_size > BPF_MAP_MAX_VALUE || !m->max_entries ||
	    m->max_entries > BPF_MAP_MAX_ENTRIES || m->n_entries > m->max_entries ||
	    (m->name && strlen(m->name) >= BPF_OBJ_NAME_LEN) ||
	    (m->map_flags & (BPF_F_RDONLY | BPF_F_WRONLY | BPF_F_NUMA_NODE)) ||
	    is_percpu(m->map_type) != m->has_nr_cpus || (m->has_nr_cpus && (!m->nr_cpus || m->nr_cpus > 8192))) {
		pr_err("image fds-%d.img: fd %u: its BPF map is invalid", t->pid, e->fd);
		return -EINVAL;
	}
	uint64_t rec = m->key_size + value_len(m->map_type, m->value_size, m->nr_cpus);
	if ((uint64_t)m->n_entries * rec > BPF_MAP_MAX_BYTES || m->entries.len != m->n_entries * rec) {
		pr_err("image fds-%d.img: fd %u: its BPF map holds %zu bytes of entries, not %u of %llu bytes",
		       t->pid, e->fd, m->entries.len, m->n_entries, (unsigned long long)rec);
		return -EINVAL;
	}
	if (m->has_nr_cpus) {
		int cpus = possible_cpus();
		if (cpus != (int)m->nr_cpus) {
			pr_err("image fds-%d.img: fd %u: its per-CPU BPF map has values for %u CPUs, this machine "
			       "has %d possible", t->pid, e->fd, m->nr_cpus, cpus);
			return -ENOTSUP;
		}
	}
	return 0;
}

/*
 * An LRU map nearly full evicts some of the entries it is filled with again (its free lists are
 * per CPU): said, as the eviction a cache is made for.
 */
static void warn_evicted(const struct restore_task *t, const FdEntry *e, int fd)
{
	const BpfMap *m = e->bpf_map;
	uint8_t keys[2 * BPF_MAP_MAX_KEY]; /* (validated: key_size <= BPF_MAP_MAX_KEY) */
	union bpf_attr a;
	uint32_t n = 0;

	for (bool first = true; n < m->n_entries; first = false, n++) {
		memset(&a, 0, sizeof(a));
		a.map_fd = fd;
		a.key = first ? 0 : (uintptr_t)keys;
		a.next_key = (uintptr_t)(keys + m->key_size);
		if (sys_bpf(BPF_MAP_GET_NEXT_KEY, &a))
			break;
		memcpy(keys, keys + m->key_size, m->key_size);
	}
	if (n < m->n_entries)
		pr_warn("restore pid %d fd %u: its LRU BPF map '%s' evicted %u of its %u entries as it was "
			"filled again", t->pid, e->fd, m->name ? m->name : "", m->n_entries - n, m->n_entries);
}

static int open_bpf_map(struct restore_task *t, const FdEntry *e)
{
	const BpfMap *m = e->bpf_map;
	union bpf_attr a = { 0 };

	a.map_type = m->map_type;
	a.key_size = m->key_size;
	a.value_size = m->value_size;
	a.max_entries = m->max_entries;
	a.map_flags = m->map_flags;
	a.map_extra = m->map_extra;
	if (m->name)
		memcpy(a.map_name, m->name, strlen(m->name));
	int fd = sys_bpf(BPF_MAP_CREATE, &a);
	if (fd < 0) {
		pr_perror("restore pid %d fd %u: cannot make its BPF %s map '%s'", t->pid, e->fd,
			  map_type_name(m->map_type), m->name ? m->name : "");
		return -errno;
	}
	uint64_t rec = m->key_size + value_len(m->map_type, m->value_size, m->nr_cpus);
	for (uint32_t i = 0; i < m->n_entries; i++) {
		memset(&a, 0, sizeof(a));
		a.map_fd = fd;
		a.key = (uintptr_t)(m->entries.data + i * rec);
		a.value = (uintptr_t)(m->entries.data + i * rec + m->key_size);
		a.flags = BPF_ANY;
		if (sys_bpf(BPF_MAP_UPDATE_ELEM, &a)) {
			pr_perror("restore pid %d fd %u: cannot put entry %u into its BPF map '%s'", t->pid,
				  e->fd, i, m->name ? m->name : "");
			goto fail;
		}
	}
	if (m->map_type == BPF_MAP_TYPE_LRU_HASH || m->map_type == BPF_MAP_TYPE_LRU_PERCPU_HASH)
		warn_evicted(t, e, fd);
	memset(&a, 0, sizeof(a));
	a.map_fd = fd;
	if (m->frozen && sys_bpf(BPF_MAP_FREEZE, &a)) {
		pr_perror("restore pid %d fd %u: cannot freeze its BPF map '%s'", t->pid, e->fd,
			  m->name ? m->name : "");
		goto fail;
	}
	int access = e->flags & O_ACCMODE;
	if (access != O_RDWR) { /* made and filled, then opened again as the fd was */
		struct bpf_map_info info = { 0 };
		int err = obj_info(fd, &info, sizeof(info));
		int again = err ? err : map_fd_by_id(info.id, access == O_WRONLY ? BPF_F_WRONLY : BPF_F_RDONLY);
		close(fd);
		if (again < 0) {
			pr_err("restore pid %d fd %u: cannot open its BPF map '%s' again %s: %s", t->pid, e->fd,
			       m->name ? m->name : "", access == O_WRONLY ? "write-only" : "read-only",
			       strerror(-again));
			return again;
		}
		fd = again;
	}
	if ((e->flags & O_NONBLOCK) && fcntl(fd, F_SETFL, O_NONBLOCK))
		goto fail;
	return fd;
fail:;
	int err = -errno;
	close(fd);
	return err;
}

const struct fd_kind_ops fd_kind_bpf_map = {
	.name = "BPF map",
	.dump = dump_bpf_map,
	.validate = validate_bpf_map,
	.open = open_bpf_map,
	.kind = FD_KIND__FD_BPF_MAP,
};
