# cmux-proxy: one command runs the proxy (`make run`), one runs every test (`make test`).
# Both install what they need on a fresh Debian machine that has a Rust toolchain.

CARGO  ?= cargo
CONF   ?= conf/cmux-proxy.yaml
ARGS   ?=
BIN    := target/release/cmux-proxy
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps build run test test-deps unit e2e shim lint bench clean-tmp

all: build

# pingora's zlib-ng build runs cmake; curl is what the README's examples use.
deps:
	@missing=""; \
	for c in cmake:cmake cc:build-essential curl:curl; do \
	  command -v $${c%%:*} >/dev/null 2>&1 || missing="$$missing $${c##*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

build: deps
	$(CARGO) build --release --bin cmux-proxy

## Start the proxy in the foreground on the default listen address (0.0.0.0:8080).
run: build
	RUST_LOG=$${RUST_LOG:-info} $(BIN) -c $(CONF) $(ARGS)

test-deps: deps
	bash e2e/deps.sh

## Every test: unit and integration tests (against an optimised binary), the shim's
## tests, then the end-to-end suite. They build with the `release-tests` profile: the
## release code without its whole-program (LTO) link, so the test binaries link fast.
TEST_BIN := target/release-tests/cmux-proxy

test: test-deps unit shim e2e

unit: deps
	$(CARGO) test --profile release-tests --workspace

shim:
	$(MAKE) -C ldpreload
	$(MAKE) -C ldpreload test

e2e: deps shim
	$(CARGO) build --profile release-tests --bin cmux-proxy
	CMUX_PROXY_BIN=$(TEST_BIN) bash e2e/run.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## Side-by-side benchmark against nginx and HAProxy (not part of `make test`).
bench: deps
	bash bench/run.sh
