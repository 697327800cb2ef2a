/*
 * The namespaces a restore is asked to join instead of making them (--join-ns NS:PATH or
 * NS:PID[,EXTRA], the RPC's join_ns), as runc asks for those of a pod's sandbox that a
 * container shares: net (netns/net-ns.c), ipc (cr/ipc-ns.c), uts (cr/uts-ns.c), user
 * (cr/user-ns.c, cr/ns-make.c: a pod's own user namespace). The tree is
 * put in the one given; what the namespace holds is its own and is left as it is. And those a
 * dump is told are the engine's (--external net[INODE]:KEY, pid[INODE]:KEY), left out of it.
 */
#ifndef STASIS_JOIN_NS_H
#define STASIS_JOIN_NS_H

#include <stddef.h>
#include <stdint.h>

#include "options.h"

/* Before anything is made: every --join-ns names one of those kinds and a namespace of that
 * kind; -EINVAL or -errno, said with the option, if not. */
int join_ns_check(const struct stasis_opts *o);
/* The path of the namespace of that kind ("net", "ipc", "uts", "user") the restore joins, in buf (a
 * PID given: its /proc/PID/ns file), or NULL if none is asked for. */
const char *join_ns_path(const struct stasis_opts *o, const char *kind, char *buf, size_t len);
/* An fd of it (O_CLOEXEC) in *fd: 1; 0 if none is asked for; -errno, said. */
int join_ns_open(const struct stasis_opts *o, const char *kind, int *fd);

/* Dump: the key of --external KIND[INODE]:KEY naming namespace KIND:[ino] as the engine's (kind
 * "net", "pid"), or NULL. */
const char *external_ns_key(const struct stasis_opts *o, const char *kind, uint64_t ino);

#endif
