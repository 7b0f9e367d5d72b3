defmodule StrataKvsTest.Records do
  # strata_kvs' records for Elixir, read from the Erlang header, and two tables of our own
  # defined with Record.defrecord; this module is also the schema (metainfo/0) for them.
  require Record

  @hrl Path.expand("../erlang/include/strata_kvs.hrl", __DIR__)
  for name <- [:schema, :table, :writer, :reader] do
    Record.defrecord(name, Record.extract(name, from: @hrl))
  end

  Record.defrecord(:user, id: nil, name: nil, email: nil)
  Record.defrecord(:post, id: [], author: nil, body: nil)

  def metainfo do
    schema(
      name: :exunit,
      tables: [
        table(name: :user, fields: Keyword.keys(user(user())), keys: [:email]),
        table(name: :post, fields: Keyword.keys(post(post())), keys: [:author])
      ]
    )
  end
end

defmodule StrataKvsTest do
  use ExUnit.Case, async: false
  import StrataKvsTest.Records

  setup do
    previous = Application.get_env(:strata, :kvs_schema)
    Application.put_env(:strata, :kvs_schema, [StrataKvsTest.Records])

    on_exit(fn ->
      case previous do
        nil -> Application.delete_env(:strata, :kvs_schema)
        mods -> Application.put_env(:strata, :kvs_schema, mods)
      end
    end)

    %{feed: "exunit/#{System.unique_integer([:positive])}"}
  end

  test "the schema comes from metainfo/0" do
    assert table(name: :user, keys: [:email], fields: [:id, :name, :email]) =
             :strata_kvs.table(:user)
  end

  test "records: put, get, index, count, delete" do
    base = :strata_kvs.count(:user)
    ada = user(id: "ada", name: "Ada", email: "ada@example.org")
    alan = user(id: "alan", name: "Alan", email: "alan@example.org")
    assert :strata_kvs.put([ada, alan]) == :ok
    assert :strata_kvs.get(:user, "ada") == {:ok, ada}
    assert :strata_kvs.index(:user, :email, "alan@example.org") == [alan]
    assert :strata_kvs.count(:user) == base + 2

    # Changing an indexed field moves the record in the index.
    ada2 = user(ada, email: "countess@example.org")
    :ok = :strata_kvs.put(ada2)
    assert :strata_kvs.index(:user, :email, "ada@example.org") == []
    assert :strata_kvs.index(:user, :email, "countess@example.org") == [ada2]
    assert :strata_kvs.count(:user) == base + 2

    assert :strata_kvs.delete(:user, "ada") == :ok
    assert :strata_kvs.delete(:user, "nobody") == :ok
    assert :strata_kvs.get(:user, "ada") == {:error, :not_found}
    assert :strata_kvs.count(:user) == base + 1
    assert {:error, {:bad_record, _}} = :strata_kvs.put({:user, "short"})
  end

  test "feeds: append, read oldest first, writer", %{feed: feed} do
    posts = for i <- 1..5, do: post(id: i, author: "ada", body: "post #{i}")
    for p <- posts, do: assert(:strata_kvs.append(p, feed) == post(p, :id))

    assert :strata_kvs.feed(feed) == posts
    w = :strata_kvs.writer(feed)
    assert writer(w, :count) == 5
    assert writer(w, :first) == hd(posts)
    assert writer(w, :cache) == List.last(posts)
    assert :ok = :strata_kvs.check(feed)
  end

  test "cursors: top is the oldest, bot the newest, paging stays in the feed", %{feed: feed} do
    for i <- 1..7, do: :strata_kvs.append(post(id: i), feed)
    :strata_kvs.append(post(id: 100), feed <> "x")

    r = :strata_kvs.take(reader(:strata_kvs.reader(feed), args: 4))
    assert Enum.map(reader(r, :args), &post(&1, :id)) == [1, 2, 3, 4]
    r = :strata_kvs.take(reader(r, args: 4))
    assert Enum.map(reader(r, :args), &post(&1, :id)) == [5, 6, 7]
    assert reader(:strata_kvs.take(reader(r, args: 4)), :args) == []

    b = :strata_kvs.take(reader(:strata_kvs.bot(:strata_kvs.reader(feed)), args: 3))
    assert reader(b, :dir) == 1
    assert Enum.map(reader(b, :args), &post(&1, :id)) == [7, 6, 5]
  end

  test "remove keeps the count exact", %{feed: feed} do
    for i <- 1..3, do: :strata_kvs.append(post(id: i), feed)
    assert :strata_kvs.remove(post(id: 2), feed) == 2
    assert :strata_kvs.remove(post(id: 2), feed) == 2
    assert :strata_kvs.remove(post(id: 42), feed) == 2
    assert Enum.map(:strata_kvs.feed(feed), &post(&1, :id)) == [1, 3]
    assert :ok = :strata_kvs.check(feed)
  end

  test "add/1 with an empty id takes the feed's sequence number", %{feed: feed} do
    w = :strata_kvs.add(writer(:strata_kvs.writer(feed), args: post(body: "first")))
    assert writer(w, :args) == post(id: 1, body: "first")
    assert writer(w, :count) == 1
  end

  test "a record and a feed entry in one transaction" do
    feed = "exunit/tx/#{System.unique_integer([:positive])}"

    assert {:error, {:aborted, :changed_my_mind}} =
             :strata.transaction(fn ->
               :ok = :strata_kvs.put(user(id: "tx", email: "tx@example.org"))
               1 = :strata_kvs.append(post(id: 1), feed)
               :strata.abort(:changed_my_mind)
             end)

    assert :strata_kvs.get(:user, "tx") == {:error, :not_found}
    assert :strata_kvs.feed(feed) == []
  end
end
