/*
 * criu's command-line options, every one of them, as one table: engines and scripts pass
 * them (LXC passes a dozen on every dump), so each is accepted with criu's spelling and
 * meaning and lands in the options struct; whether the engine can honour it for a given tree
 * is the engine's to say (cr/run.c), naming the option. Boolean options also take criu's
 * "--no-" prefix. The same table reads configuration files (criu's format: one option per
 * line without its dashes, "#" comments, arguments optionally in double quotes).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "faces.h"
#include "log.h"
#include "util.h"

enum arg_type {
	ARG_BOOL,     /* sets the bool at off ("--no-NAME" clears it) */
	ARG_STRING,   /* keeps the argument at off */
	ARG_INT,      /* a number at off */
	ARG_LIST,     /* appends KEY:VALUE (or just a value) to the list at off */
	ARG_FUNC,     /* parse() does it */
	ARG_IGNORED,  /* accepted, meaningless here (said once at -v3) */
	ARG_NOT_BUILT, /* criu's, for a feature stasis lacks: refused, saying what is missing */
};

struct cli_option {
	const char *name;
	int has_arg; /* no_argument, required_argument, optional_argument */
	char short_name;
	enum arg_type type;
	size_t off;
	int (*parse)(struct stasis_opts *o, const char *arg);
	char sep; /* ARG_LIST: what splits key from value (0: none) */
};

#define O(field) offsetof(struct stasis_opts, field)

/* What stasis lacks for each ARG_NOT_BUILT option (by its name's start); the RPC says the same. */
static const char *const not_built[][2] = {
	{ "stream", "streaming images (criu-image-streamer) is not supported yet" },
	{ "remote", "streaming images (criu-image-streamer) is not supported yet" },
	{ "tls", "TLS between the dump and the page server is not supported yet" },
	{ "skip-mnt", "leaving mounts out of a dump is not supported yet (--external mnt[PATH]:KEY keeps one "
		      "outside)" },
	{ "unprivileged", "stasis needs to run as root (CAP_SYS_ADMIN)" },
	{ "exec-cmd", "running a command in place of stasis once the tree is restored is not supported yet" },
};

const char *criu_option_not_built(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(not_built); i++)
		if (!strncmp(name, not_built[i][0], strlen(not_built[i][0])))
			return not_built[i][1];
	return NULL;
}

static int list_add(struct opt_list *l, const char *arg, char sep)
{
	struct opt_pair *v = xreallocarray(l->v, l->n + 1, sizeof(*v));
	const char *cut = sep ? strchr(arg, sep) : NULL;

	if (!v)
		return -ENOMEM;
	l->v = v;
	if (cut) {
		char *key = xmalloc(cut - arg + 1);
		if (!key)
			return -ENOMEM;
		memcpy(key, arg, cut - arg);
		key[cut - arg] = 0;
		l->v[l->n++] = (struct opt_pair){ key, cut + 1, true };
	} else {
		l->v[l->n++] = (struct opt_pair){ NULL, arg, false };
	}
	return 0;
}

static int parse_verbosity(struct stasis_opts *o, const char *arg)
{
	if (!arg)
		o->verbosity++;
	else if (arg[0] == 'v') /* -vvv */
		o->verbosity += 1 + strspn(arg, "v");
	else
		o->verbosity = atoi(arg);
	return 0;
}

static int parse_pid(struct stasis_opts *o, const char *arg)
{
	char *end;
	long pid = strtol(arg, &end, 10);

	if (*end || pid <= 0 || pid > (1 << 22)) {
		fprintf(stderr, "stasis: -t %s: not a pid\n", arg);
		return -EINVAL;
	}
	o->pid = pid;
	return 0;
}

/* --inherit-fd fd[N]:KEY (criu's spelling): the caller's fd N replaces the outside object KEY. */
static int parse_inherit_fd(struct stasis_opts *o, const char *arg)
{
	int fd, len = -1;
	struct inherit_fd *v;

	if (sscanf(arg, "fd[%d]:%n", &fd, &len) != 1 || len < 0 || fd < 0 || !arg[len]) {
		fprintf(stderr, "stasis: --inherit-fd %s: expected fd[N]:KEY, e.g. fd[3]:socket:[12345]\n", arg);
		return -EINVAL;
	}
	if (fcntl(fd, F_GETFD) < 0) {
		fprintf(stderr, "stasis: --inherit-fd %s: fd %d is not open\n", arg, fd);
		return -EBADF;
	}
	v = xreallocarray(o->inherit_fds, o->nr_inherit_fds + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	o->inherit_fds = v;
	o->inherit_fds[o->nr_inherit_fds++] = (struct inherit_fd){ fd, arg + len };
	return 0;
}

static const struct {
	const char *name;
	enum cgroup_mode mode;
} cgroup_modes[] = {
	{ "ignore", CG_MODE_IGNORE }, { "none", CG_MODE_NONE }, { "props", CG_MODE_PROPS },
	{ "soft", CG_MODE_SOFT },     { "full", CG_MODE_FULL }, { "strict", CG_MODE_STRICT },
};

static int parse_manage_cgroups(struct stasis_opts *o, const char *arg)
{
	o->manage_cgroups = true;
	o->cgroup_mode = CG_MODE_SOFT;
	if (!arg)
		return 0;
	for (size_t i = 0; i < sizeof(cgroup_modes) / sizeof(cgroup_modes[0]); i++) {
		if (!strcmp(arg, cgroup_modes[i].name)) {
			o->cgroup_mode = cgroup_modes[i].mode;
			return 0;
		}
	}
	fprintf(stderr, "stasis: --manage-cgroups=%s: unknown mode (none, props, soft, full, strict, "
			"ignore)\n", arg);
	return -EINVAL;
}

/* --cgroup-root [CONTROLLER:]PATH */
static int parse_cgroup_root(struct stasis_opts *o, const char *arg)
{
	return list_add(&o->cgroup_roots, arg, arg[0] == '/' ? 0 : ':');
}

/* --ext-mount-map KEY:VALUE, or "auto" (criu's --external mnt[]) */
static int parse_ext_mount_map(struct stasis_opts *o, const char *arg)
{
	if (!strcmp(arg, "auto")) {
		o->ext_mount_auto = true;
		return 0;
	}
	if (!strchr(arg, ':')) {
		fprintf(stderr, "stasis: --ext-mount-map %s: expected KEY:VALUE or auto\n", arg);
		return -EINVAL;
	}
	return list_add(&o->ext_mount_maps, arg, ':');
}

/*
 * --external TYPE[ID]:VALUE (or KEY:VALUE, as LXC passes "console:"); kept as given and
 * matched where an object of the kind is met. mnt[] (every external mount) also turns mount
 * auto-detection on.
 */
static int parse_external(struct stasis_opts *o, const char *arg)
{
	if (!*arg) {
		fprintf(stderr, "stasis: --external: expected TYPE[ID]:VALUE\n");
		return -EINVAL;
	}
	if (!strncmp(arg, "mnt[]", 5))
		o->ext_mount_auto = true;
	return list_add(&o->externals, arg, 0);
}

/* SIZE with an optional K, M or G. */
static int parse_ghost_limit(struct stasis_opts *o, const char *arg)
{
	char *end;
	unsigned long long v = strtoull(arg, &end, 10);

	switch (*end) {
	case 'K': case 'k': v <<= 10; end++; break;
	case 'M': case 'm': v <<= 20; end++; break;
	case 'G': case 'g': v <<= 30; end++; break;
	}
	if (*end || end == arg) {
		fprintf(stderr, "stasis: --ghost-limit %s: expected a size (N, NK, NM or NG)\n", arg);
		return -EINVAL;
	}
	o->ghost_limit = v;
	return 0;
}

static int parse_network_lock(struct stasis_opts *o, const char *arg)
{
	if (strcmp(arg, "iptables") && strcmp(arg, "nftables") && strcmp(arg, "skip")) {
		fprintf(stderr, "stasis: --network-lock %s: expected iptables, nftables or skip\n", arg);
		return -EINVAL;
	}
	o->network_lock_skip = !strcmp(arg, "skip");
	return 0;
}

static int parse_empty_ns(struct stasis_opts *o, const char *arg)
{
	if (strcmp(arg, "net")) {
		fprintf(stderr, "stasis: --empty-ns %s: only net is known\n", arg);
		return -EINVAL;
	}
	o->empty_ns |= 0x40000000; /* CLONE_NEWNET */
	return 0;
}

static int parse_status_fd(struct stasis_opts *o, const char *arg)
{
	o->status_fd = atoi(arg);
	if (o->status_fd < 0 || fcntl(o->status_fd, F_GETFD) < 0) {
		fprintf(stderr, "stasis: --status-fd %s: not an open fd\n", arg);
		return -EBADF;
	}
	return 0;
}

static int parse_close(struct stasis_opts *o, const char *arg)
{
	(void)o;
	close(atoi(arg));
	return 0;
}

static const struct cli_option options[] = {
	/* common */
	{ "tree", required_argument, 't', ARG_FUNC, 0, parse_pid, 0 },
	{ "images-dir", required_argument, 'D', ARG_STRING, O(images_dir), NULL, 0 },
	{ "work-dir", required_argument, 'W', ARG_STRING, O(work_dir), NULL, 0 },
	{ "prev-images-dir", required_argument, 0, ARG_STRING, O(prev_images_dir), NULL, 0 },
	{ "parent-path", required_argument, 0, ARG_STRING, O(prev_images_dir), NULL, 0 }, /* runc's */
	{ "log-file", required_argument, 'o', ARG_STRING, O(log_file), NULL, 0 },
	{ "verbosity", optional_argument, 'v', ARG_FUNC, 0, parse_verbosity, 0 },
	{ "log-pid", no_argument, 0, ARG_BOOL, O(log_pid), NULL, 0 },
	{ "display-stats", no_argument, 0, ARG_BOOL, O(display_stats), NULL, 0 },
	{ "pidfile", required_argument, 0, ARG_STRING, O(pidfile), NULL, 0 },
	{ "root", required_argument, 'r', ARG_STRING, O(root), NULL, 0 },
	{ "action-script", required_argument, 0, ARG_LIST, O(action_scripts), NULL, 0 },
	{ "timeout", required_argument, 0, ARG_INT, O(timeout), NULL, 0 },
	{ "close", required_argument, 0, ARG_FUNC, 0, parse_close, 0 },
	{ "libdir", required_argument, 'L', ARG_IGNORED, 0, NULL, 0 }, /* no plugins */
	{ "cpu-cap", optional_argument, 0, ARG_IGNORED, 0, NULL, 0 }, /* xsave layout is checked */
	{ "ms", no_argument, 0, ARG_IGNORED, 0, NULL, 0 },
	{ "deprecated", no_argument, 0, ARG_IGNORED, 0, NULL, 0 },
	{ "relative-timestamps", no_argument, 0, ARG_IGNORED, 0, NULL, 0 },
	{ "unprivileged", no_argument, 0, ARG_NOT_BUILT, 0, NULL, 0 },
	/* dump */
	{ "leave-running", no_argument, 'R', ARG_BOOL, O(leave_running), NULL, 0 },
	{ "leave-stopped", no_argument, 's', ARG_BOOL, O(leave_stopped), NULL, 0 },
	{ "track-mem", no_argument, 0, ARG_BOOL, O(track_mem), NULL, 0 },
	{ "auto-dedup", no_argument, 0, ARG_BOOL, O(auto_dedup), NULL, 0 },
	{ "lazy-pages", no_argument, 0, ARG_BOOL, O(lazy_pages), NULL, 0 },
	{ "page-server", no_argument, 0, ARG_BOOL, O(page_server), NULL, 0 },
	{ "address", required_argument, 0, ARG_STRING, O(ps_address), NULL, 0 },
	{ "port", required_argument, 0, ARG_INT, O(ps_port), NULL, 0 },
	{ "tcp-established", no_argument, 0, ARG_BOOL, O(tcp_established), NULL, 0 },
	{ "tcp-close", no_argument, 0, ARG_BOOL, O(tcp_close), NULL, 0 },
	{ "skip-in-flight", no_argument, 0, ARG_BOOL, O(skip_in_flight), NULL, 0 },
	{ "ext-unix-sk", optional_argument, 'x', ARG_BOOL, O(ext_unix_sk), NULL, 0 },
	{ "shell-job", no_argument, 'j', ARG_BOOL, O(shell_job), NULL, 0 },
	{ "file-locks", no_argument, 'l', ARG_BOOL, O(file_locks), NULL, 0 },
	{ "link-remap", no_argument, 0, ARG_BOOL, O(link_remap), NULL, 0 },
	{ "ghost-limit", required_argument, 0, ARG_FUNC, 0, parse_ghost_limit, 0 },
	{ "force-irmap", no_argument, 0, ARG_BOOL, O(force_irmap), NULL, 0 },
	{ "irmap-scan-path", required_argument, 0, ARG_LIST, O(irmap_scan_paths), NULL, 0 },
	{ "evasive-devices", no_argument, 0, ARG_BOOL, O(evasive_devices), NULL, 0 },
	{ "orphan-pts-master", no_argument, 0, ARG_BOOL, O(orphan_pts_master), NULL, 0 },
	{ "freeze-cgroup", required_argument, 0, ARG_STRING, O(freeze_cgroup), NULL, 0 },
	{ "external", required_argument, 0, ARG_FUNC, 0, parse_external, 0 },
	{ "ext-mount-map", required_argument, 'M', ARG_FUNC, 0, parse_ext_mount_map, 0 },
	{ "enable-external-sharing", no_argument, 0, ARG_BOOL, O(enable_external_sharing), NULL, 0 },
	{ "enable-external-masters", no_argument, 0, ARG_BOOL, O(enable_external_masters), NULL, 0 },
	{ "enable-fs", required_argument, 0, ARG_LIST, O(enable_fs), NULL, ',' },
	{ "network-lock", required_argument, 0, ARG_FUNC, 0, parse_network_lock, 0 },
	{ "pre-dump-mode", required_argument, 0, ARG_IGNORED, 0, NULL, 0 },
	{ "file-validation", required_argument, 0, ARG_IGNORED, 0, NULL, 0 },
	{ "skip-file-rwx-check", no_argument, 0, ARG_IGNORED, 0, NULL, 0 },
	{ "ghost-fiemap", no_argument, 0, ARG_IGNORED, 0, NULL, 0 }, /* holes are always kept */
	{ "allow-uprobes", no_argument, 0, ARG_BOOL, O(allow_uprobes), NULL, 0 },
	{ "stream", no_argument, 0, ARG_NOT_BUILT, 0, NULL, 0 },
	{ "remote", no_argument, 0, ARG_NOT_BUILT, 0, NULL, 0 },
	{ "tls", no_argument, 0, ARG_NOT_BUILT, 0, NULL, 0 },
	{ "tls-cacert", required_argument, 0, ARG_NOT_BUILT, 0, NULL, 0 },
	{ "tls-cacrl", required_argument, 0, ARG_NOT_BUILT, 0, NULL, 0 },
	{ "tls-cert", required_argument, 0, ARG_NOT_BUILT, 0, NULL, 0 },
	{ "tls-key", required_argument, 0, ARG_NOT_BUILT, 0, NULL, 0 },
	{ "tls-no-cn-verify", no_argument, 0, ARG_NOT_BUILT, 0, NULL, 0 },
	{ "skip-mnt", required_argument, 0, ARG_NOT_BUILT, 0, NULL, 0 },
	/* cgroups */
	{ "manage-cgroups", optional_argument, 0, ARG_FUNC, 0, parse_manage_cgroups, 0 },
	{ "cgroup-root", required_argument, 0, ARG_FUNC, 0, parse_cgroup_root, 0 },
	{ "cgroup-props", required_argument, 0, ARG_STRING, O(cgroup_props), NULL, 0 },
	{ "cgroup-props-file", required_argument, 0, ARG_STRING, O(cgroup_props_file), NULL, 0 },
	{ "cgroup-dump-controller", required_argument, 0, ARG_LIST, O(cgroup_dump_controllers), NULL, 0 },
	{ "cgroup-yard", required_argument, 0, ARG_STRING, O(cgroup_yard), NULL, 0 },
	/* restore */
	{ "restore-detached", no_argument, 'd', ARG_BOOL, O(restore_detached), NULL, 0 },
	{ "restore-sibling", no_argument, 'S', ARG_BOOL, O(restore_sibling), NULL, 0 },
	{ "with-cpu-affinity", no_argument, 0, ARG_IGNORED, 0, NULL, 0 }, /* always restored */
	{ "exec-cmd", no_argument, 0, ARG_NOT_BUILT, 0, NULL, 0 },
	{ "allow-untrusted-images", no_argument, 0, ARG_BOOL, O(allow_untrusted_images), NULL, 0 }, /* stasis's */
	{ "inherit-fd", required_argument, 0, ARG_FUNC, 0, parse_inherit_fd, 0 },
	{ "join-ns", required_argument, 'J', ARG_LIST, O(join_ns), NULL, ':' },
	{ "veth-pair", required_argument, 0, ARG_LIST, O(veth_pairs), NULL, '=' },
	{ "empty-ns", required_argument, 0, ARG_FUNC, 0, parse_empty_ns, 0 },
	{ "lsm-profile", required_argument, 0, ARG_STRING, O(lsm_profile), NULL, 0 },
	{ "lsm-mount-context", required_argument, 0, ARG_STRING, O(lsm_mount_context), NULL, 0 },
	{ "weak-sysctls", no_argument, 0, ARG_BOOL, O(weak_sysctls), NULL, 0 },
	{ "mntns-compat-mode", no_argument, 0, ARG_BOOL, O(mntns_compat_mode), NULL, 0 },
	{ "status-fd", required_argument, 0, ARG_FUNC, 0, parse_status_fd, 0 },
	/* check */
	{ "feature", required_argument, 0, ARG_STRING, O(check_feature), NULL, 0 },
	{ "extra", no_argument, 0, ARG_IGNORED, 0, NULL, 0 },
	{ "experimental", no_argument, 0, ARG_IGNORED, 0, NULL, 0 },
	{ "all", no_argument, 0, ARG_IGNORED, 0, NULL, 0 },
	/* page-server, lazy-pages */
	{ "daemon", no_argument, 0, ARG_BOOL, O(daemon), NULL, 0 },
	{ "ps-socket", required_argument, 0, ARG_INT, O(ps_socket), NULL, 0 },
	/* configuration */
	{ "config", required_argument, 0, ARG_STRING, O(config_file), NULL, 0 },
	{ "no-default-config", no_argument, 0, ARG_BOOL, O(no_default_config), NULL, 0 },
	{ "version", no_argument, 'V', ARG_BOOL, O(show_version), NULL, 0 },
	{ "help", no_argument, 'h', ARG_BOOL, O(show_help), NULL, 0 },
};

#define NR_OPTIONS (sizeof(options) / sizeof(options[0]))

static const struct cli_option *find_option(const char *name)
{
	for (size_t i = 0; i < NR_OPTIONS; i++)
		if (!strcmp(options[i].name, name))
			return &options[i];
	return NULL;
}

/* An on/off option, also taken as "--no-NAME" (as criu's): one of stasis's, or one of criu's
 * switches that stasis ignores or has not built. */
static bool is_switch(const struct cli_option *opt)
{
	return opt->type == ARG_BOOL ||
	       (opt->has_arg == no_argument && (opt->type == ARG_IGNORED || opt->type == ARG_NOT_BUILT));
}

/* Applies one option (negated: "--no-NAME") with its argument. */
static int apply(struct stasis_opts *o, const struct cli_option *opt, bool negated, const char *arg)
{
	char *base = (char *)o;

	if (negated && !is_switch(opt)) {
		fprintf(stderr, "stasis: --no-%s: only on/off options take \"no-\"\n", opt->name);
		return -EINVAL;
	}
	if (negated && opt->type != ARG_BOOL)
		return 0; /* off: what stasis does anyway */
	switch (opt->type) {
	case ARG_BOOL:
		*(bool *)(base + opt->off) = !negated;
		return 0;
	case ARG_STRING:
		*(const char **)(base + opt->off) = arg;
		return 0;
	case ARG_INT: {
		char *end;
		long v = strtol(arg, &end, 0);
		if (*end || end == arg || v < -1 || v > 0x7fffffff) {
			fprintf(stderr, "stasis: --%s %s: not a number\n", opt->name, arg);
			return -EINVAL;
		}
		*(int *)(base + opt->off) = v;
		return 0;
	}
	case ARG_LIST:
		return list_add((struct opt_list *)(base + opt->off), arg, opt->sep);
	case ARG_FUNC:
		return opt->parse(o, arg);
	case ARG_IGNORED:
		pr_info("option --%s has no effect with stasis", opt->name);
		return 0;
	case ARG_NOT_BUILT:
		fprintf(stderr, "stasis: --%s: %s\n", opt->name, criu_option_not_built(opt->name));
		return -ENOTSUP;
	}
	return -EINVAL;
}

void cli_opts_init(struct stasis_opts *o)
{
	*o = (struct stasis_opts){ .verbosity = LOG_WARN, .status_fd = -1, .ps_socket = -1,
				   .cgroup_mode = CG_MODE_SOFT };
}

int cli_parse(struct stasis_opts *o, int argc, char **argv, int *first_word)
{
	struct option longopts[2 * NR_OPTIONS + 1];
	char shortopts[3 * NR_OPTIONS + 2] = "+";
	size_t n = 0, s = 1;
	int c, idx;


	/* every option, and "no-NAME" for every on/off option; vals index the table */
	for (size_t i = 0; i < NR_OPTIONS; i++) {
		longopts[n++] = (struct option){ options[i].name, options[i].has_arg, NULL, (int)(1000 + i) };
		if (is_switch(&options[i])) {
			static char names[NR_OPTIONS][40];
			snprintf(names[i], sizeof(names[i]), "no-%s", options[i].name);
			longopts[n++] = (struct option){ names[i], no_argument, NULL, (int)(2000 + i) };
		}
		if (options[i].short_name) {
			shortopts[s++] = options[i].short_name;
			if (options[i].has_arg == required_argument)
				shortopts[s++] = ':';
			if (options[i].has_arg == optional_argument) {
				shortopts[s++] = ':';
				shortopts[s++] = ':';
			}
		}
	}
	longopts[n] = (struct option){ 0 };
	shortopts[s] = 0;
	/* criu takes options before and after the verb: getopt moves the words to the end */
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, shortopts + 1, longopts, &idx)) != -1) {
		if (c == '?') {
			const char *bad = argv[optind - 1];
			if (optopt >= 1000)
				fprintf(stderr, "stasis: option %s needs an argument\n", bad);
			else if (optopt)
				fprintf(stderr, "stasis: option -%c is not a criu option or needs an argument\n",
					optopt);
			else
				fprintf(stderr, "stasis: unknown option '%s' (not a criu option; see stasis --help)\n",
					bad);
			return -EINVAL;
		}
		const struct cli_option *opt = NULL;
		bool negated = c >= 2000;
		if (c >= 1000)
			opt = &options[c - (negated ? 2000 : 1000)];
		else
			for (size_t i = 0; i < NR_OPTIONS && !opt; i++)
				if (options[i].short_name == c)
					opt = &options[i];
		if (!opt)
			return -EINVAL;
		int err = apply(o, opt, negated, optarg);
		if (err)
			return err;
	}
	*first_word = optind;
	return 0;
}

/* One word of a config line: plain, or in double quotes with \" and \\ inside. */
static char *config_word(char **p)
{
	char *s = *p, *out, *w;

	s += strspn(s, " \t");
	if (!*s || *s == '#')
		return NULL;
	if (*s != '"') {
		w = s;
		s += strcspn(s, " \t#");
		if (*s == '#')
			*s = 0;
		else if (*s)
			*s++ = 0;
		*p = s;
		return w;
	}
	w = out = ++s;
	while (*s && *s != '"') {
		if (*s == '\\' && (s[1] == '"' || s[1] == '\\'))
			s++;
		*out++ = *s++;
	}
	if (*s == '"')
		s++;
	*out = 0;
	*p = s;
	return w;
}

/* A copy of a configuration file's argument, kept in o->config_args to be freed with o. */
static int keep_config_arg(struct stasis_opts *o, char *arg)
{
	struct opt_pair *v = xreallocarray(o->config_args.v, o->config_args.n + 1, sizeof(*v));

	if (!v)
		return -ENOMEM;
	o->config_args.v = v;
	v[o->config_args.n++] = (struct opt_pair){ .key = arg, .key_owned = true };
	return 0;
}

int cli_parse_config(struct stasis_opts *o, const char *path, bool must_exist)
{
	FILE *f = fopen(path, "re");
	char *line = NULL;
	size_t cap = 0;
	int lineno = 0, err = 0;

	if (!f) {
		if (!must_exist && errno == ENOENT)
			return 0;
		fprintf(stderr, "stasis: configuration file %s: %m\n", path);
		return -errno;
	}
	while (!err && getline(&line, &cap, f) >= 0) {
		char *p = line, *name, *arg;
		lineno++;
		p[strcspn(p, "\n")] = 0;
		if (!(name = config_word(&p)))
			continue;
		arg = config_word(&p);
		/* criu hands a line's words to getopt as "--NAME ...": NAME=ARG is its argument too
		 * (runc's own tests write log-file=FILE) */
		char *eq = strchr(name, '=');
		if (eq) {
			*eq = 0;
			if (arg) {
				fprintf(stderr, "stasis: %s:%d: option '%s' has two arguments ('%s' and '%s')\n",
					path, lineno, name, eq + 1, arg);
				err = -EINVAL;
				break;
			}
			arg = eq + 1;
		}
		bool negated = !strncmp(name, "no-", 3) && !find_option(name);
		const struct cli_option *opt = find_option(negated ? name + 3 : name);
		if (!opt) {
			fprintf(stderr, "stasis: %s:%d: unknown option '%s'\n", path, lineno, name);
			err = -EINVAL;
		} else if (opt->has_arg == required_argument && !arg) {
			fprintf(stderr, "stasis: %s:%d: option '%s' needs an argument\n", path, lineno, name);
			err = -EINVAL;
		} else if (opt->has_arg == no_argument && eq) {
			fprintf(stderr, "stasis: %s:%d: option '%s' takes no argument (given '%s')\n", path,
				lineno, name, arg);
			err = -EINVAL;
		} else {
			/* the arguments outlive the file: the options keep pointers to them, and
			 * config_args the copies, freed with the options */
			char *kept = arg ? xstrdup(arg) : NULL;
			if (arg && (!kept || keep_config_arg(o, kept))) {
				free(kept);
				err = -ENOMEM;
			} else {
				err = apply(o, opt, negated, kept);
			}
		}
	}
	if (!err && !feof(f)) { /* getline could not grow its line */
		err = -errno;
		fprintf(stderr, "stasis: configuration file %s: %m\n", path);
	}
	free(line);
	fclose(f);
	return err;
}

void cli_opts_free(struct stasis_opts *o)
{
	struct opt_list *lists[] = { &o->action_scripts,  &o->irmap_scan_paths, &o->externals,
				     &o->ext_mount_maps,  &o->enable_fs,        &o->cgroup_roots,
				     &o->cgroup_dump_controllers, &o->join_ns,  &o->veth_pairs,
				     &o->config_args };

	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
		for (size_t k = 0; k < lists[i]->n; k++)
			if (lists[i]->v[k].key_owned)
				free((char *)lists[i]->v[k].key);
		free(lists[i]->v);
		*lists[i] = (struct opt_list){ 0 };
	}
	free(o->inherit_fds);
	o->inherit_fds = NULL;
	o->nr_inherit_fds = 0;
}
