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

.PHONY: build test demo install lint allowlist venv fuzz bench bench-venv python314 fuzz-unpickler

## build: the preload shim and the core, side by side in target/release
build:
	$(CARGO) build --release --workspace

## test: unit tests, then end-to-end tests with real interpreters and ML libraries under the preload
test: build venv python314
	PICKLEGUARD_ML_PYTHON=$(CURDIR)/$(ML_VENV)/bin/python $(CARGO) test --release --workspace

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
