/*
 * Kernel keys (add_key, keyctl): the keyrings of the process (KEY_SPEC_PROCESS_KEYRING) and of
 * its main thread (KEY_SPEC_THREAD_KEYRING), which it makes itself, are asked inside the task
 * (KEYCTL_GET_KEYRING_ID without creating one). A program names its keys by their serial
 * numbers, which the kernel hands out and no restore can choose: a process holding such a
 * keyring with keys in it is refused by name, before anything is written (the tree runs on);
 * an empty one is made anew by the kernel when the restored program names it again. The session
 * keyring, inherited from the caller (a login's, a service's), is left as the restore's caller
 * has it; the other threads' keyrings are not asked.
 */
#include <errno.h>
#include <linux/keyctl.h>
#include <string.h>
#include <sys/syscall.h>

#include "log.h"
#include "task.h"
#include "util.h"

static int dump_keyrings(struct dump_task *t)
{
	static const struct {
		int spec;
		const char *name;
	} rings[] = { { KEY_SPEC_PROCESS_KEYRING, "process" }, { KEY_SPEC_THREAD_KEYRING, "thread" } };

	for (size_t i = 0; i < ARRAY_SIZE(rings); i++) {
		uint64_t args[6] = { KEYCTL_GET_KEYRING_ID, (uint64_t)(int64_t)rings[i].spec, 0 };
		int64_t serial;
		if (inject_syscall(&t->inj, SYS_keyctl, args, &serial))
			return -EIO;
		if (serial == -ENOKEY || serial == -ENOSYS || serial == -EPERM || serial == -EACCES)
			continue; /* (none; or keys are not for this process: a seccomp profile's EPERM) */
		if (serial < 0) {
			pr_err("dump pid %d: cannot ask for its %s keyring: %s", t->pid, rings[i].name,
			       strerror((int)-serial));
			return (int)serial;
		}
		/* its size (4 bytes a key it links): an empty one comes back by itself, made anew
		 * when the program next names it (KEY_SPEC_*_KEYRING) */
		uint64_t read_args[6] = { KEYCTL_READ, (uint64_t)serial, 0, 0 };
		int64_t bytes;
		if (inject_syscall(&t->inj, SYS_keyctl, read_args, &bytes))
			return -EIO;
		if (!bytes) {
			pr_debug("dump pid %d: its %s keyring (key %lld) is empty: not kept", t->pid,
				 rings[i].name, (long long)serial);
			continue;
		}
		pr_err("dump pid %d: it has a %s keyring (key %lld) with %s (add_key/keyctl): its keys "
		       "cannot be made again with their serial numbers, by which the program knows them: "
		       "not supported", t->pid, rings[i].name, (long long)serial,
		       bytes > 0 ? "keys in it" : "what it holds unreadable");
		return -ENOTSUP;
	}
	return 0;
}

const struct state_ops state_keyrings = {
	.name = "keyrings",
	.dump = dump_keyrings,
};
