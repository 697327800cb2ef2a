/*
 * xdp-pass: an XDP program that lets every packet pass, for tests/net/run-netns.sh's case that
 * a namespace with an XDP program on an interface fails the dump (built with clang -target bpf,
 * attached with `ip link set dev IF xdpgeneric obj xdp-pass.o sec xdp`).
 */
#include <linux/bpf.h>

__attribute__((section("xdp"), used)) int pass(struct xdp_md *ctx)
{
	(void)ctx;
	return XDP_PASS;
}

char _license[] __attribute__((section("license"), used)) = "GPL";
