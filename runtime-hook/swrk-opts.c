/*
 * The criu_opts of an RPC request, field by field, onto the options struct with criu's
 * meaning. A field stasis cannot honour is refused before anything is touched, with a message
 * naming it; a field that means nothing for stasis (criu internals: cpu_cap, pre_dump_mode...)
 * is accepted as the command line accepts the same option. Fields unknown to this schema are
 * named in the log.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faces.h"
#include "log.h"
#include "swrk.h"
#include "util.h"

#define CLONE_NEWNET_FLAG 0x40000000u

char *swrk_strdup_printf(struct swrk_allocs *a, const char *fmt, ...)
{
	void **v = xreallocarray(a->v, a->n + 1, sizeof(*v));
	char *s;
	va_list ap;

	if (!v)
		return NULL;
	a->v = v;
	va_start(ap, fmt);
	s = xvasprintf(fmt, ap);
	va_end(ap);
	if (s)
		a->v[a->n++] = s;
	return s;
}

static int list_add(struct opt_list *l, const char *key, const char *value)
{
	struct opt_pair *v = xreallocarray(l->v, l->n + 1, sizeof(*v));

	if (!v)
		return -ENOMEM;
	l->v = v;
	l->v[l->n++] = (struct opt_pair){ key, value, false };
	return 0;
}

static int strings_add(struct opt_list *l, char **s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int err = list_add(l, NULL, s[i]);
		if (err)
			return err;
	}
	return 0;
}

__attribute__((format(printf, 3, 4))) static int refuse(char *msg, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(msg, len, "stasis: ");

	va_start(ap, fmt);
	vsnprintf(msg + n, len - n, fmt, ap);
	va_end(ap);
	return -EOPNOTSUPP;
}

static bool fd_open(int fd)
{
	return fd >= 0 && fcntl(fd, F_GETFD) >= 0;
}

/* What stasis cannot do yet: refused by name before anything is touched. */
static int check_refused(const CriuOpts *ro, char *msg, size_t len)
{
	if (ro->n_exec_cmd)
		return refuse(msg, len, "exec_cmd: %s", criu_option_not_built("exec-cmd"));
	if (ro->n_skip_mnt)
		return refuse(msg, len, "skip_mnt: %s", criu_option_not_built("skip-mnt"));
	if (ro->has_tls && ro->tls)
		return refuse(msg, len, "tls: %s", criu_option_not_built("tls"));
	if (ro->has_unprivileged && ro->unprivileged)
		return refuse(msg, len, "unprivileged: %s", criu_option_not_built("unprivileged"));
	if (ro->has_leave_stopped && ro->leave_stopped)
		return refuse(msg, len, "leave_stopped: leaving the tree stopped after a dump is not "
					"supported yet (leave_running or the default, killed)");
	if (ro->log_file && strchr(ro->log_file, '/'))
		return refuse(msg, len, "log_file: '%s' must be a file name in the work directory, "
					"without '/'", ro->log_file);
	if (ro->has_manage_cgroups_mode &&
	    (ro->manage_cgroups_mode < CRIU_CG_MODE__IGNORE || ro->manage_cgroups_mode > CRIU_CG_MODE__DEFAULT))
		return refuse(msg, len, "manage_cgroups_mode: unknown mode %d", ro->manage_cgroups_mode);
	if (ro->has_status_fd && !fd_open(ro->status_fd))
		return refuse(msg, len, "status_fd: fd %d is not open in the swrk process", ro->status_fd);
	for (size_t i = 0; i < ro->n_inherit_fd; i++)
		if (!fd_open(ro->inherit_fd[i]->fd))
			return refuse(msg, len, "inherit_fd: fd %d (for %s) is not open in the swrk process",
				      ro->inherit_fd[i]->fd, ro->inherit_fd[i]->key);
	if (ro->has_empty_ns && (ro->empty_ns & ~CLONE_NEWNET_FLAG))
		return refuse(msg, len, "empty_ns: 0x%x: only the network namespace (0x%x) can be left "
					"to the engine", ro->empty_ns, CLONE_NEWNET_FLAG);
	return 0;
}

/* The lists: mounts, cgroups, externals, namespaces, inherited fds. */
static int map_lists(const CriuOpts *ro, struct stasis_opts *o, struct swrk_allocs *a)
{
	int err = 0;

	for (size_t i = 0; !err && i < ro->n_ext_mnt; i++)
		err = list_add(&o->ext_mount_maps, ro->ext_mnt[i]->key, ro->ext_mnt[i]->val);
	for (size_t i = 0; !err && i < ro->n_cg_root; i++)
		err = list_add(&o->cgroup_roots, ro->cg_root[i]->ctrl && ro->cg_root[i]->ctrl[0] ?
							 ro->cg_root[i]->ctrl : NULL,
			       ro->cg_root[i]->path);
	for (size_t i = 0; !err && i < ro->n_external; i++) {
		if (!strncmp(ro->external[i], "mnt[]", 5))
			o->ext_mount_auto = true;
		err = list_add(&o->externals, NULL, ro->external[i]);
	}
	/* unix_sk_ino: criu's older spelling of external unix[INODE] */
	for (size_t i = 0; !err && i < ro->n_unix_sk_ino; i++) {
		char *e = swrk_strdup_printf(a, "unix[%u]", ro->unix_sk_ino[i]->inode);
		err = e ? list_add(&o->externals, NULL, e) : -ENOMEM;
	}
	for (size_t i = 0; !err && i < ro->n_join_ns; i++) {
		const JoinNamespace *j = ro->join_ns[i];
		const char *v = j->extra_opt ? swrk_strdup_printf(a, "%s,%s", j->ns_file, j->extra_opt)
					     : j->ns_file;
		err = v ? list_add(&o->join_ns, j->ns, v) : -ENOMEM;
	}
	for (size_t i = 0; !err && i < ro->n_veths; i++)
		err = list_add(&o->veth_pairs, ro->veths[i]->if_in, ro->veths[i]->if_out);
	if (!err)
		err = strings_add(&o->enable_fs, ro->enable_fs, ro->n_enable_fs);
	if (!err)
		err = strings_add(&o->irmap_scan_paths, ro->irmap_scan_paths, ro->n_irmap_scan_paths);
	if (!err)
		err = strings_add(&o->cgroup_dump_controllers, ro->cgroup_dump_controller,
				  ro->n_cgroup_dump_controller);
	if (!err && ro->n_inherit_fd) {
		struct inherit_fd *v = xreallocarray(o->inherit_fds, o->nr_inherit_fds + ro->n_inherit_fd,
						     sizeof(*v));
		if (!v)
			return -ENOMEM;
		o->inherit_fds = v;
		for (size_t i = 0; i < ro->n_inherit_fd; i++)
			v[o->nr_inherit_fds++] = (struct inherit_fd){ ro->inherit_fd[i]->fd,
								      ro->inherit_fd[i]->key };
	}
	return err;
}

#define MAP_BOOL(field, opt)             \
	do {                             \
		if (ro->has_##field)     \
			o->opt = ro->field; \
	} while (0)
#define MAP_STRING(field, opt)         \
	do {                           \
		if (ro->field)         \
			o->opt = ro->field; \
	} while (0)

static void map_scalars(const CriuOpts *ro, struct stasis_opts *o)
{
	if (ro->has_pid)
		o->pid = ro->pid;
	if (ro->has_log_level)
		o->verbosity = ro->log_level;
	MAP_STRING(log_file, log_file);
	MAP_STRING(root, root);
	MAP_BOOL(leave_running, leave_running);
	MAP_BOOL(ext_unix_sk, ext_unix_sk);
	MAP_BOOL(tcp_established, tcp_established);
	MAP_BOOL(tcp_skip_in_flight, skip_in_flight);
	MAP_BOOL(tcp_close, tcp_close);
	MAP_BOOL(evasive_devices, evasive_devices);
	MAP_BOOL(shell_job, shell_job);
	MAP_BOOL(file_locks, file_locks);
	MAP_BOOL(auto_dedup, auto_dedup);
	MAP_BOOL(track_mem, track_mem);
	MAP_BOOL(lazy_pages, lazy_pages);
	MAP_STRING(parent_img, prev_images_dir); /* relative to the images directory, as criu's */
	MAP_BOOL(link_remap, link_remap);
	MAP_BOOL(force_irmap, force_irmap);
	MAP_BOOL(allow_uprobes, allow_uprobes);
	MAP_BOOL(auto_ext_mnt, ext_mount_auto);
	MAP_BOOL(ext_sharing, enable_external_sharing);
	MAP_BOOL(ext_masters, enable_external_masters);
	MAP_BOOL(weak_sysctls, weak_sysctls);
	MAP_BOOL(orphan_pts_master, orphan_pts_master);
	MAP_BOOL(mntns_compat_mode, mntns_compat_mode);
	MAP_BOOL(display_stats, display_stats);
	MAP_BOOL(rst_sibling, restore_sibling);
	MAP_STRING(freeze_cgroup, freeze_cgroup);
	MAP_STRING(cgroup_props, cgroup_props);
	MAP_STRING(cgroup_props_file, cgroup_props_file);
	MAP_STRING(cgroup_yard, cgroup_yard);
	MAP_STRING(lsm_profile, lsm_profile);
	MAP_STRING(lsm_mount_context, lsm_mount_context);
	if (ro->ps) { /* a dump's pages to the page server there (or on the engine's socket fd) */
		o->page_server = true;
		o->ps_address = ro->ps->address;
		o->ps_port = ro->ps->has_port ? ro->ps->port : 0;
		o->ps_socket = ro->ps->has_fd ? ro->ps->fd : -1;
	}
	if (ro->has_ghost_limit)
		o->ghost_limit = ro->ghost_limit;
	if (ro->has_timeout)
		o->timeout = ro->timeout;
	if (ro->has_empty_ns)
		o->empty_ns = ro->empty_ns;
	if (ro->has_status_fd)
		o->status_fd = ro->status_fd;
	if (ro->has_network_lock)
		o->network_lock_skip = ro->network_lock == CRIU_NETWORK_LOCK_METHOD__SKIP;
	/* manage_cgroups alone is criu's older spelling of the soft mode */
	if (ro->has_manage_cgroups && ro->manage_cgroups) {
		o->manage_cgroups = true;
		o->cgroup_mode = CG_MODE_SOFT;
	}
	if (ro->has_manage_cgroups_mode) {
		o->manage_cgroups = true;
		o->cgroup_mode = ro->manage_cgroups_mode == CRIU_CG_MODE__DEFAULT
					 ? CG_MODE_SOFT
					 : (enum cgroup_mode)ro->manage_cgroups_mode;
	}
	/*
	 * Accepted without effect, as their command-line options are: cpu_cap (the restore checks
	 * the xsave layout itself), pre_dump_mode (pre-dumps always read the memory of the running
	 * tree) and pidfd_store_sk (a pid used again between rounds is told by its start time),
	 * file_validation_method,
	 * skip_file_rwx_check, ghost_fiemap (deleted files keep their holes),
	 * tls_no_cn_verify (with the page server only).
	 */
}

int swrk_opts_map(const CriuOpts *ro, struct stasis_opts *o, struct swrk_allocs *a, char *msg,
		  size_t len)
{
	int err;

	if ((err = check_refused(ro, msg, len)))
		return err;
	for (size_t i = 0; i < ro->base.n_unknown_fields; i++)
		pr_warn("criu_opts field %u is not known to stasis and has no effect",
			ro->base.unknown_fields[i].tag);
	map_scalars(ro, o);
	if ((err = map_lists(ro, o, a))) {
		snprintf(msg, len, "stasis: out of memory for the request's options");
		return err;
	}
	return 0;
}
