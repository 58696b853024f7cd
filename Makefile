# modelgate: the two set-up commands are `make demo` and `make check`.
JOBS ?= $(shell nproc)
BUILD ?= build
ASAN_BUILD ?= build-asan
CTEST_FLAGS ?= --output-on-failure --timeout 900

.PHONY: all deps test-deps build build-asan check check-normal check-asan demo bench lint fuzz install clean

all: build

# Debian packages only (apt-get as root on a fresh machine; nothing when they are there):
# building and installing need no network once they are installed.
deps:
	@scripts/install-deps.sh

# What only the tests need from the network: the npm GGUF reader of the interop test.
test-deps: deps
	@scripts/install-deps.sh --test

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMG_WERROR=ON >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

build-asan: deps
	CC=clang cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DMG_SANITIZE=ON -DMG_WERROR=ON >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS)

# Every test twice: the hardened gcc build, then clang with AddressSanitizer + UndefinedBehaviorSanitizer
# (with LeakSanitizer); any sanitizer report fails the run.
check: check-normal check-asan

check-normal: build test-deps
	ctest --test-dir $(BUILD) -j $(JOBS) $(CTEST_FLAGS)

check-asan: build-asan test-deps
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1 \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	ctest --test-dir $(ASAN_BUILD) -j $(JOBS) $(CTEST_FLAGS)

demo: build
	@scripts/demo.sh $(BUILD)/modelgate

bench: build
	@bench/run.sh $(BUILD)/modelgate

lint: deps
	@scripts/lint.sh

fuzz: deps
	scripts/fuzz.sh all $${FUZZ_SECONDS:-60}

install: build
	cmake --install $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) fuzz/build
