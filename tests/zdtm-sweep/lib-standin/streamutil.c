/* stand-in stream helpers, tcp and unix socket helpers */
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <sys/un.h>
#include <limits.h>
#include "zdtmtst.h"
int set_nonblock(int fd, int on)
{
	int f = fcntl(fd, F_GETFL);
	if (f < 0) return -1;
	return fcntl(fd, F_SETFL, on ? f | O_NONBLOCK : f & ~O_NONBLOCK);
}
int read_data(int fd, unsigned char *buf, int len)
{
	for (int off = 0; off < len;) {
		int r = read(fd, buf + off, len - off);
		if (r <= 0) { if (r < 0 && errno == EINTR) continue; pr_perror("read_data: %d", r); return -1; }
		off += r;
	}
	return 0;
}
int write_data(int fd, const unsigned char *buf, int len)
{
	for (int off = 0; off < len;) {
		int r = write(fd, buf + off, len - off);
		if (r < 0) { if (errno == EINTR) continue; pr_perror("write_data"); return -1; }
		off += r;
	}
	return 0;
}
/* copies infd to outfd until EOF (0) or an error (-1, errno set; EINTR included) */
int pipe_in2out(int infd, int outfd, uint8_t *buffer, int length)
{
	for (;;) {
		int r = read(infd, buffer, length);

		if (r <= 0)
			return r;
		for (int off = 0; off < r;) {
			int w = write(outfd, buffer + off, r - off);

			if (w < 0)
				return -1;
			off += w;
		}
	}
}
