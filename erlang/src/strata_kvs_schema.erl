%%% @doc The tables strata_kvs knows: the `#schema{}' of each `metainfo/0' module named in the
%%% application environment (`{strata, [{kvs_schema, [Module]}]}'), plus strata_kvs' own.
%%%
%%% strata needs no table to exist before a record is written: a table that no module declares
%%% simply has no index and no field check. A declared table gets both. The parsed schema is
%%% cached in `persistent_term' under the list of modules it came from; changing the list in
%%% the environment rebuilds it on the next call, and {@link reload/0} rebuilds it after a
%%% schema module was reloaded.
-module(strata_kvs_schema).

-include("../include/strata_kvs.hrl").

-export([modules/0, tables/0, table/1, indexes/1, check/1, reload/0]).

-define(CACHE, {?MODULE, cache}).

%% Per table: its field names and the indexed fields with their tuple positions.
-type info() :: #{fields := [atom()], arity := pos_integer(), indexes := [{atom(), pos_integer()}]}.

%% @doc The schema modules: those of the `kvs_schema' environment key, then strata_kvs.
-spec modules() -> [module()].
modules() ->
    application:get_env(strata, kvs_schema, []) ++ [strata_kvs].

%% @doc Every declared table.
-spec tables() -> [#table{}].
tables() ->
    {_Modules, Tables, _Info} = cached(),
    Tables.

%% @doc The declaration of a table, or `false'.
-spec table(term()) -> #table{} | false.
table(Name) ->
    lists:keyfind(Name, #table.name, tables()).

%% @doc The indexed fields of a table as `{Field, Position}' (position in the record tuple).
-spec indexes(term()) -> [{atom(), pos_integer()}].
indexes(Name) ->
    {_Modules, _Tables, Info} = cached(),
    case Info of
        #{Name := #{indexes := Indexes}} -> Indexes;
        #{} -> []
    end.

%% @doc Checks that a term can be stored as a record: a tuple `{Table, Id, ...}', of the
%% declared arity when its table is declared.
-spec check(term()) -> ok | {error, {bad_record, term()}}.
check(Record) when is_tuple(Record), tuple_size(Record) >= 2 ->
    {_Modules, _Tables, Info} = cached(),
    case Info of
        #{element(1, Record) := #{arity := Arity}} when tuple_size(Record) =/= Arity ->
            {error, {bad_record, Record}};
        #{} ->
            ok
    end;
check(Record) ->
    {error, {bad_record, Record}}.

%% @doc Rebuilds the cached schema from the modules' `metainfo/0'.
-spec reload() -> ok.
reload() ->
    _ = build(modules()),
    ok.

cached() ->
    Modules = modules(),
    case persistent_term:get(?CACHE, undefined) of
        {Modules, _, _} = Cached -> Cached;
        _ -> build(Modules)
    end.

build(Modules) ->
    Tables = lists:append([(M:metainfo())#schema.tables || M <- Modules]),
    Info = maps:from_list([{Name, info(T)} || #table{name = Name} = T <- Tables]),
    Cached = {Modules, Tables, Info},
    persistent_term:put(?CACHE, Cached),
    Cached.

-spec info(#table{}) -> info().
info(#table{name = Name, fields = Fields, keys = Keys}) ->
    Positions = lists:zip(Fields, lists:seq(2, length(Fields) + 1)),
    Indexes = [case lists:keyfind(K, 1, Positions) of
                   {K, Pos} -> {K, Pos};
                   false -> error({bad_schema, Name, {not_a_field, K}})
               end || K <- Keys],
    #{fields => Fields, arity => length(Fields) + 1, indexes => Indexes}.
