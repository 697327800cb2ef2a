/*
 * Raw IPv4/IPv6 sockets (SOCK_RAW): family and protocol, the address bound and the peer
 * connected, their options (inet-opts.c: IP_HDRINCL, the ICMP/ICMPv6 type filter,
 * IPV6_CHECKSUM and the common IP/IPv6 ones), their multicast groups; their classic BPF filter
 * and SOL_SOCKET options are every socket's (sockopts.c). A raw socket's port is its
 * protocol, and connect() keeps no port: getpeername() does not answer, so the peer is read
 * from the namespace's table of raw sockets (/proc/PID/net/raw, raw6: inet_table_peer).
 * Packets waiting to be read are not kept (datagrams: the log says so).
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "inet.h"
#include "log.h"
#include "util.h"

#define TABLE_ESTABLISHED 1 /* a connected socket's state in these tables (TCP_ESTABLISHED) */

int inet_table_peer(pid_t pid, InetSocket *in)
{
	bool v4 = in->family == AF_INET;
	const char *table = in->type == SOCK_RAW ? (v4 ? "raw" : "raw6") : (v4 ? "icmp" : "icmp6");
	size_t alen = v4 ? 4 : 16;
	char path[64], line[512];
	uint32_t w[4], port = 0;
	unsigned state = 0;
	int found = 0;

	snprintf(path, sizeof(path), "/proc/%d/net/%s", pid, table);
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	while (!found && fgets(line, sizeof(line), f)) {
		unsigned long long ino;
		/* "sl: local:port remote:port st tx:rx tr:when retrnsmt uid timeout inode" */
		int n = v4 ? sscanf(line, " %*u: %*x:%*x %8x:%x %x %*x:%*x %*x:%*x %*x %*u %*u %llu", &w[0],
				    &port, &state, &ino)
			   : sscanf(line, " %*u: %*32[0-9A-Fa-f]:%*x %8x%8x%8x%8x:%x %x %*x:%*x %*x:%*x %*x %*u %*u %llu",
				    &w[0], &w[1], &w[2], &w[3], &port, &state, &ino);
		found = n == (v4 ? 4 : 7) && ino == in->ino;
	}
	fclose(f);
	if (!found)
		return -ENOENT;
	if (state != TABLE_ESTABLISHED)
		return 0;
	free(in->dst_addr.data);
	if (!(in->dst_addr.data = xzalloc(alen)))
		return -ENOMEM;
	memcpy(in->dst_addr.data, w, alen); /* each word as the kernel holds it: network order */
	in->dst_addr.len = alen;
	in->has_dst_addr = in->has_dst_port = true;
	in->dst_port = port;
	in->state = INET_STATE__INET_CONNECTED;
	return 1;
}

int inet_raw_dump(struct dump_task *t, const struct fd_probe *p, int sk, InetSocket *in)
{
	static const uint8_t any[16];
	size_t alen = in->family == AF_INET ? 4 : 16;
	char byte;
	int err;

	/* bound: to an address (its port is its protocol, bound or not) */
	in->state = in->has_src_addr && memcmp(in->src_addr.data, any, alen) ? INET_STATE__INET_BOUND
									      : INET_STATE__INET_FRESH;
	if ((err = inet_table_peer(t->pid, in)) < 0) {
		pr_err("dump pid %d fd %d: raw socket %s is not in /proc/%d/net/raw%s: %s", t->pid, p->fd,
		       p->link, t->pid, alen == 4 ? "" : "6", strerror(-err));
		return err;
	}
	if (recv(sk, &byte, 1, MSG_PEEK | MSG_DONTWAIT) >= 0)
		pr_warn("dump pid %d fd %d: packets waiting in raw socket %s are not kept (datagrams: "
			"the program may see them as lost)", t->pid, p->fd, p->link);
	unsigned logged = log_errors();
	if ((err = inet_mcast_dump(sk, in)))
		return log_unnamed(logged, err, "dump pid %d fd %d: cannot read the multicast groups of %s",
				   t->pid, p->fd, p->link);
	return 1;
}
