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

# Validates, compiles and shows the bundled demo spec, then runs its route test cases.
run: build
	@echo "== gwctl validate specs/demo.toml"
	@$(GWCTL) validate specs/demo.toml
	@echo "== gwctl compile specs/demo.toml -o $(BUILD_DIR)/demo.gwrt"
	@$(GWCTL) compile specs/demo.toml -o $(BUILD_DIR)/demo.gwrt
	@echo "== gwctl inspect $(BUILD_DIR)/demo.gwrt"
	@$(GWCTL) inspect $(BUILD_DIR)/demo.gwrt
	@echo "== gwctl test $(BUILD_DIR)/demo.gwrt specs/demo.cases.toml"
	@$(GWCTL) test $(BUILD_DIR)/demo.gwrt specs/demo.cases.toml
	@echo "== try: $(GWCTL) explain specs/demo.toml GET http://shop.example/pets/7"

bench:
	@./bench/run.sh

format:
	@clang-format -i $$(git ls-files '*.cpp' '*.hpp')

clean:
	@rm -rf $(BUILD_DIR)
