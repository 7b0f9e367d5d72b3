#!/usr/bin/env bash
# Builds a throwaway rebar3 project and a throwaway mix project that depend on strata by path,
# starts strata in each and stores and reads back a term.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/strata-depcheck.XXXXXX)
trap 'rm -rf "$work"' EXIT

check='case application:ensure_all_started(demo) of
           {ok, _} -> ok = strata:put(<<"dep">>, #{via => Tool}),
                      {ok, #{via := Tool}} = strata:get(<<"dep">>),
                      io:format("~s dependency: ok~n", [Tool]), halt(0);
           Other -> io:format("~s dependency failed: ~p~n", [Tool, Other]), halt(1)
       end.'

echo "== rebar3 project depending on strata (_checkouts, i.e. by path)"
mkdir -p "$work/rebar_demo/src" "$work/rebar_demo/_checkouts"
ln -s "$root" "$work/rebar_demo/_checkouts/strata"
cat > "$work/rebar_demo/rebar.config" <<'CFG'
{deps, [strata]}.
CFG
cat > "$work/rebar_demo/src/demo.app.src" <<'APP'
{application, demo, [{vsn, "0.1.0"}, {applications, [kernel, stdlib, strata]}, {env, []}]}.
APP
(cd "$work/rebar_demo" && rebar3 compile >/dev/null &&
 erl -noshell $(printf -- '-pa %s ' $(find _build/default -type d -name ebin)) \
     -eval "Tool = rebar3, $check")

echo "== mix project depending on strata (path:)"
mkdir -p "$work/mix_demo/lib"
cat > "$work/mix_demo/mix.exs" <<MIX
defmodule Demo.MixProject do
  use Mix.Project
  def project, do: [app: :demo, version: "0.1.0", deps: [{:strata, path: "$root"}]]
  def application, do: [extra_applications: [:logger]]
end
MIX
(cd "$work/mix_demo" && mix compile >/dev/null &&
 mix run --no-start -e '
   {:ok, _} = Application.ensure_all_started(:strata)
   :ok = :strata.put("dep", %{via: :mix})
   {:ok, %{via: :mix}} = :strata.get("dep")
   IO.puts("mix dependency: ok")')
