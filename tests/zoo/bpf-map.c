/*
 * bpf-map: BPF maps held by fd, with their entries.
 *   fd 40 hash "zoo_hash" (u32 -> u64, 64 entries at most): keys 1..20 -> k * 1000 + 7, shared
 *   with a child since the fork (kcmp: one open file);
 *   fd 41 array "zoo_array" (u32, 32 entries): i * 3 + 1 at even i, 0 at odd i, then frozen;
 *   fd 42 per-CPU array "zoo_pcpu" (u64, 4 entries): key k on CPU c holds c * 100 + k;
 *   fd 43 LRU hash "zoo_lru" (u64 -> u32, 8 entries): 4 keys;
 *   fd 44 LPM trie "zoo_lpm" (IPv4 prefixes, BPF_F_NO_PREALLOC): 10.0.0.0/8 -> 8,
 *   10.1.0.0/16 -> 16, 10.1.2.0/24 -> 24;
 *   fd 45 array "zoo_ro" (u32, 4 entries: k -> k + 50) opened read-only (BPF_MAP_GET_FD_BY_ID with
 *   BPF_F_RDONLY, the read-write fd it was filled through closed);
 *   fd 46 hash "zoo_wo" (u32 -> u32) made BPF_F_WRONLY: keys 1..3 -> k * 11.
 * After restore and SIGTERM each map has exactly its entries and attributes (type, sizes, max
 * entries, flags, name: BPF_OBJ_GET_INFO_BY_FD), the array is still frozen (an update fails
 * with EPERM), the trie answers longest-prefix lookups, fd 40 is still the child's, the
 * hash takes a new entry, fd 45 is still read-only (O_RDONLY, an update fails with EPERM) with
 * its entries, fd 46 still write-only (O_WRONLY, a lookup fails with EPERM) with its entries
 * (read through a read-write fd of the same map, by its id).
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <linux/bpf.h>
#include <linux/kcmp.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static pid_t child;
static int ncpus;

static long bpf(int cmd, union bpf_attr *a) { return syscall(SYS_bpf, cmd, a, sizeof(*a)); }

static int map_create(uint32_t type, uint32_t key, uint32_t value, uint32_t max, uint32_t flags, const char *name)
{
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.map_type = type;
	a.key_size = key;
	a.value_size = value;
	a.max_entries = max;
	a.map_flags = flags;
	strncpy(a.map_name, name, sizeof(a.map_name) - 1);
	int fd = bpf(BPF_MAP_CREATE, &a);
	if (fd < 0)
		zoo_die("BPF_MAP_CREATE %s: %s", name, strerror(errno));
	return fd;
}

static int map_update(int fd, const void *key, const void *value)
{
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.map_fd = fd;
	a.key = (uintptr_t)key;
	a.value = (uintptr_t)value;
	return bpf(BPF_MAP_UPDATE_ELEM, &a) ? -errno : 0;
}

static int map_lookup(int fd, const void *key, void *value)
{
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.map_fd = fd;
	a.key = (uintptr_t)key;
	a.value = (uintptr_t)value;
	return bpf(BPF_MAP_LOOKUP_ELEM, &a) ? -errno : 0;
}

static int map_delete(int fd, const void *key)
{
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.map_fd = fd;
	a.key = (uintptr_t)key;
	return bpf(BPF_MAP_DELETE_ELEM, &a) ? -errno : 0;
}

/* The number of keys the map lists. */
static int map_count(int fd, size_t key_size)
{
	unsigned char prev[64], next[64];
	union bpf_attr a;
	int n = 0;
	for (int first = 1;; first = 0, n++) {
		memset(&a, 0, sizeof(a));
		a.map_fd = fd;
		a.key = first ? 0 : (uintptr_t)prev;
		a.next_key = (uintptr_t)next;
		if (bpf(BPF_MAP_GET_NEXT_KEY, &a))
			return errno == ENOENT ? n : -errno;
		memcpy(prev, next, key_size);
	}
}

static int map_by_id(int fd, uint32_t open_flags)
{
	struct bpf_map_info info;
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	memset(&info, 0, sizeof(info));
	a.info.bpf_fd = fd;
	a.info.info_len = sizeof(info);
	a.info.info = (uintptr_t)&info;
	if (bpf(BPF_OBJ_GET_INFO_BY_FD, &a))
		return -errno;
	memset(&a, 0, sizeof(a));
	a.map_id = info.id;
	a.open_flags = open_flags;
	int got = bpf(BPF_MAP_GET_FD_BY_ID, &a);
	return got < 0 ? -errno : got;
}

static int map_info(int fd, struct bpf_map_info *info)
{
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	memset(info, 0, sizeof(*info));
	a.info.bpf_fd = fd;
	a.info.info_len = sizeof(*info);
	a.info.info = (uintptr_t)info;
	return bpf(BPF_OBJ_GET_INFO_BY_FD, &a) ? -errno : 0;
}

struct lpm_key {
	uint32_t prefixlen;
	uint8_t addr[4];
};

static void c_hash(ucontext_t *u) { (void)u; uint32_t k = 5; map_delete(40, &k); }
static void c_frozen(ucontext_t *u)
{
	(void)u; /* the same entries in an array that is not frozen */
	int fd = map_create(BPF_MAP_TYPE_ARRAY, 4, 4, 32, 0, "zoo_array");
	for (uint32_t i = 0; i < 32; i += 2) {
		uint32_t v = i * 3 + 1;
		map_update(fd, &i, &v);
	}
	dup2(fd, 41);
	close(fd);
}
static void c_pcpu(ucontext_t *u)
{
	(void)u;
	uint64_t v[ncpus];
	uint32_t k = 2;
	memset(v, 0, sizeof(v));
	map_update(42, &k, v);
}
static void c_lpm(ucontext_t *u) { (void)u; struct lpm_key k = { 16, { 10, 1, 0, 0 } }; map_delete(44, &k); }
static void c_shared(ucontext_t *u)
{
	(void)u; /* a copy of the hash, no longer the child's */
	int fd = map_create(BPF_MAP_TYPE_HASH, 4, 8, 64, 0, "zoo_hash");
	for (uint32_t k = 1; k <= 20; k++) {
		uint64_t v = k * 1000ull + 7;
		map_update(fd, &k, &v);
	}
	dup2(fd, 40);
	close(fd);
}
static void c_access(ucontext_t *u) { (void)u; int rw = map_by_id(45, 0); dup2(rw, 45); close(rw); }
static const struct zoo_corruption corruptions[] = {
	{ "hash", c_hash, 0 },
	{ "access", c_access, 0 },
	{ "frozen", c_frozen, 0 },
	{ "pcpu", c_pcpu, 0 },
	{ "lpm", c_lpm, 0 },
	{ "shared", c_shared, 0 },
};

static void check_info(int fd, uint32_t type, uint32_t key, uint32_t value, uint32_t max, uint32_t flags,
		       const char *name)
{
	struct bpf_map_info i;
	int err = map_info(fd, &i);
	CHECK("info", !err && i.type == type && i.key_size == key && i.value_size == value &&
			      i.max_entries == max && i.map_flags == flags && !strcmp(i.name, name),
	      "fd %d: type %u key %u value %u max %u flags 0x%x name '%s' (err %d), expected %u %u %u %u 0x%x '%s'",
	      fd, i.type, i.key_size, i.value_size, i.max_entries, i.map_flags, i.name, err, type, key, value,
	      max, flags, name);
}

int main(int argc, char **argv)
{
	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	ncpus = (int)sysconf(_SC_NPROCESSORS_CONF);
	char possible[64] = "";
	if (zoo_read_file("/sys/devices/system/cpu/possible", possible, sizeof(possible)) > 0) {
		char *last = strrchr(possible, '-');
		ncpus = atoi(last ? last + 1 : possible) + 1;
	}
	zoo_place(map_create(BPF_MAP_TYPE_HASH, 4, 8, 64, 0, "zoo_hash"), 40, O_CLOEXEC);
	for (uint32_t k = 1; k <= 20; k++) {
		uint64_t v = k * 1000ull + 7;
		if (map_update(40, &k, &v))
			zoo_die("hash update");
	}
	zoo_place(map_create(BPF_MAP_TYPE_ARRAY, 4, 4, 32, 0, "zoo_array"), 41, O_CLOEXEC);
	for (uint32_t i = 0; i < 32; i += 2) {
		uint32_t v = i * 3 + 1;
		if (map_update(41, &i, &v))
			zoo_die("array update");
	}
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.map_fd = 41;
	if (bpf(BPF_MAP_FREEZE, &a))
		zoo_die("BPF_MAP_FREEZE: %s", strerror(errno));
	zoo_place(map_create(BPF_MAP_TYPE_PERCPU_ARRAY, 4, 8, 4, 0, "zoo_pcpu"), 42, O_CLOEXEC);
	for (uint32_t k = 0; k < 4; k++) {
		uint64_t v[ncpus];
		for (int c = 0; c < ncpus; c++)
			v[c] = c * 100ull + k;
		if (map_update(42, &k, v))
			zoo_die("per-CPU update");
	}
	zoo_place(map_create(BPF_MAP_TYPE_LRU_HASH, 8, 4, 8, 0, "zoo_lru"), 43, O_CLOEXEC);
	for (uint64_t k = 100; k < 104; k++) {
		uint32_t v = (uint32_t)k + 1;
		if (map_update(43, &k, &v))
			zoo_die("LRU update");
	}
	zoo_place(map_create(BPF_MAP_TYPE_LPM_TRIE, sizeof(struct lpm_key), 4, 16, BPF_F_NO_PREALLOC, "zoo_lpm"),
		  44, O_CLOEXEC);
	struct lpm_key k8 = { 8, { 10, 0, 0, 0 } }, k16 = { 16, { 10, 1, 0, 0 } }, k24 = { 24, { 10, 1, 2, 0 } };
	uint32_t v8 = 8, v16 = 16, v24 = 24;
	if (map_update(44, &k8, &v8) || map_update(44, &k16, &v16) || map_update(44, &k24, &v24))
		zoo_die("LPM update");
	int rw = map_create(BPF_MAP_TYPE_ARRAY, 4, 4, 4, 0, "zoo_ro");
	for (uint32_t k = 0; k < 4; k++) {
		uint32_t v = k + 50;
		if (map_update(rw, &k, &v))
			zoo_die("array update");
	}
	int ro = map_by_id(rw, BPF_F_RDONLY);
	if (ro < 0)
		zoo_die("BPF_MAP_GET_FD_BY_ID read-only: %s", strerror(-ro));
	close(rw);
	zoo_place(ro, 45, O_CLOEXEC);
	zoo_place(map_create(BPF_MAP_TYPE_HASH, 4, 4, 8, BPF_F_WRONLY, "zoo_wo"), 46, O_CLOEXEC);
	for (uint32_t k = 1; k <= 3; k++) {
		uint32_t v = k * 11;
		if (map_update(46, &k, &v))
			zoo_die("write-only update");
	}
	child = fork();
	if (child == 0) {
		for (;;)
			zoo_sleep_ms(100);
	}
	zoo_ready();
	zoo_wait();

	check_info(40, BPF_MAP_TYPE_HASH, 4, 8, 64, 0, "zoo_hash");
	check_info(41, BPF_MAP_TYPE_ARRAY, 4, 4, 32, 0, "zoo_array");
	check_info(42, BPF_MAP_TYPE_PERCPU_ARRAY, 4, 8, 4, 0, "zoo_pcpu");
	check_info(43, BPF_MAP_TYPE_LRU_HASH, 8, 4, 8, 0, "zoo_lru");
	check_info(44, BPF_MAP_TYPE_LPM_TRIE, sizeof(struct lpm_key), 4, 16, BPF_F_NO_PREALLOC, "zoo_lpm");
	int n = map_count(40, 4), bad = 0;
	for (uint32_t k = 1; k <= 20; k++) {
		uint64_t v = 0;
		bad += map_lookup(40, &k, &v) || v != k * 1000ull + 7;
	}
	CHECK("hash", n == 20 && !bad, "hash: %d keys, %d of keys 1..20 missing or wrong", n, bad);
	uint32_t k99 = 99;
	uint64_t v99 = 4242, got99 = 0;
	CHECK("hash", !map_update(40, &k99, &v99) && !map_lookup(40, &k99, &got99) && got99 == 4242,
	      "hash: a new entry cannot be added");
	bad = 0;
	for (uint32_t i = 0; i < 32; i++) {
		uint32_t v = 12345;
		bad += map_lookup(41, &i, &v) || v != (i % 2 ? 0 : i * 3 + 1);
	}
	uint32_t i0 = 0, v0 = 7;
	int upd = map_update(41, &i0, &v0);
	CHECK("frozen", !bad && upd == -EPERM, "array: %d wrong values, an update gave %d (frozen: -EPERM)", bad, upd);
	bad = 0;
	for (uint32_t k = 0; k < 4; k++) {
		uint64_t v[ncpus];
		memset(v, 0xff, sizeof(v));
		if (map_lookup(42, &k, v)) {
			bad++;
			continue;
		}
		for (int c = 0; c < ncpus; c++)
			bad += v[c] != c * 100ull + k;
	}
	CHECK("pcpu", !bad, "per-CPU array: %d wrong values (%d CPUs)", bad, ncpus);
	n = map_count(43, 8);
	bad = 0;
	for (uint64_t k = 100; k < 104; k++) {
		uint32_t v = 0;
		bad += map_lookup(43, &k, &v) || v != (uint32_t)k + 1;
	}
	CHECK("lru", n == 4 && !bad, "LRU hash: %d keys, %d wrong", n, bad);
	struct lpm_key q1 = { 32, { 10, 1, 2, 3 } }, q2 = { 32, { 10, 1, 9, 9 } }, q3 = { 32, { 10, 9, 9, 9 } };
	uint32_t r1 = 0, r2 = 0, r3 = 0;
	map_lookup(44, &q1, &r1);
	map_lookup(44, &q2, &r2);
	map_lookup(44, &q3, &r3);
	CHECK("lpm", r1 == 24 && r2 == 16 && r3 == 8 && map_count(44, sizeof(struct lpm_key)) == 3,
	      "LPM trie: 10.1.2.3 -> %u, 10.1.9.9 -> %u, 10.9.9.9 -> %u (expected 24, 16, 8)", r1, r2, r3);
	bad = 0;
	for (uint32_t k = 0; k < 4; k++) {
		uint32_t v = 0;
		bad += map_lookup(45, &k, &v) || v != k + 50;
	}
	uint32_t k1 = 1, v1 = 1;
	upd = map_update(45, &k1, &v1);
	CHECK("access", !bad && upd == -EPERM && (fcntl(45, F_GETFL) & O_ACCMODE) == O_RDONLY,
	      "read-only map: %d wrong values, an update gave %d (-EPERM), access %#x", bad, upd,
	      fcntl(45, F_GETFL) & O_ACCMODE);
	int look = map_lookup(46, &k1, &v1), peer = map_by_id(46, 0);
	bad = peer < 0;
	for (uint32_t k = 1; peer >= 0 && k <= 3; k++) {
		uint32_t v = 0;
		bad += map_lookup(peer, &k, &v) || v != k * 11;
	}
	CHECK("access", !bad && look == -EPERM && (fcntl(46, F_GETFL) & O_ACCMODE) == O_WRONLY,
	      "write-only map: %d wrong values, a lookup gave %d (-EPERM), access %#x", bad, look,
	      fcntl(46, F_GETFL) & O_ACCMODE);
	if (peer >= 0)
		close(peer);
	CHECK("shared", syscall(SYS_kcmp, getpid(), child, KCMP_FILE, 40, 40) == 0,
	      "fd 40 is not the child's fd 40 (one open file since the fork)");
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	return zoo_finish("7 BPF maps: hash (shared with a child), frozen array, per-CPU array, LRU hash, LPM trie, read-only and write-only fds");
}
