/*
 * Which pages a process wrote since the previous dump of a chain, without soft-dirty bits:
 * its private anonymous mappings are registered with a userfaultfd of its own in
 * asynchronous write-protect mode (the kernel resolves each first write by itself and marks
 * the page written), and PAGEMAP_SCAN reads the written pages and write-protects them again
 * in one walk. The userfaultfd is made inside the process (an injected syscall) and stays
 * there between dumps, at a high fd that moves at every dump; stasis works on it through a
 * copy (pidfd_getfd).
 */
#ifndef STASIS_DIRTY_TRACK_H
#define STASIS_DIRTY_TRACK_H

#include <stdbool.h>
#include <stdint.h>

#include "addr-ranges.h"
#include "image-chain.h"
#include "task.h"

/* One process's tracking in this dump (dump_task.track). */
struct task_tracking {
	Pagemap *parent;          /* the previous dump's page table of the process (NULL: none) */
	size_t parent_hint;       /* its run the last lookup found (chain_parent_page) */
	const WriteTracking *rec; /* the tracker it names */
	struct addr_ranges tracked; /* writes tracked since the previous dump */
	struct addr_ranges written; /* pages written since it (a superset where tracked) */
	int base, base2, slots;   /* the fds trackers live at: slots from base, then from base2 if
				     >= 0 (base < 0: none here) */
	int own;                  /* the process's own tracker, in it (-1: none yet) */
	int strays;               /* trackers in it that are not its own (inherited by fork) */
	bool keep;                /* tracking goes on after this dump */
	int fd_in_task;           /* the tracker left in it, skipped by the fd table (-1: none) */
	int uffd;                 /* stasis's copy of it (-1: none) */
};

/* Per-task: tracking armed, read and written down in the pagemap (before the fds, pages). */
extern const struct state_ops state_dirty_track;
/*
 * The same in two steps, for a pre-dump that stops a process only when it must: find reads
 * what the process has (nothing is run inside it) and says whether arming it needs syscalls
 * run inside it (a tracker to make, or others to close); arm then does it all (t->inj
 * active if it needed them).
 */
int dirty_track_find(struct dump_task *t, bool *needs_inject);
int dirty_track_arm(struct dump_task *t);
/* Tree-wide: the copies stasis holds, let go when the dump is over. */
extern const struct tree_object_ops tree_dirty_track;

/* Whether fd of the dumped process is its tracker (the fd table leaves it out). */
bool dirty_track_owns_fd(const struct dump_task *t, int fd);
/*
 * Page vaddr of a private anonymous mapping is unchanged since the previous dump: where that
 * dump's chain keeps it (loc). False: it must be saved again.
 */
bool dirty_track_unchanged(const struct dump_task *t, uint64_t vaddr, struct page_loc *loc);
/*
 * A dump that failed after some process's pages were write-protected again: their tracking
 * starts over (registrations dropped), so that the next dump saves every page.
 */
void dirty_track_abort(struct dump_task *tasks, size_t n);
/* A process's tracking state, freed (its tracker's copy is closed by dirty_track_close). */
void dirty_track_free(struct task_tracking *tt);
/*
 * A dump that succeeded closes the copies of the trackers it holds only once the tree is let
 * go (dirty_track_close_later before dump_done, dirty_track_close after): closing the last
 * reference to a tracker the process no longer keeps unprotects every tracked page, a walk of
 * all of its memory, which would otherwise be frozen time.
 */
void dirty_track_close_later(struct run_ctx *ctx);
void dirty_track_close(struct run_ctx *ctx);

#endif
