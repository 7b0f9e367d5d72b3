defmodule StrataTest do
  # The API as Elixir users call it: `:strata` with Elixir terms.
  use ExUnit.Case, async: false

  test "put and get Elixir terms" do
    value = %{name: "Ada", tags: [:math, :engines], at: {2026, 11, 22}}
    assert :strata.put("user:1", value) == :ok
    assert :strata.get("user:1") == {:ok, value}
    assert :strata.get("user:missing") == {:error, :not_found}
    assert :strata.delete("user:1") == :ok
    assert :strata.get("user:1") == {:error, :not_found}
  end

  test "structs and charlists keep their identity" do
    uri = URI.parse("https://example.org/a")
    :ok = :strata.put({:uri, 1}, uri)
    assert {:ok, %URI{host: "example.org"}} = :strata.get({:uri, 1})
    :ok = :strata.put(~c"charlist", "binary")
    assert :strata.get(~c"charlist") == {:ok, "binary"}
    assert :strata.get("charlist") == {:error, :not_found}
  end

  test "transactions from Elixir" do
    :ok = :strata.put(:alice, 100)
    :ok = :strata.put(:bob, 0)

    assert {:ok, :moved} =
             :strata.transaction(fn ->
               {:ok, a} = :strata.get(:alice)
               {:ok, b} = :strata.get(:bob)
               :ok = :strata.put(:alice, a - 30)
               :ok = :strata.put(:bob, b + 30)
               :moved
             end)

    assert :strata.get(:alice) == {:ok, 70}
    assert :strata.get(:bob) == {:ok, 30}
    assert {:error, {:aborted, :no}} = :strata.transaction(fn -> :strata.abort(:no) end)
  end

  test "req_list batches with Scalaris semantics" do
    assert [{:ok}, {:ok, 5}, {:ok}] =
             :strata.req_list([{:write, "n", 5}, {:read, "n"}, :commit])

    assert [{:fail, :not_a_number}, {:fail, :abort, ["s"]}] =
             :strata.req_list([{:add_on_nr, "s", :x}, :commit])
  end

  test "scans return keys in term order" do
    for i <- 1..20, do: :ok = :strata.put({:ex_scan, i}, i * i)
    {:ok, page, cont} = :strata.scan({:ex_scan, 1}, {:ex_scan, 100}, %{limit: 15})
    assert length(page) == 15
    {:ok, rest, :done} = :strata.scan(cont)
    assert Enum.map(page ++ rest, fn {{:ex_scan, i}, v} -> {i, v} end) ==
             Enum.map(1..20, &{&1, &1 * &1})
  end

  test "bad options are clear errors" do
    assert :strata.put(:k, :v, %{durability: :eventually}) ==
             {:error, {:bad_option, {:durability, :eventually}}}
  end
end
