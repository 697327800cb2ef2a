#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <sys/un.h>
#include <limits.h>
#include "zdtmtst.h"
int tcp_init_server_with_opts(int family, int *port, struct zdtm_tcp_opts *opts)
{
	struct sockaddr_storage ss = {};
	socklen_t len;
	int one = 1, sock = socket(family, SOCK_STREAM | (opts ? opts->flags : 0), IPPROTO_TCP);
	if (sock < 0) { pr_perror("socket"); return -1; }
	if ((!opts || opts->reuseaddr) && setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one))) { pr_perror("reuseaddr"); return -1; }
	if (opts && opts->reuseport && setsockopt(sock, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one))) { pr_perror("reuseport"); return -1; }
	for (;;) {
		if (family == AF_INET) {
			struct sockaddr_in *a = (void *)&ss;
			a->sin_family = AF_INET; a->sin_port = htons(*port); a->sin_addr.s_addr = htonl(INADDR_ANY);
			len = sizeof(*a);
		} else {
			struct sockaddr_in6 *a = (void *)&ss;
			a->sin6_family = AF_INET6; a->sin6_port = htons(*port); a->sin6_addr = in6addr_any;
			len = sizeof(*a);
		}
		if (!bind(sock, (struct sockaddr *)&ss, len)) break;
		if (errno == EADDRINUSE) { (*port)++; if (*port > 65535) *port = 1024; continue; }
		pr_perror("bind"); close(sock); return -1;
	}
	if (listen(sock, 1) < 0) { pr_perror("listen"); close(sock); return -1; }
	return sock;
}
int tcp_init_server(int family, int *port)
{
	struct zdtm_tcp_opts o = { .reuseaddr = true };
	return tcp_init_server_with_opts(family, port, &o);
}
int tcp_accept_server(int sock)
{
	struct sockaddr_storage ss;
	socklen_t l = sizeof(ss);
	int fd = accept(sock, (struct sockaddr *)&ss, &l);
	if (fd < 0) pr_perror("accept");
	return fd;
}
int tcp_init_client_with_fd(int sock, int family, char *ip, unsigned short port)
{
	struct sockaddr_storage ss = {};
	socklen_t len;
	if (family == AF_INET) {
		struct sockaddr_in *a = (void *)&ss;
		a->sin_family = AF_INET; a->sin_port = htons(port);
		inet_pton(AF_INET, ip, &a->sin_addr); len = sizeof(*a);
	} else {
		struct sockaddr_in6 *a = (void *)&ss;
		a->sin6_family = AF_INET6; a->sin6_port = htons(port);
		inet_pton(AF_INET6, ip, &a->sin6_addr); len = sizeof(*a);
	}
	if (connect(sock, (struct sockaddr *)&ss, len) < 0) { pr_perror("connect"); return -1; }
	return sock;
}
int tcp_init_client(int family, char *ip, unsigned short port)
{
	int sock = socket(family, SOCK_STREAM, IPPROTO_TCP);
	if (sock < 0) { pr_perror("socket"); return -1; }
	if (tcp_init_client_with_fd(sock, family, ip, port) < 0) { close(sock); return -1; }
	return sock;
}
