#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <sys/un.h>
#include <limits.h>
#include "zdtmtst.h"
int unix_fill_sock_name(struct sockaddr_un *name, char *rel)
{
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof(cwd))) return -1;
	name->sun_family = AF_UNIX;
	if (snprintf(name->sun_path, sizeof(name->sun_path), "%s/%s", cwd, rel) >= (int)sizeof(name->sun_path)) return -1;
	return 0;
}
