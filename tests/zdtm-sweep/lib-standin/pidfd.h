/* stand-in for criu's zdtm lib pidfd.h: raw pidfd syscalls */
#ifndef ZDTM_PIDFD_H
#define ZDTM_PIDFD_H
#include <signal.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <fcntl.h>
#ifndef PID_FS_MAGIC
#define PID_FS_MAGIC 0x50494446
#endif
#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL
#endif
static inline int pidfd_open(pid_t pid, unsigned int flags) { return syscall(__NR_pidfd_open, pid, flags); }
static inline int pidfd_getfd(int pidfd, int targetfd, unsigned int flags) { return syscall(__NR_pidfd_getfd, pidfd, targetfd, flags); }
static inline int pidfd_send_signal(int pidfd, int sig, siginfo_t *info, unsigned int flags)
{ return syscall(__NR_pidfd_send_signal, pidfd, sig, info, flags); }
#endif
