# A thin convenience layer over cargo. `make test` is what CI runs.
CARGO  ?= cargo
PYTHON ?= python3
PREFIX ?= /usr
LIBDIR := $(PREFIX)/lib/pickleguard
SHIM   := $(CURDIR)/target/release/libpickleguard.so
CORE   := $(CURDIR)/target/release/libpickleguard_core.so
DEMO   := target/demo

# The ML test venv: real torch, numpy, scikit-learn, pandas, transformers and dill, built once
# and rebuilt only when requirements-ml.txt changes (the stamp is keyed by its hash).
ML_VENV   ?= .venv-ml
ML_BASE   ?= $(or $(lastword $(wildcard $(HOME)/.pyenv/versions/3.11.*/bin/python)),python3)
ML_STAMP  := $(ML_VENV)/.installed-$(shell sha256sum requirements-ml.txt | cut -c1-16)

.PHONY: build test demo install lint allowlist venv fuzz bench bench-venv python314 fuzz-unpickler wheel deb

## build: the preload shim and the core, side by side in target/release
build:
	$(CARGO) build --release --workspace

## test: unit tests, then end-to-end tests with real interpreters and ML libraries under the preload
test: build venv python314 wheel deb
	PICKLEGUARD_ML_PYTHON=$(CURDIR)/$(ML_VENV)/bin/python PICKLEGUARD_WHEEL_DIR=$(CURDIR)/$(WHEEL_DIR) \
		PICKLEGUARD_DEB_DIR=$(CURDIR)/$(DEB_DIR) $(CARGO) test --release --workspace

## python314: Debian sid's CPython 3.14 in a chroot under target/ (made once; tests SKIP it if this fails)
python314:
	@tools/python3.14-chroot.sh $(CURDIR)/target/python3.14 $(CURDIR) \
		|| echo "== WARNING: no CPython 3.14 chroot (see above); the end-to-end tests will SKIP 3.14"

## venv: the ML test venv (several GB; resumable: re-running skips what is installed)
venv: $(ML_STAMP)

$(ML_STAMP): requirements-ml.txt
	@echo "== ML test venv: installing requirements-ml.txt into $(ML_VENV) with $(ML_BASE)"
	@test -x $(ML_VENV)/bin/python || $(ML_BASE) -m venv $(ML_VENV)
	$(ML_VENV)/bin/python -m pip install --progress-bar off --disable-pip-version-check -r requirements-ml.txt
	@rm -f $(ML_VENV)/.installed-*
	@touch $@
	@echo "== ML test venv ready"

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

## install: both libraries into $(PREFIX)/lib/pickleguard, the command into $(PREFIX)/bin
install: build
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(SHIM) $(CORE) $(DESTDIR)$(LIBDIR)/
	install -m 0755 target/release/pickleguard $(DESTDIR)$(PREFIX)/bin/

## lint: formatting and clippy, warnings as errors
lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --release -- -D warnings

# The benchmarks (issue 6): not part of `make test` or CI. Builds the release artifacts, installs
# what pickleguard is compared against (torch, fickling, picklescan, modelscan, pyperformance) into
# their own venv, rebuilt only when bench/requirements-bench.txt changes (the stamp is keyed by its
# hash), then writes BENCHMARKS.md, bench/results.json and bench/README_SECTION.md. About 25 minutes
# on 2 cores; BENCH_ARGS="--quick" for a development run in a few minutes (figures not valid).
BENCH_VENV  ?= .venv-bench
BENCH_BASE  ?= $(ML_BASE)
BENCH_STAMP := $(BENCH_VENV)/.installed-$(shell sha256sum bench/requirements-bench.txt | cut -c1-16)
BENCH_ARGS  ?=

## bench: BENCHMARKS.md: load, start-up, audit-event and scanner costs beside fickling, torch weights_only, picklescan and modelscan
bench: build bench-venv
	$(BENCH_VENV)/bin/python bench/bench.py --shim $(SHIM) --cli $(CURDIR)/target/release/pickleguard $(BENCH_ARGS)

## bench-venv: the benchmark venv (several GB, shares pip's cache with the ML test venv)
bench-venv: $(BENCH_STAMP)

$(BENCH_STAMP): bench/requirements-bench.txt
	@echo "== bench venv: installing bench/requirements-bench.txt into $(BENCH_VENV) with $(BENCH_BASE)"
	@test -x $(BENCH_VENV)/bin/python || $(BENCH_BASE) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --progress-bar off --disable-pip-version-check -r bench/requirements-bench.txt
	@rm -f $(BENCH_VENV)/.installed-*
	@touch $@
	@echo "== bench venv ready"

## fuzz: fuzz the static scanner for FUZZ_SECONDS (needs a nightly toolchain and cargo-fuzz)
FUZZ_SECONDS ?= 600
fuzz:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz
	cd fuzz && $(CARGO) +nightly fuzz run scan_bytes corpus/scan_bytes seeds -- \
		-max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -timeout=20 -max_len=65536

## fuzz-unpickler: differential fuzz of pickleguard's unpickler against _pickle for FUZZ_SECONDS
fuzz-unpickler: build
	LD_PRELOAD=$(SHIM) $(PYTHON) fuzz/unpickler_differential.py --seconds $(FUZZ_SECONDS) --out target/fuzz-unpickler

## allowlist: regenerate the tables in ALLOWLIST.md from the policy code
allowlist:
	PICKLEGUARD_BLESS=1 $(CARGO) test -p pickleguard-policy allowlist_md

# The wheel (issue 13): pickleguard-preload, for manylinux2014 (glibc 2.17) x86_64, holding the shim,
# the core and the command. Built with cargo-zigbuild and zig from PyPI, installed once into
# $(WHEEL_TOOLS) and again only when packaging/requirements-wheel.txt changes (the stamp is keyed
# by its hash). The binaries go to target/x86_64-unknown-linux-gnu/release, apart from `make build`'s.
# shim/build.rs links the shim itself, with the linker in RUSTC_LINKER: packaging/zig-shim-cc.
WHEEL_TOOLS       ?= target/wheel-tools
WHEEL_TOOLS_STAMP := $(WHEEL_TOOLS)/.installed-$(shell sha256sum packaging/requirements-wheel.txt | cut -c1-16)
WHEEL_TARGET      := x86_64-unknown-linux-gnu
WHEEL_DIR         ?= target/wheels

## wheel: target/wheels/pickleguard_preload-*.whl, manylinux2014 x86_64 (glibc >= 2.17)
wheel: $(WHEEL_TOOLS_STAMP)
	PATH=$(CURDIR)/$(WHEEL_TOOLS)/bin:$$PATH $(CARGO) zigbuild --release --target $(WHEEL_TARGET).2.17 \
		-p pickleguard-core -p pickleguard-cli
	PICKLEGUARD_WHEEL_TOOLS=$(CURDIR)/$(WHEEL_TOOLS) RUSTC_LINKER=$(CURDIR)/packaging/zig-shim-cc \
		$(CARGO) build --release --target $(WHEEL_TARGET) -p pickleguard-shim
	@rm -f $(WHEEL_DIR)/pickleguard_preload-*.whl
	$(PYTHON) packaging/build_wheel.py --bin-dir target/$(WHEEL_TARGET)/release --out $(WHEEL_DIR)

$(WHEEL_TOOLS_STAMP): packaging/requirements-wheel.txt
	@echo "== wheel tools: installing packaging/requirements-wheel.txt into $(WHEEL_TOOLS)"
	@test -x $(WHEEL_TOOLS)/bin/python || $(ML_BASE) -m venv $(WHEEL_TOOLS)
	$(WHEEL_TOOLS)/bin/python -m pip install --progress-bar off --disable-pip-version-check -r packaging/requirements-wheel.txt
	@rm -f $(WHEEL_TOOLS)/.installed-*
	@touch $@

DEB_DIR ?= target/debian

## deb: target/debian/pickleguard_*_amd64.deb from the wheel's glibc-2.17 binaries (needs dpkg-deb)
deb: wheel
	@rm -f $(DEB_DIR)/pickleguard_*_amd64.deb
	@if command -v dpkg-deb >/dev/null && command -v objcopy >/dev/null; then \
		packaging/build_deb.sh target/$(WHEEL_TARGET)/release $(DEB_DIR); \
	else echo "SKIP: make deb needs dpkg-deb and objcopy"; fi

# The scanner's differential harness (issue 10): not part of `make test` or CI. Generates model
# files with the real libraries in the ML venv, mutates them, and compares the globals the real
# loaders resolve with what `pickleguard scan` lists; each divergence is saved under
# scan/tests/regressions/ (replayed by the tests). DIFF_SECONDS sets how long it runs.
DIFF_SECONDS ?= 600
DIFF_ARGS    ?=

.PHONY: differential
## differential: compare the scanner with torch.load, numpy.load, joblib.load and pickle on generated and mutated files
differential: venv
	$(CARGO) build --release -p pickleguard-cli
	$(ML_VENV)/bin/python scan/tests/differential/differential.py --cli $(CURDIR)/target/release/pickleguard --seconds $(DIFF_SECONDS) $(DIFF_ARGS)

# The reconstruction rules' differential harness (issue 10): also not part of `make test` or CI.
# Makes genuine numpy, joblib/sklearn, torch and pandas files, mutates the values in their pickles,
# and compares the verdict of a real load under the preload (loaded, or refused by which check)
# with the `rule` concerns of `pickleguard scan` (same packs). A guard crash, a refusal the scan
# misses, or a rule the scan applies to a file that loads is saved under scan/tests/regressions/
# as `rules-*` (replayed by the tests). DIFF_SECONDS sets how long it runs.
.PHONY: differential-rules
## differential-rules: compare the scanner's reconstruction rules with real loads under the preload on generated and mutated files
differential-rules: venv build
	nice -n 10 $(ML_VENV)/bin/python scan/tests/differential/rules_differential.py --cli $(CURDIR)/target/release/pickleguard --preload $(SHIM) --seconds $(DIFF_SECONDS) $(DIFF_ARGS)
