/*
 * The order of creation for sessions and groups. A process's session is fixed at its fork (it
 * is its forker's) unless it calls setsid() to lead a session of its own; setpgid() only joins
 * a group that exists in the caller's own session. So a process whose session is not its
 * parent's was forked by one of these, which restore does again:
 *   - its parent, while the parent still was in that session: the parent is a session leader
 *     now that forked it before its setsid() (and was itself born in that session, likewise);
 *   - a child of its parent in that session, with CLONE_PARENT: the session's leader (alive,
 *     a zombie, or a helper standing in for a leader that is gone), or an earlier sibling;
 *   - a process of that session that died below its parent, a subreaper then (on restore: a
 *     helper or a zombie, forked below the parent; the parent is a subreaper until its
 *     orphans have come, and the helper dies once every subreaper between them is done).
 * Helpers may stand under any parent of their members: each way is tried.
 * When none of these is left in the tree (the process that forked it in that session has
 * exited and was reaped, and it went up to its parent as an orphan), restore adds a helper of
 * its own: forked in that session by a live member below the parent (its leader first), it
 * forks the process and is killed, so that the process goes up to its parent as it once did
 * (add_lifter).
 * A session whose leader is outside the tree can only be the one the root inherits.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "log.h"
#include "tree-plan.h"
#include "util.h"

ssize_t tree_entry_index(const Inventory *inv, uint32_t pid)
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
	ssize_t p = tree_entry_index(inv, inv->tree[k]->ppid);
	return k == 0 || p < 0 || inv->tree[k]->n_nested_pids != inv->tree[p]->n_nested_pids;
}

static bool stand_in(const TreeEntry *e)
{
	return e->zombie || e->group_helper;
}

bool tree_plan_lifted(const struct restore_tree *rt, pid_t pid)
{
	ssize_t k = tree_entry_index(rt->inv, pid);
	return k >= 0 && rt->plan[k].lift;
}

ssize_t tree_plan_forked_under(const Inventory *inv, const struct tree_plan_step *plan, size_t k)
{
	for (size_t n = 0; n <= inv->n_tree; n++) {
		ssize_t c = tree_entry_index(inv, plan[k].creator);
		if (k == 0 || c < 0)
			return -1;
		if (!plan[k].clone_parent)
			return c;
		k = c;
	}
	return -1; /* a loop */
}

bool tree_plan_forked_below(const Inventory *inv, const struct tree_plan_step *plan, size_t k,
			 size_t anc)
{
	for (size_t n = 0; n <= inv->n_tree; n++) {
		ssize_t up = tree_plan_forked_under(inv, plan, k);
		if (up < 0)
			return false;
		if ((size_t)up == anc)
			return true;
		k = up;
	}
	return false;
}

/* Is entry k made by entry i, as planned so far (its creator's creator, ... is i)? */
static bool made_by(const Inventory *inv, const struct tree_plan_step *plan, size_t k, size_t i)
{
	for (size_t n = 0; n <= inv->n_tree; n++) {
		ssize_t c = tree_entry_index(inv, plan[k].creator);
		if (k == 0 || c < 0)
			return false;
		if ((size_t)c == i)
			return true;
		k = c;
	}
	return true; /* a loop */
}

#define MAX_BANS 16

struct planner {
	const Inventory *inv;
	struct tree_plan_step *plan;
	uint32_t *need; /* per entry: the session it has to be forked in (0: any) */
	bool *placed;
	size_t stuck;   /* plan_tree failed: the first entry it could not place, */
	uint32_t stuck_sid; /* in the session it had to be forked in */
	/* creators an entry may not have: chosen once, a later choice made the plan break */
	struct { uint32_t pid, creator; } bans[MAX_BANS];
	size_t n_bans;
};

/* May entry i be forked by entry c? */
static bool may_fork(const struct planner *pl, size_t i, size_t c)
{
	for (size_t b = 0; b < pl->n_bans; b++)
		if (pl->bans[b].pid == pl->inv->tree[i]->pid && pl->bans[b].creator == pl->inv->tree[c]->pid)
			return false;
	return !made_by(pl->inv, pl->plan, c, i);
}

/* A child of entry i's parent that can fork it in session sid as its sibling (-1: none). */
static ssize_t sibling_in(const struct planner *pl, size_t i, uint32_t sid)
{
	const Inventory *inv = pl->inv;
	const struct tree_plan_step *plan = pl->plan;
	ssize_t leader = tree_entry_index(inv, sid);

	if (leader > 0 && (size_t)leader != i && inv->tree[leader]->ppid == inv->tree[i]->ppid &&
	    inv->tree[leader]->sid == sid && !plan[leader].lift && !starts_pid_ns(inv, leader) &&
	    may_fork(pl, i, leader))
		return leader;
	for (size_t k = 1; k < i; k++) { /* planned already: none of them is forked by entry i */
		const TreeEntry *s = inv->tree[k];
		if (s->ppid == inv->tree[i]->ppid && s->sid == sid && s->pid != sid && !stand_in(s) &&
		    !plan[k].born_sid && !plan[k].lift && !starts_pid_ns(inv, k) && may_fork(pl, i, k))
			return k;
	}
	return -1;
}

/*
 * A process of session sid that dies on restore (a helper or a zombie) and is forked below
 * entry i's parent: forked by it, entry i goes to that parent when it dies (-1: none).
 */
static ssize_t lifter_in(const struct planner *pl, size_t i, uint32_t sid)
{
	const Inventory *inv = pl->inv;
	const struct tree_plan_step *plan = pl->plan;
	ssize_t p = tree_entry_index(inv, inv->tree[i]->ppid);

	for (size_t d = 1; d < inv->n_tree; d++) {
		bool other_parent = false; /* its orphans all go to one: the nearest subreaper */
		if (d == i || !stand_in(inv->tree[d]) || inv->tree[d]->sid != sid ||
		    !may_fork(pl, i, d) || !tree_plan_forked_below(inv, plan, d, p))
			continue;
		for (size_t k = 1; k < inv->n_tree; k++)
			other_parent |= plan[k].lift && plan[k].creator == inv->tree[d]->pid &&
					inv->tree[k]->ppid != inv->tree[i]->ppid;
		if (!other_parent)
			return d;
	}
	return -1;
}

/* Places entry i in its session: 0 done, 1 not now, or (born allowed) through its parent. */
static int try_place(struct planner *pl, size_t i, bool born)
{
	const Inventory *inv = pl->inv;
	struct tree_plan_step *plan = pl->plan;
	uint32_t sid = pl->need[i];
	ssize_t p = tree_entry_index(inv, inv->tree[i]->ppid), s;
	const TreeEntry *parent = inv->tree[p];

	plan[i] = (struct tree_plan_step){ .creator = parent->pid, .born_sid = plan[i].born_sid };
	if (forks_in(inv, plan, p, sid) && may_fork(pl, i, p)) {
		plan[i].before_setsid = parent->sid != sid;
		return 0;
	}
	if (!starts_pid_ns(inv, i) && (s = sibling_in(pl, i, sid)) >= 0) {
		plan[i].creator = inv->tree[s]->pid;
		plan[i].clone_parent = true;
		return 0;
	}
	if (!starts_pid_ns(inv, i) && (s = lifter_in(pl, i, sid)) >= 0) {
		plan[i].creator = inv->tree[s]->pid;
		plan[i].lift = true;
		return 0;
	}
	if (!born || p == 0 || parent->sid != parent->pid || plan[p].born_sid)
		return 1;
	/* the parent leads its own session now: it forked this child before its setsid() */
	plan[p].born_sid = sid;
	plan[i].before_setsid = true;
	pl->need[p] = sid;
	pl->placed[p] = false;
	return 0;
}

/*
 * Every process is forked below the root, a lifted one below its parent, a sibling by one not
 * lifted, and a dying process's orphans all go to one parent: -1, or an entry whose place
 * breaks this (a later choice moved its creator).
 */
static ssize_t plan_breaks(const Inventory *inv, const struct tree_plan_step *plan)
{
	for (size_t i = 1; i < inv->n_tree; i++) {
		ssize_t p = tree_entry_index(inv, inv->tree[i]->ppid), c = tree_entry_index(inv, plan[i].creator);
		if (!tree_plan_forked_below(inv, plan, i, 0) || (plan[i].clone_parent && plan[c].lift) ||
		    (plan[i].lift && !tree_plan_forked_below(inv, plan, c, p)))
			return i;
		for (size_t k = 1; plan[i].lift && k < i; k++)
			if (plan[k].lift && plan[k].creator == plan[i].creator &&
			    inv->tree[k]->ppid != inv->tree[i]->ppid)
				return i;
	}
	return -1;
}

/*
 * Entry i could not be placed. If only because a child of its was to be forked before i's
 * setsid() (the last resort of try_place), the child is the one to place another way (by a
 * helper of restore's own, add_lifter): i itself was in its own session all along.
 */
static size_t stuck_child(const struct planner *pl, size_t i)
{
	const Inventory *inv = pl->inv;

	for (size_t k = 1; pl->plan[i].born_sid && k < inv->n_tree; k++)
		if (inv->tree[k]->ppid == inv->tree[i]->pid && pl->plan[k].before_setsid &&
		    pl->plan[k].creator == inv->tree[i]->pid && pl->need[k] == pl->plan[i].born_sid)
			return k;
	return i;
}

/*
 * One try with the helpers where they are: 0, 1 with *stuck the entry it cannot place, or 2
 * with *stuck an entry whose place the others' broke.
 */
static int plan_once(struct planner *pl, size_t *stuck)
{
	const Inventory *inv = pl->inv;
	bool progress = true;
	ssize_t broken;

	for (size_t i = 0; i < inv->n_tree; i++) {
		const TreeEntry *e = inv->tree[i];
		pl->plan[i] = (struct tree_plan_step){ .creator = e->ppid };
		/* a session leader (or a session's helper) may be forked in any session */
		pl->need[i] = e->sid != e->pid ? e->sid : 0;
		pl->placed[i] = i == 0 || !pl->need[i];
	}
	while (progress) {
		progress = false;
		for (int born = 0; born < 2 && !progress; born++)
			for (size_t i = 1; i < inv->n_tree && !(born && progress); i++)
				if (!pl->placed[i] && !try_place(pl, i, born))
					progress = pl->placed[i] = true;
	}
	for (size_t i = 1; i < inv->n_tree; i++)
		if (!pl->placed[i]) {
			*stuck = stuck_child(pl, i);
			return 1;
		}
	if ((broken = plan_breaks(inv, pl->plan)) < 0)
		return 0;
	*stuck = broken;
	return 2;
}

#define MAX_LIFTERS 8

/* Is entry k below entry anc in the tree (its parents, up)? */
static bool below(const Inventory *inv, size_t k, size_t anc)
{
	for (size_t n = 0; n <= inv->n_tree && k; n++) {
		ssize_t up = tree_entry_index(inv, inv->tree[k]->ppid);
		if (up < 0)
			return false;
		if ((size_t)up == anc)
			return true;
		k = up;
	}
	return false;
}

/* Does a process, session or group of the tree have id pid? */
static bool tree_id(const Inventory *inv, uint32_t pid)
{
	for (size_t i = 0; i < inv->n_tree; i++)
		if (inv->tree[i]->pid == pid || inv->tree[i]->sid == pid || inv->tree[i]->pgid == pid)
			return true;
	return false;
}

/* A number from /proc/sys/kernel (its PID namespace's, for pid files), or dflt. */
static long kernel_knob(const char *name, long dflt)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/sys/kernel/%s", name);
	auto_free char *text = read_file_at(AT_FDCWD, path, NULL);
	return text ? atol(text) : dflt;
}

/*
 * A pid for a helper of restore's own: no process, session or group of the tree has it, and
 * (the tree in the host's PID namespace) no process of the host. There, half the pid range
 * away from the last pid the kernel gave: neither a pid it gives next (it goes upwards, and
 * stasis forks too while it restores) nor one freed of late (another restore may make it
 * again, as this one does the tree's).
 */
static uint32_t unused_pid(const Inventory *inv)
{
	uint32_t high = 1;
	bool own_ns = inv->has_pid_ns && inv->pid_ns;
	long max = kernel_knob("pid_max", 32768), last = kernel_knob("ns_last_pid", 300);

	for (size_t i = 0; i < inv->n_tree; i++) {
		const TreeEntry *e = inv->tree[i];
		high = e->pid > high ? e->pid : high;
		high = e->sid > high ? e->sid : high;
		high = e->pgid > high ? e->pgid : high;
	}
	for (long n = 0, span = max - 301; !own_ns && span > 0 && n < span; n++) {
		uint32_t pid = 301 + (last + span / 2 + n) % span;
		if (!tree_id(inv, pid) && kill(pid, 0) && errno == ESRCH)
			return pid;
	}
	while (++high < (1u << 22) && !own_ns && (kill(high, 0) == 0 || errno != ESRCH))
		;
	return high;
}

/* Can live entry k of session sid fork a helper below entry i's parent p, not below i? */
static bool can_host(const Inventory *inv, size_t k, size_t i, ssize_t p, uint32_t sid)
{
	const TreeEntry *m = inv->tree[k];
	return p >= 0 && k != i && m->sid == sid && !stand_in(m) && !m->n_nested_pids &&
	       below(inv, k, p) && !below(inv, k, i);
}

/*
 * Entry i cannot be forked in session sid (its own, or the one it forked children in before
 * its setsid): the process of that session that forked it has exited and was reaped, and it
 * went up to its parent as an orphan. A helper of that session (a group of its own for a
 * moment), forked by a live member below the parent, stands for that process: added at the
 * end of the tree (1), or 0 if there is no such member.
 */
static int add_lifter(Inventory *inv, size_t i, uint32_t sid)
{
	const TreeEntry *e = inv->tree[i];
	ssize_t p = tree_entry_index(inv, e->ppid), host = tree_entry_index(inv, sid);
	TreeEntry *h, **more;

	/* the session's leader first: it is forked in any session, by its own parent */
	if (host <= 0 || !can_host(inv, host, i, p, sid))
		host = -1;
	for (size_t k = 1; k < inv->n_tree && host < 0; k++)
		if (can_host(inv, k, i, p, sid))
			host = k;
	if (host < 0 || e->n_nested_pids)
		return 0;
	uint32_t pid = unused_pid(inv);
	if (!(h = xzalloc(sizeof(*h))) || !(more = xreallocarray(inv->tree, inv->n_tree + 1, sizeof(*more)))) {
		free(h);
		return -ENOMEM;
	}
	inv->tree = more;
	tree_entry__init(h);
	h->pid = h->pgid = pid;
	h->ppid = inv->tree[host]->pid;
	h->sid = sid;
	h->has_group_helper = h->group_helper = true;
	inv->tree[inv->n_tree++] = h;
	pr_debug("restore pid %u: helper %u, forked by %u in session %u, forks it as an orphan for its "
		 "parent %u", e->pid, h->pid, h->ppid, sid, e->ppid);
	return 1;
}

#define MAX_PLACEMENTS 256

/*
 * Tries the helpers under each parent of their members (the dump's place first), up to 256
 * ways in all: 0, or -EAGAIN with pl->stuck and pl->stuck_sid (of the first way; stuck 0: no
 * entry in particular).
 */
static int plan_tree(struct planner *pl)
{
	const Inventory *inv = pl->inv;
	size_t nh = 0, ways = 1, stuck = 0;
	size_t helpers[8], nc[8];
	uint32_t cands[8][4];

	for (size_t h = 1; h < inv->n_tree && nh < 8; h++) {
		const TreeEntry *e = inv->tree[h];
		if (!e->group_helper)
			continue;
		cands[nh][0] = e->ppid;
		nc[nh] = 1;
		for (size_t m = 1; m < inv->n_tree && nc[nh] < 4; m++) {
			const TreeEntry *x = inv->tree[m];
			bool dup = false;
			if (stand_in(x) || (e->sid == e->pid ? x->sid : x->pgid) != e->pid)
				continue;
			for (size_t k = 0; k < nc[nh]; k++)
				dup |= cands[nh][k] == x->ppid;
			if (!dup && ways * (nc[nh] + 1) <= MAX_PLACEMENTS)
				cands[nh][nc[nh]++] = x->ppid;
		}
		ways *= nc[nh];
		helpers[nh++] = h;
	}
	for (size_t w = 0; w < ways; w++) {
		for (size_t k = 0, r = w; k < nh; r /= nc[k], k++)
			inv->tree[helpers[k]]->ppid = cands[k][r % nc[k]];
		int err;
		pl->n_bans = 0;
		/* a broken place: that creator is banned for that entry, and the plan made again */
		while ((err = plan_once(pl, &stuck)) == 2 && pl->n_bans < MAX_BANS) {
			pl->bans[pl->n_bans].pid = inv->tree[stuck]->pid;
			pl->bans[pl->n_bans++].creator = pl->plan[stuck].creator;
		}
		if (!err)
			return 0;
		if (err == 2)
			stuck = 0;
		if (w == 0) {
			pl->stuck = stuck;
			pl->stuck_sid = pl->need[stuck];
		}
	}
	for (size_t k = 0; k < nh; k++)
		inv->tree[helpers[k]]->ppid = cands[k][0];
	return -EAGAIN;
}

/* Why plan_tree found no order: the entry it could not place. */
static int say_stuck(const struct planner *pl)
{
	const Inventory *inv = pl->inv;
	const TreeEntry *e = inv->tree[pl->stuck], *parent = inv->tree[tree_entry_index(inv, e->ppid)];

	if (!pl->stuck)
		pr_err("restore: no order of creation rebuilds the tree's sessions");
	else
		pr_err("restore pid %u: cannot make it again in session %u: its parent %u is in "
		       "session %u, and no process of session %u can fork it for that parent (as its "
		       "child, its sibling, or a helper's orphan)",
		       e->pid, pl->stuck_sid, parent->pid, parent->sid, pl->stuck_sid);
	return -EINVAL;
}

/* The session and group of entry i are ones the kernel can have made, and restore can. */
static int check_ids(const Inventory *inv, size_t i)
{
	const TreeEntry *e = inv->tree[i], *root = inv->tree[0];
	ssize_t s = tree_entry_index(inv, e->sid), g = tree_entry_index(inv, e->pgid);

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
	/* (a group led from outside the tree: see join_own_group()) */
	if (g >= 0 && inv->tree[g]->sid != e->sid) {
		pr_err("image inventory.img: pid %u in session %u is in group %u of session %u", e->pid,
		       e->sid, e->pgid, inv->tree[g]->sid);
		return -EINVAL;
	}
	return 0;
}

int tree_plan_make(struct restore_tree *rt)
{
	Inventory *inv = rt->inv;
	struct planner pl = { .inv = inv };
	int err = 0;

	for (size_t i = 0; i < inv->n_tree && !err; i++)
		err = check_ids(inv, i);
	uint32_t lifted_pid = 0, lifted_sid = 0; /* the last entry a helper was added for */
	for (unsigned lifters = 0; !err; lifters++) {
		size_t n = inv->n_tree;
		free(pl.need);
		free(pl.placed);
		free(pl.plan);
		pl.need = xzalloc(n * sizeof(*pl.need));
		pl.placed = xzalloc(n * sizeof(*pl.placed));
		pl.plan = xzalloc(n * sizeof(*pl.plan));
		if (!pl.need || !pl.placed || !pl.plan)
			err = -ENOMEM;
		else if ((err = plan_tree(&pl)) != -EAGAIN)
			break;
		/* one more helper, unless the last one did not help this entry */
		else if (lifters == MAX_LIFTERS || !pl.stuck ||
			 (inv->tree[pl.stuck]->pid == lifted_pid && pl.stuck_sid == lifted_sid) ||
			 !(err = add_lifter(inv, pl.stuck, pl.stuck_sid)))
			err = say_stuck(&pl);
		else if (err == 1) {
			lifted_pid = inv->tree[pl.stuck]->pid;
			lifted_sid = pl.stuck_sid;
			err = 0;
		}
	}
	free(pl.need);
	free(pl.placed);
	if (err) {
		free(pl.plan);
		return err;
	}
	size_t n = inv->n_tree;
	bool lifts = false;
	for (size_t i = 0; i < n; i++) {
		ssize_t p = tree_entry_index(inv, inv->tree[i]->ppid), c = tree_entry_index(inv, pl.plan[i].creator);
		if (pl.plan[i].creator != inv->tree[i]->ppid || pl.plan[i].born_sid)
			pr_debug("restore pid %u: forked by %u%s%s%s, born in session %u", inv->tree[i]->pid,
				 pl.plan[i].creator, pl.plan[i].clone_parent ? " as its sibling" : "",
				 pl.plan[i].lift ? " as an orphan to be" : "",
				 pl.plan[i].before_setsid ? " before its setsid" : "", pl.plan[i].born_sid);
		if (!pl.plan[i].lift)
			continue;
		lifts = pl.plan[p].lift_target = pl.plan[c].has_orphans = true;
	}
	if (lifts) {
		uint8_t *board = mmap(NULL, 2 * n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (board == MAP_FAILED) {
			free(pl.plan);
			return -ENOMEM;
		}
		rt->lift_done = board;
		rt->lift_came = board + n;
	}
	free(rt->plan);
	rt->plan = pl.plan;
	return 0;
}
