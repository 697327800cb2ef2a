/*
 * What a request asks of the engine: criu's whole option set, filled by a face (the command
 * line, later the RPC server) and handed to the engine read-only inside a run context
 * (cr/run.h). No engine file reads options from anywhere else.
 */
#ifndef STASIS_OPTIONS_H
#define STASIS_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STASIS_VERSION "0.2"

/* --inherit-fd fd[N]:KEY: fd N of the restoring caller stands for the outside object KEY. */
struct inherit_fd {
	int fd;
	const char *key; /* "socket:[INODE]", "pipe:[INODE]" */
};

/* A KEY:VALUE (or KEY=VALUE) pair of a repeatable option, as given. */
struct opt_pair {
	const char *key, *value;
	bool key_owned; /* key was cut out of the argument (the face frees it) */
};

/* A list of strings or pairs that an option may add to any number of times. */
struct opt_list {
	struct opt_pair *v;
	size_t n;
};

/* --manage-cgroups modes, numbered as criu's RPC numbers them. */
enum cgroup_mode {
	CG_MODE_IGNORE = 0,
	CG_MODE_NONE = 1,
	CG_MODE_PROPS = 2,
	CG_MODE_SOFT = 3,
	CG_MODE_FULL = 4,
	CG_MODE_STRICT = 5,
	CG_MODE_DEFAULT = 6, /* soft */
};

struct stasis_opts {
	/* what and where */
	int pid;                  /* dump: -t */
	const char *images_dir;   /* -D */
	const char *work_dir;     /* -W: log, stats, pidfile; the images directory if unset */
	const char *prev_images_dir; /* --prev-images-dir: the parent of an incremental dump */
	const char *log_file;     /* -o, relative to -W like criu */
	int verbosity;            /* -v N */
	bool log_pid;             /* --log-pid */
	bool display_stats;       /* --display-stats */
	const char *pidfile;      /* --pidfile */
	const char *root;         /* --root: the root the tree sees */
	struct opt_list action_scripts; /* --action-script */
	struct opt_list config_args;    /* copies of configuration files' arguments, which options
					 * point into (keys; the face frees them) */
	int timeout;              /* --timeout: seconds to freeze the tree (0: the default) */

	/* dump */
	bool pre_dump;            /* the verb pre-dump: memory only, the tree goes on running */
	bool leave_running;       /* --leave-running */
	bool leave_stopped;       /* --leave-stopped */
	bool track_mem;           /* --track-mem */
	bool auto_dedup;          /* --auto-dedup */
	bool lazy_pages;          /* --lazy-pages */
	bool page_server;         /* --page-server */
	const char *ps_address;   /* --address */
	int ps_port;              /* --port */
	bool tcp_established;     /* --tcp-established */
	bool tcp_close;           /* --tcp-close */
	bool skip_in_flight;      /* --skip-in-flight */
	bool ext_unix_sk;         /* --ext-unix-sk */
	bool shell_job;           /* --shell-job */
	bool file_locks;          /* --file-locks */
	bool link_remap;          /* --link-remap */
	uint64_t ghost_limit;     /* --ghost-limit: largest deleted file saved in the images */
	bool force_irmap;         /* --force-irmap */
	bool allow_uprobes;       /* --allow-uprobes: dump a process that hit uprobes */
	struct opt_list irmap_scan_paths; /* --irmap-scan-path */
	bool evasive_devices;     /* --evasive-devices */
	bool orphan_pts_master;   /* --orphan-pts-master */
	const char *freeze_cgroup; /* --freeze-cgroup */
	struct opt_list externals; /* --external TYPE[ID]:VALUE */
	struct opt_list ext_mount_maps; /* --ext-mount-map KEY:VALUE (or "auto") */
	bool ext_mount_auto;      /* --ext-mount-map auto, --external mnt[] */
	bool enable_external_sharing;  /* --enable-external-sharing */
	bool enable_external_masters;  /* --enable-external-masters */
	struct opt_list enable_fs; /* --enable-fs */
	bool network_lock_skip;   /* --network-lock skip */

	/* cgroups */
	bool manage_cgroups;      /* --manage-cgroups given */
	enum cgroup_mode cgroup_mode;
	struct opt_list cgroup_roots; /* --cgroup-root [CONTROLLER:]PATH (key NULL: every one) */
	const char *cgroup_props;     /* --cgroup-props */
	const char *cgroup_props_file; /* --cgroup-props-file */
	struct opt_list cgroup_dump_controllers; /* --cgroup-dump-controller */
	const char *cgroup_yard;  /* --cgroup-yard */

	/* restore */
	bool restore_detached;    /* -d */
	bool restore_sibling;     /* --restore-sibling */
	bool allow_untrusted_images; /* --allow-untrusted-images (stasis's own): images someone
				      * other than root could have written are restored anyway */
	struct inherit_fd *inherit_fds; /* --inherit-fd, restore (looked up in cr/files/external.c) */
	size_t nr_inherit_fds;
	struct opt_list join_ns;  /* --join-ns NS:PATH */
	struct opt_list veth_pairs; /* --veth-pair IN=OUT */
	uint32_t empty_ns;        /* CLONE_NEW* flags of namespaces the engine owns */
	const char *lsm_profile;  /* --lsm-profile */
	const char *lsm_mount_context; /* --lsm-mount-context */
	bool weak_sysctls;        /* --weak-sysctls */
	bool mntns_compat_mode;   /* --mntns-compat-mode */
	int status_fd;            /* --status-fd: "\0" once ready (-1: none) */

	/* check, page server, and what only the face looks at */
	const char *check_feature; /* check --feature NAME */
	bool daemon;              /* --daemon */
	int ps_socket;            /* --ps-socket */
	const char *config_file;  /* --config */
	bool no_default_config;   /* --no-default-config */
	bool show_version, show_help;

	const char *fault_inject; /* STASIS_FAULT=<point>: fail there, for tests */
};

#endif
