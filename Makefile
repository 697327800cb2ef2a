# stasis: one build for everything.
#   make            build ./stasis
#   make setup      install build and test dependencies (Debian 12, apt-get), then build
#   make demo       checkpoint and restore a counter program, end to end
#   make test       the quick part of the suite (unit tests also under ASan/UBSan, the process zoo,
#                   hardening); about 6 minutes (2 zoo programs at once)
#   make test-slow  the rest (failure cases, the engine under ASan/UBSan, pre-dumps, lazy restore, the zoo in
#                   containers, network, cgroups, the engines' RPC and libcriu, real applications,
#                   fuzzing, make e2e); CI runs make test then make test-slow
#   make e2e        containers end to end: LXC, runc, containerd, Docker, Podman with stasis as criu
#   make bench      dump/restore throughput against this machine's memcpy and disk speed; Docker's
#                   checkpoint/restore of a 1 GiB container against the same through the CLI; live
#                   migration (rounds, frozen time, lazy restore, the page server)
#   make install    stasis, libcriu.so.2 with criu.h and criu.pc, the man page (PREFIX=/usr/local)
#   make install-criu  also the name `criu` for stasis (refused if a real criu is there)
#   make fuzz       libFuzzer targets (clang) for every image decoder and the restore's image
#                   checks, built in build-fuzz/, each run FUZZ_SECONDS (default 30)
#   make test-containers  the zoo inside containers (tests/container), both flavours whole
#                   (`make test-slow` runs every program in a whole container, a subset in a PID
#                   namespace only)

CC       ?= gcc
BUILD    ?= build
SANITIZE ?=
CFLAGS   ?= -O2 -g
WARN     := -Wall -Wextra -Werror
CPPFLAGS := -D_GNU_SOURCE -Icr -Iarch/x86_64 -Imounts -Inetns -I$(BUILD)/proto
ALL_CFLAGS := -std=gnu11 $(WARN) $(CFLAGS) $(SANITIZE)
LDLIBS   := -lprotobuf-c -lyajl -lmount -lcap -lpthread -lrt

APT_DEPS := build-essential clang libclang-rt-dev pkg-config protobuf-c-compiler libprotobuf-c-dev libyajl-dev libmount-dev libcap-dev libseccomp-dev lxc systemd runc busybox-static tmux python3 redis-server postgresql-15 nginx-light memcached curl dbus-daemon dbus-bin openjdk-17-jdk-headless nodejs golang-go valgrind openssh-server haproxy socat erlang-base ruby sbcl \
	bubblewrap firejail docker.io containerd podman catatonit nftables iproute2 procps dnsmasq-base unbound bind9-dnsutils screen php-fpm postfix bind9 mosquitto mosquitto-clients xvfb xauth x11-apps x11-utils libx11-dev libxext-dev apache2 varnish squid lighttpd openvpn tinyproxy fio
PREFIX   ?= /usr/local

PROTOS   := $(wildcard proto/*.proto)
PROTO_C  := $(patsubst proto/%.proto,$(BUILD)/proto/%.pb-c.c,$(PROTOS))
PROTO_H  := $(PROTO_C:.c=.h)
SRCS     := $(wildcard cr/*.c cr/files/*.c cr/kernel/*.c mounts/*.c netns/*.c arch/x86_64/*.c runtime-hook/*.c)
OBJS     := $(patsubst %.c,$(BUILD)/%.o,$(SRCS)) $(PROTO_C:.c=.o) $(BUILD)/restorer-blob.o
LIB_OBJS := $(filter-out $(BUILD)/runtime-hook/main.o,$(OBJS))

# The restorer blob: position-independent, no libc, linked flat and embedded in stasis.
RESTORER_CC     ?= $(CC)
RESTORER_SRCS   := cr/restorer/restorer.c arch/x86_64/restorer-entry.S
RESTORER_CFLAGS := -std=gnu11 $(WARN) -O2 -fpie -ffreestanding -fno-builtin -nostdlib \
	-fno-stack-protector -fno-asynchronous-unwind-tables -fno-unwind-tables \
	-fno-tree-loop-distribute-patterns -fno-jump-tables -mno-sse -mno-mmx -mno-avx \
	-mgeneral-regs-only -fvisibility=hidden -D_GNU_SOURCE -Icr -Iarch/x86_64

.PHONY: all setup demo test test-slow test-containers unit zoo asan fuzz fuzz-build bench e2e clean install install-criu libcriu
all: stasis libcriu

stasis: $(BUILD)/stasis
	ln -sf $(BUILD)/stasis stasis

$(BUILD)/stasis: $(OBJS)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/proto/%.pb-c.c $(BUILD)/proto/%.pb-c.h: proto/%.proto
	@mkdir -p $(dir $@)
	protoc-c --proto_path=proto --c_out=$(BUILD)/proto $<

$(BUILD)/proto/%.pb-c.o: $(BUILD)/proto/%.pb-c.c
	$(CC) $(ALL_CFLAGS) -Wno-unused-parameter $(CPPFLAGS) -c -o $@ $<

$(BUILD)/%.o: %.c $(PROTO_H)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(CPPFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/restorer/%.o: %.c
	@mkdir -p $(dir $@)
	$(RESTORER_CC) $(RESTORER_CFLAGS) -MMD -MP -c -o $@ $<
$(BUILD)/restorer/%.o: %.S
	@mkdir -p $(dir $@)
	$(RESTORER_CC) $(RESTORER_CFLAGS) -c -o $@ $<

$(BUILD)/restorer.elf: $(patsubst %,$(BUILD)/restorer/%.o,$(basename $(RESTORER_SRCS))) arch/x86_64/restorer.lds
	ld -static -nostdlib -T arch/x86_64/restorer.lds -o $@ $(filter %.o,$^)
	@if readelf -r $@ | grep -q 'R_X86'; then echo "restorer blob has relocations"; exit 1; fi

$(BUILD)/restorer.bin: $(BUILD)/restorer.elf
	objcopy -O binary $< $@

$(BUILD)/restorer-blob.o: arch/x86_64/restorer-blob.S $(BUILD)/restorer.bin
	$(RESTORER_CC) -c -DRESTORER_BIN='"$(BUILD)/restorer.bin"' -o $@ $<

# libcriu.so.2: criu's C library interface over the RPC (lib/); only criu_* is exported
LIBCRIU := $(BUILD)/lib/libcriu.so.2
LIBCRIU_CFLAGS := $(ALL_CFLAGS) -fPIC -fvisibility=hidden -D_GNU_SOURCE -Ilib -I$(BUILD)/proto
libcriu: $(LIBCRIU) $(BUILD)/lib/criu/criu.h

$(BUILD)/lib/%.o: lib/%.c lib/criu.h $(BUILD)/proto/rpc.pb-c.h
	@mkdir -p $(dir $@)
	$(CC) $(LIBCRIU_CFLAGS) -c -o $@ $<
$(BUILD)/lib/rpc.pb-c.o: $(BUILD)/proto/rpc.pb-c.c
	@mkdir -p $(dir $@)
	$(CC) $(LIBCRIU_CFLAGS) -Wno-unused-parameter -c -o $@ $<
$(LIBCRIU): $(BUILD)/lib/libcriu.o $(BUILD)/lib/rpc.pb-c.o
	$(CC) $(ALL_CFLAGS) -shared -Wl,-soname,libcriu.so.2 -o $@ $^ -lprotobuf-c
$(BUILD)/lib/criu/criu.h: lib/criu.h
	@mkdir -p $(dir $@)
	cp $< $@

# (postfix installed with no configuration of its own: the tests run private instances only)
setup:
	@if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	echo "postfix postfix/main_mailer_type select No configuration" | $$SUDO debconf-set-selections 2>/dev/null; \
	$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(APT_DEPS)
	$(MAKE) all

demo: all
	tests/demo.sh

# the quick part of the suite (about 6 minutes); test-slow the rest (35 to 50; CI runs both,
# test-slow within what is left of its time: .ci/run)
test: all asan
	tests/run-tests.sh quick

test-slow: all asan
	tests/run-tests.sh slow

# every zoo program as the init of a PID namespace, then of a whole container (tests/container)
test-containers: all
	@rc=0; tests/run-zoo.sh --jobs 2 --container=pidns || rc=1; tests/run-zoo.sh --jobs 2 --container || rc=1; exit $$rc

# the engines end to end (also part of make test-slow)
e2e: all
	tests/e2e/run-e2e.sh

# stasis itself built with ASan/UBSan (everything but the restorer blob), for the zoo to run
asan:
	$(MAKE) BUILD=build-asan SANITIZE="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" \
		build-asan/stasis

# The fuzz targets (fuzz/): the engine built with clang, ASan/UBSan and libFuzzer's coverage
# (the restorer blob with gcc, as always: it never runs there), each target run FUZZ_SECONDS
FUZZ_TARGETS := $(patsubst fuzz/%.c,build-fuzz/%,$(wildcard fuzz/fuzz-*.c))
FUZZ_SECONDS ?= 30
fuzz-build:
	$(MAKE) BUILD=build-fuzz CC=clang RESTORER_CC=gcc CFLAGS="-O1 -g" \
		SANITIZE="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" \
		$(FUZZ_TARGETS)
fuzz: all fuzz-build
	fuzz/run-fuzz.sh $(FUZZ_SECONDS)
$(BUILD)/fuzz-%: $(BUILD)/fuzz/fuzz-%.o $(LIB_OBJS)
	$(CC) $(ALL_CFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

# then Docker's checkpoint/restore path against the CLI on a 1 GiB container
bench: all
	$(MAKE) -C tests/bench
	@rc=0; tests/bench/run-bench.sh || rc=1; tests/bench/container-bench.sh || rc=1; tests/bench/docker-bench.sh || rc=1; \
	tests/bench/migrate-bench.sh || rc=1; exit $$rc

install: all
	install -D -m 0755 $(BUILD)/stasis $(DESTDIR)$(PREFIX)/sbin/stasis
	install -D -m 0755 runtime-hook/stasis-host $(DESTDIR)$(PREFIX)/sbin/stasis-host
	install -D -m 0755 $(LIBCRIU) $(DESTDIR)$(PREFIX)/lib/libcriu.so.2
	ln -sf libcriu.so.2 $(DESTDIR)$(PREFIX)/lib/libcriu.so
	install -D -m 0644 lib/criu.h $(DESTDIR)$(PREFIX)/include/criu/criu.h
	@mkdir -p $(DESTDIR)$(PREFIX)/lib/pkgconfig
	sed 's|@PREFIX@|$(PREFIX)|; s|@VERSION@|$(shell sed -n 's/.*define CRIU_DIALECT "\(.*\)"/\1/p' runtime-hook/faces.h)|' \
		lib/criu.pc.in >$(DESTDIR)$(PREFIX)/lib/pkgconfig/criu.pc
	install -D -m 0644 man/stasis.8 $(DESTDIR)$(PREFIX)/share/man/man8/stasis.8
	@if [ -z "$(DESTDIR)" ]; then ldconfig; fi

# `criu` for stasis, where engines look for it (runc, Docker, Podman: criu on PATH); a real
# criu there is never replaced
install-criu: install
	@link=$(DESTDIR)$(PREFIX)/sbin/criu; \
	if [ -L "$$link" ] && [ "$$(readlink "$$link")" = stasis ]; then echo "$$link is already stasis"; \
	elif [ -e "$$link" ] || [ -L "$$link" ]; then \
		echo "make install-criu: REFUSED: $$link exists and is not stasis (a real criu?);" \
			"remove it yourself if stasis should take its place" >&2; exit 1; \
	else ln -s stasis "$$link" && echo "$$link -> stasis"; fi; \
	for other in /usr/sbin/criu /usr/bin/criu /sbin/criu /bin/criu; do \
		if [ -e "$$other" ]; then echo "note: $$other is another criu; engines find $$link first" \
			"only while $(PREFIX)/sbin comes before it on their PATH" >&2; fi; \
	done

clean:
	rm -rf build build-asan build-fuzz stasis tests/zoo/bin tests/container/bin tests/unit/bin tests/unit/bin-asan tests/bench/bin tests/tools/bin

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
