/*
 * The order of creation for sessions and groups. A process's session is fixed at its fork (it
 * is its forker's) unless it calls setsid() to lead a session of its own; setpgid() only joins
 * a group that exists in the caller's own session. So a process whose session is not its
 * parent's was forked by one of these, which restore does again:
 *   - its parent, while the parent still was in that session: the parent is a session leader
 *     now that forked it before its setsid() (and was itself born in that session, likewise);
 *   - a child of its parent in that session, with CLONE_PARENT: the session's leader (alive,
 *     a zombie, or a helper standing in for a leader that is gone), or an earlier sibling.
 * A session whose leader is outside the tree can only be the one the root inherits.
 */
#include <errno.h>
#include <stdlib.h>

#include "log.h"
#include "tree-plan.h"
#include "util.h"

static ssize_t index_of(const Inventory *inv, uint32_t pid)
{
	for (size_t i = 0; i < inv->n_tree; i++)
		if (inv->tree[i]->pid == pid)
			return i;
	return -1;
}

/* Is entry k in session sid when it forks (after its setsid, or before it: born_sid)? */
static bool forks_in(const Inventory *inv, const struct tree_plan_step *plan, size_t k,
		     uint32_t sid)
{
	return inv->tree[k]->sid == sid || plan[k].born_sid == sid;
}

/* An init of a PID namespace of its own can neither fork siblings nor be forked as one. */
static bool starts_pid_ns(const Inventory *inv, size_t k)
{
	ssize_t p = index_of(inv, inv->tree[k]->ppid);
	return k == 0 || p < 0 || inv->tree[k]->n_nested_pids != inv->tree[p]->n_nested_pids;
}

/* A child of entry i's parent that can fork it in session sid as its sibling (-1: none). */
static ssize_t sibling_in(const Inventory *inv, const struct tree_plan_step *plan, size_t i,
			  uint32_t sid)
{
	ssize_t leader = index_of(inv, sid);

	if (leader > 0 && (size_t)leader != i && inv->tree[leader]->ppid == inv->tree[i]->ppid &&
	    inv->tree[leader]->sid == sid && !starts_pid_ns(inv, leader))
		return leader;
	for (size_t k = 1; k < i; k++) { /* planned already: none of them is forked by entry i */
		const TreeEntry *s = inv->tree[k];
		if (s->ppid == inv->tree[i]->ppid && s->sid == sid && s->pid != sid && !s->zombie &&
		    !s->group_helper && !plan[k].born_sid && !starts_pid_ns(inv, k))
			return k;
	}
	return -1;
}

/* Entry i has to be forked in session sid: by whom (and its ancestors, if they must be too). */
static int place_in_session(const Inventory *inv, struct tree_plan_step *plan, size_t i,
			    uint32_t sid)
{
	for (;;) {
		const TreeEntry *e = inv->tree[i];
		ssize_t p = index_of(inv, e->ppid), s;
		const TreeEntry *parent = inv->tree[p];

		if (forks_in(inv, plan, p, sid)) {
			plan[i].creator = parent->pid;
			plan[i].before_setsid = parent->sid != sid;
			return 0;
		}
		if (!starts_pid_ns(inv, i) && (s = sibling_in(inv, plan, i, sid)) >= 0) {
			plan[i].creator = inv->tree[s]->pid;
			plan[i].clone_parent = true;
			return 0;
		}
		if (p == 0 || parent->sid != parent->pid || plan[p].born_sid) {
			pr_err("restore pid %u: cannot make it again in session %u: its parent %u is in "
			       "session %u%s, and no child of %u is in session %u to fork it as a sibling",
			       e->pid, sid, parent->pid, parent->sid,
			       plan[p].born_sid ? " (and was born in another one)" : "", parent->pid, sid);
			return -EINVAL;
		}
		/* the parent leads its own session now: it forked this child before its setsid() */
		plan[p].born_sid = sid;
		plan[i].creator = parent->pid;
		plan[i].before_setsid = true;
		i = p;
	}
}

/* The session and group of entry i are ones the kernel can have made, and restore can. */
static int check_ids(const Inventory *inv, size_t i)
{
	const TreeEntry *e = inv->tree[i], *root = inv->tree[0];
	ssize_t s = index_of(inv, e->sid), g = index_of(inv, e->pgid);

	if (e->sid == e->pid && e->pgid != e->pid) {
		pr_err("image inventory.img: pid %u leads session %u but not its own group", e->pid,
		       e->sid);
		return -EINVAL;
	}
	if (!e->sid || !e->pgid)
		return 0; /* outside the tree's PID namespace: it takes its parent's */
	if (s < 0 && e->sid != root->sid) {
		pr_err("restore pid %u: its session %u is led by a process outside the tree, which "
		       "restore cannot join (only the root's session is inherited, with --shell-job)",
		       e->pid, e->sid);
		return -EINVAL;
	}
	if (s >= 0 && inv->tree[s]->sid != e->sid) {
		pr_err("image inventory.img: pid %u is in session %u, whose leader is not", e->pid,
		       e->sid);
		return -EINVAL;
	}
	if (g < 0 && e->pgid != root->pgid) {
		pr_err("restore pid %u: its process group %u is led by a process outside the tree, "
		       "which restore cannot join (only the root's group is inherited)",
		       e->pid, e->pgid);
		return -EINVAL;
	}
	if (g >= 0 && inv->tree[g]->sid != e->sid) {
		pr_err("image inventory.img: pid %u in session %u is in group %u of session %u", e->pid,
		       e->sid, e->pgid, inv->tree[g]->sid);
		return -EINVAL;
	}
	return 0;
}

int tree_plan_make(struct restore_tree *rt)
{
	const Inventory *inv = rt->inv;
	struct tree_plan_step *plan = xzalloc(inv->n_tree * sizeof(*plan));
	int err = 0;

	if (!plan)
		return -ENOMEM;
	for (size_t i = 0; i < inv->n_tree; i++)
		plan[i].creator = inv->tree[i]->ppid;
	for (size_t i = 0; i < inv->n_tree && !err; i++)
		err = check_ids(inv, i);
	for (size_t i = 1; i < inv->n_tree && !err; i++) {
		const TreeEntry *e = inv->tree[i];
		/* a session leader (or a session's helper) may be forked in any session */
		if (e->sid && e->sid != e->pid)
			err = place_in_session(inv, plan, i, e->sid);
	}
	if (err) {
		free(plan);
		return err;
	}
	free(rt->plan);
	rt->plan = plan;
	return 0;
}
