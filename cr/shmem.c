/*
 * Shared memory objects: MAP_SHARED|MAP_ANONYMOUS memory (shared by fork; also reached as a
 * file through /proc/PID/map_files, held as an fd or mapped again, MAP_PRIVATE too), memfds (mapped
 * or held as fds) and SysV shm segments (those the tree attaches; in the tree's own IPC
 * namespace all of its segments, which cr/ipc-ns.c notes here; in an IPC namespace the restore
 * joins, a segment that is still there is used as it is). Dump: each object is read once, through /proc/PID/map_files or
 * /proc/PID/fd (so pages that only another process touched are not missed), its allocated
 * ranges found with SEEK_DATA/SEEK_HOLE; pages of zeroes are skipped. Restore: stasis creates
 * and fills every object before creating the tree and keeps an fd on it; each new process
 * inherits that fd and opens the object again through /proc/self/fd, so processes that
 * shared an object share it again, and mappings keep their names ("/dev/zero (deleted)",
 * "/memfd:NAME (deleted)"). Shared anonymous memory that only writable MAP_SHARED mappings
 * map (the common case, and the one of tens of thousands of objects: more fds than the hard
 * limit of open files) is kept as a mapping of stasis's instead, in a range free in every
 * process's layout (cr/free-range.c), which each process inherits and its blob takes its
 * mappings from with mremap.
 * memfd_secret() files too, whose pages nothing but the processes mapping them can read: the
 * tree's processes copy them out at dump (cr/secretmem.c) into a memfd that stasis keeps here
 * until the write; the restore makes the file with memfd_secret(), and every fd and mapping of
 * it in the tree is that one open file (it cannot be opened again through /proc).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "compat/kernel-abi.h"
#include "free-range.h"
#include "hugetlb.h"
#include "ino-map.h"
#include "ipc-objects.h"
#include "kernel/features.h"
#include "log.h"
#include "pstree.h"
#include "restore-watchdog.h"
#include "shmem.h"
#include "tree-objects.h"
#include "util.h"
#include "vma.h"

#define SHMEM_PID 0 /* pages-0.img */
#define READ_CHUNK (1UL << 20)
#define MEMFD_PREFIX "/memfd:"
#define DELETED_SUFFIX " (deleted)"
#define SECRETMEM_PATH "/secretmem (deleted)"

struct shmem_dump_obj {
	uint64_t id, size;
	char *read_path;  /* /proc/PID/map_files/A-B or /proc/PID/fd/N */
	char *memfd_name; /* NULL: anonymous shared memory */
	int seals;        /* memfd: F_GET_SEALS */
	struct stat st;   /* memfd: mode, owner and times (before the dump reads it) */
	bool has_writer;  /* memfd: some open file holds write access on it (exec is refused) */
	unsigned nr_writable;  /* memfd: the tree's open files of it opened for writing */
	pid_t created_pid;     /* memfd: the tree's first open file of it for reading and */
	int created_fd;        /* writing (created_fd -1: none), memfd_create()'s if any is */
	bool sysv;
	struct shmid_ds ds; /* SysV: key, mode, owner */
	bool secret;        /* memfd_secret(): read by the tree's processes (cr/secretmem.c) */
	uint64_t huge_page_size; /* a file of hugetlbfs: its pages' size (0: not) */
	int contents;       /* secret: stasis's memfd of what they read (-1: nothing yet) */
	struct secret_range {
		uint64_t off, end;
	} *read;            /* secret: the ranges of the file read into contents */
	size_t nr_read;
};

struct shmem_restore_obj {
	uint64_t id, size;
	bool sysv;
	bool made; /* a SysV segment stasis made (not one that still existed) */
	int fd;    /* stasis' own fd on the object, inherited by every new process; -1 if kept */
	uint64_t kept_at; /* kept as a mapping of stasis's there instead, in the reserve (0: not) */
	bool seal_late; /* sealed once the tree's mappings exist (shmem_seal_late) */
};

/* The run's shared memory objects: those noted during the dump, or those restored. */
struct shmem_state {
	struct shmem_dump_obj *objs;
	size_t n, cap;
	struct ino_map by_id; /* id + 1 (a SysV segment's may be 0) -> index in objs (dump) or in
				 tab's objects (restore): a tree mapping tens of thousands of objects
				 (stress-ng's mlock) is noted and restored in linear time */
	bool sysv_all_noted; /* the tree's own IPC namespace: every segment is noted already */

	bool required;       /* restore: the IPC namespace needs shmem.img for its segments */
	bool sysv_keep_live; /* restore: a SysV segment that is there already is left as it is */
	ShmemTable *tab;     /* restore: shmem.img, checked */
	bool *keep_mapped;   /* restore, per object of tab: kept as a mapping, not an fd */
	struct shmem_restore_obj *objects; /* per object of tab, those made so far */
	size_t nr_objects;
	uint64_t reserve_start, reserve_len; /* the kept objects' mappings, stasis's until close */
};

static struct shmem_state *state_of(const struct run_ctx *ctx)
{
	return run_state(ctx, &tree_shmem);
}

bool shmem_is_sysv_path(const char *path)
{
	size_t n = strlen(path), d = strlen(DELETED_SUFFIX);
	return n > 5 + d && !strncmp(path, "/SYSV", 5) && !strcmp(path + n - d, DELETED_SUFFIX);
}

bool shmem_is_secret_path(const char *path)
{
	return !strcmp(path, SECRETMEM_PATH);
}

bool shmem_is_memfd_path(const char *path)
{
	size_t n = strlen(path), p = strlen(MEMFD_PREFIX), d = strlen(DELETED_SUFFIX);
	return n > p + d && !strncmp(path, MEMFD_PREFIX, p) && !strcmp(path + n - d, DELETED_SUFFIX);
}

bool shmem_is_anon_file(const char *path, const struct stat *st)
{
	struct stat shm;
	int fd;

	if (strcmp(path, "/dev/zero" DELETED_SUFFIX) || !S_ISREG(st->st_mode))
		return false;
	/* not a regular file that once was /dev/zero: a file of the mount memfds are made on */
	if ((fd = memfd_create("stasis-shm-dev", MFD_CLOEXEC)) < 0)
		return true; /* no memfds: the name and the type say it */
	bool same = !fstat(fd, &shm) && shm.st_dev == st->st_dev;
	close(fd);
	return same;
}

static struct shmem_dump_obj *add_object(struct shmem_state *sd, uint64_t id, uint64_t size,
					 const char *read_path)
{
	char *path;

	if (xgrow(&sd->objs, &sd->cap, sd->n, sizeof(*sd->objs)) || !(path = xstrdup(read_path)))
		return NULL;
	if (ino_map_add(&sd->by_id, id + 1, sd->n) < 0) {
		free(path);
		return NULL;
	}
	struct shmem_dump_obj *o = &sd->objs[sd->n++];
	*o = (struct shmem_dump_obj){ .id = id, .size = size, .read_path = path, .created_fd = -1,
				      .contents = -1, .huge_page_size = hugetlb_page_size_of(path) };
	return o;
}

static void set_sysv(struct shmem_dump_obj *o, const struct shmid_ds *ds)
{
	o->sysv = true;
	o->ds = *ds;
	o->size = ds->shm_segsz;
}

/*
 * Does any open file (or mapping) hold write access on the memfd behind fd, opened read-only?
 * A read lease is refused exactly then. Not known (no right to a lease): no.
 */
static bool memfd_has_writer(int fd)
{
	if (fcntl(fd, F_SETLEASE, F_RDLCK) == 0) {
		fcntl(fd, F_SETLEASE, F_UNLCK);
		return false;
	}
	return errno == EAGAIN;
}

static struct shmem_dump_obj *find_object(struct shmem_state *sd, uint64_t id)
{
	size_t i;
	return ino_map_get(&sd->by_id, id + 1, &i) && i < sd->n ? &sd->objs[i] : NULL;
}

int shmem_note(struct run_ctx *ctx, const char *read_path, const char *link, uint64_t ino,
	       uint64_t size)
{
	struct shmem_state *sd = state_of(ctx);
	struct shmem_dump_obj *known = find_object(sd, ino);

	if (known) {
		if (known->secret) {
			pr_err("dump: shared memory %s and a memfd_secret() file have the same id %llu; "
			       "not supported",
			       read_path, (unsigned long long)ino);
			return -ENOTSUP;
		}
		if (known->sysv == shmem_is_sysv_path(link))
			return 0;
		pr_err("dump: shared memory %s and a SysV shm segment have the same id %llu; not "
		       "supported",
		       read_path, (unsigned long long)ino);
		return -ENOTSUP;
	}
	if (shmem_is_sysv_path(link) && sd->sysv_all_noted) {
		pr_err("dump: SysV shm segment %llu (%s) does not belong to the tree's IPC namespace",
		       (unsigned long long)ino, read_path);
		return -ENOTSUP;
	}
	struct shmem_dump_obj *o = add_object(sd, ino, size, read_path);
	if (!o)
		return -ENOMEM;
	if (shmem_is_memfd_path(link)) {
		if (!(o->memfd_name = xstrdup(link + strlen(MEMFD_PREFIX))))
			return -ENOMEM;
		o->memfd_name[strlen(o->memfd_name) - strlen(DELETED_SUFFIX)] = 0;
		int fd = open(read_path, O_RDONLY | O_CLOEXEC);
		o->seals = fd < 0 || fstat(fd, &o->st) ? -1 : fcntl(fd, F_GET_SEALS);
		o->has_writer = o->seals >= 0 && memfd_has_writer(fd);
		if (fd >= 0)
			close(fd);
		if (o->seals < 0) {
			pr_perror("dump: cannot read the seals of memfd %s", link);
			return -EIO;
		}
	}
	if (shmem_is_sysv_path(link)) {
		struct shmid_ds ds;
		if (shmctl(ino, IPC_STAT, &ds)) {
			pr_perror("dump: cannot read SysV shm segment %llu", (unsigned long long)ino);
			return -errno;
		}
		set_sysv(o, &ds);
	}
	return 0;
}

int shmem_note_secret(struct run_ctx *ctx, uint64_t ino, uint64_t size, uint64_t off,
		      uint64_t end)
{
	struct shmem_state *sd = state_of(ctx);
	struct shmem_dump_obj *o = find_object(sd, ino);

	if (o && !o->secret) {
		pr_err("dump: memfd_secret() file %llu has the id of another shared object",
		       (unsigned long long)ino);
		return -ENOTSUP;
	}
	if (!o) {
		if (!(o = add_object(sd, ino, size, "")))
			return -ENOMEM;
		o->secret = true;
	}
	if (end > PAGE_ALIGN(o->size))
		end = PAGE_ALIGN(o->size);
	if (off >= end)
		return 1;
	for (size_t i = 0; i < o->nr_read; i++)
		if (o->read[i].off <= off && end <= o->read[i].end)
			return 1;
	return 0;
}

/* Copies the data of copy in [off, end) (found with SEEK_DATA) into contents, same offsets. */
static int merge_contents(int contents, int copy, uint64_t off, uint64_t end)
{
	auto_free char *buf = xmalloc(READ_CHUNK);
	off_t data = off, hole;

	if (!buf)
		return -ENOMEM;
	while ((uint64_t)data < end && (data = lseek(copy, data, SEEK_DATA)) >= 0 &&
	       (uint64_t)data < end) {
		hole = lseek(copy, data, SEEK_HOLE);
		if (hole < 0 || (uint64_t)hole > end)
			hole = end;
		while (data < hole) {
			size_t len = hole - data < (off_t)READ_CHUNK ? (size_t)(hole - data) : READ_CHUNK;
			ssize_t got = pread(copy, buf, len, data);
			if (got < 0)
				return -errno;
			if (!got || pwrite(contents, buf, got, data) != got)
				return errno && got ? -errno : -EIO;
			data += got;
		}
	}
	return 0;
}

int shmem_secret_add(struct run_ctx *ctx, uint64_t ino, uint64_t off, uint64_t end, int copy)
{
	struct shmem_dump_obj *o = find_object(state_of(ctx), ino);
	struct secret_range *more;
	int err = 0;

	if (!o || !o->secret) {
		close(copy);
		return -ENOENT;
	}
	if (end > PAGE_ALIGN(o->size))
		end = PAGE_ALIGN(o->size);
	if (!(more = xreallocarray(o->read, o->nr_read + 1, sizeof(*more)))) {
		close(copy);
		return -ENOMEM;
	}
	o->read = more;
	if (o->contents < 0) { /* the first copy becomes the object's contents */
		if (ftruncate(copy, o->size)) {
			err = -errno;
			close(copy);
		} else {
			o->contents = copy;
		}
	} else {
		err = merge_contents(o->contents, copy, off, end);
		close(copy);
	}
	if (err) {
		pr_err("dump: cannot keep the content of memfd_secret() file %llu: %s",
		       (unsigned long long)ino, strerror(-err));
		return err;
	}
	o->read[o->nr_read++] = (struct secret_range){ off, end };
	return 0;
}

void shmem_note_memfd_file(struct run_ctx *ctx, uint64_t ino, pid_t pid, int fd, unsigned flags)
{
	struct shmem_dump_obj *o = find_object(state_of(ctx), ino);

	if (!o || !o->memfd_name || (flags & O_ACCMODE) == O_RDONLY)
		return;
	o->nr_writable++;
	if (o->created_fd < 0 && (flags & O_ACCMODE) == O_RDWR) {
		o->created_pid = pid;
		o->created_fd = fd;
	}
}

/*
 * memfd_create()'s own file is open for reading and writing but holds no write access: the
 * first such file of the tree is taken for it unless the memfd has a writer and no other file
 * could be that writer (then memfd_create()'s was closed, and this one reopened it).
 */
static bool created_file_open(const struct shmem_dump_obj *o)
{
	return o->created_fd >= 0 && (!o->has_writer || o->nr_writable > 1);
}

int shmem_note_sysv(struct run_ctx *ctx, int shmid, int fd, const struct shmid_ds *ds)
{
	struct shmem_state *sd = state_of(ctx);
	struct shmem_dump_obj *o;
	char path[32];

	if (find_object(sd, (uint64_t)shmid)) {
		pr_err("dump: SysV shm segment %d has the id of another shared object", shmid);
		return -EEXIST;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (!(o = add_object(sd, shmid, ds->shm_segsz, path)))
		return -ENOMEM;
	set_sysv(o, ds);
	return 0;
}

void shmem_sysv_all_noted(struct run_ctx *ctx)
{
	state_of(ctx)->sysv_all_noted = true;
}

static int add_run(ShmemObject *o, uint64_t offset, uint64_t *file_off)
{
	PageRun *last = o->n_runs ? o->runs[o->n_runs - 1] : NULL;

	if (last && last->vaddr + last->nr_pages * PAGE_SIZE == offset &&
	    last->file_off + last->nr_pages * PAGE_SIZE == *file_off) {
		last->nr_pages++;
	} else {
		PageRun *r = xzalloc(sizeof(*r)), **more;
		if (!r)
			return -ENOMEM;
		if (!(more = xreallocarray(o->runs, o->n_runs + 1, sizeof(*more)))) {
			free(r);
			return -ENOMEM;
		}
		page_run__init(r);
		r->vaddr = offset;
		r->nr_pages = 1;
		r->file_off = *file_off;
		o->runs = more;
		o->runs[o->n_runs++] = r;
	}
	*file_off += PAGE_SIZE;
	return 0;
}

/* The allocated, non-zero pages of one object, appended to the pages file. */
static int dump_object(const struct shmem_dump_obj *so, ShmemObject *o, int out, char *buf,
		       uint64_t *file_off)
{
	auto_close int fd = open(so->read_path, O_RDONLY | O_CLOEXEC);
	off_t data = 0, hole, end = PAGE_ALIGN(so->size);

	if (fd < 0) {
		pr_perror("dump: cannot open shared memory object %s", so->read_path);
		return -errno;
	}
	while (data < end && (data = lseek(fd, data, SEEK_DATA)) >= 0) {
		hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0 || hole > end)
			hole = end;
		for (off_t off = data; off < hole; off += READ_CHUNK) {
			size_t len = hole - off < (off_t)READ_CHUNK ? (size_t)(hole - off) : READ_CHUNK;
			ssize_t got = pread(fd, buf, len, off);
			if (got < 0) {
				pr_perror("dump: cannot read shared memory %s", so->read_path);
				return -EIO;
			}
			memset(buf + got, 0, len - got); /* past the end of a memfd: the page's tail */
			for (size_t p = 0; p < len; p += PAGE_SIZE) {
				int err;
				if (page_is_zero(buf + p))
					continue;
				if (write_all(out, buf + p, PAGE_SIZE)) {
					pr_perror("dump: cannot write shared memory %s to pages-0.img",
						  so->read_path);
					return -EIO;
				}
				if ((err = add_run(o, off + p, file_off)))
					return err;
			}
		}
		data = hole;
	}
	return 0;
}

static int write_shmem(struct run_ctx *ctx, struct dump_tree *tr)
{
	struct shmem_state *sd = state_of(ctx);
	int dirfd = ctx->images_dir_fd;
	ShmemTable tab = SHMEM_TABLE__INIT;
	uint64_t file_off = PAGES_HEADER_SIZE;
	auto_free char *buf = NULL;
	int out, err = 0;

	if (!sd->n)
		return 0;
	if (!(buf = xmalloc(READ_CHUNK)) || !(tab.objects = xzalloc(sd->n * sizeof(*tab.objects))))
		return -ENOMEM;
	if ((out = pages_image_create(dirfd, SHMEM_PID)) < 0)
		return out;
	for (size_t i = 0; i < sd->n && !err; i++) {
		ShmemObject *o = xzalloc(sizeof(*o));
		if (!o) {
			err = -ENOMEM;
			break;
		}
		shmem_object__init(o);
		o->id = sd->objs[i].id;
		o->size = sd->objs[i].size;
		o->memfd_name = sd->objs[i].memfd_name;
		if (o->memfd_name && sd->objs[i].seals) {
			o->has_seals = true;
			o->seals = sd->objs[i].seals;
		}
		if (o->memfd_name) {
			const struct stat *st = &sd->objs[i].st;
			o->has_mode = o->has_uid = o->has_gid = o->has_atime_ns = o->has_mtime_ns = true;
			o->mode = st->st_mode & 07777;
			o->uid = st->st_uid;
			o->gid = st->st_gid;
			o->atime_ns = st->st_atim.tv_sec * 1000000000ll + st->st_atim.tv_nsec;
			o->mtime_ns = st->st_mtim.tv_sec * 1000000000ll + st->st_mtim.tv_nsec;
			if (created_file_open(&sd->objs[i])) {
				o->has_created_pid = o->has_created_fd = true;
				o->created_pid = sd->objs[i].created_pid;
				o->created_fd = sd->objs[i].created_fd;
			}
		}
		if (sd->objs[i].sysv) {
			o->has_sysv = o->has_sysv_key = o->has_sysv_mode = true;
			o->has_sysv_uid = o->has_sysv_gid = true;
			o->sysv = true;
			o->sysv_key = sd->objs[i].ds.shm_perm.__key;
			o->sysv_mode = sd->objs[i].ds.shm_perm.mode & 0777;
			o->sysv_uid = sd->objs[i].ds.shm_perm.uid;
			o->sysv_gid = sd->objs[i].ds.shm_perm.gid;
			o->has_sysv_cuid = o->has_sysv_cgid = true;
			o->sysv_cuid = sd->objs[i].ds.shm_perm.cuid;
			o->sysv_cgid = sd->objs[i].ds.shm_perm.cgid;
			o->has_sysv_removed = o->sysv_removed = sd->objs[i].ds.shm_perm.mode & SHM_DEST;
			o->has_sysv_locked = o->sysv_locked = sd->objs[i].ds.shm_perm.mode & SHM_LOCKED;
		}
		if (sd->objs[i].secret)
			o->has_secret = o->secret = true;
		o->has_huge_page_size = sd->objs[i].huge_page_size != 0;
		o->huge_page_size = sd->objs[i].huge_page_size;
		tab.objects[tab.n_objects++] = o;
		if (sd->objs[i].secret && sd->objs[i].contents < 0)
			continue; /* no page of it was ever touched */
		if (sd->objs[i].secret) {
			char path[40];
			snprintf(path, sizeof(path), "/proc/self/fd/%d", sd->objs[i].contents);
			free(sd->objs[i].read_path);
			if (!(sd->objs[i].read_path = xstrdup(path))) {
				err = -ENOMEM;
				break;
			}
		}
		err = dump_object(&sd->objs[i], o, out, buf, &file_off);
	}
	tab.nr_pages = (file_off - PAGES_HEADER_SIZE) / PAGE_SIZE;
	if (!err)
		err = pages_image_finish(out, SHMEM_PID, tab.nr_pages, NULL);
	close(out);
	(void)tr;
	if (!err)
		err = image_write(dirfd, IMG_SHMEM, 0, &tab.base);
	for (size_t i = 0; i < tab.n_objects; i++)
		tab.objects[i]->memfd_name = NULL; /* (sd's) */
	image_free_fields(&tab.base);
	return err;
}

/* ---- restore ---- */

static int validate_table(struct shmem_state *st, const ShmemTable *tab)
{
	uint64_t expect = PAGES_HEADER_SIZE, total = 0;

	for (size_t i = 0; i < tab->n_objects; i++) {
		const ShmemObject *o = tab->objects[i];
		uint64_t prev_end = 0;
		/* shared anonymous memory too may have any size: reached as a file, it can be
		 * truncated or extended */
		bool ok = o->size <= (1ULL << 46) &&
			  (!o->secret || (!o->memfd_name && !o->sysv)) &&
			  (!o->memfd_name || strlen(o->memfd_name) < 250) &&
			  (!o->sysv || (o->size && o->id <= INT32_MAX && !o->memfd_name)) &&
			  (!o->has_huge_page_size ||
			   (!o->secret && o->huge_page_size > PAGE_SIZE &&
			    !(o->huge_page_size & (o->huge_page_size - 1)) &&
			    (o->sysv || o->size % o->huge_page_size == 0)));
		/* (an id of all ones would be the map's empty key) */
		int added = ok && o->id != UINT64_MAX ? ino_map_add(&st->by_id, o->id + 1, i) : 0;
		if (added < 0)
			return added;
		ok = added == 1; /* (no other object with its id) */
		for (size_t r = 0; ok && r < o->n_runs; r++) {
			const PageRun *run = o->runs[r];
			uint64_t len = (uint64_t)run->nr_pages * PAGE_SIZE;
			ok = run->nr_pages && run->vaddr % PAGE_SIZE == 0 && run->vaddr >= prev_end &&
			     run->vaddr + len <= PAGE_ALIGN(o->size) && run->file_off == expect;
			prev_end = run->vaddr + len;
			expect += len;
			total += run->nr_pages;
		}
		if (!ok) {
			pr_err("image shmem.img: object %zu (id %llu) is invalid", i,
			       (unsigned long long)o->id);
			return -EINVAL;
		}
		if (o->has_huge_page_size && !hugetlb_size_known(o->huge_page_size)) {
			pr_err("image shmem.img: object %zu (id %llu) is of huge pages of %llu kB, a size "
			       "this machine has no pool of (/sys/kernel/mm/hugepages)", i,
			       (unsigned long long)o->id, (unsigned long long)o->huge_page_size >> 10);
			return -EINVAL;
		}
	}
	if (total != tab->nr_pages) {
		pr_err("image shmem.img: runs hold %llu pages, header says %llu",
		       (unsigned long long)total, (unsigned long long)tab->nr_pages);
		return -EINVAL;
	}
	return 0;
}

/*
 * The SysV segment with the saved shmid: the one that still exists (same key and size), or a
 * new one made with that id (kernel.shm_next_id). Returns an fd on it for filling.
 */
/* How much of the address space a mapping of the whole object takes: whole huge pages. */
static uint64_t mapped_len(const ShmemObject *o)
{
	uint64_t page = o->has_huge_page_size ? o->huge_page_size : PAGE_SIZE;

	return (o->size + page - 1) & ~(page - 1);
}

/* The flags that ask memfd_create, mmap or shmget for the object's size of huge pages. */
static unsigned long huge_flags(const ShmemObject *o, unsigned long hugetlb_flag)
{
	return o->has_huge_page_size ? hugetlb_flag | hugetlb_size_bits(o->huge_page_size) : 0;
}

static int sysv_segment(const ShmemObject *o, bool *made)
{
	struct shmid_ds ds;
	int id = (int)o->id;

	if (shmctl(id, IPC_STAT, &ds) == 0) {
		if (ds.shm_perm.__key != (key_t)o->sysv_key || ds.shm_segsz != o->size) {
			pr_err("restore: SysV shm id %d is taken by another segment (key %#x, %zu bytes)",
			       id, ds.shm_perm.__key, (size_t)ds.shm_segsz);
			return -EEXIST;
		}
	} else {
		struct ipc_self self = { 0 };
		int err = ipc_set_next_id("shm", id);
		if (!err && o->has_sysv_cuid && o->has_sysv_cgid)
			err = ipc_as_creator(o->sysv_cuid, o->sysv_cgid, &self);
		if (err)
			return err;
		int got = shmget((key_t)o->sysv_key, o->size,
				 IPC_CREAT | IPC_EXCL | o->sysv_mode | huge_flags(o, SHM_HUGETLB));
		ipc_as_self(&self);
		if (got != id) {
			pr_err("restore: SysV shm segment %d (key %#x) came back as %d", id, o->sysv_key, got);
			if (got >= 0)
				shmctl(got, IPC_RMID, NULL);
			return -EEXIST;
		}
		*made = true;
		ds.shm_perm.uid = o->sysv_uid;
		ds.shm_perm.gid = o->sysv_gid;
		ds.shm_perm.mode = o->sysv_mode;
		shmctl(id, IPC_SET, &ds);
		if (o->sysv_locked && shmctl(id, SHM_LOCK, NULL)) {
			pr_perror("restore: cannot SHM_LOCK SysV shm segment %d", id);
			return -errno;
		}
	}
	char path[96];
	void *m = shmat(id, NULL, 0);
	if (m == (void *)-1) {
		pr_perror("restore: cannot attach SysV shm %d", id);
		return -errno;
	}
	snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", (unsigned long)m,
		 (unsigned long)m + mapped_len(o));
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		pr_perror("restore: cannot open SysV shm %d (%s)", id, path);
	shmdt(m);
	return fd < 0 ? -errno : fd;
}

/* A new empty object with the saved identity: a memfd of that name, or shared anonymous. */
static int create_object(const ShmemObject *o, bool *made)
{
	if (o->sysv)
		return sysv_segment(o, made);
	if (o->secret) {
		int fd = syscall(SYS_memfd_secret, O_CLOEXEC);
		if (fd < 0 || ftruncate(fd, o->size)) {
			int err = -errno;
			pr_perror("restore: cannot create memfd_secret() file %llu of %llu bytes",
				  (unsigned long long)o->id, (unsigned long long)o->size);
			if (fd >= 0)
				close(fd);
			return err;
		}
		return fd;
	}
	if (o->memfd_name) {
		/* executable or not as saved, whatever vm.memfd_noexec says (kernels before 6.3
		 * know neither flag: every memfd is executable there) */
		bool noexec = o->seals & F_SEAL_EXEC && o->has_mode && !(o->mode & 0111);
		unsigned huge = huge_flags(o, MFD_HUGETLB);
		int fd = memfd_create(o->memfd_name, MFD_CLOEXEC | MFD_ALLOW_SEALING | huge |
							     (noexec ? MFD_NOEXEC_SEAL : MFD_EXEC));
		if (fd < 0 && errno == EINVAL)
			fd = memfd_create(o->memfd_name, MFD_CLOEXEC | MFD_ALLOW_SEALING | huge);
		if (fd < 0 || ftruncate(fd, o->size)) {
			pr_perror("restore: cannot create memfd %s", o->memfd_name);
			return -errno;
		}
		return fd;
	}
	/* made by a mapping, then given its size: one truncated or extended through an fd (opened
	 * by /proc/PID/map_files) may be empty or end inside a page */
	char path[96];
	size_t len = o->size ? mapped_len(o) : PAGE_SIZE;
	void *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS | huge_flags(o, MAP_HUGETLB), -1, 0);
	if (m == MAP_FAILED) {
		pr_perror("restore: cannot create shared memory of %llu bytes",
			  (unsigned long long)o->size);
		return -ENOMEM;
	}
	snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", (unsigned long)m,
		 (unsigned long)m + len);
	int fd = open(path, O_RDWR | O_CLOEXEC);
	int err = fd < 0 ? -errno : 0;
	munmap(m, len); /* the fd keeps the object */
	if (fd < 0)
		pr_perror("restore: cannot open shared memory %s", path);
	else if (o->size != len && ftruncate(fd, o->size)) {
		err = -errno;
		pr_perror("restore: cannot give shared memory %llu its size %llu",
			  (unsigned long long)o->id, (unsigned long long)o->size);
		close(fd);
	}
	return err ? err : fd;
}

/* keep_live: a SysV segment that is there already is left as it is (a joined IPC namespace's:
 * the pod's other containers use it); kept_at: made as a mapping there, which stasis keeps,
 * not an fd (0: an fd) */
static int fill_object(struct shmem_restore_obj *so, const ShmemObject *o, int pages_fd,
		       const struct restore_watchdog *wd, bool keep_live, uint64_t kept_at)
{
	char *m;

	so->id = o->id;
	so->size = o->size;
	so->sysv = o->sysv;
	so->fd = -1;
	if (kept_at) {
		if (mmap((void *)kept_at, o->size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED,
			 -1, 0) != (void *)kept_at) {
			pr_perror("restore: cannot create shared memory of %llu bytes",
				  (unsigned long long)o->size);
			return -ENOMEM;
		}
		so->kept_at = kept_at;
	} else if ((so->fd = create_object(o, &so->made)) < 0) {
		return so->fd;
	}
	if (so->made && so->sysv)
		watchdog_undo_sysv_shm(wd, (int)o->id); /* a segment outlives its processes */
	if (!o->n_runs || (so->sysv && !so->made && keep_live))
		return 0;
	m = kept_at ? (char *)kept_at : mmap(NULL, mapped_len(o), PROT_READ | PROT_WRITE, MAP_SHARED, so->fd, 0);
	if (m == MAP_FAILED) {
		pr_perror("restore: cannot map shared memory object %llu (%llu bytes) to fill it",
			  (unsigned long long)o->id, (unsigned long long)o->size);
		return -ENOMEM;
	}
	for (size_t r = 0; r < o->n_runs; r++) {
		uint64_t len = (uint64_t)o->runs[r]->nr_pages * PAGE_SIZE;
		/* the last page of a memfd may lie past its size: copy only what is inside */
		uint64_t in = o->runs[r]->vaddr + len > o->size ? o->size - o->runs[r]->vaddr : len;
		if (pread(pages_fd, m + o->runs[r]->vaddr, in, o->runs[r]->file_off) != (ssize_t)in) {
			pr_err("image pages-0.img: short read of shared memory");
			if (!kept_at)
				munmap(m, mapped_len(o));
			return -EIO;
		}
	}
	if (!kept_at)
		munmap(m, mapped_len(o));
	return 0;
}

/*
 * Seals last: after the content, mode and times are in and stasis' own mapping is gone. A
 * memfd sealed against future writes may have writable shared mappings made before the seal,
 * which the tree could not make again after it: its seals wait for shmem_seal_late().
 */
static int seal_object(struct shmem_restore_obj *so, const ShmemObject *o, bool late)
{
	if (!late && o->has_seals && (o->seals & F_SEAL_FUTURE_WRITE)) {
		so->seal_late = true;
		return 0;
	}
	if (o->has_seals && fcntl(so->fd, F_ADD_SEALS, o->seals)) {
		pr_perror("restore: cannot seal memfd %s (%#x)", o->memfd_name, o->seals);
		return -errno;
	}
	return 0;
}

/* A memfd's owner, mode (after the owner: a change of owner clears setuid bits) and times,
 * once its content is in. */
static int set_memfd_attributes(const struct shmem_restore_obj *so, const ShmemObject *o)
{
	struct timespec times[2] = {
		{ o->atime_ns / 1000000000, o->atime_ns % 1000000000 },
		{ o->mtime_ns / 1000000000, o->mtime_ns % 1000000000 },
	};

	if (!o->memfd_name || !o->has_mode)
		return 0;
	if ((o->has_uid && fchown(so->fd, o->uid, o->has_gid ? o->gid : (gid_t)-1)) ||
	    fchmod(so->fd, o->mode & 07777) ||
	    (o->has_atime_ns && o->has_mtime_ns && futimens(so->fd, times))) {
		pr_perror("restore: cannot give memfd %s its owner, mode and times", o->memfd_name);
		return -errno;
	}
	return 0;
}

/* Object id of shmem.img: its index, or -1. */
static ssize_t table_index(const struct shmem_state *st, uint64_t id)
{
	size_t i;
	return st->tab && ino_map_get(&st->by_id, id + 1, &i) && i < st->tab->n_objects ? (ssize_t)i : -1;
}

static const ShmemObject *table_object(const struct shmem_state *st, uint64_t id)
{
	ssize_t i = table_index(st, id);
	return i < 0 ? NULL : st->tab->objects[i];
}

static bool object_fits(const struct shmem_state *st, uint64_t id, uint64_t end_offset)
{
	const ShmemObject *o = table_object(st, id);
	return o && end_offset <= PAGE_ALIGN(o->size);
}

static bool maps_shmem(const VmaEntry *v)
{
	return v->kind == VMA_KIND__VMA_ANON_SHARED || v->kind == VMA_KIND__VMA_SHMEM_PRIVATE ||
	       v->kind == VMA_KIND__VMA_SYSV_SHM;
}

void shmem_require(struct run_ctx *ctx)
{
	state_of(ctx)->required = true;
}

void shmem_sysv_keep_live(struct run_ctx *ctx)
{
	state_of(ctx)->sysv_keep_live = true;
}

/* memfd_create()'s file, if saved: a memfd's own fd entry, open for reading and writing. */
static int validate_created_file(const struct restore_tree *rt, const ShmemObject *o)
{
	for (size_t i = 0; o->has_created_pid && i < rt->nr_tasks; i++) {
		const FdTable *tab = rt->tasks[i].fds;
		for (size_t k = 0; rt->tasks[i].pid == (pid_t)o->created_pid && k < tab->n_fds; k++) {
			const FdEntry *e = tab->fds[k];
			if (e->fd == o->created_fd && e->kind == FD_KIND__FD_SHMEM && e->shmem_id == o->id &&
			    e->has_flags && (e->flags & O_ACCMODE) == O_RDWR)
				return 0;
		}
	}
	if (!o->has_created_pid && !o->has_created_fd)
		return 0;
	pr_err("image shmem.img: memfd %llu was made by memfd_create() as fd %u of pid %u, which is "
	       "not a read-write fd of that memfd in the images",
	       (unsigned long long)o->id, o->created_fd, o->created_pid);
	return -EINVAL;
}

/*
 * Which objects stasis keeps as mappings, not as fds, for the tree to inherit: shared anonymous
 * memory that only MAP_SHARED mappings, made writable and starting inside the object, map. A
 * process's blob then takes each mapping from stasis's with mremap (moved, or copied where its
 * mappings of the object overlap). So a tree of tens of thousands of objects (stress-ng's mlock)
 * is restored with no fd for each: this machine's hard limit of open files is 20,000.
 */
static int plan_kept_objects(struct shmem_state *st, const struct restore_tree *rt)
{
	const ShmemTable *tab = st->tab;

	if (!(st->keep_mapped = xzalloc(tab->n_objects + 1)))
		return -ENOMEM;
	for (size_t i = 0; i < tab->n_objects; i++) {
		const ShmemObject *o = tab->objects[i];
		st->keep_mapped[i] = !o->sysv && !o->secret && !o->memfd_name && !o->has_huge_page_size &&
				     o->size && o->size % PAGE_SIZE == 0;
	}
	for (size_t i = 0; i < rt->nr_tasks; i++) {
		const struct restore_task *t = &rt->tasks[i];
		for (size_t k = 0; k < t->mm->n_vmas; k++) {
			const VmaEntry *v = t->mm->vmas[k];
			ssize_t o = maps_shmem(v) ? table_index(st, v->shmem_id) : -1;
			/* (read-only: made from a file opened so, it can never be made writable) */
			if (o >= 0 && (v->kind != VMA_KIND__VMA_ANON_SHARED || vma_read_only(v) ||
				       v->pgoff >= mapped_len(tab->objects[o])))
				st->keep_mapped[o] = false;
		}
		for (size_t k = 0; k < t->fds->n_fds; k++) {
			const FdEntry *e = t->fds->fds[k];
			ssize_t o = e->kind == FD_KIND__FD_SHMEM ? table_index(st, e->shmem_id) : -1;
			if (o >= 0)
				st->keep_mapped[o] = false;
		}
	}
	return 0;
}

/* shmem.img, if any mapping or fd of the tree (or its IPC namespace) needs it, checked. */
static int validate_shmem(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct shmem_state *st = state_of(ctx);
	bool needed = st->required;
	int err;

	for (size_t i = 0; i < rt->nr_tasks; i++) {
		for (size_t k = 0; k < rt->tasks[i].mm->n_vmas; k++)
			needed |= maps_shmem(rt->tasks[i].mm->vmas[k]);
		for (size_t k = 0; k < rt->tasks[i].fds->n_fds; k++)
			needed |= rt->tasks[i].fds->fds[k]->kind == FD_KIND__FD_SHMEM;
	}
	if (!needed)
		return 0;
	if ((err = image_read(ctx->images_dir_fd, IMG_SHMEM, 0, (ProtobufCMessage **)&st->tab)) ||
	    (err = validate_table(st, st->tab)))
		return err;
	for (size_t i = 0; i < st->tab->n_objects; i++) {
		const ShmemObject *o = st->tab->objects[i];
		char what[96];
		if ((err = validate_created_file(rt, o)))
			return err;
		snprintf(what, sizeof(what), "restore of memfd_secret() memory (shmem.img object %llu)",
			 (unsigned long long)o->id);
		if (o->secret && (err = kernel_refuse_lacking(ctx, KF_MEMFD_SECRET, what)))
			return err;
	}
	for (size_t i = 0; i < rt->nr_tasks; i++) {
		struct restore_task *t = &rt->tasks[i];
		for (size_t k = 0; k < t->mm->n_vmas; k++) {
			VmaEntry *v = t->mm->vmas[k];
			const ShmemObject *o = maps_shmem(v) ? table_object(st, v->shmem_id) : NULL;
			if (o && o->secret && v->kind != VMA_KIND__VMA_ANON_SHARED) {
				pr_err("image mm-%d.img: mapping %#llx-%#llx maps memfd_secret() file %llu "
				       "otherwise than MAP_SHARED",
				       t->pid, (unsigned long long)v->start, (unsigned long long)v->end,
				       (unsigned long long)o->id);
				return -EINVAL;
			}
			/* a file of shmem mapped through an fd may reach past its end (touched
			 * there, SIGBUS), as the kernel allows; a SysV attach is the segment */
			uint64_t end = v->kind == VMA_KIND__VMA_SYSV_SHM ? v->pgoff + v->end - v->start : 0;
			if (maps_shmem(v) && !object_fits(st, v->shmem_id, end)) {
				pr_err("image mm-%d.img: mapping %#llx-%#llx refers to a shared object "
				       "that shmem.img does not hold",
				       t->pid, (unsigned long long)v->start, (unsigned long long)v->end);
				return -EINVAL;
			}
			if (o && o->has_huge_page_size &&
			    (v->start | v->end | v->pgoff) % o->huge_page_size) {
				pr_err("image mm-%d.img: mapping %#llx-%#llx of object %llu of huge pages "
				       "of %llu kB does not lie at their boundaries",
				       t->pid, (unsigned long long)v->start, (unsigned long long)v->end,
				       (unsigned long long)o->id, (unsigned long long)o->huge_page_size >> 10);
				return -EINVAL;
			}
		}
		for (size_t k = 0; k < t->fds->n_fds; k++) {
			FdEntry *e = t->fds->fds[k];
			if (e->kind == FD_KIND__FD_SHMEM && !object_fits(st, e->shmem_id, 0)) {
				pr_err("image fds-%d.img: fd %u refers to a memfd that shmem.img does not "
				       "hold",
				       t->pid, e->fd);
				return -EINVAL;
			}
		}
	}
	return plan_kept_objects(st, rt);
}

/* The range where the kept objects lie, one after the other, mapped PROT_NONE until they are. */
static int map_reserve(struct shmem_state *st, const struct restore_tree *rt)
{
	uint64_t len = 0, base;

	for (size_t i = 0; i < st->tab->n_objects; i++)
		len += st->keep_mapped[i] ? st->tab->objects[i]->size : 0;
	if (!len)
		return 0;
	if (!(base = tree_reserve_map(rt, len))) {
		pr_err("restore: no room for the %llu bytes of shared memory objects kept as mappings",
		       (unsigned long long)len);
		return -ENOMEM;
	}
	st->reserve_start = base;
	st->reserve_len = len;
	return 0;
}

static void unmap_reserve(struct shmem_state *st)
{
	if (st->reserve_len)
		munmap((void *)st->reserve_start, st->reserve_len);
	st->reserve_len = 0;
}

/* Every object created and filled, in stasis; the tree inherits stasis's fds and mappings of
 * them. */
static int prepare_shmem(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct shmem_state *st = state_of(ctx);
	ShmemTable *tab = st->tab;
	int err = 0, pages_fd;

	if (!tab)
		return 0;
	if ((err = map_reserve(st, rt)))
		return err;
	if ((pages_fd = raw_image_open(ctx->images_dir_fd, IMG_PAGES, SHMEM_PID, tab->nr_pages)) < 0)
		return pages_fd;
	st->objects = xzalloc((tab->n_objects + 1) * sizeof(*st->objects));
	if (!st->objects) {
		close(pages_fd);
		return -ENOMEM;
	}
	uint64_t kept_at = st->reserve_start;
	for (size_t i = 0; i < tab->n_objects && !err; i++) {
		/* the mode before the seals: F_SEAL_EXEC forbids changing its x bits */
		if (!(err = fill_object(&st->objects[i], tab->objects[i], pages_fd, rt->watchdog,
					st->sysv_keep_live, st->keep_mapped[i] ? kept_at : 0)) &&
		    !(err = set_memfd_attributes(&st->objects[i], tab->objects[i])))
			err = seal_object(&st->objects[i], tab->objects[i], false);
		kept_at += st->keep_mapped[i] ? tab->objects[i]->size : 0;
		st->nr_objects = i + 1;
	}
	close(pages_fd);
	return err;
}

/* stasis lets go of its fds on the objects (all, or those not waiting for their seals). */
static void close_objects(struct shmem_state *st, bool all)
{
	for (size_t i = 0; i < st->nr_objects; i++) {
		if (st->objects[i].fd >= 0 && (all || !st->objects[i].seal_late)) {
			close(st->objects[i].fd);
			st->objects[i].fd = -1;
		}
	}
}

static void close_shmem(struct run_ctx *ctx)
{
	close_objects(state_of(ctx), false);
	unmap_reserve(state_of(ctx));
}

int shmem_seal_late(const struct run_ctx *ctx)
{
	struct shmem_state *st = state_of(ctx);
	int err = 0;

	for (size_t i = 0; i < st->nr_objects && !err; i++) {
		if (st->objects[i].fd < 0 || !st->objects[i].seal_late)
			continue;
		err = seal_object(&st->objects[i], st->tab->objects[i], true);
		close(st->objects[i].fd);
		st->objects[i].fd = -1;
	}
	return err;
}

/*
 * A failed restore: the SysV segments made for the tree go (the others die with their fds).
 * A restore done: the segments that were removed while attached are removed again, now that
 * the tree holds its attaches (stasis is still in the tree's IPC namespace: that undo comes
 * after this one).
 */
static void undo_shmem(struct run_ctx *ctx, bool restored)
{
	struct shmem_state *st = state_of(ctx);

	for (size_t i = 0; st->objects && i < st->tab->n_objects; i++) {
		const ShmemObject *o = st->tab->objects[i];
		if (st->objects[i].sysv && (restored ? o->sysv_removed : st->objects[i].made))
			shmctl(st->objects[i].id, IPC_RMID, NULL);
	}
	close_objects(st, true);
	unmap_reserve(st);
}

bool shmem_sysv_known(const struct run_ctx *ctx, uint64_t shmid)
{
	const ShmemObject *o = table_object(state_of(ctx), shmid);
	return o && o->sysv;
}

bool shmem_is_secret(const struct run_ctx *ctx, uint64_t id)
{
	const ShmemObject *o = table_object(state_of(ctx), id);
	return o && o->secret;
}

void shmem_huge_pages_count(const struct run_ctx *ctx, uint64_t need[64])
{
	const struct shmem_state *st = state_of(ctx);
	struct shmid_ds ds;

	for (size_t i = 0; st->tab && i < st->tab->n_objects; i++) {
		const ShmemObject *o = st->tab->objects[i];
		if (o->has_huge_page_size && !(o->sysv && !shmctl((int)o->id, IPC_STAT, &ds)))
			need[__builtin_ctzll(o->huge_page_size)] += mapped_len(o) / o->huge_page_size;
	}
}

uint64_t shmem_huge_page_size(const struct run_ctx *ctx, uint64_t id)
{
	const ShmemObject *o = table_object(state_of(ctx), id);

	return o && o->has_huge_page_size ? o->huge_page_size : 0;
}

bool shmem_memfd_created_at(const struct run_ctx *ctx, uint64_t id, pid_t pid, uint32_t fd)
{
	const ShmemObject *o = table_object(state_of(ctx), id);
	return o && o->has_created_pid && o->created_pid == (uint32_t)pid && o->created_fd == fd;
}

/* What stasis made of object id, which every new process inherits; NULL if nothing. */
static const struct shmem_restore_obj *made_object(const struct run_ctx *ctx, uint64_t id)
{
	const struct shmem_state *st = state_of(ctx);
	ssize_t i = table_index(st, id);

	return i >= 0 && (size_t)i < st->nr_objects ? &st->objects[i] : NULL;
}

/* stasis's own fd on object id, inherited by every new process; -ENOENT if none. */
static int object_fd(const struct run_ctx *ctx, uint64_t id)
{
	const struct shmem_restore_obj *so = made_object(ctx, id);

	return so && so->fd >= 0 ? so->fd : -ENOENT;
}

uint64_t shmem_kept_mapping(const struct run_ctx *ctx, uint64_t id, uint64_t *len)
{
	const struct shmem_restore_obj *so = made_object(ctx, id);

	*len = so && so->kept_at ? so->size : 0;
	return so ? so->kept_at : 0;
}

void shmem_kept_reserve(const struct run_ctx *ctx, uint64_t *start, uint64_t *len)
{
	*start = state_of(ctx)->reserve_start;
	*len = state_of(ctx)->reserve_len;
}

int shmem_object_file(struct restore_task *t, uint64_t id)
{
	int fd = object_fd(t->ctx, id);

	if (fd < 0)
		return fd;
	return restore_dup_high(t, fd); /* the caller names the object */
}

int shmem_open_object(struct restore_task *t, uint64_t id, int flags)
{
	int fd = object_fd(t->ctx, id);
	char path[64];

	if (fd < 0)
		return fd;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return restore_open_high(t, path, flags);
}

static void free_shmem(void *state)
{
	struct shmem_state *st = state;

	for (size_t i = 0; i < st->n; i++) {
		free(st->objs[i].read_path);
		free(st->objs[i].memfd_name);
		free(st->objs[i].read);
		if (st->objs[i].contents >= 0)
			close(st->objs[i].contents);
	}
	free(st->objs);
	ino_map_free(&st->by_id);
	if (st->tab)
		image_free(&st->tab->base);
	free(st->objects);
	free(st->keep_mapped);
}

const struct tree_object_ops tree_shmem = {
	.name = "shared memory",
	.state_size = sizeof(struct shmem_state),
	.free_state = free_shmem,
	.write = write_shmem,
	.validate = validate_shmem,
	.prepare = prepare_shmem,
	.close = close_shmem,
	.undo = undo_shmem,
};
