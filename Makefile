#  Tally — a thin wrapper over CMake, as neovim's Makefile is.
#    make run     install what is missing, build, start everything on :8080
#    make test    build with ASan+UBSan and run every test
#    make bench   the benchmarks of bench/README.md
#    make fuzz    build the libFuzzer targets with clang
#    make openapi regenerate proto/openapi.yaml from the declarations
BUILD      ?= build
TEST_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
WERROR     ?= $(if $(CI),ON,OFF)

.PHONY: all build run test bench fuzz openapi format clean

all: build

build:
	deploy/bootstrap.sh
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTALLY_WERROR=$(WERROR) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

run: build
	TALLY_BUILD_DIR=$(BUILD) deploy/run.sh

test:
	deploy/bootstrap.sh test
	cmake -S . -B $(TEST_BUILD) -DCMAKE_BUILD_TYPE=Debug -DTALLY_SANITIZE=ON -DTALLY_WERROR=$(WERROR) >/dev/null
	cmake --build $(TEST_BUILD) -j $(JOBS)
	tests/run.sh $(TEST_BUILD)

bench: build
	deploy/bootstrap.sh bench
	bench/run.sh $(BUILD)
	bench/mail_jobs.sh $(BUILD)
	bench/auth.sh $(BUILD)
	bench/tracker.sh $(BUILD)
	bench/peer.sh $(BUILD)
	bench/events.sh $(BUILD)
	bench/notify.sh $(BUILD)
	bench/stores.sh $(BUILD)
	bench/upload.sh $(BUILD)
	bench/analytics.sh $(BUILD)

fuzz:
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DTALLY_FUZZ=ON >/dev/null
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz-json fuzz-router fuzz-envelope fuzz-csv fuzz-value fuzz-accounts fuzz-upload

openapi: build
	TALLY_LOG_LEVEL=error $(BUILD)/gateway/tally-gateway --openapi > proto/openapi.yaml

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(TEST_BUILD) $(FUZZ_BUILD)
