/*
 * The namespaces a restore is asked to join instead of making them (--join-ns NS:PATH or
 * NS:PID[,EXTRA], the RPC's join_ns), as runc asks for those of a pod's sandbox that a
 * container shares: net (netns/net-ns.c), ipc (cr/ipc-ns.c), uts (cr/uts-ns.c). The tree is
 * put in the one given; what the namespace holds is its own and is left as it is.
 */
#ifndef STASIS_JOIN_NS_H
#define STASIS_JOIN_NS_H

#include <stddef.h>

#include "options.h"

/* Before anything is made: every --join-ns names one of those kinds and a namespace of that
 * kind; -EINVAL or -errno, said with the option, if not. */
int join_ns_check(const struct stasis_opts *o);
/* The path of the namespace of that kind ("net", "ipc", "uts") the restore joins, in buf (a
 * PID given: its /proc/PID/ns file), or NULL if none is asked for. */
const char *join_ns_path(const struct stasis_opts *o, const char *kind, char *buf, size_t len);
/* An fd of it (O_CLOEXEC) in *fd: 1; 0 if none is asked for; -errno, said. */
int join_ns_open(const struct stasis_opts *o, const char *kind, int *fd);

#endif
