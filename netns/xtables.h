/* Legacy iptables tables (x_tables) of a network namespace (netns/xtables.c). */
#ifndef STASIS_XTABLES_H
#define STASIS_XTABLES_H

#include <stdbool.h>
#include <stddef.h>

/*
 * The first table the calling thread's network namespace lists in /proc's net/NAMES
 * ("ip_tables_names", "ip6_tables_names", "arp_tables_names"), into name: false if none.
 */
bool xtables_first(const char *names, char *name, size_t len);

#endif
