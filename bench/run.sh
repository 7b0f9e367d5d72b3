#!/usr/bin/env bash
# make bench [MODE=quick|engines]: raw RocksDB (Rust), then strata, ETS, DETS and Mnesia from
# Erlang, then paired rounds of raw and strata for the targets, then strata's port engine
# against its NIF, all in one run on this machine. Results go to bench/results/<time>-<mode>/.
# MODE=engines runs only the port-against-NIF comparison (at the quick sizes).
set -euo pipefail
mode=${1:-full}
# The raw benchmark's sizes are those of the Erlang side (strata_bench:params/1): same keys.
case "$mode" in
  full)  ops=100000; sync_ops=2000; runs=3; mem_keys=1000000 ;;
  quick|engines) ops=20000;  sync_ops=600;  runs=3; mem_keys=1000000 ;;
  *) echo "usage: bench/run.sh [full|quick|engines]" >&2; exit 2 ;;
esac
root=$(cd "$(dirname "$0")/.." && pwd)
: "${CARGO_TARGET_DIR:=$HOME/.cache/strata/target}"
export CARGO_TARGET_DIR
out="$root/bench/results/$(date +%Y%m%d-%H%M%S)-$mode"
mkdir -p "$out/ebin"
cd "$root"
start=$(date +%s)
echo "== strata benchmark ($mode) on $(nproc) cores, $(grep MemTotal /proc/meminfo | awk '{print int($2/1048576)}') GiB; results in $out"

cargo build --release --locked -p strata_bench
erlc -o "$out/ebin" bench/strata_bench.erl bench/strata_kvs_bench.erl bench/strata_checker_bench.erl \
  test/strata_history.erl test/strata_checker.erl test/strata_checker_{bank,elle,gen,graph,register,set}.erl
# Mnesia warns "overloaded" throughout its write benchmarks: keep the tables readable.
erl_run() { erl -noshell -kernel logger_level error -pa _build/default/lib/strata/ebin -pa "$out/ebin" "$@"; }

if [ "$mode" = engines ]; then
  echo "== strata's port engine against its NIF (median of $runs runs)"
  erl_run -eval "strata_bench:engines([\"quick\", \"$out\"])"
  rm -rf "$out/data"
  echo "== done in $(( $(date +%s) - start )) s; table in $out/results.md"
  exit 0
fi

echo "== memory: peak RSS of a node after loading $mem_keys keys of 100 B"
erl_run -eval "strata_bench:memory([\"$out/data/memory\", \"$mem_keys\"])" | tee "$out/memory.csv"
rm -rf "$out/data/memory"

echo "== raw RocksDB (Rust, before and after), strata, ETS, DETS, Mnesia from Erlang (median of $runs runs), paired rounds for the targets"
erl_run -eval "strata_bench:main([\"$mode\", \"$CARGO_TARGET_DIR/release/strata_bench $ops $sync_ops $runs\", \"$out\"])"
echo "== strata's port engine against its NIF (median of $runs runs)"
erl_run -eval "strata_bench:engines([\"$mode\", \"$out\"])"
echo "== strata_kvs feeds against KVS' approach on Mnesia"
erl_run -eval "strata_kvs_bench:main([\"$mode\"])" -s init stop | tee "$out/kvs.txt"
printf '\n## Feeds (strata_kvs)\n\n```\n%s\n```\n' "$(cat "$out/kvs.txt")" >> "$out/results.md"
echo "== consistency checkers (median of 3 runs)"
erl_run -eval "strata_checker_bench:main([\"$mode\"])" -s init stop | tee "$out/checkers.md"
printf '\n' >> "$out/results.md"; cat "$out/checkers.md" >> "$out/results.md"
IFS=, read -r _ keys hwm cache cap < "$out/memory.csv"
printf '\n## Memory\n\n- peak RSS after loading %s keys of 100 B: %s (block cache in use %s of %s bytes)\n' \
  "$keys" "$hwm" "$cache" "$cap" | tee -a "$out/results.md"
rm -rf "$out/data"
echo "== done in $(( $(date +%s) - start )) s; tables in $out/results.md and results.csv"
