/*
 * IPv4 and IPv6 addresses as the images hold them (the address's bytes and a port) and as
 * sockets take them: what every inet file (inet.c, inet-tcp.c, inet-opts.c) needs, below them.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "inet.h"
#include "util.h"

bool inet_sockaddr(uint32_t family, const ProtobufCBinaryData *addr, uint32_t port,
		   struct sockaddr_storage *sa, socklen_t *len)
{
	memset(sa, 0, sizeof(*sa));
	if (port > 65535)
		return false;
	if (family == AF_INET && addr->len == 4) {
		struct sockaddr_in *a = (struct sockaddr_in *)sa;
		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		memcpy(&a->sin_addr, addr->data, 4);
		*len = sizeof(*a);
		return true;
	}
	if (family == AF_INET6 && addr->len == 16) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)sa;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port);
		memcpy(&a->sin6_addr, addr->data, 16);
		*len = sizeof(*a);
		return true;
	}
	return false;
}

const char *inet_addr_str(uint32_t family, const ProtobufCBinaryData *addr, uint32_t port,
			  char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	size_t alen = family == AF_INET ? 4 : 16;

	if (addr->len == alen)
		inet_ntop(family, addr->data, ip, sizeof(ip));
	snprintf(buf, len, family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip, port);
	return buf;
}

int inet_from_sockaddr(const struct sockaddr_storage *sa, ProtobufCBinaryData *addr,
		       uint32_t *port)
{
	const void *src;
	size_t len;

	if (sa->ss_family == AF_INET) {
		src = &((const struct sockaddr_in *)sa)->sin_addr;
		*port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
		len = 4;
	} else if (sa->ss_family == AF_INET6) {
		src = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		*port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
		len = 16;
	} else {
		return 0;
	}
	if (!(addr->data = xzalloc(len)))
		return -ENOMEM;
	addr->len = len;
	memcpy(addr->data, src, len);
	return 1;
}
