/*
 * Connections waiting in a TCP listener's accept queue whose clients are outside the tree.
 *
 * Dump (--tcp-established): the caller locks the waiting connections (sock_diag lists them),
 * then stasis accepts each itself, in the queue's order (tcp_requeue_accept, which first makes
 * what its entry needs), and reads it in repair mode as an established connection is
 * (netns/tcp-repair.c: sequence numbers, the bytes the client sent, MSS, window scaling, SACK,
 * timestamps, window) and closes it in repair mode, which sends nothing. The client, its
 * packets dropped by the lock, sees nothing. Lost, the client meeting a reset at its next
 * segment: a connection whose reading fails once it is taken (out of memory for its bytes).
 *
 * Made again (at restore, once the listener listens again in its process and before the
 * network is unlocked; or at a dump that fails or leaves the tree running, before the lock
 * goes): the kernel makes a connection in an accept queue from a syncookie handshake's last
 * ACK, and since Linux 6.9 a TCX ingress program may hand it the request socket to use
 * (bpf_sk_assign_tcp_reqsk: MSS, window scales, SACK, timestamps) instead of a cookie. So:
 * - a program of a few instructions (no libbpf, no compiler: the kfunc's BTF id is read from
 *   /sys/kernel/btf/vmlinux) is attached to lo of the listener's namespace (the tree's, or one
 *   a process of it made: stasis goes there; every packet stasis sends to a local address goes
 *   through lo): for a segment of stasis's (its mark) while
 *   armed, it looks the listener up by the addresses stasis wrote in its map, assigns the
 *   request socket with the attributes of the map and disarms;
 * - stasis sends the ACK from the client's address (a raw socket), seq the client's first byte
 *   not read, ack the server's next: the kernel takes it as the handshake's end (the child is
 *   ESTABLISHED in the queue with those numbers; tcp_syncookies must be on for that path: set
 *   to 1 meanwhile if it is 0, and put back);
 * - then the bytes the client had sent, one segment of at most 32 KiB at a time, each seen in
 *   the child's receive queue (sock_diag) before the next (one its window or buffer refuses is
 *   sent again in halves); then its FIN if it had sent one.
 *   The child acknowledges them to the client, which had them acknowledged already: those
 *   duplicates are dropped by the lock anyway;
 * - the program is detached and closed.
 * The lock lets segments with stasis's mark through, and keeps conntrack off them (netns/nft.c):
 * with NAT in the namespace, conntrack's local-in hook would take the request socket away.
 * The kernel's answer (cr/kernel: KF_TCP_REQUEUE, a child that loads the program and attaches
 * it in a namespace of its own) is asked before the tree is frozen.
 * Not kept: the client's last timestamp (the child echoes 0 until the client's next segment),
 * ECN and microsecond timestamps (not agreed on restore).
 * If stasis dies between the accept and the end of the dump, the connections it took are gone
 * (the client's next segment meets a reset).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/btf.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "files/inet.h"
#include "kernel/features.h"
#include "compat/kernel-abi.h"
#include "log.h"
#include "net-nested.h"
#include "nlmsg.h"
#include "tcp-repair.h"
#include "tcp-requeue.h"
#include "tcp-segment.h"
#include "tree-objects.h"
#include "tree.h"
#include "util.h"

#define WHY(...) (snprintf(why, why_len, __VA_ARGS__), -errno)

#define KFUNC_NAME "bpf_sk_assign_tcp_reqsk"
#define ATTRS_NAME "bpf_tcp_req_attrs"
/* bytes in flight at most: one segment whose buffer (headers, the kernel's own) is 32 KiB */
#define SEGMENT_DATA (32768 - 512)
#define SEGMENT_LEAST 256        /* a segment refused is sent again halved, down to this */
#define WAIT_STEP_US 200
#define WAIT_SEGMENT_MS 50       /* a segment not taken by then is sent again (a delayed ACK of
				  * the child's may open its window meanwhile) */
#define TRIES 10
#define SYNCOOKIES "/proc/sys/net/ipv4/tcp_syncookies"
#define MIN_MSS4 536             /* the kfunc's least MSS per family */
#define MIN_MSS6 1220
#define QUEUE_MAX (64u << 20)

/* struct bpf_tcp_req_attrs of Linux 6.9 (its size is checked against the kernel's BTF) */
struct req_attrs {
	uint32_t rcv_tsval, rcv_tsecr;
	uint16_t mss;
	uint8_t rcv_wscale, snd_wscale, ecn_ok, wscale_ok, sack_ok, tstamp_ok, usec_ts_ok;
	uint8_t reserved[3];
};

/* The program's map: one slot, written by stasis for each connection. */
struct requeue_slot {
	uint8_t tuple[36];   /* struct bpf_sock_tuple: the packet's source (the client) first */
	uint32_t v6;         /* the tuple is IPv6 (36 bytes), else IPv4 (12) */
	uint32_t armed;      /* the next marked segment gets the request socket; cleared then */
	int32_t result;      /* the kfunc's answer (1: not called yet) */
	struct req_attrs attrs;
	uint32_t pad;
};
#define SLOT_V6 36
#define SLOT_ARMED 40
#define SLOT_RESULT 44
#define SLOT_ATTRS 48

/* ---- the kernel's BTF ---- */

/* The BTF id of the kfunc and the size of its attributes' struct, from vmlinux's BTF. */
static int read_btf(int *kfunc_id, uint32_t *attrs_size, char *why, size_t why_len)
{
	size_t len = 0;
	auto_free char *data = read_file_at(AT_FDCWD, "/sys/kernel/btf/vmlinux", &len);

	*kfunc_id = 0;
	*attrs_size = 0;
	if (!data)
		return WHY("cannot read /sys/kernel/btf/vmlinux (CONFIG_DEBUG_INFO_BTF)");
	const struct btf_header *h = (const void *)data;
	if (len < sizeof(*h) || h->magic != BTF_MAGIC || h->hdr_len > len ||
	    (uint64_t)h->hdr_len + h->type_off + h->type_len > len ||
	    (uint64_t)h->hdr_len + h->str_off + h->str_len > len) {
		errno = EINVAL;
		return WHY("/sys/kernel/btf/vmlinux is not BTF");
	}
	const char *types = data + h->hdr_len + h->type_off, *strs = data + h->hdr_len + h->str_off;
	size_t at = 0;
	for (int id = 1; at + sizeof(struct btf_type) <= h->type_len; id++) {
		const struct btf_type *t = (const void *)(types + at);
		unsigned kind = BTF_INFO_KIND(t->info), vlen = BTF_INFO_VLEN(t->info);
		const char *name = t->name_off < h->str_len ? strs + t->name_off : "";
		if (kind == BTF_KIND_FUNC && !strcmp(name, KFUNC_NAME))
			*kfunc_id = id;
		else if (kind == BTF_KIND_STRUCT && !strcmp(name, ATTRS_NAME))
			*attrs_size = t->size;
		at += sizeof(*t);
		switch (kind) {
		case BTF_KIND_INT: case BTF_KIND_VAR: case BTF_KIND_DECL_TAG: at += 4; break;
		case BTF_KIND_ARRAY: at += sizeof(struct btf_array); break;
		case BTF_KIND_STRUCT: case BTF_KIND_UNION: at += vlen * sizeof(struct btf_member); break;
		case BTF_KIND_ENUM: at += vlen * sizeof(struct btf_enum); break;
		case BTF_KIND_FUNC_PROTO: at += vlen * sizeof(struct btf_param); break;
		case BTF_KIND_DATASEC: at += vlen * sizeof(struct btf_var_secinfo); break;
		case 19 /* BTF_KIND_ENUM64 */: at += vlen * 12; break;
		default: break; /* PTR, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC, FLOAT, TYPE_TAG */
		}
	}
	errno = ENOTSUP;
	if (!*kfunc_id)
		return WHY("the kernel has no kfunc " KFUNC_NAME " (Linux >= 6.9 with CONFIG_SYN_COOKIES)");
	if (*attrs_size != sizeof(struct req_attrs))
		return WHY("struct " ATTRS_NAME " of this kernel has %u bytes, not %zu", *attrs_size,
			   sizeof(struct req_attrs));
	return 0;
}

/* ---- the program ---- */

static int bpf(int cmd, union bpf_attr *a)
{
	int r = syscall(SYS_bpf, cmd, a, sizeof(*a));

	return r < 0 ? -errno : r;
}

#define INSN(c, d, s, o, i) ((struct bpf_insn){ .code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i) })
#define MOV_REG(d, s) INSN(BPF_ALU64 | BPF_MOV | BPF_X, d, s, 0, 0)
#define MOV_IMM(d, i) INSN(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, i)
#define ADD_IMM(d, i) INSN(BPF_ALU64 | BPF_ADD | BPF_K, d, 0, 0, i)
#define LDX_W(d, s, o) INSN(BPF_LDX | BPF_MEM | BPF_W, d, s, o, 0)
#define STX_W(d, s, o) INSN(BPF_STX | BPF_MEM | BPF_W, d, s, o, 0)
#define ST_W(d, o, i) INSN(BPF_ST | BPF_MEM | BPF_W, d, 0, o, i)
#define JEQ_IMM(d, i, o) INSN(BPF_JMP | BPF_JEQ | BPF_K, d, 0, o, i)
#define JNE_IMM(d, i, o) INSN(BPF_JMP | BPF_JNE | BPF_K, d, 0, o, i)
#define CALL(f) INSN(BPF_JMP | BPF_CALL, 0, 0, 0, f)
#define KFUNC(id) INSN(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_KFUNC_CALL, 0, id)
#define EXIT() INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

/*
 * r6 the skb, r7 the slot, r8 the listener. Every packet goes on (TC_ACT_OK); one of stasis's
 * while armed gets the request socket.
 */
static int load_program(int map, int kfunc_id, char *why, size_t why_len)
{
	const struct bpf_insn prog[] = {
		/* 0 */ MOV_REG(BPF_REG_6, BPF_REG_1),
		LDX_W(BPF_REG_2, BPF_REG_6, offsetof(struct __sk_buff, mark)),
		JNE_IMM(BPF_REG_2, TCP_SEGMENT_MARK, 32), /* -> out */
		ST_W(BPF_REG_10, -4, 0),
		MOV_REG(BPF_REG_2, BPF_REG_10),
		/* 5 */ ADD_IMM(BPF_REG_2, -4),
		INSN(BPF_LD | BPF_DW | BPF_IMM, BPF_REG_1, BPF_PSEUDO_MAP_FD, 0, map),
		INSN(0, 0, 0, 0, 0),
		CALL(BPF_FUNC_map_lookup_elem),
		JEQ_IMM(BPF_REG_0, 0, 25), /* -> out */
		/* 10 */ MOV_REG(BPF_REG_7, BPF_REG_0),
		LDX_W(BPF_REG_1, BPF_REG_7, SLOT_ARMED),
		JEQ_IMM(BPF_REG_1, 0, 22), /* -> out */
		LDX_W(BPF_REG_8, BPF_REG_7, SLOT_V6),
		MOV_REG(BPF_REG_1, BPF_REG_6),
		/* 15 */ MOV_REG(BPF_REG_2, BPF_REG_7),
		MOV_IMM(BPF_REG_3, 12),
		JEQ_IMM(BPF_REG_8, 0, 1),
		MOV_IMM(BPF_REG_3, 36),
		MOV_IMM(BPF_REG_4, -1), /* BPF_F_CURRENT_NETNS */
		/* 20 */ MOV_IMM(BPF_REG_5, 0),
		CALL(BPF_FUNC_sk_lookup_tcp),
		JEQ_IMM(BPF_REG_0, 0, 12), /* -> out */
		MOV_REG(BPF_REG_8, BPF_REG_0),
		MOV_REG(BPF_REG_1, BPF_REG_6),
		/* 25 */ MOV_REG(BPF_REG_2, BPF_REG_8),
		MOV_REG(BPF_REG_3, BPF_REG_7),
		ADD_IMM(BPF_REG_3, SLOT_ATTRS),
		MOV_IMM(BPF_REG_4, sizeof(struct req_attrs)),
		KFUNC(kfunc_id),
		/* 30 */ STX_W(BPF_REG_7, BPF_REG_0, SLOT_RESULT),
		JNE_IMM(BPF_REG_0, 0, 1),
		ST_W(BPF_REG_7, SLOT_ARMED, 0),
		MOV_REG(BPF_REG_1, BPF_REG_8),
		CALL(BPF_FUNC_sk_release),
		/* 35: out */ MOV_IMM(BPF_REG_0, 0),
		EXIT(),
	};
	union bpf_attr a = { 0 };
	a.prog_type = BPF_PROG_TYPE_SCHED_CLS;
	a.insns = (uintptr_t)prog;
	a.insn_cnt = ARRAY_SIZE(prog);
	a.license = (uintptr_t)"GPL"; /* the kernel lets only such programs call kfuncs */
	int fd = bpf(BPF_PROG_LOAD, &a);
	if (fd >= 0)
		return fd;
	/* again with the verifier's words */
	size_t log_len = 64 << 10;
	auto_free char *log = xzalloc(log_len);
	if (!log)
		return -ENOMEM;
	a.log_level = 1;
	a.log_buf = (uintptr_t)log;
	a.log_size = log_len;
	int again = bpf(BPF_PROG_LOAD, &a);
	if (again >= 0)
		return again;
	size_t n = strlen(log);
	while (n && log[n - 1] == '\n')
		log[--n] = 0;
	const char *last = strrchr(log, '\n');
	pr_err("the verifier refused stasis's TCX program (%s); its log:\n%s", strerror(-fd), log);
	errno = -fd;
	return WHY("cannot load the TCX program: %s", last ? last + 1 : log);
}

/* ---- one put-back run, in the connections' network namespace ---- */

struct requeue_run {
	int map, prog, link, diag;
	int raw[2];     /* IPv4, IPv6 */
	int syncookies; /* to put back, or -1 */
};

static void run_end(struct requeue_run *r)
{
	int fds[] = { r->link, r->prog, r->map, r->diag, r->raw[0], r->raw[1] };

	for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	if (r->syncookies >= 0) {
		char v[16];
		int fd = open(SYNCOOKIES, O_WRONLY | O_CLOEXEC);
		snprintf(v, sizeof(v), "%d", r->syncookies);
		if (fd < 0 || write(fd, v, strlen(v)) < 0)
			pr_warn("cannot put net.ipv4.tcp_syncookies back to %d: %m", r->syncookies);
		if (fd >= 0)
			close(fd);
	}
	*r = (struct requeue_run){ -1, -1, -1, -1, { -1, -1 }, -1 };
}

/* tcp_syncookies on (the path the kernel takes with a request socket of the program's). */
static int syncookies_on(struct requeue_run *r, char *why, size_t why_len)
{
	char v[16] = "";
	int fd = open(SYNCOOKIES, O_RDWR | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, v, sizeof(v) - 1);
	int err = 0;

	if (n <= 0) {
		err = WHY("cannot read net.ipv4.tcp_syncookies");
	} else if (atoi(v) == 0) {
		if (pwrite(fd, "1", 1, 0) != 1)
			err = WHY("cannot turn net.ipv4.tcp_syncookies on");
		else
			r->syncookies = 0;
	}
	if (fd >= 0)
		close(fd);
	return err ? err : 0;
}

static int run_begin(struct requeue_run *r, char *why, size_t why_len)
{
	int kfunc_id, err;
	uint32_t attrs_size;
	union bpf_attr a = { 0 };

	*r = (struct requeue_run){ -1, -1, -1, -1, { -1, -1 }, -1 };
	if ((err = read_btf(&kfunc_id, &attrs_size, why, why_len)))
		return err;
	a.map_type = BPF_MAP_TYPE_ARRAY;
	a.key_size = 4;
	a.value_size = sizeof(struct requeue_slot);
	a.max_entries = 1;
	if ((r->map = bpf(BPF_MAP_CREATE, &a)) < 0) {
		errno = -r->map;
		return WHY("cannot make the TCX program's map");
	}
	if ((r->prog = load_program(r->map, kfunc_id, why, why_len)) < 0)
		return r->prog;
	unsigned lo = if_nametoindex("lo");
	if (!lo)
		return WHY("no lo in the network namespace");
	memset(&a, 0, sizeof(a));
	a.link_create.prog_fd = r->prog;
	a.link_create.target_ifindex = lo;
	a.link_create.attach_type = STASIS_BPF_TCX_INGRESS;
	if ((r->link = bpf(BPF_LINK_CREATE, &a)) < 0) {
		errno = -r->link;
		return WHY("cannot attach the program to lo's ingress (TCX, Linux >= 6.6)");
	}
	if ((err = syncookies_on(r, why, why_len)))
		return err;
	if ((r->diag = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG)) < 0)
		return WHY("cannot open sock_diag");
	return 0;
}

bool tcp_requeue_supported(char *why, size_t why_len)
{
	struct requeue_run r;
	int err = run_begin(&r, why, why_len);

	/* (the probe leaves tcp_syncookies as it was) */
	run_end(&r);
	return !err;
}

/* One connection's view: the family of its packets and its addresses. */
struct conn_view {
	int family;               /* of the packets: AF_INET for a v4-mapped client too */
	int diag_family;          /* the sockets' */
	uint8_t peer[16], local[16];
	uint16_t pport, lport;    /* network byte order */
};

static void view_of(const InetSocket *l, const TcpWaiting *w, struct conn_view *v)
{
	memset(v, 0, sizeof(*v));
	v->diag_family = l->family;
	v->pport = htons(w->peer_port);
	v->lport = htons(l->src_port);
	if (l->family == AF_INET6 && IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)w->peer_addr.data)) {
		v->family = AF_INET;
		memcpy(v->peer, w->peer_addr.data + 12, 4);
		memcpy(v->local, w->local_addr.data + 12, 4);
	} else {
		v->family = l->family;
		memcpy(v->peer, w->peer_addr.data, w->peer_addr.len);
		memcpy(v->local, w->local_addr.data, w->local_addr.len);
	}
}

/* The child of v (sock_diag by its addresses): its state and bytes received and not read;
 * -ENOENT if there is none. */
static int child_of(struct requeue_run *r, const struct conn_view *v, int *state, uint32_t *rqueue)
{
	struct {
		struct nlmsghdr h;
		struct inet_diag_req_v2 q;
	} req = { .h = { .nlmsg_len = sizeof(req), .nlmsg_type = SOCK_DIAG_BY_FAMILY, .nlmsg_flags = NLM_F_REQUEST },
		  .q = { .sdiag_family = v->diag_family, .sdiag_protocol = IPPROTO_TCP, .idiag_states = ~0u,
			 .id = { .idiag_sport = v->lport, .idiag_dport = v->pport,
				 .idiag_cookie = { INET_DIAG_NOCOOKIE, INET_DIAG_NOCOOKIE } } } };
	struct inet_diag_msg m;
	int err;

	if (v->diag_family == AF_INET6 && v->family == AF_INET) { /* v4-mapped */
		uint8_t mapped[16] = { [10] = 0xff, [11] = 0xff };
		memcpy(mapped + 12, v->local, 4);
		memcpy(req.q.id.idiag_src, mapped, 16);
		memcpy(mapped + 12, v->peer, 4);
		memcpy(req.q.id.idiag_dst, mapped, 16);
	} else {
		memcpy(req.q.id.idiag_src, v->local, v->family == AF_INET ? 4 : 16);
		memcpy(req.q.id.idiag_dst, v->peer, v->family == AF_INET ? 4 : 16);
	}
	if ((err = nl_diag_one(r->diag, &req, sizeof(req), &m)) <= 0)
		return err ? err : -EIO;
	if (m.idiag_state == TCP_LISTEN) /* (the kernel's lookup falls back on the listener) */
		return -ENOENT;
	*state = m.idiag_state;
	*rqueue = m.idiag_rqueue;
	return 0;
}

/*
 * A segment sent until done(r, v, arg) says the child took it (1), sent again every
 * WAIT_SEGMENT_MS, tries times at most: 0, -ETIMEDOUT, or done's error.
 */
static int send_until(struct requeue_run *r, const struct conn_view *v, const struct tcp_segment *s,
		      int tries, int (*done)(struct requeue_run *r, const struct conn_view *v, const void *arg),
		      const void *arg)
{
	int raw = r->raw[v->family == AF_INET6];
	int err;

	for (int k = 0; k < tries; k++) {
		if ((err = tcp_segment_send(raw, s)))
			return err;
		for (int us = 0; us < WAIT_SEGMENT_MS * 1000; us += WAIT_STEP_US) {
			if ((err = done(r, v, arg)))
				return err < 0 ? err : 0;
			usleep(WAIT_STEP_US);
		}
	}
	return -ETIMEDOUT;
}

/* The program ran on the ACK (its result: 0 or the kfunc's error), and the child is there. */
static int child_made(struct requeue_run *r, const struct conn_view *v, const void *arg)
{
	struct requeue_slot slot;
	uint32_t key = 0, rq;
	union bpf_attr a = { 0 };
	int state, err;

	(void)arg;
	a.map_fd = r->map;
	a.key = (uintptr_t)&key;
	a.value = (uintptr_t)&slot;
	if ((err = bpf(BPF_MAP_LOOKUP_ELEM, &a)) < 0)
		return err;
	if (slot.result == 1)
		return 0;
	if (slot.result)
		return slot.result < 0 ? slot.result : -EIO;
	return !child_of(r, v, &state, &rq) && state == TCP_ESTABLISHED;
}

struct received {
	uint32_t bytes;
	int state; /* 0: any */
};

static int child_received(struct requeue_run *r, const struct conn_view *v, const void *arg)
{
	const struct received *want = arg;
	uint32_t rq;
	int state, err = child_of(r, v, &state, &rq);

	if (err)
		return err;
	return rq >= want->bytes && (!want->state || state == want->state);
}

/* The namespace's IP and TCP counters (/proc/net/netstat and snmp: lines of names, each
 * followed by their values), NULL if unread. */
static char *counters_read(void)
{
	size_t l1 = 0, l2 = 0;
	auto_free char *ext = read_file_at(AT_FDCWD, "/proc/thread-self/net/netstat", &l1);
	auto_free char *snmp = read_file_at(AT_FDCWD, "/proc/thread-self/net/snmp", &l2);
	char *all = ext && snmp ? xzalloc(l1 + l2 + 1) : NULL;

	if (all) {
		memcpy(all, ext, l1);
		memcpy(all + l1, snmp, l2);
	}
	return all;
}

/* The TCP counters that moved between before and after ("TcpExt:ListenDrops+1 ..."), into out. */
static void counters_moved(const char *before, const char *after, char *out, size_t len)
{
	auto_free char *b = before ? strdup(before) : NULL;
	auto_free char *a = after ? strdup(after) : NULL;
	char *bs = NULL, *as = NULL;

	out[0] = 0;
	if (!a || !b)
		return;
	for (char *bn = strtok_r(b, "\n", &bs), *an = strtok_r(a, "\n", &as); bn && an;
	     bn = strtok_r(NULL, "\n", &bs), an = strtok_r(NULL, "\n", &as)) {
		char *bv = strtok_r(NULL, "\n", &bs), *av = strtok_r(NULL, "\n", &as);
		char *ns, *bvs, *avs;
		if (!bv || !av)
			return;
		char *prefix = strtok_r(an, " ", &ns), *n = strtok_r(NULL, " ", &ns);
		char *x = strtok_r(bv, " ", &bvs), *y = strtok_r(av, " ", &avs);
		for (x = strtok_r(NULL, " ", &bvs), y = strtok_r(NULL, " ", &avs); n && x && y;
		     n = strtok_r(NULL, " ", &ns), x = strtok_r(NULL, " ", &bvs), y = strtok_r(NULL, " ", &avs)) {
			long long d = atoll(y) - atoll(x);
			size_t at = strlen(out);
			if (d && !strncmp(prefix, "Tcp", 3)) /* (TCP's, not IP's) */
				snprintf(out + at, len - at, "%s%s%s%+lld", at ? " " : "", prefix, n, d);
		}
	}
}

static int put_one(struct requeue_run *r, const InetSocket *l, const TcpWaiting *w, char *why,
		   size_t why_len)
{
	const TcpConn *c = w->tcp;
	struct conn_view v;
	struct requeue_slot slot = { .armed = 1, .result = 1 };
	uint32_t key = 0;
	union bpf_attr a = { 0 };
	int err;

	view_of(l, w, &v);
	uint32_t min_mss = v.family == AF_INET ? MIN_MSS4 : MIN_MSS6;
	if (r->raw[v.family == AF_INET6] < 0 &&
	    (r->raw[v.family == AF_INET6] = tcp_segment_socket(v.family)) < 0) {
		errno = -r->raw[v.family == AF_INET6];
		return WHY("cannot open a raw socket");
	}
	/* the tuple as the packet has it: source (the client), destination, then the ports */
	size_t alen = v.family == AF_INET ? 4 : 16;
	memcpy(slot.tuple, v.peer, alen);
	memcpy(slot.tuple + alen, v.local, alen);
	memcpy(slot.tuple + 2 * alen, &v.pport, 2);
	memcpy(slot.tuple + 2 * alen + 2, &v.lport, 2);
	slot.v6 = v.family == AF_INET6;
	slot.attrs.mss = c->mss < min_mss ? min_mss : c->mss;
	if (c->has_snd_wscale) {
		slot.attrs.wscale_ok = 1;
		slot.attrs.snd_wscale = c->snd_wscale;
		slot.attrs.rcv_wscale = c->rcv_wscale;
	}
	slot.attrs.sack_ok = c->sack;
	if (c->has_timestamp) {
		slot.attrs.tstamp_ok = 1;
		slot.attrs.rcv_tsecr = c->timestamp; /* the child's clock goes on from ours */
	}
	a.map_fd = r->map;
	a.key = (uintptr_t)&key;
	a.value = (uintptr_t)&slot;
	size_t len = c->in_queue.len;
	uint32_t first = c->rcv_nxt - len - c->fin_received;
	uint32_t win = c->snd_wnd >> (c->has_snd_wscale ? c->snd_wscale : 0);
	struct tcp_segment s = {
		.family = v.family, .src = v.peer, .dst = v.local, .sport = v.pport, .dport = v.lport,
		.seq = first, .ack = c->snd_una, .flags = TH_ACK, .window = win > 65535 ? 65535 : win,
	};
	/* the handshake's end, the program armed for it each time it is sent */
	auto_free char *before = counters_read();
	err = -ETIMEDOUT;
	for (int tries = 0; err == -ETIMEDOUT && tries < TRIES; tries++) {
		struct requeue_slot armed = slot;
		a.value = (uintptr_t)&armed;
		if ((err = bpf(BPF_MAP_UPDATE_ELEM, &a)) < 0) {
			errno = -err;
			return WHY("cannot fill the TCX program's map");
		}
		err = send_until(r, &v, &s, 1, child_made, NULL);
	}
	if (err) {
		auto_free char *after = counters_read();
		char moved[120];
		counters_moved(before, after, moved, sizeof(moved));
		a.value = (uintptr_t)&slot;
		errno = -err;
		if (err != -ETIMEDOUT)
			return WHY("the kernel gave no request socket for the handshake's last ACK");
		if (!bpf(BPF_MAP_LOOKUP_ELEM, &a) && slot.result == 1)
			return WHY("the handshake's last ACK did not reach the TCX program on lo");
		return WHY("the handshake's last ACK made no connection in the queue (counters: %s)",
			   moved[0] ? moved : "none moved");
	}
	/* the data, a segment at a time; one the child's window or buffer refuses, in halves */
	for (size_t off = 0, most = SEGMENT_DATA; off < len;) {
		size_t n = len - off < most ? len - off : most;
		struct received want = { off + n, 0 };
		s.seq = first + off;
		s.flags = TH_ACK | TH_PUSH;
		s.data = c->in_queue.data + off;
		s.len = n;
		err = send_until(r, &v, &s, 2, child_received, &want);
		if (err == -ETIMEDOUT && n > SEGMENT_LEAST) {
			most = n / 2;
			continue;
		}
		if (err) {
			errno = -err;
			return WHY("its data was not taken again after %zu of %zu bytes", off, len);
		}
		off += n;
	}
	if (c->fin_received) {
		struct received want = { len, TCP_CLOSE_WAIT };
		s.seq = first + len;
		s.flags = TH_ACK | TH_FIN;
		s.data = NULL;
		s.len = 0;
		if ((err = send_until(r, &v, &s, TRIES, child_received, &want))) {
			errno = -err;
			return WHY("its FIN was not taken again");
		}
	}
	return 0;
}

/* ---- the kind: what was taken (dump) or is in the images (restore) ---- */

struct requeue_state {
	TcpWaiting *next;        /* dump: made ready for the next connection taken */
	InetSocket **listeners;  /* with connections taken (dump) or to make again (restore) */
	int *netns;              /* per listener its network namespace (fd + 1): the tree's own or
				  * one a process of it made (net-nested.c) */
	size_t nr, alloc;
};

static struct requeue_state *state_of(const struct run_ctx *ctx)
{
	return run_state(ctx, &tree_tcp_requeue);
}

/* in, with an fd of its namespace (+ 1, the state's from now on; 0: not known yet). */
static int add_listener(struct requeue_state *st, InetSocket *in, int netns)
{
	for (size_t i = 0; i < st->nr; i++)
		if (st->listeners[i] == in) {
			if (netns)
				close(netns - 1);
			return 0;
		}
	if (st->nr == st->alloc) {
		size_t n = st->alloc ? 2 * st->alloc : 8;
		InetSocket **more = xreallocarray(st->listeners, n, sizeof(*more));
		int *fds = more ? xreallocarray(st->netns, n, sizeof(*fds)) : NULL;
		if (more)
			st->listeners = more;
		if (!fds) {
			if (netns)
				close(netns - 1);
			return -ENOMEM;
		}
		st->netns = fds;
		st->alloc = n;
	}
	st->netns[st->nr] = netns;
	st->listeners[st->nr++] = in;
	return 0;
}

static uint64_t ns_ino(int fd)
{
	struct stat sb;

	return fstat(fd, &sb) ? 0 : sb.st_ino;
}

/* Every listener's connections made again, each in its network namespace (one run for the
 * listeners of one namespace after another); stops at the first failure. */
static int put_all(struct requeue_state *st, const char *what)
{
	struct requeue_run r = { -1, -1, -1, -1, { -1, -1 }, -1 };
	char why[200] = "", self[80], peer[80];
	uint64_t in_ns = 0;
	int err = 0;

	auto_close int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (home < 0) {
		pr_perror("%s: cannot open stasis's network namespace", what);
		return -errno;
	}
	for (size_t i = 0; !err && i < st->nr; i++) {
		const InetSocket *l = st->listeners[i];
		inet_addr_str(l->family, &l->src_addr, l->src_port, self, sizeof(self));
		if (ns_ino(st->netns[i] - 1) != in_ns) {
			run_end(&r);
			if (setns(st->netns[i] - 1, CLONE_NEWNET)) {
				pr_perror("%s: cannot enter the network namespace of TCP listener %s to put the "
					  "connections waiting in its accept queue back", what, self);
				err = -errno;
				break;
			}
			in_ns = ns_ino(st->netns[i] - 1);
			if ((err = run_begin(&r, why, sizeof(why)))) {
				pr_err("%s: cannot put the connections waiting in TCP listeners' accept queues back: "
				       "%s: %s", what, why, strerror(-err));
				break;
			}
		}
		for (size_t k = 0; !err && k < l->n_waiting; k++) {
			const TcpWaiting *w = l->waiting[k];
			inet_addr_str(l->family, &w->peer_addr, w->peer_port, peer, sizeof(peer));
			if ((err = put_one(&r, l, w, why, sizeof(why))))
				pr_err("%s: TCP listener %s: connection from %s waiting to be accepted: %s: %s",
				       what, self, peer, why, strerror(-err));
			else
				pr_debug("%s: TCP listener %s: connection from %s back in its accept queue "
					 "(%zu bytes to read)", what, self, peer, w->tcp->in_queue.len);
		}
	}
	run_end(&r);
	if (setns(home, CLONE_NEWNET)) {
		pr_perror("%s: cannot go back to stasis's network namespace", what);
		err = err ? err : -errno;
	}
	return err;
}

/*
 * What the next connection taken from listener in (socket sk) needs, made before it is taken: a
 * failure then loses none. Its namespace noted: one a process of the tree made is named in
 * the image (waiting_netns).
 */
static int reserve(const struct run_ctx *ctx, struct requeue_state *st, int sk, InetSocket *in)
{
	int err, ns = ioctl(sk, SIOCGSKNS);

	if (ns < 0)
		return -errno;
	uint32_t maker = net_nested_maker_of(ctx, ns_ino(ns));
	if (maker)
		in->has_waiting_netns = true, in->waiting_netns = maker;
	if ((err = add_listener(st, in, ns + 1)))
		return err;
	TcpWaiting **more = xreallocarray(in->waiting, in->n_waiting + 1, sizeof(*more));
	if (!more)
		return -ENOMEM;
	in->waiting = more;
	if (st->next && st->next->local_addr.data)
		return 0;
	if (st->next)
		tcp_waiting__free_unpacked(st->next, NULL);
	st->next = NULL;
	TcpWaiting *w = xzalloc(sizeof(*w));
	if (!w)
		return -ENOMEM;
	tcp_waiting__init(w);
	st->next = w;
	if (!(w->tcp = xzalloc(sizeof(*w->tcp))))
		return -ENOMEM;
	tcp_conn__init(w->tcp);
	if (!(w->peer_addr.data = xzalloc(16)) || !(w->local_addr.data = xzalloc(16)))
		return -ENOMEM; /* (freed with the state) */
	return 0;
}

int tcp_requeue_accept(struct run_ctx *ctx, int listener, InetSocket *in, struct nft_conn *c)
{
	struct pollfd p = { listener, POLLIN, 0 };
	struct sockaddr_storage l, r;
	socklen_t llen = sizeof(l), rlen = sizeof(r);
	int err;

	if ((err = reserve(ctx, state_of(ctx), listener, in)))
		return err;
	if (poll(&p, 1, 0) < 0)
		return -errno;
	if (!(p.revents & POLLIN))
		return -EAGAIN;
	int sk = accept4(listener, (struct sockaddr *)&r, &rlen, SOCK_CLOEXEC);
	if (sk < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	if (getsockname(sk, (struct sockaddr *)&l, &llen)) {
		err = -errno;
		close(sk);
		return err;
	}
	memset(c, 0, sizeof(*c));
	c->family = l.ss_family;
	if (c->family == AF_INET) {
		memcpy(c->local, &((struct sockaddr_in *)&l)->sin_addr, 4);
		memcpy(c->remote, &((struct sockaddr_in *)&r)->sin_addr, 4);
		c->lport = ((struct sockaddr_in *)&l)->sin_port;
		c->rport = ((struct sockaddr_in *)&r)->sin_port;
	} else {
		memcpy(c->local, &((struct sockaddr_in6 *)&l)->sin6_addr, 16);
		memcpy(c->remote, &((struct sockaddr_in6 *)&r)->sin6_addr, 16);
		c->lport = ((struct sockaddr_in6 *)&l)->sin6_port;
		c->rport = ((struct sockaddr_in6 *)&r)->sin6_port;
	}
	return sk;
}

/* An address of a socket of family into bytes (room for 16 made) and a port. */
static void address_of(const struct sockaddr_storage *sa, ProtobufCBinaryData *addr, uint32_t *port)
{
	if (sa->ss_family == AF_INET) {
		addr->len = 4;
		memcpy(addr->data, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		*port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
	} else {
		addr->len = 16;
		memcpy(addr->data, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
		*port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	}
}

/* sk's addresses and state into w (made by reserve). */
static int read_waiting(int sk, int state, TcpWaiting *w, char *why, size_t why_len)
{
	struct sockaddr_storage l, r;
	socklen_t llen = sizeof(l), rlen = sizeof(r);
	uint32_t port;
	int err;

	if (getsockname(sk, (struct sockaddr *)&l, &llen) || getpeername(sk, (struct sockaddr *)&r, &rlen))
		return WHY("cannot read its addresses");
	address_of(&r, &w->peer_addr, &w->peer_port);
	address_of(&l, &w->local_addr, &port);
	if ((err = tcp_repair_read(sk, state, w->tcp, why, why_len)))
		return err;
	if (w->tcp->out_queue.len) { /* a connection not accepted has sent nothing but its SYN-ACK */
		errno = ENOTSUP;
		return WHY("it has %zu bytes to send", w->tcp->out_queue.len);
	}
	return 0;
}

int tcp_requeue_take(struct run_ctx *ctx, int taken, InetSocket *in, char *why, size_t why_len)
{
	struct requeue_state *st = state_of(ctx);
	TcpWaiting *w = st->next;
	struct tcp_info ti;
	socklen_t tlen = sizeof(ti);
	int err;

	auto_close int sk = taken; /* (closed in repair mode: nothing sent) */
	if (tcp_repair_set(sk, true, false))
		return WHY("cannot put it in repair mode");
	if (getsockopt(sk, IPPROTO_TCP, TCP_INFO, &ti, &tlen))
		return WHY("cannot read its state");
	if (ti.tcpi_state == TCP_CLOSE) {
		errno = ECONNRESET;
		return WHY("its client reset it");
	}
	if (ti.tcpi_state != TCP_ESTABLISHED && ti.tcpi_state != TCP_CLOSE_WAIT) {
		errno = ENOTSUP;
		return WHY("it is in state %u (only ESTABLISHED and CLOSE_WAIT are kept)", ti.tcpi_state);
	}
	if ((err = read_waiting(sk, ti.tcpi_state, w, why, why_len))) {
		tcp_waiting__free_unpacked(w, NULL); /* (half filled) */
		st->next = NULL;
		return err;
	}
	st->next = NULL;
	in->waiting[in->n_waiting++] = w; /* the image's from now on; put back if the tree goes on */
	return 0;
}

static void close_netns(struct requeue_state *st)
{
	for (size_t i = 0; i < st->nr; i++)
		if (st->netns[i])
			close(st->netns[i] - 1);
	st->nr = 0;
}

void tcp_requeue_dump_over(struct run_ctx *ctx, bool tree_goes_on)
{
	struct requeue_state *st = state_of(ctx);

	if (tree_goes_on && st->nr)
		put_all(st, "dump");
	close_netns(st);
}

int tcp_requeue_restore(struct run_ctx *ctx)
{
	struct requeue_state *st = state_of(ctx);

	return st->nr ? put_all(st, "restore") : 0;
}

bool tcp_waiting_valid(const InetSocket *l, const TcpWaiting *w)
{
	size_t alen = l->family == AF_INET ? 4 : 16;

	return w->peer_addr.len == alen && w->local_addr.len == alen && w->peer_port &&
	       w->peer_port < 65536 && w->tcp && tcp_conn_valid(w->tcp) && !w->tcp->out_queue.len &&
	       w->tcp->in_queue.len <= QUEUE_MAX && !w->tcp->fin_sent;
}

/* The listeners with connections to make again (their fd entries are checked by inet-tcp.c). */
static int validate_requeue(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct requeue_state *st = state_of(ctx);
	int err;

	for (size_t i = 0; i < rt->nr_tasks; i++) {
		for (size_t k = 0; k < rt->tasks[i].fds->n_fds; k++) {
			const FdEntry *e = rt->tasks[i].fds->fds[k];
			if (e->kind == FD_KIND__FD_INET && e->inet && e->inet->protocol == IPPROTO_TCP &&
			    e->inet->state == INET_STATE__INET_LISTEN && e->inet->n_waiting &&
			    (err = add_listener(st, e->inet, 0)))
				return err;
		}
	}
	return 0;
}

/* Dump, before the freeze: with --tcp-established, the kernel's answer on putting connections
 * back in accept queues (a child, a namespace and a program of its own: tens of milliseconds
 * the tree need not stay frozen for) is known before any listener is read. */
static int requeue_before_freeze(struct run_ctx *ctx)
{
	if (ctx->opts->tcp_established)
		kernel_has(KF_TCP_REQUEUE);
	return 0;
}

/* In stasis, in the tree's network namespace, each nested one made (net-nested.c): each
 * listener's kept. */
static int prepare_requeue(struct run_ctx *ctx, struct restore_tree *rt)
{
	struct requeue_state *st = state_of(ctx);
	char self[80];

	(void)rt;
	for (size_t i = 0; i < st->nr; i++) {
		const InetSocket *l = st->listeners[i];
		int made = l->has_waiting_netns ? net_nested_fd(ctx, l->waiting_netns) : -1;
		int fd = made >= 0 ? fcntl(made, F_DUPFD_CLOEXEC, 0)
				   : l->has_waiting_netns ? -1 : open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			inet_addr_str(l->family, &l->src_addr, l->src_port, self, sizeof(self));
			if (made < 0 && l->has_waiting_netns)
				pr_err("restore: TCP listener %s has connections waiting in the network namespace of "
				       "pid %u, which net-nested.img does not hold", self, l->waiting_netns);
			else
				pr_perror("restore: cannot keep the network namespace of TCP listener %s", self);
			return made < 0 && l->has_waiting_netns ? -EINVAL : -errno;
		}
		st->netns[i] = fd + 1;
	}
	return 0;
}

static void free_requeue(void *state)
{
	struct requeue_state *st = state;

	if (st->next)
		tcp_waiting__free_unpacked(st->next, NULL);
	close_netns(st);
	free(st->netns);
	free(st->listeners);
}

const struct tree_object_ops tree_tcp_requeue = {
	.name = "TCP accept queues",
	.state_size = sizeof(struct requeue_state),
	.free_state = free_requeue,
	.before_freeze = requeue_before_freeze,
	.validate = validate_requeue,
	.prepare = prepare_requeue,
};
