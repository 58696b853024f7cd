# modelgate: the two set-up commands are `make demo` and `make check`.
JOBS ?= $(shell nproc)
BUILD ?= build
ASAN_BUILD ?= build-asan
CTEST_FLAGS ?= --output-on-failure --timeout 900

.PHONY: all deps build build-asan check check-normal check-asan demo bench lint fuzz install clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

build-asan: deps
	CC=clang cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DMG_SANITIZE=ON >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS)

# Every test twice: the hardened gcc build, then clang with AddressSanitizer + UndefinedBehaviorSanitizer
# (with LeakSanitizer); any sanitizer report fails the run.
check: check-normal check-asan

check-normal: build
	ctest --test-dir $(BUILD) -j $(JOBS) $(CTEST_FLAGS)

check-asan: build-asan
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
