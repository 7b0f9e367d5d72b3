#!/bin/sh
# Builds the Rust crates (one profile: --release) and installs the NIF library and the port
# program into priv/.
# Shared by rebar3 (pre_hook), mix (compiler step) and the Makefile.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
: "${CARGO_TARGET_DIR:=$HOME/.cache/strata/target}"
export CARGO_TARGET_DIR
PATH="$HOME/.cargo/bin:$PATH"
if ! command -v cargo >/dev/null 2>&1; then
    echo "strata: cargo (Rust) is needed to build the engine; install it with rustup" >&2
    exit 1
fi
cd "$root"
cargo build --release --locked -p strata_nif -p strata_port
mkdir -p "$root/priv"
# Never overwrite a loaded library in place: a running node would crash.
rm -f "$root/priv/libstrata_nif.so"
cp "$CARGO_TARGET_DIR/release/libstrata_nif.so" "$root/priv/libstrata_nif.so"
# The same for the port program: a running port keeps its executable busy.
rm -f "$root/priv/strata_port"
cp "$CARGO_TARGET_DIR/release/strata_port" "$root/priv/strata_port"
