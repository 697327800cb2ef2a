/*
 * The address space: every mapping (anonymous, file-backed, shared or private, the vDSO
 * block, a packet socket's rings: cr/files/packet.c, memfd_secret() memory: cr/secretmem.c),
 * the files behind them, and the mm struct's fields (code/data/brk/stack bounds, cmdline and
 * environ areas, auxv, exe).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <linux/magic.h>

#include "compat/kernel-abi.h"
#include "kernel/features.h"
#include "log.h"
#include "mm.h"
#include "mount-ns.h"
#include "mounts.h"
#include "tree-path.h"
#include "secretmem.h"
#include "shmem.h"
#include "files/files.h"
#include "hugetlb.h"
#include "restorer/restorer.h"
#include "task.h"
#include "util.h"
#include "vma.h"

#define TASK_TOP 0x7ffffffff000ULL

static VmaKind special_kind(const char *path)
{
	if (!strcmp(path, "[vdso]"))
		return VMA_KIND__VMA_VDSO;
	if (!strcmp(path, "[vvar]"))
		return VMA_KIND__VMA_VVAR;
	if (!strcmp(path, "[vvar_vclock]"))
		return VMA_KIND__VMA_VVAR_VCLOCK;
	return 0;
}

/*
 * Mappings whose pages are in the process's own pages image (shared anonymous: in shmem.img;
 * MAP_DROPPABLE memory: none, the kernel may drop it whenever it likes, as criu does).
 */
bool vma_has_pages(const VmaEntry *v)
{
	return (v->kind == VMA_KIND__VMA_ANON_PRIVATE && !(v->advice & VMA_ADVICE_DROPPABLE)) ||
	       v->kind == VMA_KIND__VMA_HUGETLB_PRIVATE || vma_kind_is_private_file(v->kind);
}

/* Private mappings of a file (a memfd too): only the pages the process changed are its own. */
bool vma_kind_is_private_file(VmaKind k)
{
	return k == VMA_KIND__VMA_FILE_PRIVATE || k == VMA_KIND__VMA_SHMEM_PRIVATE;
}

bool vma_kind_shares_cow(VmaKind k)
{
	return k == VMA_KIND__VMA_ANON_PRIVATE || k == VMA_KIND__VMA_FILE_PRIVATE;
}

/* magic: a /proc path of the file (map_files, exe) */
static int add_mapped_file(struct dump_task *t, const char *magic, const char *path, const struct stat *st,
			   int ghost_id)
{
	Mm *mm = t->mm;
	uint32_t detached_id = 0;
	struct statx sx;

	for (size_t i = 0; i < mm->n_files; i++)
		if (mm->files[i]->dev == st->st_dev && mm->files[i]->ino == st->st_ino)
			return i;
	/* (the path must still lead to it: opened again by it at restore; else it is on a
	 * mount detached since) */
	bool leads = ghost_id >= 0 || !t->core->root || mount_task_path_holds(t->pid, t->core->root, path, st);
	int detached = leads ? 0
			     : detached_mount_note(t, magic, path, st,
						   statx(AT_FDCWD, magic, 0, STATX_MNT_ID, &sx) ? 0 : sx.stx_mnt_id,
						   "mapped file", &detached_id);
	int err = detached < 0 ? detached
		  : !leads && !detached ? mount_refuse_hidden(t->pid, t->core->root, path, st, ": mapped file")
					: 0;
	if (err)
		return err;
	MappedFile *f = xzalloc(sizeof(*f)), **more;
	if (!f)
		return -ENOMEM;
	mapped_file__init(f);
	f->has_detached_mount = detached;
	f->detached_mount = detached_id;
	f->id = mm->n_files;
	if (!(f->path = xstrdup(path))) {
		free(f);
		return -ENOMEM;
	}
	f->size = st->st_size;
	f->mtime_ns = st->st_mtim.tv_sec * 1000000000ull + st->st_mtim.tv_nsec;
	f->dev = st->st_dev;
	f->ino = st->st_ino;
	if (ghost_id >= 0) {
		f->has_ghost_id = true;
		f->ghost_id = ghost_id;
	}
	if (!(more = xreallocarray(mm->files, mm->n_files + 1, sizeof(*more)))) {
		free(f->path);
		free(f);
		return -ENOMEM;
	}
	mm->files = more;
	mm->files[mm->n_files++] = f;
	return f->id;
}

/* mf: the mapping's /proc/PID/map_files entry, st: its file's; the failure logged naming what. */
static int stat_mapping(const struct dump_task *t, const struct proc_vma *pv, const char *what,
			char mf[static MAP_FILES_PATH_SIZE], struct stat *st)
{
	map_files_path(mf, t->pid, pv->start, pv->end);
	if (stat(mf, st)) {
		pr_perror("dump pid %d: cannot stat %s %s", t->pid, what, mf);
		return -errno;
	}
	return 0;
}

/*
 * MAP_SHARED|MAP_ANONYMOUS or a memfd: a shmem object, maybe shared with other processes; a
 * private mapping of a memfd maps the same object, with its changed pages its own.
 */
static int classify_shared_anon(struct dump_task *t, const struct proc_vma *pv, const char *name,
				VmaEntry *e)
{
	char mf[MAP_FILES_PATH_SIZE];
	struct stat st;
	int err = stat_mapping(t, pv, "shared memory", mf, &st);

	if (err)
		return err;
	e->kind = pv->shared ? VMA_KIND__VMA_ANON_SHARED : VMA_KIND__VMA_SHMEM_PRIVATE;
	e->has_shmem_id = e->has_pgoff = true;
	e->shmem_id = st.st_ino;
	e->pgoff = pv->pgoff;
	return shmem_note(t->ctx, mf, name, st.st_ino, st.st_size);
}

/*
 * MAP_PRIVATE|MAP_HUGETLB memory: the file of the kernel's own hugetlbfs behind it says the
 * size of its pages (shared, it is a shmem object of huge pages: classify_shared_anon).
 */
static int classify_hugetlb_private(struct dump_task *t, const struct proc_vma *pv, VmaEntry *e)
{
	char mf[MAP_FILES_PATH_SIZE];
	struct stat st;
	int err = stat_mapping(t, pv, "hugetlb memory", mf, &st);

	if (err)
		return err;
	if (!(e->huge_page_size = hugetlb_page_size_of(mf))) {
		pr_perror("dump pid %d: cannot read the page size of hugetlb mapping %#llx-%#llx (%s)",
			  t->pid, (unsigned long long)pv->start, (unsigned long long)pv->end, mf);
		return -EIO;
	}
	e->kind = VMA_KIND__VMA_HUGETLB_PRIVATE;
	e->has_huge_page_size = true;
	return 0;
}

/*
 * A MAP_PRIVATE mapping of the file behind MAP_SHARED|MAP_ANONYMOUS memory (opened through
 * /proc/PID/map_files, then mapped): the same object as the shared mappings and fds of it, its
 * changed pages its own, like a private mapping of a memfd.
 */
static bool private_of_shared_anon(const struct dump_task *t, const struct proc_vma *pv)
{
	char mf[MAP_FILES_PATH_SIZE];
	struct stat st;

	if (pv->shared || strcmp(pv->path, "/dev/zero (deleted)"))
		return false;
	map_files_path(mf, t->pid, pv->start, pv->end);
	return !stat(mf, &st) && shmem_is_anon_file(pv->path, &st);
}

/*
 * memfd_secret() memory (always MAP_SHARED): a shmem object like a memfd, its pages copied out
 * by the process itself (cr/secretmem.c), as nothing else can read them.
 */
static int classify_secret(struct dump_task *t, const struct proc_vma *pv, VmaEntry *e)
{
	char mf[MAP_FILES_PATH_SIZE];
	struct stat st;
	int err = stat_mapping(t, pv, "memfd_secret() memory", mf, &st);

	if (err)
		return err;
	if (!pv->shared) {
		pr_err("dump pid %d: mapping %#llx-%#llx of memfd_secret() memory is not MAP_SHARED",
		       t->pid, (unsigned long long)pv->start, (unsigned long long)pv->end);
		return -ENOTSUP;
	}
	e->kind = VMA_KIND__VMA_ANON_SHARED;
	e->has_shmem_id = e->has_pgoff = true;
	e->shmem_id = st.st_ino;
	e->pgoff = pv->pgoff;
	return secretmem_dump_mapping(t, pv->start, pv->end, pv->pgoff, st.st_ino, st.st_size);
}

/*
 * Whether the mappings of t from the attach that pv is a piece of (split by mprotect, madvise
 * or mlock) cover the whole segment of size bytes: each a piece of the same segment, at its
 * offset in it, one after the other.
 */
static bool whole_attach(const struct dump_task *t, const struct proc_vma *pv, uint64_t size)
{
	uint64_t start = pv->start - pv->pgoff, end = start + PAGE_ALIGN(size), at = start;

	for (size_t i = 0; i < t->vmas.n && at < end; i++) {
		const struct proc_vma *v = &t->vmas.v[i];
		if (v->end <= start || v->start >= end)
			continue;
		if (v->start != at || v->ino != pv->ino || v->dev != pv->dev || !v->shared ||
		    v->pgoff != at - start || v->end > end)
			return false;
		at = v->end;
	}
	return at == end;
}

/* A flag of smaps' VmFlags (two letters) and the bit it stands for. */
struct vmflag {
	char name[3];
	uint32_t bit;
};

/* The bits of the flags of table (n of them) that VmFlags line vmflags has. */
static uint32_t vmflag_bits(const char *vmflags, const struct vmflag *table, size_t n)
{
	uint32_t bits = 0;

	for (const char *p = vmflags; *p && *p != '\n'; p++) {
		if (*p == ' ')
			continue;
		for (size_t k = 0; k < n; k++)
			if (!strncmp(p, table[k].name, 2))
				bits |= table[k].bit;
		while (p[1] && p[1] != ' ' && p[1] != '\n')
			p++;
	}
	return bits;
}

/*
 * A SysV shm attach: the segment is saved once (cr/shmem.c), each attach is redone by shmat.
 * An attach split into pieces is made whole by its first piece (pgoff 0) and each piece gets
 * its protection again.
 */
static int classify_sysv_shm(struct dump_task *t, const struct proc_vma *pv, VmaEntry *e)
{
	char mf[MAP_FILES_PATH_SIZE];
	struct stat st;
	int err = stat_mapping(t, pv, "SysV shm", mf, &st);

	if (err)
		return err;
	if (!whole_attach(t, pv, st.st_size)) {
		pr_err("dump pid %d: SysV shm %s is mapped in part at %#llx (a piece of the attach was "
		       "unmapped or remapped); only whole attaches are supported",
		       t->pid, pv->path, (unsigned long long)pv->start);
		return -ENOTSUP;
	}
	e->kind = VMA_KIND__VMA_SYSV_SHM;
	e->has_pgoff = pv->pgoff != 0;
	e->pgoff = pv->pgoff;
	e->has_shmem_id = true;
	e->shmem_id = st.st_ino; /* a segment's inode number is its shmid */
	return shmem_note(t->ctx, mf, pv->path, st.st_ino, st.st_size);
}

/* The lowest fd of pid that is the file mf (a /proc/PID/map_files entry) maps, or -1. */
static int fd_of_mapped_file(pid_t pid, const char *mf)
{
	struct stat want, st;
	char path[64];
	int found = -1;

	if (stat(mf, &want))
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	DIR *d = opendir(path);
	if (!d)
		return -1;
	for (struct dirent *de; (de = readdir(d));) {
		int fd = atoi(de->d_name);
		if (de->d_name[0] == '.' || (found >= 0 && fd >= found))
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
		if (!stat(path, &st) && st.st_dev == want.st_dev && st.st_ino == want.st_ino)
			found = fd;
	}
	closedir(d);
	return found;
}

/*
 * A mapping of an anonymous-inode file (a perf event's buffer, a BPF map; an io_uring
 * instance's rings are cr/files/io-uring.c's): refused, naming the object and the fd that
 * holds it (none if it was closed).
 */
static int refuse_kernel_object_mapping(pid_t pid, const struct proc_vma *pv, const char *mf)
{
	const char *what = !strcmp(pv->path, "anon_inode:[perf_event]") ? "a perf event's buffer"
			   : !strncmp(pv->path, "anon_inode:bpf-map", 18) ? "a BPF map's memory"
									  : "memory of a kernel object's file";
	int fd = fd_of_mapped_file(pid, mf);
	char held[48] = ", no fd holds it";

	if (fd >= 0)
		snprintf(held, sizeof(held), ", held at fd %d", fd);
	pr_err("dump pid %d: mapping %#llx-%#llx is %s (%s%s): not supported", pid,
	       (unsigned long long)pv->start, (unsigned long long)pv->end, what, pv->path, held);
	return -ENOTSUP;
}

/* path: the mapping's name, its file's whole path for a file (mapping_name) */
static int classify_vma(struct dump_task *t, const struct proc_vma *pv, const char *path, VmaEntry *e)
{
	char mf[MAP_FILES_PATH_SIZE];
	struct stat st;
	int id;

	if (shmem_is_secret_path(path))
		return classify_secret(t, pv, e);
	if (pv->shared && !strcmp(path, "/[aio] (deleted)")) {
		e->kind = VMA_KIND__VMA_AIO; /* its ring: cr/aio.c */
		return 0;
	}
	if ((e->kind = special_kind(path))) {
		if (e->kind == VMA_KIND__VMA_VDSO) {
			t->vdso_start = pv->start;
			t->vdso_end = pv->end;
		}
		return 0;
	}
	if (!strcmp(path, HUGETLB_ANON_PATH))
		return pv->shared ? classify_shared_anon(t, pv, path, e) : classify_hugetlb_private(t, pv, e);
	if (pv->shared && shmem_is_memfd_path(path)) { /* an io_uring instance's, made by a restore? */
		map_files_path(mf, t->pid, pv->start, pv->end);
		int ring = io_uring_memfd_vma_dump(t, pv, mf, e);
		if (ring <= 0)
			return ring;
	}
	if ((pv->shared && (!path[0] || !strcmp(path, "/dev/zero (deleted)") ||
			    !strncmp(path, "[anon_shmem:", 12))) ||
	    shmem_is_memfd_path(path) || private_of_shared_anon(t, pv))
		return classify_shared_anon(t, pv, path, e);
	if (!path[0] || path[0] == '[' || (!strcmp(path, "/dev/zero") && !pv->shared)) {
		e->kind = VMA_KIND__VMA_ANON_PRIVATE;
		return 0;
	}
	if (pv->shared && shmem_is_sysv_path(path))
		return classify_sysv_shm(t, pv, e);
	map_files_path(mf, t->pid, pv->start, pv->end);
	int ghost_id = -1;
	char what[64];
	struct statfs sfs;
	snprintf(what, sizeof(what), "mapping %#llx-%#llx", (unsigned long long)pv->start,
		 (unsigned long long)pv->end);
	/* Its pages are huge pages no ghost file holds: made again elsewhere, it would be
	 * ordinary memory (a file of another filesystem), silently. */
	if (ghost_path(path) && !statfs(mf, &sfs) && sfs.f_type == HUGETLBFS_MAGIC) {
		pr_err("dump pid %d: %s is of a removed file of hugetlbfs (%s): not supported yet",
		       t->pid, what, path);
		return -ENOTSUP;
	}
	if (ghost_path(path) && strncmp(path, "/memfd:", 7) && strncmp(path, "/SYSV", 5) &&
	    (ghost_id = ghost_note(t->ctx, mf, path, t->pid, what, false)) < 0)
		return ghost_id;
	if (!strncmp(path, "socket:[", 8)) { /* a packet socket's rings, not memory of its own */
		if (stat(mf, &st)) {
			pr_perror("dump pid %d: cannot stat the socket of mapping %#llx-%#llx (%s)", t->pid,
				  (unsigned long long)pv->start, (unsigned long long)pv->end, path);
			return -errno;
		}
		return packet_ring_vma_dump(t, pv, st.st_ino, e);
	}
	if (!strcmp(path, "anon_inode:[io_uring]"))
		return io_uring_vma_dump(t, pv, e);
	if (!strncmp(path, "anon_inode:", 11))
		return refuse_kernel_object_mapping(t->pid, pv, mf);
	if ((ghost_id < 0 && ends_with(path, " (deleted)")) || path[0] != '/') {
		pr_err("dump pid %d: mapping %#llx-%#llx of '%s' is not supported yet "
		       "(a deleted file that cannot be saved)",
		       t->pid, (unsigned long long)pv->start, (unsigned long long)pv->end, path);
		return -ENOTSUP;
	}
	if (stat(mf, &st)) {
		pr_perror("dump pid %d: cannot stat mapped file %s (%s)", t->pid, path, mf);
		return -errno;
	}
	if (!S_ISREG(st.st_mode)) {
		pr_err("dump pid %d: mapping %#llx-%#llx of device '%s' is not supported", t->pid,
		       (unsigned long long)pv->start, (unsigned long long)pv->end, path);
		return -ENOTSUP;
	}
	id = add_mapped_file(t, mf, path, &st, ghost_id);
	if (id < 0)
		return id;
	e->kind = pv->shared ? VMA_KIND__VMA_FILE_SHARED : VMA_KIND__VMA_FILE_PRIVATE;
	e->has_file_id = e->has_pgoff = true;
	e->file_id = id;
	e->pgoff = pv->pgoff;
	return 0;
}

/*
 * The name of mapping pv: its file's whole path where /proc/PID/maps shows it otherwise (cut
 * short, or with a newline as \012), read from the link of /proc/PID/map_files into buf; NULL
 * (logged) when the path cannot be had, longer than PATH_MAX.
 */
static const char *mapping_name(const struct dump_task *t, const struct proc_vma *pv,
				char buf[static PATH_MAX + 16])
{
	char mf[MAP_FILES_PATH_SIZE];
	ssize_t n;

	if (!pv->name_mangled || pv->path[0] != '/')
		return pv->path;
	map_files_path(mf, t->pid, pv->start, pv->end);
	n = readlink(mf, buf, PATH_MAX + 16);
	if (n < 0 || n >= PATH_MAX + 16) {
		pr_err("dump pid %d: mapping %#llx-%#llx: cannot read the path of its file (%s...): %s",
		       t->pid, (unsigned long long)pv->start, (unsigned long long)pv->end, pv->path,
		       n < 0 && errno != ENAMETOOLONG ? strerror(errno) : "longer than PATH_MAX");
		return NULL;
	}
	buf[n] = 0;
	return buf;
}

static int dump_vmas(struct dump_task *t)
{
	Mm *mm = t->mm;
	char buf[PATH_MAX + 16];

	if (!(mm->vmas = xzalloc(t->vmas.n * sizeof(*mm->vmas))))
		return -ENOMEM;
	for (size_t i = 0; i < t->vmas.n; i++) {
		const struct proc_vma *pv = &t->vmas.v[i];
		int err;

		if (pv->start >= TASK_TOP) /* [vsyscall]: fixed, in every process */
			continue;
		/* The kernel's area where a probed instruction is stepped (made at the first hit, made
		 * again at the next): not the process's. Its code keeps the probes' breakpoints, which
		 * the restored process would die on (SIGTRAP): cr/pages.c puts the file's bytes back. */
		if (!strcmp(pv->path, "[uprobes]")) {
			if ((t->hit_uprobes = t->ctx->opts->allow_uprobes))
				continue;
			pr_err("dump pid %d: it has hit uprobes (the kernel's [uprobes] area at %#llx): its code "
			       "holds their breakpoints; --allow-uprobes dumps it without them (the restored "
			       "process is not probed until the probes are set again)",
			       t->pid, (unsigned long long)pv->start);
			return -ENOTSUP;
		}
		VmaEntry *e = xzalloc(sizeof(*e));
		if (!e)
			return -ENOMEM;
		mm->vmas[mm->n_vmas++] = e; /* freed with the image, whole or not */
		vma_entry__init(e);
		e->start = pv->start;
		e->end = pv->end;
		e->prot = pv->prot;
		e->has_growsdown = pv->growsdown;
		e->growsdown = pv->growsdown;
		const char *name = mapping_name(t, pv, buf);
		if (!name)
			return -ENAMETOOLONG;
		if (name[0] && !(e->name = xstrdup(name)))
			return -ENOMEM;
		if ((err = classify_vma(t, pv, name, e)))
			return err;
		/* opened read-only, or attached SHM_RDONLY: it can never be made writable */
		if (pv->shared && (e->kind == VMA_KIND__VMA_ANON_SHARED ||
				   e->kind == VMA_KIND__VMA_FILE_SHARED || e->kind == VMA_KIND__VMA_SYSV_SHM)) {
			e->has_may_write = true;
			e->may_write = vmflag_bits(pv->vmflags, &(const struct vmflag){ "mw", 1 }, 1);
		}
	}
	return 0;
}

static int dump_mm_fields(struct dump_task *t)
{
	MmFields *m = xzalloc(sizeof(*m));
	const struct proc_stat *s = &t->stat;
	uint64_t args[6] = { 0 };
	int64_t brk;
	char path[64], exe[4096];
	size_t len;
	struct stat st;
	auto_free char *auxv = NULL;
	int id;

	if (!m)
		return -ENOMEM;
	mm_fields__init(m);
	t->core->mm = m;
	m->start_code = s->start_code;
	m->end_code = s->end_code;
	m->start_data = s->start_data;
	m->end_data = s->end_data;
	m->start_brk = s->start_brk;
	m->start_stack = s->start_stack;
	m->arg_start = s->arg_start;
	m->arg_end = s->arg_end;
	m->env_start = s->env_start;
	m->env_end = s->env_end;
	if (inject_syscall(&t->inj, SYS_brk, args, &brk))
		return -EIO;
	m->brk = brk;

	snprintf(path, sizeof(path), "/proc/%d/auxv", t->pid);
	auxv = read_file_at(AT_FDCWD, path, &len);
	if (!auxv) {
		if (errno != ENOMEM)
			pr_perror("dump pid %d: cannot read %s", t->pid, path);
		return -errno;
	}
	if (!(m->auxv = xzalloc(len)))
		return -ENOMEM;
	m->n_auxv = len / 8;
	memcpy(m->auxv, auxv, m->n_auxv * 8);

	snprintf(path, sizeof(path), "/proc/%d/exe", t->pid);
	if (stat(path, &st) || proc_readlink(t->pid, "exe", exe, sizeof(exe)) < 0) {
		pr_perror("dump pid %d: cannot read its executable", t->pid);
		return -errno;
	}
	/* deleted (a program upgraded under it): its content comes back from ghosts.img */
	int ghost_id = ghost_path(exe) ? ghost_note(t->ctx, path, exe, t->pid, "executable", false) : -1;
	if (ghost_path(exe) && ghost_id < 0)
		return ghost_id;
	if ((id = add_mapped_file(t, path, exe, &st, ghost_id)) < 0)
		return id;
	m->exe_file_id = id;
	return 0;
}

/* (mm.h) */
uint32_t vma_advice_of(const char *vmflags)
{
	static const struct vmflag flags[] = {
		{ "dc", VMA_ADVICE_DONTFORK }, { "wf", VMA_ADVICE_WIPEONFORK }, { "hg", VMA_ADVICE_HUGEPAGE },
		{ "nh", VMA_ADVICE_NOHUGEPAGE }, { "dd", VMA_ADVICE_DONTDUMP }, { "mg", VMA_ADVICE_MERGEABLE },
		{ "lo", VMA_ADVICE_LOCKED },	 { "lf", VMA_ADVICE_LOCKONFAULT }, { "sr", VMA_ADVICE_SEQUENTIAL },
		{ "rr", VMA_ADVICE_RANDOM },	 { "nr", VMA_ADVICE_NORESERVE },
		{ "dp", VMA_ADVICE_DROPPABLE }, { "sl", VMA_ADVICE_SEALED },
	};

	return vmflag_bits(vmflags, flags, ARRAY_SIZE(flags));
}

/*
 * Each mapping's madvise() flags, from the VmFlags of /proc/PID/smaps as read for its layout
 * (t->vmas; special mappings have theirs by birth).
 */
static int dump_advice(struct dump_task *t)
{
	Mm *mm = t->mm;
	size_t i = 0;

	for (size_t k = 0; k < t->vmas.n; k++) {
		uint64_t start = t->vmas.v[k].start;
		while (i < mm->n_vmas && mm->vmas[i]->start < start)
			i++;
		VmaEntry *v = i < mm->n_vmas && mm->vmas[i]->start == start ? mm->vmas[i] : NULL;
		uint32_t advice = vma_advice_of(t->vmas.v[k].vmflags);
		if (v && advice && v->kind != VMA_KIND__VMA_VDSO && v->kind != VMA_KIND__VMA_VVAR &&
		    v->kind != VMA_KIND__VMA_VVAR_VCLOCK) {
			v->has_advice = true;
			v->advice = advice;
		}
	}
	return 0;
}

/*
 * mlockall(MCL_FUTURE[|MCL_ONFAULT]): the page the injection mapped (after t->vmas was read)
 * is locked. smaps, which walks every page, is read again for its VmFlags only when the mm's
 * count of locked memory (VmLck, no walk) is more than t->vmas's locked mappings hold.
 */
static int dump_mlock_future(struct dump_task *t)
{
	uint64_t locked_kb = 0, vm_lck_kb;
	char path[64];

	for (size_t k = 0; k < t->vmas.n; k++)
		if (vma_advice_of(t->vmas.v[k].vmflags) & VMA_ADVICE_LOCKED)
			locked_kb += (t->vmas.v[k].end - t->vmas.v[k].start) / 1024;
	int err = proc_status_field(t->pid, "VmLck", 10, &vm_lck_kb);
	if (err == -ENOMEM)
		return err;
	if (err || vm_lck_kb <= locked_kb)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/smaps", t->pid);
	auto_free char *smaps = read_file_at(AT_FDCWD, path, NULL);
	if (!smaps) {
		if (errno != ENOMEM)
			pr_perror("dump pid %d: cannot read %s", t->pid, path);
		return -errno;
	}
	bool in_scratch = false;
	for (char *l = smaps; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		char *end;
		/* (not sscanf: it measures the whole rest of the text at every line) */
		unsigned long long start = strtoull(l, &end, 16);
		if (end != l && *end == '-') {
			in_scratch = start == t->inj.scratch;
			continue;
		}
		if (!in_scratch || strncmp(l, "VmFlags:", 8))
			continue;
		uint32_t advice = vma_advice_of(l + 8);
		if (advice & VMA_ADVICE_LOCKED) {
			t->core->has_mlock_future = true;
			t->core->mlock_future = MCL_FUTURE | (advice & VMA_ADVICE_LOCKONFAULT ? MCL_ONFAULT : 0);
		}
		break;
	}
	return 0;
}

static int dump_mm(struct dump_task *t)
{
	int err = dump_vmas(t);
	if (!err)
		err = dump_advice(t);
	if (!err)
		err = dump_mlock_future(t);
	return err ? err : dump_mm_fields(t);
}

/* ---- restore ---- */

/* Is file id mapped privately (its pages not written since come from the file)? */
static bool mapped_privately(const Mm *mm, uint32_t id)
{
	for (size_t i = 0; i < mm->n_vmas; i++)
		if (mm->vmas[i]->has_file_id && mm->vmas[i]->file_id == id &&
		    mm->vmas[i]->kind != VMA_KIND__VMA_FILE_SHARED)
			return true;
	return false;
}

/*
 * A mapped file is still the one saved: same size, same modification time. A time that lost
 * its fraction of a second (a copy through tar, as engines save /dev/shm, volumes and the root
 * file system's changes) is the same. A file the process maps shared only may have changed
 * (its content is the process's state, as it stands: said); one mapped privately may not (its
 * pages not written since are the file's: a changed binary or library).
 */
static int check_mapped_file(const struct run_ctx *ctx, pid_t pid, const Mm *mm, const MappedFile *f)
{
	struct stat st;
	int err;

	if (f->has_ghost_id || f->has_detached_mount)
		return 0; /* deleted: restored from ghosts.img; on a detached mount: made again */
	if (mount_nested_in(ctx, pid))
		return 0; /* in a mount namespace of its own, made when it is: checked at its open */
	if ((err = tree_stat(ctx, f->path, &st, 0))) {
		pr_err("restore pid %d: mapped file %s: %s", pid, f->path,
		       err == -EXDEV ? "leads out of the tree's root (refused)" : strerror(-err));
		return err;
	}
	uint64_t mtime = st.st_mtim.tv_sec * 1000000000ull + st.st_mtim.tv_nsec;
	if (!S_ISREG(st.st_mode)) {
		pr_err("restore pid %d: mapped file %s is no longer a regular file", pid, f->path);
		return -ESTALE;
	}
	if ((uint64_t)st.st_size != f->size) {
		pr_err("restore pid %d: mapped file %s changed since the dump: its size is %lld bytes, "
		       "was %llu", pid, f->path, (long long)st.st_size, (unsigned long long)f->size);
		return -ESTALE;
	}
	bool copied = !st.st_mtim.tv_nsec && (uint64_t)st.st_mtim.tv_sec == f->mtime_ns / 1000000000ull;
	if (mtime == f->mtime_ns || copied)
		return 0;
	char was[40], now[40];
	time_t a = f->mtime_ns / 1000000000ull, b = st.st_mtim.tv_sec;
	strftime(was, sizeof(was), "%F %T", gmtime(&a));
	strftime(now, sizeof(now), "%F %T", gmtime(&b));
	bool shared_only = !mapped_privately(mm, f->id);
	log_msg(shared_only ? LOG_WARN : LOG_ERR,
		"restore pid %d: mapped file %s changed since the dump: modified %s.%09llu UTC, "
		"was %s.%09llu UTC (same size, %llu bytes)%s\n", pid, f->path, now,
		(unsigned long long)st.st_mtim.tv_nsec, was,
		(unsigned long long)(f->mtime_ns % 1000000000ull), (unsigned long long)f->size,
		shared_only ? "; mapped shared only: the process sees it as it is now" : "");
	return shared_only ? 0 : -ESTALE;
}

static int validate_mm(struct restore_task *t)
{
	Mm *mm = t->mm;
	MmFields *m = t->core->mm;
	uint64_t prev_end = 0;

	for (size_t i = 0; i < mm->n_files; i++) {
		if (mm->files[i]->id != i) {
			pr_err("image mm-%d.img: file table out of order at %zu", t->pid, i);
			return -EINVAL;
		}
		if (!image_path_ok(mm->files[i]->path)) {
			pr_err("image mm-%d.img: mapped file %zu has no absolute path free of '..' (%s)",
			       t->pid, i, mm->files[i]->path ? mm->files[i]->path : "no path");
			return -EINVAL;
		}
	}
	for (size_t i = 0; i < mm->n_vmas; i++) {
		VmaEntry *v = mm->vmas[i];
		bool file = v->kind == VMA_KIND__VMA_FILE_PRIVATE || v->kind == VMA_KIND__VMA_FILE_SHARED;
		bool shared_anon = v->kind == VMA_KIND__VMA_ANON_SHARED || v->kind == VMA_KIND__VMA_SHMEM_PRIVATE;
		if (v->start < prev_end || v->start >= v->end || v->end > TASK_TOP ||
		    (v->start | v->end) % PAGE_SIZE || v->prot & ~7u ||
		    (file && (!v->has_file_id || v->file_id >= mm->n_files || v->pgoff % PAGE_SIZE)) ||
		    ((shared_anon || v->kind == VMA_KIND__VMA_SYSV_SHM) &&
		     (!v->has_shmem_id || v->pgoff % PAGE_SIZE)) ||
		    v->kind < VMA_KIND__VMA_ANON_PRIVATE || v->kind > VMA_KIND__VMA_IO_URING ||
		    (v->kind == VMA_KIND__VMA_IO_URING && !io_uring_vma_valid(v)) ||
		    (v->kind == VMA_KIND__VMA_HUGETLB_PRIVATE) != v->has_huge_page_size ||
		    (v->kind == VMA_KIND__VMA_PACKET_RING &&
		     (v->has_ring_fd == v->has_ring_socket || v->pgoff || v->growsdown ||
		      (v->has_ring_socket && v->ring_socket >= mm->n_ring_sockets) ||
		      (v->has_ring_fd && v->ring_fd > INT32_MAX))) ||
		    (v->advice & ~(uint32_t)VMA_ADVICE_ALL) ||
		    (vma_read_only(v) && v->prot & PROT_WRITE) ||
		    (v->advice & VMA_ADVICE_DROPPABLE && (v->kind != VMA_KIND__VMA_ANON_PRIVATE || v->growsdown))) {
			pr_err("image mm-%d.img: mapping %zu (%#llx-%#llx) is invalid", t->pid, i,
			       (unsigned long long)v->start, (unsigned long long)v->end);
			return -EINVAL;
		}
		/* a later piece of a SysV attach follows the piece before it in the segment */
		const VmaEntry *p = i ? mm->vmas[i - 1] : NULL;
		if (v->kind == VMA_KIND__VMA_SYSV_SHM && v->pgoff &&
		    (!p || p->kind != v->kind || p->shmem_id != v->shmem_id || p->end != v->start ||
		     p->pgoff + (p->end - p->start) != v->pgoff)) {
			pr_err("image mm-%d.img: mapping %zu (%#llx-%#llx) is a piece of a SysV attach "
			       "that does not follow the piece before it", t->pid, i,
			       (unsigned long long)v->start, (unsigned long long)v->end);
			return -EINVAL;
		}
		prev_end = v->end;
		if (v->has_huge_page_size &&
		    (!hugetlb_size_known(v->huge_page_size) || (v->start | v->end) % v->huge_page_size)) {
			pr_err("image mm-%d.img: mapping %zu (%#llx-%#llx) is of huge pages of %llu kB, "
			       "%s", t->pid, i, (unsigned long long)v->start, (unsigned long long)v->end,
			       (unsigned long long)v->huge_page_size >> 10,
			       hugetlb_size_known(v->huge_page_size)
				       ? "and does not lie at their boundaries"
				       : "a size this machine has no pool of (/sys/kernel/mm/hugepages)");
			return -EINVAL;
		}
		if (v->advice & VMA_ADVICE_DROPPABLE) {
			char what[96];
			snprintf(what, sizeof(what), "restore pid %d: MAP_DROPPABLE mapping %#llx-%#llx",
				 t->pid, (unsigned long long)v->start, (unsigned long long)v->end);
			int err = kernel_refuse_lacking(t->ctx, KF_MAP_DROPPABLE, what);
			if (err)
				return err;
		}
	}
	for (size_t i = 0; i < mm->n_ring_sockets; i++)
		if (!packet_ring_socket_valid(mm->ring_sockets[i])) {
			pr_err("image mm-%d.img: packet socket %zu of its mappings is invalid", t->pid, i);
			return -EINVAL;
		}
	if ((t->core->mlock_future & ~(uint32_t)(MCL_FUTURE | MCL_ONFAULT)) ||
	    (t->core->mlock_future && !(t->core->mlock_future & MCL_FUTURE))) {
		pr_err("image core-%d.img: mlockall flags %#x are not known", t->pid, t->core->mlock_future);
		return -EINVAL;
	}
	if (!m || m->n_auxv > RST_MAX_AUXV || m->n_auxv % 2 || m->exe_file_id >= mm->n_files) {
		pr_err("image core-%d.img: mm fields missing or auxv/exe out of range", t->pid);
		return -EINVAL;
	}
	return mm_check_special_layout(t);
}

/* Opened O_NOATIME where it can be: mapping a file again must not change its access time. */
static int open_mapped_low(struct restore_task *t, const MappedFile *f, int flags)
{
	if (f->has_detached_mount)
		return detached_mount_open(t->ctx, f->detached_mount, f->path, flags, t->pid, "mapped file");
	int fd = f->has_ghost_id ? ghost_open(t->ctx, f->ghost_id, flags | O_NOATIME)
				 : tree_open(t->ctx, f->path, flags | O_NOATIME, 0);

	if (fd == -EPERM)
		fd = f->has_ghost_id ? ghost_open(t->ctx, f->ghost_id, flags) : tree_open(t->ctx, f->path, flags, 0);
	return fd;
}

static int open_mapped(struct restore_task *t, const MappedFile *f, int flags)
{
	int fd = open_mapped_low(t, f, flags);

	return fd >= 0 ? restore_move_high(t, fd) : fd;
}

int mm_open_file_of(struct restore_task *t, const VmaEntry *v)
{
	if (!v->has_file_id || v->file_id >= t->mm->n_files)
		return -EINVAL;
	return open_mapped_low(t, t->mm->files[v->file_id], O_RDONLY);
}

static int open_mapped_files(struct restore_task *t)
{
	Mm *mm = t->mm;

	auto_free bool *written = xzalloc((mm->n_files + 1) * sizeof(bool)); /* mapped MAP_SHARED */
	if (!written)
		return -ENOMEM;
	for (size_t k = 0; k < mm->n_vmas; k++)
		if (mm->vmas[k]->kind == VMA_KIND__VMA_FILE_SHARED && !vma_read_only(mm->vmas[k]))
			written[mm->vmas[k]->file_id] = true;
	if (!(t->mapped_file_fds = xzalloc((mm->n_files + 1) * sizeof(int))))
		return -ENOMEM;
	for (size_t i = 0; i < mm->n_files; i++) {
		bool shared_write = written[i];
		int fd = -1;
		if (mm->files[i]->has_ghost_id) {
			/* read-only unless written through: the executable must have no writer */
			fd = open_mapped(t, mm->files[i], shared_write ? O_RDWR : O_RDONLY);
		} else {
			if (shared_write)
				fd = open_mapped(t, mm->files[i], O_RDWR);
			if (fd < 0)
				fd = open_mapped(t, mm->files[i], O_RDONLY);
		}
		if (fd < 0) {
			pr_err("restore pid %d: cannot open mapped file %s: %s", t->pid, mm->files[i]->path,
			       strerror(-fd));
			return fd;
		}
		t->mapped_file_fds[i] = fd;
	}
	t->exe_fd = t->mapped_file_fds[t->core->mm->exe_file_id];
	return 0;
}

/* Which mappings have saved pages: runs and mappings are both in address order (one walk);
 * NULL: out of memory. */
static bool *vmas_with_runs(const Mm *mm, const Pagemap *pm)
{
	bool *has = xzalloc((mm->n_vmas + 1) * sizeof(*has));

	for (size_t i = 0, r = 0; has && i < mm->n_vmas; i++) {
		while (r < pm->n_runs && pm->runs[r]->vaddr < mm->vmas[i]->start)
			r++;
		has[i] = r < pm->n_runs && pm->runs[r]->vaddr < mm->vmas[i]->end;
	}
	return has;
}

static size_t mm_args_size(const struct restore_task *t)
{
	return t->mm->n_vmas * sizeof(struct rst_vma);
}

/* Where a mapping of shared memory comes from: an fd, or stasis's mapping of the object. */
struct shmem_source {
	int fd;              /* -1: from a mapping */
	uint64_t from, len;  /* the mapping's address at the mapping's offset; mremap's old length */
};

static int fill_vma_args(struct restore_task *t, const struct shmem_source *shmem, const int *ring_fds)
{
	struct restorer_args *a = t->args;
	Mm *mm = t->mm;
	struct rst_vma *out = restorer_args_alloc(t, mm->n_vmas * sizeof(*out), &a->vmas_off);

	if (!out)
		return -ENOMEM;
	auto_free bool *has_runs = vmas_with_runs(mm, t->pagemap);
	if (!has_runs)
		return -ENOMEM;

	a->nr_vmas = 0;
	for (size_t i = 0; i < mm->n_vmas; i++) {
		VmaEntry *v = mm->vmas[i];
		struct rst_vma *r = &out[a->nr_vmas];
		const struct cow_use *shared;

		r->start = v->start;
		r->end = v->end;
		r->prot = v->prot;
		r->fd = -1;
		r->pgoff = 0;
		r->moved_from = 0;
		r->moved_len = 0;
		r->mempolicy = 0; /* (cr/mempolicy.c sets it) */
		switch (v->kind) {
		case VMA_KIND__VMA_ANON_PRIVATE:
			if ((shared = cow_use_at(t, v->start))) {
				r->moved_from = shared->temp; /* filled before the fork (cr/cow-share.c) */
				r->moved_len = v->end - v->start;
			}
			r->map_flags = (v->advice & VMA_ADVICE_DROPPABLE ? MAP_DROPPABLE : MAP_PRIVATE) |
				       MAP_ANONYMOUS | (v->growsdown ? MAP_GROWSDOWN : 0) |
				       (v->advice & VMA_ADVICE_NORESERVE ? MAP_NORESERVE : 0);
			break;
		case VMA_KIND__VMA_HUGETLB_PRIVATE: /* (filled by the blob's reads, never by copies) */
			r->map_flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB |
				       hugetlb_size_bits(v->huge_page_size) |
				       (v->advice & VMA_ADVICE_NORESERVE ? MAP_NORESERVE : 0);
			break;
		case VMA_KIND__VMA_ANON_SHARED:
		case VMA_KIND__VMA_SHMEM_PRIVATE:
			r->map_flags = v->kind == VMA_KIND__VMA_ANON_SHARED ? MAP_SHARED : MAP_PRIVATE;
			r->fd = shmem[i].fd;
			r->pgoff = v->pgoff;
			r->moved_from = shmem[i].from;
			r->moved_len = shmem[i].len;
			break;
		case VMA_KIND__VMA_SYSV_SHM:
			r->map_flags = RST_MAP_SYSV_SHM;
			r->fd = v->shmem_id;
			r->pgoff = v->pgoff; /* a later piece of an attach its first piece made */
			break;
		case VMA_KIND__VMA_FILE_PRIVATE:
		case VMA_KIND__VMA_FILE_SHARED:
			if (v->kind == VMA_KIND__VMA_FILE_PRIVATE && (shared = cow_use_at(t, v->start))) {
				r->moved_from = shared->temp; /* the same file there (cr/cow-share.c) */
				r->moved_len = v->end - v->start;
			}
			r->map_flags = v->kind == VMA_KIND__VMA_FILE_SHARED ? MAP_SHARED : MAP_PRIVATE;
			r->fd = t->mapped_file_fds[v->file_id];
			r->pgoff = v->pgoff;
			break;
		case VMA_KIND__VMA_PACKET_RING: /* the socket has its rings (its fd is restored) */
			r->map_flags = MAP_SHARED;
			r->fd = v->has_ring_fd ? (int)v->ring_fd : ring_fds[v->ring_socket];
			break;
		case VMA_KIND__VMA_IO_URING: { /* a memfd holds its memory (cr/files/io-uring.c) */
			int err = io_uring_vma_memory(t, v, &r->fd, &r->pgoff);
			if (err)
				return err;
			r->map_flags = MAP_SHARED;
			break;
		}
		default:
			continue; /* the vDSO block is moved, not mapped */
		}
		r->need_write = !(v->prot & PROT_WRITE) && has_runs[i];
		if (v->kind == VMA_KIND__VMA_SYSV_SHM) /* attached writable, then mprotect()ed */
			r->need_write = v->may_write && !(v->prot & PROT_WRITE);
		r->by_uffd = v->kind == VMA_KIND__VMA_ANON_PRIVATE && has_runs[i] && !r->moved_from;
		if (r->moved_from) /* its pages are in: its protection is set once moved */
			r->need_write = 0;
		r->advice = v->advice;
		/* memfd_secret() memory is locked by birth (its VmFlags say so); mlock() of it fails:
		 * its pages cannot be got */
		if (v->kind == VMA_KIND__VMA_ANON_SHARED && shmem_is_secret(t->ctx, v->shmem_id))
			r->advice &= ~(uint32_t)(VMA_ADVICE_LOCKED | VMA_ADVICE_LOCKONFAULT);
		a->nr_vmas++;
	}
	return 0;
}

static void fill_mm_map(struct restore_task *t)
{
	struct rst_mm_map *mp = &t->args->mm_map;
	MmFields *m = t->core->mm;

	mp->start_code = m->start_code;
	mp->end_code = m->end_code;
	mp->start_data = m->start_data;
	mp->end_data = m->end_data;
	mp->start_brk = m->start_brk;
	mp->brk = m->brk;
	mp->start_stack = m->start_stack;
	mp->arg_start = m->arg_start;
	mp->arg_end = m->arg_end;
	mp->env_start = m->env_start;
	mp->env_end = m->env_end;
	memcpy(t->args->auxv, m->auxv, m->n_auxv * 8);
	mp->auxv_size = m->n_auxv * 8;
	mp->exe_fd = t->exe_fd;
}

struct shared_vma {
	uint64_t id;
	bool read_only;
	uint64_t pgoff, len;
	size_t vma;
};

static int by_object(const void *a, const void *b)
{
	const struct shared_vma *x = a, *y = b;
	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	if (x->read_only != y->read_only)
		return x->read_only - y->read_only;
	if (x->pgoff != y->pgoff)
		return x->pgoff < y->pgoff ? -1 : 1;
	return (x->vma > y->vma) - (x->vma < y->vma);
}

/*
 * Where each mapping of one object that stasis kept as a mapping at kept (of kept_len bytes)
 * comes from: moved out of it, unless another mapping of the object in this process overlaps it
 * (then copied: mremap with an old length of 0). sv: the object's mappings, by offset.
 */
static void take_kept(const struct shared_vma *sv, size_t n, uint64_t kept, uint64_t kept_len,
		      struct shmem_source *src)
{
	uint64_t reached = 0; /* the furthest end of the mappings before */

	for (size_t k = 0; k < n; k++) {
		uint64_t end = sv[k].pgoff + sv[k].len;
		bool overlapped = (k && reached > sv[k].pgoff) || (k + 1 < n && sv[k + 1].pgoff < end);
		uint64_t inside = kept_len - sv[k].pgoff; /* (plan_kept_objects: pgoff < kept_len) */
		src[sv[k].vma] = (struct shmem_source){ -1, kept + sv[k].pgoff,
							overlapped ? 0 : sv[k].len < inside ? sv[k].len : inside };
		reached = end > reached ? end : reached;
	}
}

/*
 * Where each shared anonymous or memfd mapping comes from (one fd per object): stasis's mapping
 * of the object, if it kept it as one (cr/shmem.c), else stasis's own file of it, not a
 * reopening for writing, which for a memfd would hold write access on it as long as the mapping
 * lives (exec of the memfd refused with ETXTBSY); a reopening for reading where the mapping was
 * made from such a one (it cannot be made writable).
 */
static int open_shared_objects(struct restore_task *t, struct shmem_source *src)
{
	auto_free struct shared_vma *sv = xzalloc((t->mm->n_vmas + 1) * sizeof(*sv));
	size_t n = 0;

	if (!sv)
		return -ENOMEM;

	for (size_t i = 0; i < t->mm->n_vmas; i++) {
		VmaEntry *v = t->mm->vmas[i];
		src[i] = (struct shmem_source){ -1, 0, 0 };
		if (v->kind == VMA_KIND__VMA_ANON_SHARED || v->kind == VMA_KIND__VMA_SHMEM_PRIVATE)
			sv[n++] = (struct shared_vma){ v->shmem_id, vma_read_only(v), v->pgoff, v->end - v->start, i };
	}
	qsort(sv, n, sizeof(*sv), by_object); /* the mappings of one object side by side */
	for (size_t k = 0, group; k < n; k += group) {
		for (group = 1; k + group < n && sv[k + group].id == sv[k].id &&
				sv[k + group].read_only == sv[k].read_only;
		     group++)
			;
		uint64_t kept_len, kept = shmem_kept_mapping(t->ctx, sv[k].id, &kept_len);
		if (kept) {
			take_kept(&sv[k], group, kept, kept_len, src);
			continue;
		}
		int fd = sv[k].read_only ? shmem_open_object(t, sv[k].id, O_RDONLY) : shmem_object_file(t, sv[k].id);
		if (fd < 0) {
			pr_err("restore pid %d: cannot open shared memory object %llu of mapping %#llx: %s",
			       t->pid, (unsigned long long)sv[k].id,
			       (unsigned long long)t->mm->vmas[sv[k].vma]->start, strerror(-fd));
			return fd;
		}
		for (size_t g = 0; g < group; g++)
			src[sv[k + g].vma].fd = fd;
	}
	return 0;
}

/* The ranges stasis mapped for the tree (cr/free-range.c) stay until the blob took its
 * mappings from them: where forkers filled regions (cr/cow-share.c), the shared memory objects
 * stasis kept as mappings (cr/shmem.c). */
static int keep_reserves(struct restore_task *t)
{
	struct restorer_args *a = t->args;

	a->reserves[0].start = t->cow_reserve_start;
	a->reserves[0].len = t->cow_reserve_len;
	shmem_kept_reserve(t->ctx, &a->reserves[1].start, &a->reserves[1].len);
	for (int r = 0; r < RST_NR_RESERVES; r++) {
		uint32_t i;
		if (!a->reserves[r].len)
			continue;
		if (a->nr_keep >= sizeof(a->keep) / sizeof(a->keep[0])) {
			pr_err("restore pid %d: no room to keep the range of shared memory", t->pid);
			return -ENOSPC;
		}
		for (i = a->nr_keep++; i > 0 && a->keep[i - 1].start > a->reserves[r].start; i--)
			a->keep[i] = a->keep[i - 1]; /* (sorted by start) */
		a->keep[i].start = a->reserves[r].start;
		a->keep[i].end = a->reserves[r].start + a->reserves[r].len;
	}
	return 0;
}

/* The packet sockets whose rings are mapped and that no fd holds: made for their mappings
 * alone, above the task's fds (the blob closes them once mapped). */
static int open_ring_sockets(struct restore_task *t, int *fds)
{
	for (size_t i = 0; i < t->mm->n_ring_sockets; i++)
		if ((fds[i] = packet_ring_socket_open(t, t->mm->ring_sockets[i])) < 0)
			return fds[i];
	return 0;
}

static int restore_mm(struct restore_task *t)
{
	auto_free struct shmem_source *shmem = xzalloc((t->mm->n_vmas + 1) * sizeof(*shmem));
	auto_free int *ring_fds = xzalloc((t->mm->n_ring_sockets + 1) * sizeof(int));
	int err;

	if (!shmem || !ring_fds)
		return -ENOMEM;
	if ((err = open_mapped_files(t)) || (err = open_shared_objects(t, shmem)) ||
	    (err = open_ring_sockets(t, ring_fds)))
		return err;
	if ((err = fill_vma_args(t, shmem, ring_fds)))
		return err;
	fill_mm_map(t);
	t->args->mlock_future = t->core->mlock_future & (MCL_FUTURE | MCL_ONFAULT);
	if ((err = mm_plan_special_moves(t)))
		return err;
	return keep_reserves(t);
}

/* Once the tree's mounts exist: every mapped file is still the one saved. */
static int check_mm(struct restore_task *t)
{
	int err;

	for (size_t i = 0; i < t->mm->n_files; i++)
		if ((err = check_mapped_file(t->ctx, t->pid, t->mm, t->mm->files[i])))
			return err;
	for (size_t i = 0; i < t->mm->n_vmas; i++) {
		const VmaEntry *v = t->mm->vmas[i];
		if ((v->kind == VMA_KIND__VMA_PACKET_RING && (err = packet_ring_vma_check(t, v))) ||
		    (v->kind == VMA_KIND__VMA_IO_URING && (err = io_uring_vma_check(t, v))))
			return err;
	}
	return 0;
}

/* By stasis once the restorers are done: every process's mappings exist (one call seals all). */
static int finish_mm(struct restore_task *t)
{
	return shmem_seal_late(t->ctx);
}

const struct state_ops state_mm = {
	.name = "memory layout",
	.dump = dump_mm,
	.validate = validate_mm,
	.check = check_mm,
	.args_size = mm_args_size,
	.restore = restore_mm,
	.finish = finish_mm,
};
