# A thin convenience layer over cargo. `make test` is what CI runs.
CARGO  ?= cargo
PYTHON ?= python3
PREFIX ?= /usr
LIBDIR := $(PREFIX)/lib/pickleguard
SHIM   := $(CURDIR)/target/release/libpickleguard.so
CORE   := $(CURDIR)/target/release/libpickleguard_core.so
DEMO   := target/demo

.PHONY: build test demo install lint allowlist

## build: the preload shim and the core, side by side in target/release
build:
	$(CARGO) build --release --workspace

## test: unit tests, then end-to-end tests with real interpreters under the real preload
test: build
	$(CARGO) test --release --workspace

## demo: an inference server loading a benign model, then its malicious twin, under the preload
demo: build
	@$(PYTHON) examples/make_demo_models.py $(DEMO)
	@echo
	@echo "\$$ LD_PRELOAD=$(SHIM) $(PYTHON) examples/serve.py $(DEMO)/model.pkl --once"
	@LD_PRELOAD=$(SHIM) $(PYTHON) examples/serve.py $(DEMO)/model.pkl --once
	@echo
	@echo "\$$ LD_PRELOAD=$(SHIM) $(PYTHON) examples/serve.py $(DEMO)/evil.pkl --once"
	@LD_PRELOAD=$(SHIM) $(PYTHON) examples/serve.py $(DEMO)/evil.pkl --once 2>&1 | tail -n 1; true
	@echo
	@if [ -e $(DEMO)/PWNED ]; then echo "FAIL: the payload ran"; exit 1; \
	 else echo "The payload did not run: $(DEMO)/PWNED does not exist."; fi

## install: both libraries into $(PREFIX)/lib/pickleguard (DESTDIR is honoured)
install: build
	install -d $(DESTDIR)$(LIBDIR)
	install -m 0755 $(SHIM) $(CORE) $(DESTDIR)$(LIBDIR)/

## lint: formatting and clippy, warnings as errors
lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --release -- -D warnings

## allowlist: regenerate the tables in ALLOWLIST.md from the policy code
allowlist:
	PICKLEGUARD_BLESS=1 $(CARGO) test -p pickleguard-policy allowlist_md
