# ExUnit runs with `mix test --no-start` (see mix.exs): start strata on a scratch directory.
dir = Path.join(System.tmp_dir!(), "strata-exunit-#{System.unique_integer([:positive])}")
Application.load(:strata)
Application.put_env(:strata, :data_dir, String.to_charlist(dir))
Application.put_env(:strata, :block_cache_mb, 16)
{:ok, _} = Application.ensure_all_started(:strata)
ExUnit.after_suite(fn _ -> Application.stop(:strata); File.rm_rf!(dir) end)
ExUnit.start()
