/*
 * Predicates on a saved mapping (VmaEntry) that the restore of memory (mm.c) and of shared
 * memory objects (shmem.c) both ask; below both, so neither includes the other for them.
 */
#ifndef STASIS_VMA_H
#define STASIS_VMA_H

#include <stdbool.h>

#include "image.h"

/* A shared mapping made from a file opened read-only (or a SHM_RDONLY attach); images before
 * may_write was saved for files and shared memory have it writable. */
static inline bool vma_read_only(const VmaEntry *v)
{
	return v->has_may_write && !v->may_write;
}

#endif
