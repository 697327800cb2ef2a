/*
 * The kernel's special mappings ([vvar], [vvar_vclock], [vdso]). They are not saved: on the
 * same kernel, the new task's own block is moved as a whole to the saved addresses, so that
 * libc's pointers into the vDSO stay valid and clock_gettime keeps working.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "mm.h"
#include "restorer/restorer.h"

enum { SP_VVAR, SP_VVAR_VCLOCK, SP_VDSO, SP_COUNT };
static const char *const special_names[SP_COUNT] = { "[vvar]", "[vvar_vclock]", "[vdso]" };

struct special_set {
	uint64_t start[SP_COUNT], end[SP_COUNT];
};

static int special_index_of_kind(VmaKind k)
{
	switch (k) {
	case VMA_KIND__VMA_VVAR: return SP_VVAR;
	case VMA_KIND__VMA_VVAR_VCLOCK: return SP_VVAR_VCLOCK;
	case VMA_KIND__VMA_VDSO: return SP_VDSO;
	default: return -1;
	}
}

static void saved_specials(const Mm *mm, struct special_set *s)
{
	memset(s, 0, sizeof(*s));
	for (size_t i = 0; i < mm->n_vmas; i++) {
		int k = special_index_of_kind(mm->vmas[i]->kind);
		if (k >= 0) {
			s->start[k] = mm->vmas[i]->start;
			s->end[k] = mm->vmas[i]->end;
		}
	}
}

static int own_specials(struct special_set *s)
{
	struct proc_vmas vmas;
	int err = proc_read_layout(PROC_SELF, &vmas); /* (maps: smaps would walk every page) */

	memset(s, 0, sizeof(*s));
	if (err)
		return err;
	for (size_t i = 0; i < vmas.n; i++) {
		for (int k = 0; k < SP_COUNT; k++) {
			if (!strcmp(vmas.v[i].path, special_names[k])) {
				s->start[k] = vmas.v[i].start;
				s->end[k] = vmas.v[i].end;
			}
		}
	}
	proc_vmas_free(&vmas);
	return 0;
}

int mm_check_special_layout(struct restore_task *t)
{
	struct special_set saved, own;
	int err = own_specials(&own), anchor = -1;

	if (err)
		return err;
	saved_specials(t->mm, &saved);
	for (int k = 0; k < SP_COUNT; k++) {
		if (!saved.start[k])
			continue;
		bool same_size = own.start[k] && own.end[k] - own.start[k] == saved.end[k] - saved.start[k];
		bool same_place = anchor < 0 || saved.start[k] - saved.start[anchor] ==
							own.start[k] - own.start[anchor];
		if (!same_size || !same_place) {
			pr_err("restore pid %d: the saved %s layout differs from this kernel's "
			       "(restore on another kernel is not supported yet)",
			       t->pid, special_names[k]);
			return -ENOTSUP;
		}
		anchor = k;
	}
	return 0;
}

int mm_plan_special_moves(struct restore_task *t)
{
	struct restorer_args *a = t->args;
	struct special_set saved, own;
	uint64_t park = t->park_base;
	int err = own_specials(&own);

	if (err)
		return err;
	saved_specials(t->mm, &saved);
	a->nr_moves = 0;
	a->nr_keep = 0;
	a->keep[a->nr_keep].start = t->region_start;
	a->keep[a->nr_keep++].end = t->region_start + t->region_len;
	for (int k = 0; k < SP_COUNT; k++) {
		if (!saved.start[k] || !own.start[k])
			continue; /* not in the saved task: ours is unmapped with the rest */
		struct rst_move *m = &a->moves[a->nr_moves++];
		m->from = own.start[k];
		m->len = own.end[k] - own.start[k];
		m->to = saved.start[k];
		m->park = park;
		park += m->len;
		if (park > t->park_base + PARK_AREA_SIZE) {
			pr_err("restore pid %d: its %s block does not fit the %d bytes parked for it",
			       t->pid, special_names[k], PARK_AREA_SIZE);
			return -ENOSPC;
		}
		a->keep[a->nr_keep].start = own.start[k];
		a->keep[a->nr_keep++].end = own.end[k];
	}
	/* keep[] sorted by start for the restorer's unmap walk */
	for (uint32_t i = 1; i < a->nr_keep; i++)
		for (uint32_t j = i; j > 0 && a->keep[j].start < a->keep[j - 1].start; j--) {
			__typeof__(a->keep[0]) tmp = a->keep[j];
			a->keep[j] = a->keep[j - 1];
			a->keep[j - 1] = tmp;
		}
	return 0;
}
