# noisegate. `make help` lists the targets.

CC      ?= cc
AR      ?= ar
PREFIX  ?= /usr/local
DESTDIR ?=
BUILD   ?= build
OPT     ?= -O2
WERROR  ?= -Werror
FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang
VERSION := 0.1.0

PKGS := libsodium jansson hiredis libcurl libmicrohttpd libnats
CPPFLAGS += -D_POSIX_C_SOURCE=200809L -Ienvelope -Ivault -Iqueue -Ibackend-adapters -Igateway
CFLAGS   += -std=c11 $(OPT) -g -Wall -Wextra $(WERROR) -Wstrict-prototypes -Wwrite-strings \
            -Wmissing-prototypes -Wshadow -MMD -MP $(shell pkg-config --cflags $(PKGS))
LDLIBS   += $(shell pkg-config --libs $(PKGS)) -lpthread
ifeq ($(SANITIZE),1)
CFLAGS  += -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
endif
ifeq ($(SANITIZE),thread)
CFLAGS  += -fsanitize=thread -fno-omit-frame-pointer
LDFLAGS += -fsanitize=thread
endif

ENV_SRC := $(wildcard envelope/*.c)
ENV_HDR := envelope/ng_envelope.h envelope/ng_error.h envelope/ng_hex.h envelope/ng_key.h \
           envelope/ng_parcel.h envelope/ng_sscache.h envelope/ng_suite.h
# Everything but main() also goes into an internal library the tests link.
CORE_SRC := $(wildcard vault/*.c queue/*.c backend-adapters/*.c) $(filter-out gateway/main.c,$(wildcard gateway/*.c))
UNIT_SRC := $(wildcard tests/unit/test_*.c)
CLI_SRC  := $(wildcard tests/cli/test_*.c)

ENV_OBJ := $(ENV_SRC:%.c=$(BUILD)/%.o)
CORE_OBJ := $(CORE_SRC:%.c=$(BUILD)/%.o)
MAIN_OBJ := $(BUILD)/gateway/main.o
LIB     := $(BUILD)/libnoisegate-envelope.a
CORE    := $(BUILD)/libnoisegate-core.a
BIN     := $(BUILD)/noisegate
TESTS   := $(UNIT_SRC:%.c=$(BUILD)/%) $(CLI_SRC:%.c=$(BUILD)/%)
BENCH   := $(BUILD)/bench/bench_envelope
QBENCH  := $(BUILD)/bench/bench_queue
DEMO_BACKEND := $(BUILD)/examples/demo_backend
SEALED_BACKEND := $(BUILD)/examples/sealed_backend

.PHONY: all test asan tsan bench fuzz install uninstall clean style help run demo
all: $(BIN) $(LIB) $(DEMO_BACKEND) $(SEALED_BACKEND)

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(LIB): $(ENV_OBJ)
	$(AR) rcs $@ $^

$(CORE): $(CORE_OBJ)
	$(AR) rcs $@ $^

$(BIN): $(MAIN_OBJ) $(CORE) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(MAIN_OBJ) $(CORE) $(LIB) $(LDLIBS)

$(DEMO_BACKEND): examples/demo_backend.c $(CORE) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(CORE) $(LIB) $(LDLIBS)

# What a third-party sealed-mode backend needs: libnoisegate-envelope and its own HTTP libraries only.
$(SEALED_BACKEND): examples/sealed_backend.c $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) -lsodium -lmicrohttpd -lcurl

# One gateway with the embedded Redis and config/single.json, in the foreground.
run:
	scripts/run

# Two gateways, a tenant and a demo backend on each: a message from one backend to the other.
demo:
	scripts/demo

$(BUILD)/tests/%: tests/%.c $(CORE) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(CORE) $(LIB) $(LDLIBS) -lcmocka

# Every suite, with one closing line: "tests: N passed, N failed".
test: $(TESTS) $(BIN) $(SEALED_BACKEND)
	@NG_BIN=$(abspath $(BIN)) sh tests/run.sh $(TESTS)

# The same suites built with AddressSanitizer and UndefinedBehaviorSanitizer.
asan:
	$(MAKE) --no-print-directory BUILD=build/asan SANITIZE=1 OPT=-O1 test

# The suites that share state between threads, under ThreadSanitizer: without
# it a missing lock passes unseen.
TSAN_TESTS := tests/unit/test_sscache tests/unit/test_redis_embed tests/unit/test_log tests/unit/test_metrics \
              tests/unit/test_ratelimit tests/unit/test_deliver tests/unit/test_stop
tsan:
	$(MAKE) --no-print-directory BUILD=build/tsan SANITIZE=thread OPT=-O1 $(TSAN_TESTS:%=build/tsan/%)
	@TSAN_OPTIONS=halt_on_error=1 sh tests/run.sh $(TSAN_TESTS:%=build/tsan/%)

$(BENCH): bench/bench_envelope.c $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

$(QBENCH): bench/bench_queue.c $(CORE) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(CORE) $(LIB) $(LDLIBS)

bench: $(BENCH) $(QBENCH)
	$(BENCH)
	$(QBENCH)

# Load on two real gateways against three baselines (bench/bench_gateway.c);
# about 70 s, so not part of `make bench`.
GBENCH := $(BUILD)/bench/bench_gateway
.PHONY: bench-gateway
$(GBENCH): bench/bench_gateway.c $(CORE) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(CORE) $(LIB) $(LDLIBS)

bench-gateway: $(GBENCH) $(BIN)
	NG_BIN=$(abspath $(BIN)) $(GBENCH)

# Resident memory with 10,000 tenants and 100,000 queued messages, and the
# leak check: 10,000 messages through two ASan gateways that must exit 0
# (bench/bench_memory.c; about 2 minutes and 15 s; not part of `make test`).
MBENCH := $(BUILD)/bench/bench_memory
.PHONY: bench-memory leak-check
$(MBENCH): bench/bench_memory.c $(CORE) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(CORE) $(LIB) $(LDLIBS)

bench-memory: $(MBENCH) $(BIN)
	NG_BIN=$(abspath $(BIN)) $(MBENCH)

leak-check: $(MBENCH)
	$(MAKE) --no-print-directory BUILD=build/asan SANITIZE=1 OPT=-O1 build/asan/noisegate
	NG_BIN=$(abspath build/asan/noisegate) $(MBENCH) --leaks

# libFuzzer targets under ASan and UBSan, each run for FUZZ_SECONDS.
FUZZ_TARGETS := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_FLAGS := -std=c11 -O1 -g -D_POSIX_C_SOURCE=200809L -Ienvelope -Wall -Wextra -Werror \
              -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all $(shell pkg-config --cflags libsodium)
build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(ENV_SRC) $(wildcard envelope/*.h tests/fuzz/*.h)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $< $(ENV_SRC) $(shell pkg-config --libs libsodium) -lpthread

# fuzz_submit also needs the request parser from gateway/ and jansson (an
# explicit rule, so it wins over the pattern rule above).
FUZZ_SUBMIT_SRC := gateway/ng_submit.c gateway/ng_b64.c gateway/ng_jsonload.c gateway/ng_utf8.c
build/fuzz/fuzz_submit: tests/fuzz/fuzz_submit.c $(FUZZ_SUBMIT_SRC) gateway/ng_submit.h gateway/ng_jsonload.h $(ENV_SRC) \
                        $(wildcard envelope/*.h tests/fuzz/*.h)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_FLAGS) -Igateway $(shell pkg-config --cflags jansson) -o $@ $< $(FUZZ_SUBMIT_SRC) $(ENV_SRC) \
	  $(shell pkg-config --libs libsodium jansson) -lpthread

# The parsers outside envelope/ (connection parameters, webhook headers, the
# admin and pairing bodies, PROPFIND replies, configuration files) need most
# of the core: their targets link an archive of it built with the fuzz flags
# (a static pattern rule, so it wins over the pattern rule above).
FUZZ_CORE_TARGETS := params webhook jsonbody propfind config jsonload
FUZZ_CORE_FLAGS := -Ivault -Iqueue -Ibackend-adapters -Igateway $(shell pkg-config --cflags $(PKGS))
FUZZ_CORE := build/fuzz/libcore.a
build/fuzz/obj/%.o: %.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_FLAGS) $(FUZZ_CORE_FLAGS) -MMD -MP -c -o $@ $<

$(FUZZ_CORE): $(CORE_SRC:%.c=build/fuzz/obj/%.o) $(ENV_SRC:%.c=build/fuzz/obj/%.o)
	$(AR) rcs $@ $^

$(FUZZ_CORE_TARGETS:%=build/fuzz/fuzz_%): build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_CORE) $(wildcard tests/fuzz/*.h)
	$(FUZZ_CC) $(FUZZ_FLAGS) $(FUZZ_CORE_FLAGS) -o $@ $< $(FUZZ_CORE) $(shell pkg-config --libs $(PKGS)) -lpthread

fuzz: $(FUZZ_TARGETS:%=build/fuzz/fuzz_%)
	@set -e; for t in $(FUZZ_TARGETS); do \
	  mkdir -p build/fuzz/corpus-$$t; \
	  echo "fuzz $$t for $(FUZZ_SECONDS) s"; \
	  build/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    -artifact_prefix=build/fuzz/$$t- build/fuzz/corpus-$$t tests/fuzz/corpus/$$t; \
	done

install: $(BIN) $(LIB)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include/noisegate
	install -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/noisegate
	install -m 0644 $(LIB) $(DESTDIR)$(PREFIX)/lib/libnoisegate-envelope.a
	install -m 0644 $(ENV_HDR) $(DESTDIR)$(PREFIX)/include/noisegate/
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' noisegate-envelope.pc.in \
	  > $(DESTDIR)$(PREFIX)/lib/pkgconfig/noisegate-envelope.pc

uninstall:
	rm -rf $(DESTDIR)$(PREFIX)/bin/noisegate $(DESTDIR)$(PREFIX)/lib/libnoisegate-envelope.a \
	  $(DESTDIR)$(PREFIX)/include/noisegate $(DESTDIR)$(PREFIX)/lib/pkgconfig/noisegate-envelope.pc

# Formatting and the functions we do not use.
style:
	clang-format --dry-run --Werror envelope/*.[ch] vault/*.[ch] queue/*.[ch] $(wildcard backend-adapters/*.[ch]) gateway/*.[ch] tests/*/*.[ch] bench/*.[ch] examples/*.c
	! grep -nE '\b(strcpy|strcat|sprintf|vsprintf|strtok|atoi|atol|gets|rand)\(' \
	  envelope/*.[ch] vault/*.[ch] queue/*.[ch] $(wildcard backend-adapters/*.[ch]) gateway/*.[ch]

clean:
	rm -rf build

help:
	@echo "make           build/noisegate and build/libnoisegate-envelope.a"
	@echo "make test      every test suite"
	@echo "make asan      the test suites under ASan + UBSan (build/asan)"
	@echo "make tsan      the threaded suites under ThreadSanitizer (build/tsan)"
	@echo "make bench     envelope benchmark against crypto_box_seal"
	@echo "make bench-gateway  load on two gateways against seal, XADD and MHD baselines (about 70 s)"
	@echo "make fuzz      libFuzzer targets, FUZZ_SECONDS each (default 60)"
	@echo "make install   PREFIX=$(PREFIX) DESTDIR="
	@echo "make style     clang-format check and banned functions"
	@echo "make run       one gateway with the embedded Redis (scripts/run)"
	@echo "make demo      two gateways and two demo backends exchanging a message (scripts/demo)"

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
