# A thin layer over CMake. `make run` and `make test` work on a fresh Debian 12 machine as root:
# both install what is missing first (install-deps.sh).
BUILD_DIR  ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS       ?= 2
WERROR     ?= OFF
CMAKE_ARGS ?=
GWCTL      := $(BUILD_DIR)/apps/gwctl/gwctl

.PHONY: all deps configure build test run bench format clean

all: build

deps:
	@./install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DGW_WERROR=$(WERROR) $(CMAKE_ARGS) >/dev/null

build: configure
	@cmake --build $(BUILD_DIR) -j$(JOBS)

test: build
	@ctest --test-dir $(BUILD_DIR) --output-on-failure -j$(JOBS)

# The bundled demo: two backend services and gwd on 127.0.0.1:8080, in the foreground (Ctrl-C).
run: build
	@$(GWCTL) validate specs/demo.toml
	@$(GWCTL) test specs/demo.toml specs/demo.cases.toml --only-failures
	@./apps/demo/run-demo.sh $(BUILD_DIR)

bench:
	@./bench/run.sh

format:
	@clang-format -i $$(git ls-files '*.cpp' '*.hpp')

clean:
	@rm -rf $(BUILD_DIR)
