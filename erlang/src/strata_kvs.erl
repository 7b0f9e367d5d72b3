%%% @doc The KVS surface of strata: records in tables, and feeds.
%%%
%%% The names, arguments and records of KVS (synrc/kvs), over strata's transactions. Records
%%% are tuples `{Table, Id, ...}'. Tables are declared by `metainfo/0' modules named in the
%%% application environment (`{strata, [{kvs_schema, [Module]}]}'), each returning a
%%% `#schema{tables = [#table{name, fields, keys}]}'; `keys' lists the indexed fields. A table
%%% nobody declares can still be written; it has no index.
%%%
%%% Every write is one strata transaction: a record with its index entries and its table's
%%% count; a feed entry with its writer and its links. Called inside a strata transaction
%%% (`strata:transaction/1'), these calls join it, so a record and a feed entry can be written
%%% atomically together.
%%%
%%% Record layout (not hash-tagged: a table is spread over all partitions):
%%% <pre>
%%%   {'$kvs', Table, {Id}}                      the record
%%%   {'$kvs_x', Table, Field, Value, {Id}}      an index entry, holding the record too
%%%   {'$kvs_n', Table, Shard}                   one of 16 count shards (Shard from the id)
%%%   {'$kvs_seq', Name}                         a seq/2 counter
%%% </pre>
%%% Ids are wrapped in a 1-tuple so that `{}' and `{0, 0}' bound every id of a table in a scan.
%%% The count is sharded so that inserts of different ids rarely conflict on it.
%%% Feeds are in strata_kvs_feed (storage and writes) and strata_kvs_cursor (readers).
-module(strata_kvs).

-include("../include/strata_kvs.hrl").

-compile({no_auto_import, [get/1, put/2]}).

%% Records and schema.
-export([put/1, get/2, delete/2, index/3, all/1, count/1, seq/2,
         metainfo/0, modules/0, tables/0, table/1]).
%% Feeds.
-export([writer/1, reader/1, save/1, load_reader/1, add/1, append/2, remove/2, cut/1,
         top/1, bot/1, next/1, prev/1, take/1, drop/1, feed/1, feed/2, subfeeds/1, entry/2,
         check/1]).

-define(SHARDS, 16).
-define(RETRIES, 100).

%%% Schema

%% @doc strata_kvs' own tables: `writer' and `reader', as in KVS.
-spec metainfo() -> #schema{}.
metainfo() ->
    #schema{name = strata_kvs,
            tables = [#table{name = writer, fields = record_info(fields, writer)},
                      #table{name = reader, fields = record_info(fields, reader)}]}.

%% @doc The schema modules in use.
-spec modules() -> [module()].
modules() -> strata_kvs_schema:modules().

%% @doc Every declared table.
-spec tables() -> [#table{}].
tables() -> strata_kvs_schema:tables().

%% @doc A table's declaration, or `false'.
-spec table(term()) -> #table{} | false.
table(Name) -> strata_kvs_schema:table(Name).

%%% Records

%% @doc Writes a record, or a list of records in one transaction, with their index entries.
%% A `#writer{}' creates its feed if needed (as {@link save/1}).
-spec put(tuple() | [tuple()]) -> ok | {error, term()}.
put(Records) when is_list(Records) ->
    case [E || R <- Records, {error, _} = E <- [strata_kvs_schema:check(R)]] of
        [Error | _] ->
            Error;
        [] ->
            case tx(fun() -> lists:foreach(fun put_tx/1, Records) end) of
                {ok, ok} -> ok;
                {error, _} = Error -> Error
            end
    end;
put(Record) ->
    put([Record]).

put_tx(#writer{} = W) ->
    #writer{} = strata_kvs_feed:save_writer(W);
put_tx(Record) ->
    Table = element(1, Record),
    Id = element(2, Record),
    Key = rkey(Table, Id),
    Old = case strata:get(Key) of
              {ok, O} -> O;
              {error, not_found} -> none
          end,
    [begin
         New = element(Pos, Record),
         case Old of
             none -> ok;
             _ when element(Pos, Old) =:= New -> ok;
             _ -> ok = strata:delete(xkey(Table, Field, element(Pos, Old), Id))
         end,
         ok = strata:put(xkey(Table, Field, New, Id), Record)
     end || {Field, Pos} <- strata_kvs_schema:indexes(Table)],
    ok = strata:put(Key, Record),
    case Old of
        none -> ok = strata:add_on_nr(nkey(Table, Id), 1);
        _ -> ok
    end.

%% @doc Reads a record. `get(writer, Feed)' reads a feed's writer.
-spec get(term(), term()) -> {ok, tuple()} | {error, not_found} | {error, term()}.
get(writer, Feed) ->
    strata_kvs_feed:lookup_writer(Feed);
get(Table, Id) ->
    strata:get(rkey(Table, Id)).

%% @doc Deletes a record with its index entries; deleting a missing record is `ok'. A feed's
%% writer is not deleted this way: {@link cut/1} empties a feed.
-spec delete(term(), term()) -> ok | {error, term()}.
delete(writer, Feed) ->
    {error, {not_supported, {delete, writer, Feed}}};
delete(Table, Id) ->
    Key = rkey(Table, Id),
    Delete = fun() ->
                     case strata:get(Key) of
                         {error, not_found} ->
                             ok;
                         {ok, Old} ->
                             [ok = strata:delete(xkey(Table, Field, element(Pos, Old), Id))
                              || {Field, Pos} <- strata_kvs_schema:indexes(Table)],
                             ok = strata:delete(Key),
                             ok = strata:add_on_nr(nkey(Table, Id), -1)
                     end
             end,
    case tx(Delete) of
        {ok, ok} -> ok;
        {error, _} = Error -> Error
    end.

%% @doc The records of `Table' whose field `Field' is exactly (`=:=') `Value', in id order,
%% from one snapshot. An indexed field (in the table's `keys') is read through its index
%% entries; another declared field by reading the whole table.
-spec index(term(), atom(), term()) -> [tuple()] | {error, term()}.
index(Table, Field, Value) ->
    case lists:keyfind(Field, 1, strata_kvs_schema:indexes(Table)) of
        {Field, Pos} ->
            Items = strata_kvs_feed:scan_all({'$kvs_x', Table, Field, Value, {}},
                                             {'$kvs_x', Table, Field, Value, {0, 0}},
                                             infinity, false),
            [R || {_, R} <- Items, element(Pos, R) =:= Value];
        false ->
            case field_position(Table, Field) of
                {ok, Pos} -> [R || R <- all(Table), element(Pos, R) =:= Value];
                error -> {error, {not_a_field, Table, Field}}
            end
    end.

field_position(Table, Field) ->
    case strata_kvs_schema:table(Table) of
        #table{fields = Fields} ->
            case string:str(Fields, [Field]) of
                0 -> error;
                N -> {ok, N + 1}
            end;
        false ->
            error
    end.

%% @doc Every record of `Table' in id order, from one snapshot.
-spec all(term()) -> [tuple()].
all(Table) ->
    strata_kvs_feed:scan_values({'$kvs', Table, {}}, {'$kvs', Table, {0, 0}}, infinity, false).

%% @doc The number of records in `Table', exact (kept by every put and delete).
-spec count(term()) -> non_neg_integer() | {error, term()}.
count(Table) ->
    Sum = fun() ->
                  lists:sum([N || S <- lists:seq(0, ?SHARDS - 1),
                                  {ok, N} <- [strata:get({'$kvs_n', Table, S})]])
          end,
    case tx(Sum) of
        {ok, N} -> N;
        {error, _} = Error -> Error
    end.

%% @doc Adds `Incr' (`[]' means 1) to the counter `Name' and returns its new value, an
%% integer (KVS on Mnesia returns it as a string).
-spec seq(term(), integer() | []) -> integer() | {error, term()}.
seq(Name, []) ->
    seq(Name, 1);
seq(Name, Incr) when is_integer(Incr) ->
    Key = {'$kvs_seq', Name},
    Next = fun() ->
                   Old = case strata:get(Key) of
                             {ok, N} -> N;
                             {error, not_found} -> 0
                         end,
                   ok = strata:put(Key, Old + Incr),
                   Old + Incr
           end,
    case tx(Next) of
        {ok, N} -> N;
        {error, _} = Error -> Error
    end.

rkey(Table, Id) -> {'$kvs', Table, {Id}}.
xkey(Table, Field, Value, Id) -> {'$kvs_x', Table, Field, Value, {Id}}.
nkey(Table, Id) -> {'$kvs_n', Table, erlang:phash2(Id, ?SHARDS)}.

tx(Fun) ->
    strata:transaction(Fun, #{retries => ?RETRIES}).

%%% Feeds (strata_kvs_feed)

%% @doc The writer of a feed (an empty one when the feed does not exist).
-spec writer(term()) -> #writer{}.
writer(Feed) -> strata_kvs_feed:writer(Feed).

%% @doc A new cursor at the oldest end of a feed, reading towards the newest.
-spec reader(term()) -> #reader{}.
reader(Feed) -> strata_kvs_cursor:reader(Feed).

%% @doc Saves a reader (giving it an id from `seq(reader, 1)' when it has none) and returns
%% it with `args' cleared; for a writer, creates its feed if needed and returns the stored
%% writer (the writer's count, cache and first are never overwritten).
-spec save(#reader{} | #writer{}) -> #reader{} | #writer{} | {error, term()}.
save(#writer{} = W) ->
    strata_kvs_feed:save_writer(W);
save(#reader{id = Id} = R) ->
    case Id of
        [] ->
            case seq(reader, 1) of
                N when is_integer(N) -> save(R#reader{id = N});
                {error, _} = Error -> Error
            end;
        _ ->
            Saved = R#reader{args = []},
            case put(Saved) of
                ok -> Saved;
                {error, _} = Error -> Error
            end
    end.

%% @doc A saved reader, or `#reader{id = []}' when there is none (as KVS).
-spec load_reader(term()) -> #reader{}.
load_reader(Id) ->
    case get(reader, Id) of
        {ok, #reader{} = R} -> R;
        _ -> #reader{id = []}
    end.

%% @doc Appends `args' of the writer to its feed; returns the updated writer.
-spec add(#writer{}) -> #writer{} | {error, term()}.
add(#writer{} = W) -> strata_kvs_feed:add(W).

%% @doc Appends a record to a feed and returns its id (see strata_kvs_feed:append_now/2).
-spec append(tuple(), term()) -> term() | {error, term()}.
append(Record, Feed) ->
    case strata_kvs_feed:append(Feed, [Record]) of
        [Result] -> Result;
        {error, _} = Error -> Error
    end.

%% @doc Removes a record (by its id) from a feed; returns the feed's count.
-spec remove(term(), term()) -> non_neg_integer() | {error, term()}.
remove(Record, Feed) -> strata_kvs_feed:remove(Record, Feed).

%% @doc Removes every entry of a feed; returns how many.
-spec cut(term()) -> {ok, non_neg_integer()} | {error, term()}.
cut(Feed) -> strata_kvs_feed:cut(Feed).

%% @doc The cursor at the oldest entry (`dir' 0).
-spec top(#reader{}) -> #reader{}.
top(R) -> strata_kvs_cursor:top(R).

%% @doc The cursor at the newest entry (`dir' 1).
-spec bot(#reader{}) -> #reader{}.
bot(R) -> strata_kvs_cursor:bot(R).

%% @doc One step towards the newest; `args' = `[Record]', or `[]' at the end.
-spec next(#reader{}) -> #reader{}.
next(R) -> strata_kvs_cursor:next(R).

%% @doc One step towards the oldest; `args' = `[Record]', or `[]' at the end.
-spec prev(#reader{}) -> #reader{}.
prev(R) -> strata_kvs_cursor:prev(R).

%% @doc Reads `args' records in the cursor's direction into `args'.
-spec take(#reader{}) -> #reader{}.
take(R) -> strata_kvs_cursor:take(R).

%% @doc Skips `args' records in the cursor's direction.
-spec drop(#reader{}) -> #reader{}.
drop(R) -> strata_kvs_cursor:drop(R).

%% @doc Every record of a feed, oldest first.
-spec feed(term()) -> [tuple()].
feed(Feed) -> strata_kvs_cursor:feed(Feed).

%% @doc {@link feed/1}, with `#{subfeeds => true}' followed by its sub-feeds' records.
-spec feed(term(), #{subfeeds => boolean()}) -> [tuple()].
feed(Feed, Opts) -> strata_kvs_cursor:feed(Feed, Opts).

%% @doc The ids of the feeds under a feed (`<<"a/b">>' under `<<"a">>').
-spec subfeeds(term()) -> [term()].
subfeeds(Feed) -> strata_kvs_feed:subfeeds(Feed).

%% @doc The record with id `Id' in a feed (KVS on RocksDB reads it as `kvs:get(Feed, Id)').
-spec entry(term(), term()) -> {ok, tuple()} | {error, not_found}.
entry(Feed, Id) -> strata_kvs_feed:entry(Feed, Id).

%% @doc Checks a feed's invariants (count, links, writer, id index).
-spec check(term()) -> ok | {error, [term()]}.
check(Feed) -> strata_kvs_feed:check(Feed).
