# strata: the one place for build steps. `make run` starts a node with a shell; `make test`
# runs every test. Both install what is missing first.
SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)
export CARGO_TARGET_DIR ?= $(HOME)/.cache/strata/target
NODE ?= strata
DEB_PACKAGES := erlang-nox erlang-dev erlang-common-test erlang-dialyzer erlang-eunit \
	erlang-proper erlang-tools rebar3 elixir libclang-dev clang curl ca-certificates

.PHONY: run test setup native compile cargo-test ct exunit dep-check check bench soak shell clean

## Start a node (short name $(NODE)) with a shell, on the embedded single-node default.
run: compile
	erl -sname $(NODE) -pa _build/default/lib/strata/ebin \
	    -eval 'case application:ensure_all_started(strata) of {ok, _} -> ok; {error, E} -> io:format("strata failed to start: ~p~n", [E]), halt(1) end'

## Every test: Rust core, common_test suites, ExUnit, dependency checks, lint.
test: compile cargo-test ct exunit dep-check check
	@echo "make test: all passed"

setup:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi
	@command -v cargo >/dev/null || { \
	  echo "installing Rust (stable, with clippy and rustfmt) through rustup into $$HOME/.cargo"; \
	  dir=$$(mktemp -d) && \
	  curl --proto '=https' --tlsv1.2 -sSf -o $$dir/rustup-init \
	    https://static.rust-lang.org/rustup/dist/$$(uname -m)-unknown-linux-gnu/rustup-init && \
	  chmod +x $$dir/rustup-init && $$dir/rustup-init -y --profile default --no-modify-path && \
	  rm -rf $$dir; }

native: setup
	sh native/build.sh

compile: native
	rebar3 compile

cargo-test: setup
	cargo test --release --locked -p strata_core -p strata_port -p strata_bench

ct: compile
	rebar3 ct

exunit: compile
	MIX_ENV=test mix test

dep-check: compile
	test/dependency_check.sh

check: compile
	cargo fmt --all --check
	cargo clippy --release --locked --all-targets -- -D warnings
	rebar3 dialyzer

bench: compile
	bench/run.sh $(MODE)

## The consistency workloads for longer (SOAK_SECONDS per workload run, default 300).
soak: compile
	STRATA_CONSISTENCY_SECONDS=$(or $(SOAK_SECONDS),300) rebar3 ct --suite test/strata_consistency_SUITE

shell: compile
	rebar3 shell

clean:
	rm -rf _build priv
