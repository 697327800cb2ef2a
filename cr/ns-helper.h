/* Reading what only a process inside a namespace can see (cr/ns-helper.c). */
#ifndef STASIS_NS_HELPER_H
#define STASIS_NS_HELPER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Is pid's namespace of kind ("uts", "net", ...) another than stasis's own? Its inode to *ino. */
bool ns_is_own(pid_t pid, const char *kind, uint64_t *ino);

/*
 * Runs fn in a child that has joined pid's namespace of kind nstype (CLONE_NEWUTS,
 * CLONE_NEWNET, ...); fn writes up to len bytes of its answer to out and returns 0 or a
 * negative errno (it starts with what out held). The answer comes back in out. Says what
 * failed. (A PID namespace is entered by fn's own children only.)
 */
int ns_helper_run(pid_t pid, int nstype, int (*fn)(void *out, size_t len), void *out, size_t len);

#endif
