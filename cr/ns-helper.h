/* Reading what only a process inside a namespace can see, and stasis's main thread going into
 * a namespace and back (cr/ns-helper.c). */
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

/*
 * The calling thread into namespace fd of kind nstype (for a PID namespace: its children's),
 * *home getting an fd of the one it leaves, + 1: 0, or -errno with errno set (the caller says
 * which namespace it could not enter).
 */
int ns_enter_from_home(int fd, int nstype, int *home);
/* The calling thread back in the namespace *home holds (0: it never left), said if it cannot
 * (who: "dump" or "restore"); the fd closed, *home 0. */
void ns_go_home(int *home, int nstype, const char *who);

#endif
