defmodule Strata.MixProject do
  use Mix.Project

  # The same OTP application as rebar.config builds: Erlang sources under erlang/, the Rust
  # engine built by native/build.sh into priv/.
  def project do
    [
      app: :strata,
      version: "0.1.0",
      elixir: "~> 1.14",
      erlc_paths: ["erlang/src"],
      erlc_include_path: "erlang/include",
      erlc_options: [:debug_info],
      compilers: [:strata_native | Mix.compilers()],
      # mix and rebar3 both default to _build/<profile>: keep mix's builds of this project
      # apart (as a dependency, the parent project's build path applies).
      build_path: "_build/mix",
      test_paths: ["test"],
      test_pattern: "*_test.exs",
      aliases: [test: "test --no-start"],
      deps: []
    ]
  end

  def application do
    [mod: {:strata_app, []}, extra_applications: [:logger]]
  end
end

defmodule Mix.Tasks.Compile.StrataNative do
  @moduledoc "Builds the Rust engine (native/build.sh) into priv/."
  use Mix.Task.Compiler

  @impl true
  def run(_args) do
    script = Path.join([__DIR__, "native", "build.sh"])

    case System.cmd("sh", [script], into: IO.stream(:stdio, :line), stderr_to_stdout: true) do
      {_, 0} -> {:ok, []}
      {_, status} -> Mix.raise("native/build.sh failed with status #{status}")
    end
  end
end
