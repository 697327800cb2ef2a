#ifndef STASIS_MM_H
#define STASIS_MM_H

#include <stdbool.h>
#include "task.h"

#define PARK_AREA_SIZE (64 * 1024)

bool vma_has_pages(const VmaEntry *v);
/* The VmFlags of smaps (a line's words) that madvise() and mmap() flags set: VMA_ADVICE_* bits. */
uint32_t vma_advice_of(const char *vmflags);
bool vma_kind_is_private_file(VmaKind k);
/*
 * Kinds whose pages may be one physical page in a process and the one it forked (private
 * anonymous memory, copied-on-write pages of a private file mapping): saved once, shared
 * again after the restore (cr/cow-share.c).
 */
bool vma_kind_shares_cow(VmaKind k);
/* In the new task: a new fd (not among its helper fds) on the file mapping v maps, read-only. */
int mm_open_file_of(struct restore_task *t, const VmaEntry *v);

/* cr/pages.c: runs in an ancestor's pages image must lie inside it. */
int pages_check_references(const struct restore_task *t);
/*
 * cr/pages.c: stasis' side of filling the new task's private anonymous memory; each page's
 * checksum is checked before it is copied in.
 */
int pages_copy_by_uffd(const struct restore_task *t, pid_t pid, int child_uffd);
/* In the new task: the pages images stasis opened for it moved among its helper fds (-errno). */
int pages_sources_move_high(struct restore_task *t);
/* In stasis: those images closed. */
void pages_sources_free(struct restore_task *t);
/* cr/pages.c: the runs of t checked against its mappings (no pages image opened). */
int pages_check_runs(const struct restore_task *t);

/* Where len bytes at dst of a process come from: pages-PID.img, depth links up, at off. */
struct uffd_segment {
	uint64_t dst, len;
	uint32_t depth, pid;
	uint64_t off;
	const char *src;      /* that data, mapped in this process (NULL: not mapped) */
	const uint32_t *sums; /* the checksums of every page of that image, mapped (with src) */
};
/* The pages [off, off + len) of s (mapped) against their checksums: 0, else -EIO (said). */
int pages_check_segment(const struct uffd_segment *s, uint64_t off, uint64_t len);
/* Every run of t's private anonymous memory filled through its userfaultfd (not cow_uses'). */
struct uffd_plan {
	struct uffd_segment *v;
	size_t n;
	uint64_t bytes;
	void *sources;        /* the images mapped (cr/pages.c's) */
};
/* With map, each pages image is mapped read-only until pages_uffd_plan_free (said if not). */
int pages_uffd_plan(const struct restore_task *t, bool map, struct uffd_plan *plan);
/* The runs in t's mappings taken from a region filled before the fork (cow_uses), mapped. */
int pages_cow_plan(const struct restore_task *t, struct uffd_plan *plan);
void pages_uffd_plan_free(struct uffd_plan *plan);
/*
 * cr/pages.c: the checksums of t's runs the blob reads itself (uffd_runs false), or of those
 * stasis copies through the userfaultfd (when the blob filled them alone after all).
 */
int pages_verify_runs(const struct restore_task *t, bool uffd_runs);

/* cr/vdso.c: the [vvar] [vvar_vclock] [vdso] block of the saved task against ours. */
int mm_check_special_layout(struct restore_task *t);
int mm_plan_special_moves(struct restore_task *t);

#endif
