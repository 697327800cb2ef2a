/*
 * packet-ring: packet sockets with rings (PACKET_RX_RING, PACKET_TX_RING) mapped, on lo. Each
 * receiving socket is bound to lo for ETH_P_IP with a classic BPF filter passing only UDP
 * datagrams to its own port (other traffic of lo stays out of its few frames).
 *   fd 60 TPACKET_V2, an RX ring of 8 frames of 2048 bytes (port 47211), mapped twice: at A
 *         and at B;
 *   fd 61 TPACKET_V3, an RX ring of 2 blocks of 8192 bytes, retire timeout 10 ms (port 47212);
 *   fd 62 TPACKET_V2, an RX ring (its filter drops everything) and a TX ring of 4 frames, one
 *         mapping of both, bound to lo for ETH_P_IP;
 *   fd 63 TPACKET_V2 RX ring (port 47213), mapped while the socket was fd 64, which was then
 *         dup'ed to 63 and closed;
 *   a TPACKET_V2 RX ring (port 47214) whose socket no fd holds any more (closed after mmap).
 * Before READY each ring has received (or sent) a frame and given it back to the kernel: the
 * kernel's position is past the first frame; fd 60's ring holds one more frame, not read (in
 * flight). A restored ring is a fresh one (ring contents are not kept): its frames are all
 * TP_STATUS_KERNEL and the kernel starts again at its first frame (a TX ring's too: the
 * program, which cannot know where the kernel is, fills every frame of it to send).
 * After restore and SIGTERM (the generic check keeps every mapping at its address, length,
 * protection and offset; socket mappings compare without their inode):
 *   each mapping is of the socket its fd holds (/proc/self/map_files vs /proc/self/fd);
 *   getsockopt PACKET_VERSION of fd 60..63;
 *   a datagram sent to each port after the restore shows up in its ring (V2: a frame of status
 *   TP_STATUS_USER holding it; V3: a retired block holding it, read as libpcap reads, from the
 *   block after the one read before the dump: the restore hands it the blocks from there on
 *   empty, so that it meets the kernel, which fills the first block again), also the socket no
 *   fd holds;
 *   fd 60's frame is seen through both its mappings;
 *   frames written into fd 62's TX ring and sent (send with no data) come back to
 *   TP_STATUS_AVAILABLE and reach fd 60's ring.
 * --partial: the last page of fd 63's mapping is unmapped (a mapping of a part of the rings,
 * which stasis refuses; tests/failure-cases.sh); its checks look at what is left.
 * Blocks in: nanosleep (zoo_wait loop).
 */
#include "zoo.h"
#include <arpa/inet.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>

#define PORT 47211
#define V2_FRAME 2048
#define V2_FRAMES 8
#define V2_BYTES (V2_FRAMES * V2_FRAME) /* 4 blocks of 4096 bytes */
#define V3_BLOCK 8192
#define V3_BLOCKS 2
#define TX_FRAMES 4

static int lo_index;
static uint8_t *ring60, *ring60b, *ring61, *ring62, *ring63, *ring_alone;
static int pos61; /* the block of fd 61's ring read next (v3_next) */
static size_t len62, len63 = V2_BYTES;
static char marker[32];

/* A filter passing UDP datagrams to port (SOCK_RAW: Ethernet, IPv4 without options); 0: none. */
static void attach_filter(int fd, int port)
{
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 12),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IP, 0, 5),
		BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 23),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_UDP, 0, 3),
		BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 36),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)port, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, 0xffff),
		BPF_STMT(BPF_RET | BPF_K, 0),
	};
	struct sock_fprog prog = { sizeof(code) / sizeof(code[0]), code };
	if (!port) {
		code[0] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 0);
		prog.len = 1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)))
		zoo_die("filter: %s", strerror(errno));
}

/* A packet socket on lo for ETH_P_IP, version, the given rings (NULL: none), its filter. */
static int ring_socket(int version, void *rx, size_t rxlen, void *tx, size_t txlen, int port)
{
	int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_IP), .sll_ifindex = lo_index };
	if (fd < 0)
		zoo_die("socket: %s", strerror(errno));
	attach_filter(fd, port);
	if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &version, sizeof(version)) ||
	    (rx && setsockopt(fd, SOL_PACKET, PACKET_RX_RING, rx, rxlen)) ||
	    (tx && setsockopt(fd, SOL_PACKET, PACKET_TX_RING, tx, txlen)) ||
	    bind(fd, (struct sockaddr *)&sll, sizeof(sll)))
		zoo_die("ring socket (version %d): %s", version, strerror(errno));
	return fd;
}

static uint8_t *map_ring(int fd, size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		zoo_die("mmap of the ring of fd %d: %s", fd, strerror(errno));
	return p;
}

static void udp_to(int port, const char *what)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	sendto(s, what, strlen(what), 0, (struct sockaddr *)&to, sizeof(to));
	close(s);
}

/* The frame of a V2 ring (frames frames) holding what, status TP_STATUS_USER, within ms; its
 * index or -1. release: give it back to the kernel. */
static int v2_find(uint8_t *ring, int frames, const char *what, int ms, int release)
{
	for (int waited = 0; waited <= ms; waited += 5) {
		for (int i = 0; i < frames; i++) {
			struct tpacket2_hdr *h = (struct tpacket2_hdr *)(ring + (size_t)i * V2_FRAME);
			if (!(__atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER))
				continue;
			if (memmem((uint8_t *)h + h->tp_mac, h->tp_snaplen, what, strlen(what))) {
				if (release)
					__atomic_store_n(&h->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
				return i;
			}
		}
		zoo_sleep_ms(5);
	}
	return -1;
}

/*
 * The V3 ring read as libpcap reads it: block *pos next, waited for until the kernel retires
 * it, its packets looked at, handed back, then the next block; 1 if what came within ms, else 0.
 */
static int v3_next(uint8_t *ring, int *pos, const char *what, int ms)
{
	for (int waited = 0; waited <= ms;) {
		struct tpacket_block_desc *d = (struct tpacket_block_desc *)(ring + (size_t)*pos * V3_BLOCK);
		if (!(__atomic_load_n(&d->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER)) {
			zoo_sleep_ms(5);
			waited += 5;
			continue;
		}
		int found = 0;
		struct tpacket3_hdr *p = (struct tpacket3_hdr *)((uint8_t *)d + d->hdr.bh1.offset_to_first_pkt);
		for (unsigned k = 0; k < d->hdr.bh1.num_pkts; k++) {
			if (memmem((uint8_t *)p + p->tp_mac, p->tp_snaplen, what, strlen(what)))
				found = 1;
			p = (struct tpacket3_hdr *)((uint8_t *)p + p->tp_next_offset);
		}
		__atomic_store_n(&d->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
		*pos = (*pos + 1) % V3_BLOCKS;
		if (found)
			return 1;
	}
	return 0;
}

static uint16_t ip_sum(const uint8_t *p, int len)
{
	uint32_t s = 0;
	for (int i = 0; i < len; i += 2)
		s += (p[i] << 8) | p[i + 1];
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

/* Sends what to 127.0.0.1:PORT from every frame of fd 62's TX ring (the kernel's place in it
 * is not known): send()'s result, and whether every frame came back to TP_STATUS_AVAILABLE. */
static long tx_send(const char *what, int *back)
{
	size_t n = strlen(what), ip_len = 20 + 8 + n;

	for (int i = 0; i < TX_FRAMES; i++) {
		struct tpacket2_hdr *h = (struct tpacket2_hdr *)(ring62 + V2_BYTES + (size_t)i * V2_FRAME);
		uint8_t *f = (uint8_t *)h + TPACKET2_HDRLEN - sizeof(struct sockaddr_ll);
		memset(f, 0, 14 + ip_len);
		f[12] = 0x08; /* ETH_P_IP; both addresses lo's (zeros) */
		uint8_t *ip = f + 14, *udp = ip + 20;
		ip[0] = 0x45;
		ip[2] = ip_len >> 8, ip[3] = ip_len & 0xff;
		ip[8] = 64, ip[9] = IPPROTO_UDP;
		ip[12] = 127, ip[15] = 1, ip[16] = 127, ip[19] = 1;
		uint16_t sum = ip_sum(ip, 20);
		ip[10] = sum >> 8, ip[11] = sum & 0xff;
		udp[0] = 0xb8, udp[1] = 0x22; /* from port 47138 */
		udp[2] = PORT >> 8, udp[3] = PORT & 0xff;
		udp[4] = (8 + n) >> 8, udp[5] = (8 + n) & 0xff;
		memcpy(udp + 8, what, n);
		h->tp_len = 14 + ip_len;
		__atomic_store_n(&h->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
	}
	long r = send(62, NULL, 0, 0);
	*back = 0;
	for (int k = 0; k < 400 && !*back; k++) {
		*back = 1;
		for (int i = 0; i < TX_FRAMES; i++) {
			struct tpacket2_hdr *h = (struct tpacket2_hdr *)(ring62 + V2_BYTES + (size_t)i * V2_FRAME);
			*back &= __atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE) == TP_STATUS_AVAILABLE;
		}
		if (!*back)
			zoo_sleep_ms(5);
	}
	return r;
}

/* Whether the mapping at addr is of the socket fd holds (fd < 0: of some socket). */
static int mapped_from(void *addr, size_t len, int fd, char *got, size_t glen)
{
	char mf[96], want[64] = "";
	snprintf(mf, sizeof(mf), "/proc/self/map_files/%lx-%lx", (unsigned long)addr, (unsigned long)addr + len);
	ssize_t n = readlink(mf, got, glen - 1);
	got[n > 0 ? n : 0] = 0;
	if (fd < 0)
		return !strncmp(got, "socket:[", 8);
	snprintf(mf, sizeof(mf), "/proc/self/fd/%d", fd);
	n = readlink(mf, want, sizeof(want) - 1);
	want[n > 0 ? n : 0] = 0;
	return n > 0 && !strcmp(got, want);
}

static int version_of(int fd)
{
	int v = -1;
	socklen_t l = sizeof(v);
	getsockopt(fd, SOL_PACKET, PACKET_VERSION, &v, &l);
	return v;
}

/* The ring at *ring replaced by anonymous memory (it receives nothing any more). */
static void unring(uint8_t *ring, size_t len)
{
	mmap(ring, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
}
static void c_rx_v2(ucontext_t *u) { (void)u; unring(ring60, V2_BYTES); }
static void c_twice(ucontext_t *u) { (void)u; unring(ring60b, V2_BYTES); }
static void c_rx_v3(ucontext_t *u) { (void)u; unring(ring61, V3_BLOCK * V3_BLOCKS); }
static void c_version(ucontext_t *u) { (void)u; zoo_place(socket(AF_PACKET, SOCK_RAW, 0), 61, O_CLOEXEC); }
static void c_tx(ucontext_t *u) { (void)u; zoo_place(socket(AF_PACKET, SOCK_RAW, 0), 62, O_CLOEXEC); }
static void c_dup(ucontext_t *u) { (void)u; zoo_place(socket(AF_PACKET, SOCK_RAW, 0), 63, O_CLOEXEC); }
static void c_alone(ucontext_t *u) { (void)u; unring(ring_alone, V2_BYTES); }
static const struct zoo_corruption corruptions[] = {
	{ "rx-v2", c_rx_v2, 0 }, { "twice", c_twice, 0 }, { "rx-v3", c_rx_v3, 0 }, { "version", c_version, 0 },
	{ "tx", c_tx, 0 },	 { "dup", c_dup, 0 },	  { "alone", c_alone, 0 },
};

int main(int argc, char **argv)
{
	struct tpacket_req v2 = { .tp_block_size = 4096, .tp_block_nr = V2_BYTES / 4096, .tp_frame_size = V2_FRAME,
				  .tp_frame_nr = V2_FRAMES };
	struct tpacket_req tx = { .tp_block_size = 4096, .tp_block_nr = TX_FRAMES / 2, .tp_frame_size = V2_FRAME,
				  .tp_frame_nr = TX_FRAMES };
	struct tpacket_req3 v3 = { .tp_block_size = V3_BLOCK, .tp_block_nr = V3_BLOCKS, .tp_frame_size = 2048,
				   .tp_frame_nr = V3_BLOCK / 2048 * V3_BLOCKS, .tp_retire_blk_tov = 10 };
	int back;

	zoo_init(argc, argv, corruptions, sizeof(corruptions) / sizeof(corruptions[0]));
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--partial"))
			len63 = V2_BYTES - 4096;
	lo_index = (int)if_nametoindex("lo");

	zoo_place(ring_socket(TPACKET_V2, &v2, sizeof(v2), NULL, 0, PORT), 60, O_CLOEXEC);
	ring60 = map_ring(60, V2_BYTES);
	ring60b = map_ring(60, V2_BYTES);
	zoo_place(ring_socket(TPACKET_V3, &v3, sizeof(v3), NULL, 0, PORT + 1), 61, O_CLOEXEC);
	ring61 = map_ring(61, V3_BLOCK * V3_BLOCKS);
	zoo_place(ring_socket(TPACKET_V2, &v2, sizeof(v2), &tx, sizeof(tx), 0), 62, O_CLOEXEC);
	len62 = V2_BYTES + TX_FRAMES * V2_FRAME;
	ring62 = map_ring(62, len62);
	zoo_place(ring_socket(TPACKET_V2, &v2, sizeof(v2), NULL, 0, PORT + 2), 64, O_CLOEXEC);
	ring63 = map_ring(64, V2_BYTES);
	if (len63 < V2_BYTES)
		munmap(ring63 + len63, V2_BYTES - len63);
	zoo_place(dup(64), 63, O_CLOEXEC);
	close(64);
	int alone = ring_socket(TPACKET_V2, &v2, sizeof(v2), NULL, 0, PORT + 3);
	ring_alone = map_ring(alone, V2_BYTES);
	close(alone);

	/* every ring works, and the kernel's place in it is past its first frame */
	udp_to(PORT, "before-60");
	udp_to(PORT + 1, "before-61");
	udp_to(PORT + 2, "before-63");
	udp_to(PORT + 3, "before-alone");
	if (v2_find(ring60, V2_FRAMES, "before-60", 2000, 1) < 0 || !v3_next(ring61, &pos61, "before-61", 2000) ||
	    v2_find(ring63, len63 / V2_FRAME, "before-63", 2000, 1) < 0 ||
	    v2_find(ring_alone, V2_FRAMES, "before-alone", 2000, 1) < 0)
		zoo_die("a ring does not receive before the dump");
	if (tx_send("before-tx", &back) <= 0 || !back || v2_find(ring60, V2_FRAMES, "before-tx", 2000, 1) < 0)
		zoo_die("the TX ring does not send before the dump: %s", strerror(errno));
	snprintf(marker, sizeof(marker), "after-%d", (int)getpid());
	udp_to(PORT, "in-flight-60");
	if (v2_find(ring60, V2_FRAMES, "in-flight-60", 2000, 0) < 0)
		zoo_die("fd 60's ring does not receive before the dump");

	zoo_ready();
	zoo_wait();

	char got[96];
	CHECK("rx-v2", mapped_from(ring60, V2_BYTES, 60, got, sizeof(got)), "mapping %p is %s, not fd 60's", (void *)ring60, got);
	CHECK("twice", mapped_from(ring60b, V2_BYTES, 60, got, sizeof(got)), "mapping %p is %s, not fd 60's", (void *)ring60b, got);
	CHECK("rx-v3", mapped_from(ring61, V3_BLOCK * V3_BLOCKS, 61, got, sizeof(got)), "mapping %p is %s, not fd 61's",
	      (void *)ring61, got);
	CHECK("tx", mapped_from(ring62, len62, 62, got, sizeof(got)), "mapping %p is %s, not fd 62's", (void *)ring62, got);
	CHECK("dup", mapped_from(ring63, len63, 63, got, sizeof(got)), "mapping %p is %s, not fd 63's", (void *)ring63, got);
	CHECK("alone", mapped_from(ring_alone, V2_BYTES, -1, got, sizeof(got)), "mapping %p is %s, not a socket's",
	      (void *)ring_alone, got);
	CHECK("version", version_of(60) == TPACKET_V2 && version_of(61) == TPACKET_V3 && version_of(62) == TPACKET_V2 &&
				 version_of(63) == TPACKET_V2,
	      "PACKET_VERSION of fd 60..63: %d %d %d %d", version_of(60), version_of(61), version_of(62), version_of(63));

	char m[48];
	snprintf(m, sizeof(m), "%s-60", marker);
	udp_to(PORT, m);
	int at = v2_find(ring60, V2_FRAMES, m, 2000, 0);
	CHECK("rx-v2", at >= 0, "fd 60's V2 ring did not receive %s", m);
	CHECK("twice", at >= 0 && v2_find(ring60b, V2_FRAMES, m, 0, 0) == at,
	      "fd 60's second mapping does not show frame %d holding %s", at, m);
	if (at >= 0)
		v2_find(ring60, V2_FRAMES, m, 0, 1);
	snprintf(m, sizeof(m), "%s-61", marker);
	udp_to(PORT + 1, m);
	CHECK("rx-v3", v3_next(ring61, &pos61, m, 2000), "fd 61's V3 ring did not receive %s in block %d or after",
	      m, pos61);
	snprintf(m, sizeof(m), "%s-63", marker);
	udp_to(PORT + 2, m);
	CHECK("dup", v2_find(ring63, len63 / V2_FRAME, m, 2000, 1) >= 0, "fd 63's ring did not receive %s", m);
	snprintf(m, sizeof(m), "%s-alone", marker);
	udp_to(PORT + 3, m);
	CHECK("alone", v2_find(ring_alone, V2_FRAMES, m, 2000, 1) >= 0, "the ring no fd holds did not receive %s", m);
	snprintf(m, sizeof(m), "%s-tx", marker);
	long sent = tx_send(m, &back);
	CHECK("tx", sent > 0 && back, "fd 62's TX ring: send gave %ld (%s), frame given back %d", sent,
	      sent < 0 ? strerror(errno) : "-", back);
	CHECK("tx", v2_find(ring60, V2_FRAMES, m, 2000, 1) >= 0, "what fd 62's TX ring sent did not reach fd 60");
	return zoo_finish("V2, V3 and TX rings, mapped twice, through a dup, held by no fd");
}
