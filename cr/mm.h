#ifndef STASIS_MM_H
#define STASIS_MM_H

#include <stdbool.h>
#include "task.h"

#define PARK_AREA_SIZE (64 * 1024)

bool vma_kind_has_pages(VmaKind k);
bool vma_kind_is_private_file(VmaKind k);

/* cr/pages.c: runs in an ancestor's pages image must lie inside it. */
int pages_check_references(const struct restore_task *t);
/*
 * cr/pages.c: stasis' side of filling the new task's private anonymous memory; each page's
 * checksum is checked before it is copied in.
 */
int pages_copy_by_uffd(const struct restore_task *t, pid_t pid, int child_uffd);
/*
 * cr/pages.c: the checksums of t's runs the blob reads itself (uffd_runs false), or of those
 * stasis copies through the userfaultfd (when the blob filled them alone after all).
 */
int pages_verify_runs(const struct restore_task *t, bool uffd_runs);

/* cr/vdso.c: the [vvar] [vvar_vclock] [vdso] block of the saved task against ours. */
int mm_check_special_layout(struct restore_task *t);
int mm_plan_special_moves(struct restore_task *t);

#endif
