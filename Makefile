# cmux-proxy: one command runs the proxy (`make run`), one runs every test (`make test`).
# Both install what they need on a fresh Debian machine that has a Rust toolchain.

CARGO  ?= cargo
CONF   ?= conf/cmux-proxy.yaml
ARGS   ?=
BIN    := target/release/cmux-proxy
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps build run test test-deps unit cargo-tests e2e browser shim shim-lib \
	test-install test-dist install uninstall dist deb lint bench clean-tmp

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

## Every test: the cargo tests (unit and integration, against an optimised binary), the
## shim's tests, the end-to-end suite, the real-browser suite, then install/uninstall.
## They build with the `release-tests` profile: the release code without its
## whole-program (LTO) link, so the test binaries link fast.
TEST_BIN := target/release-tests/cmux-proxy

test: test-deps cargo-tests shim e2e browser test-install test-dist

## The fast loop: the library's and the binary's unit tests (src/), no test tools needed.
unit:
	$(CARGO) test --profile release-tests --lib --bins

## Every cargo test of the workspace: unit tests and the integration tests of tests/ (which
## need curl and dnsmasq from test-deps). Parts a host cannot run (no IPv6 loopback, say)
## are skipped visibly: counted and listed at the end.
SKIPPED_FILE := $(or $(CARGO_TARGET_DIR),target)/tmp/skipped.txt

cargo-tests: test-deps
	@mkdir -p $(dir $(SKIPPED_FILE)) && rm -f $(SKIPPED_FILE)
	$(CARGO) test --profile release-tests --workspace
	@n=$$(cat $(SKIPPED_FILE) 2>/dev/null | wc -l); echo "cargo-tests: $$n skipped"; \
	  cat $(SKIPPED_FILE) 2>/dev/null || true

shim: shim-lib
	$(MAKE) -C ldpreload test

shim-lib:
	$(MAKE) -C ldpreload

e2e: deps shim
	$(CARGO) build --profile release-tests --bin cmux-proxy
	CMUX_PROXY_BIN=$(TEST_BIN) bash e2e/run.sh

## The real-browser suite (e2e/browser/): headless Chromium (Debian's package, installed
## if missing) through the proxy, run as a daemon and reloaded once, to real Vite and
## Next.js dev servers in workspaces; `npm ci` in that folder only when needed.
browser: deps shim-lib
	$(CARGO) build --profile release-tests --bin cmux-proxy
	CMUX_PROXY_BIN=$(TEST_BIN) bash e2e/browser/run.sh

## `make install` and `make uninstall` into a scratch DESTDIR, with the test binary (no
## second release build); checks modes, stripping, the kept conf, and what uninstall leaves.
test-install: deps shim-lib
	$(CARGO) build --profile release-tests --bin cmux-proxy
	bash e2e/install_test.sh $(TEST_BIN)

## `make dist` and scripts/install.sh end to end: serves dist/ from a loopback HTTP server
## and installs from it into a scratch folder (good, pinned, corrupt, unknown arch, upgrade);
## checks what `make deb` packs (without installing it).
test-dist: deps shim-lib
	$(CARGO) build --profile release-tests --bin cmux-proxy
	bash e2e/dist_test.sh $(TEST_BIN)

## Install: `make build && sudo make install`, or `make install BIN=FILE` for a binary built
## elsewhere. PREFIX, SYSCONFDIR, DESTDIR as usual. The installed binary has its debug info
## stripped; the one in target/ keeps it.
PREFIX     ?= /usr/local
SYSCONFDIR ?= /etc
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib/cmux-proxy
UNITDIR    ?= $(PREFIX)/lib/systemd/system
CONFDIR    := $(SYSCONFDIR)/cmux-proxy
INSTALL    ?= install
STRIP      ?= strip
SHIM_LIB   := ldpreload/libworkspace_net.so
# (Re)build the release binary when it is the one being installed and cargo is at hand
# (under sudo it often is not: then the binary `make build` left is installed).
INSTALL_DEPS = shim-lib $(if $(filter target/release/cmux-proxy,$(BIN)),$(if \
	$(shell command -v $(CARGO) 2>/dev/null),build))

install: $(INSTALL_DEPS)
	@test -x "$(BIN)" || { echo "install: no binary at $(BIN)" >&2; exit 1; }
	$(INSTALL) -d "$(DESTDIR)$(BINDIR)" "$(DESTDIR)$(LIBDIR)" "$(DESTDIR)$(UNITDIR)" \
	  "$(DESTDIR)$(CONFDIR)"
	$(INSTALL) -m 755 "$(BIN)" "$(DESTDIR)$(BINDIR)/cmux-proxy"
	$(STRIP) --strip-debug "$(DESTDIR)$(BINDIR)/cmux-proxy"
	sed -e 's|^INSTALLED_CONF=$$|INSTALLED_CONF=$(CONFDIR)/cmux-proxy.yaml|' \
	    -e 's|^INSTALLED_BIN=$$|INSTALLED_BIN=$(BINDIR)/cmux-proxy|' \
	    scripts/cmux-proxyctl >"$(DESTDIR)$(BINDIR)/cmux-proxyctl.tmp"
	$(INSTALL) -m 755 "$(DESTDIR)$(BINDIR)/cmux-proxyctl.tmp" "$(DESTDIR)$(BINDIR)/cmux-proxyctl"
	rm -f "$(DESTDIR)$(BINDIR)/cmux-proxyctl.tmp"
	$(INSTALL) -m 644 $(SHIM_LIB) "$(DESTDIR)$(LIBDIR)/libworkspace_net.so"
	sed -e 's|/usr/local/bin/|$(BINDIR)/|g' -e 's|/etc/cmux-proxy/|$(CONFDIR)/|g' \
	    conf/cmux-proxy.service >"$(DESTDIR)$(UNITDIR)/cmux-proxy.service.tmp"
	$(INSTALL) -m 644 "$(DESTDIR)$(UNITDIR)/cmux-proxy.service.tmp" \
	  "$(DESTDIR)$(UNITDIR)/cmux-proxy.service"
	rm -f "$(DESTDIR)$(UNITDIR)/cmux-proxy.service.tmp"
	@conf="$(DESTDIR)$(CONFDIR)/cmux-proxy.yaml"; \
	if [ -e "$$conf" ] && ! cmp -s conf/cmux-proxy.yaml "$$conf"; then \
	  $(INSTALL) -m 640 conf/cmux-proxy.yaml "$$conf.new"; \
	  echo "install: kept $$conf (it differs from the shipped conf); the shipped one is $$conf.new"; \
	else \
	  $(INSTALL) -m 640 conf/cmux-proxy.yaml "$$conf"; \
	  echo "install: $$conf"; \
	fi
	@echo "install: done; for systemd: systemctl daemon-reload && systemctl enable --now cmux-proxy"

## Removes what `install` put there. The conf (and a .new beside it) is removed only while
## it is identical to the shipped one: an edited conf stays.
uninstall:
	rm -f "$(DESTDIR)$(BINDIR)/cmux-proxy" "$(DESTDIR)$(BINDIR)/cmux-proxyctl" \
	  "$(DESTDIR)$(LIBDIR)/libworkspace_net.so" "$(DESTDIR)$(UNITDIR)/cmux-proxy.service"
	rmdir "$(DESTDIR)$(LIBDIR)" 2>/dev/null || true
	@for f in "$(DESTDIR)$(CONFDIR)/cmux-proxy.yaml" "$(DESTDIR)$(CONFDIR)/cmux-proxy.yaml.new"; do \
	  if [ ! -e "$$f" ]; then :; \
	  elif cmp -s conf/cmux-proxy.yaml "$$f"; then rm -f "$$f" && echo "uninstall: removed $$f"; \
	  else echo "uninstall: kept $$f (edited: it differs from the shipped conf)"; fi; \
	done
	@rmdir "$(DESTDIR)$(CONFDIR)" 2>/dev/null || true

## Release archive: dist/cmux-proxy-<version>-<target>.tar.gz and dist/SHA256SUMS. It is
## `make install` into a staging DESTDIR (so the layout, modes and stripping are the same),
## with the default paths (/usr/local, /etc) filled in; scripts/install.sh rewrites them
## for where it installs. `make dist BIN=FILE` packs a binary built elsewhere.
VERSION    := $(shell sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n 1)
DIST_ARCH  ?= $(shell uname -m)
DIST_TARGET ?= $(DIST_ARCH)-unknown-linux-gnu
DIST_DIR   ?= dist
DIST_NAME  := cmux-proxy-$(VERSION)-$(DIST_TARGET)

dist: $(INSTALL_DEPS)
	@test -n "$(VERSION)" || { echo "dist: no version in Cargo.toml" >&2; exit 1; }
	rm -rf "$(DIST_DIR)/stage" && mkdir -p "$(DIST_DIR)/stage"
	$(MAKE) -s install BIN="$(BIN)" DESTDIR="$(abspath $(DIST_DIR))/stage" \
	  PREFIX=/usr/local SYSCONFDIR=/etc INSTALL_DEPS= >/dev/null
	mkdir -p "$(DIST_DIR)/stage/$(DIST_NAME)"
	mv "$(DIST_DIR)"/stage/usr/local/* "$(DIST_DIR)/stage/etc" "$(DIST_DIR)/stage/$(DIST_NAME)/"
	$(INSTALL) -m 644 README.md LICENSE "$(DIST_DIR)/stage/$(DIST_NAME)/"
	tar -C "$(DIST_DIR)/stage" --owner=0 --group=0 --numeric-owner --sort=name \
	  -czf "$(DIST_DIR)/$(DIST_NAME).tar.gz" "$(DIST_NAME)"
	rm -rf "$(DIST_DIR)/stage"
	cd "$(DIST_DIR)" && sha256sum cmux-proxy-*.tar.gz >SHA256SUMS
	@echo "dist: $(DIST_DIR)/$(DIST_NAME).tar.gz and $(DIST_DIR)/SHA256SUMS"

## Debian package: dist/cmux-proxy_<version>_<arch>.deb, by dpkg-deb from `make install
## PREFIX=/usr` in a staging folder plus packaging/deb/: the conf a conffile, a cmux-proxy
## system user the service runs as (a unit drop-in), the unit installed but not enabled.
DEB_ARCH  ?= $(shell dpkg --print-architecture 2>/dev/null || echo amd64)
DEB_STAGE := $(abspath $(DIST_DIR))/deb-stage
DEB_UNIT  := $(DEB_STAGE)/usr/lib/systemd/system

deb: $(INSTALL_DEPS)
	@command -v dpkg-deb >/dev/null || { echo "deb: dpkg-deb is needed" >&2; exit 1; }
	rm -rf "$(DEB_STAGE)" && mkdir -p "$(DEB_STAGE)/DEBIAN"
	$(MAKE) -s install BIN="$(BIN)" DESTDIR="$(DEB_STAGE)" PREFIX=/usr SYSCONFDIR=/etc \
	  INSTALL_DEPS= >/dev/null
	$(INSTALL) -D -m 644 packaging/deb/cmux-proxy-user.conf \
	  "$(DEB_UNIT)/cmux-proxy.service.d/cmux-proxy-user.conf"
	$(INSTALL) -D -m 644 LICENSE "$(DEB_STAGE)/usr/share/doc/cmux-proxy/copyright"
	$(INSTALL) -m 755 packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm \
	  "$(DEB_STAGE)/DEBIAN/"
	$(INSTALL) -m 644 packaging/deb/conffiles "$(DEB_STAGE)/DEBIAN/"
	sed -e 's/@VERSION@/$(VERSION)/' -e 's/@ARCH@/$(DEB_ARCH)/' \
	  -e "s/@SIZE@/$$(du -sk --exclude=DEBIAN "$(DEB_STAGE)" | cut -f1)/" \
	  packaging/deb/control.in >"$(DEB_STAGE)/DEBIAN/control"
	dpkg-deb --root-owner-group -Zgzip --build "$(DEB_STAGE)" \
	  "$(DIST_DIR)/cmux-proxy_$(VERSION)_$(DEB_ARCH).deb" >/dev/null
	rm -rf "$(DEB_STAGE)"
	@echo "deb: $(DIST_DIR)/cmux-proxy_$(VERSION)_$(DEB_ARCH).deb"

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## Side-by-side benchmark: bare pingora, Caddy, Node http-proxy, Go ReverseProxy, nginx and
## HAProxy against cmux-proxy (not part of `make test`); see bench/README.md.
bench: deps
	bash bench/run.sh
