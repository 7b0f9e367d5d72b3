%%% @doc strata's public API: a persistent, transactional key-value store for Erlang terms.
%%%
%%% Keys and values are any Erlang terms. Keys are kept in Erlang term order (see
%%% {@link scan/3}). Single-key operations are linearizable; {@link transaction/1} and
%%% {@link req_list/1} are strictly serializable.
%%%
%%% Inside a transaction fun, the ordinary calls (`get', `put', `delete', `test_and_set',
%%% `add_on_nr', `add_del_on_list') read and write within the transaction, as in Mnesia.
%%%
%%% Options (`Opts') are a map: `timeout' (ms, default 5000), `durability' (`async' or `sync',
%%% default from the application environment), and for transactions `retries'.
-module(strata).
-compile({no_auto_import, [get/1, put/2]}).

-export([put/2, put/3, get/1, get/2, delete/1, delete/2,
         test_and_set/3, test_and_set/4, add_on_nr/2, add_on_nr/3, add_on_nr/4,
         add_del_on_list/3, add_del_on_list/4,
         req_list/1, req_list/2, transaction/1, transaction/2, abort/1, in_transaction/0,
         scan/3, scan/1, scan_close/1, backup/1, status/0, tag/2,
         join/1, join/2, leave/0, leave/1, members/0]).

-export_type([opts/0, scan_cont/0]).

-type opts() :: #{timeout => timeout(), durability => async | sync,
                  retries => non_neg_integer()}.
-opaque scan_cont() :: {strata_scan, strata_store:snapshot() | {tx, strata_store:snapshot()},
                               strata_nif:page()}.
-type error() :: {error, term()}.

-define(DEFAULT_TIMEOUT, 5000).
-define(DEFAULT_RETRIES, 10).
-define(SINGLE_RETRIES, 100).
-define(MAX_SCAN_LIMIT, 10000).

%%% Single keys

%% @equiv put(Key, Value, #{})
-spec put(term(), term()) -> ok | error().
put(Key, Value) ->
    put_as(Key, Value, default_durability(), ?DEFAULT_TIMEOUT).

%% @doc Stores `Value' under `Key'. Returns `ok' once the write is durable as asked:
%% `async' survives a crash of the node, `sync' also a crash of the machine. Values are limited
%% to 16 MiB in external term format (`{error, value_too_large}'), encoded keys to 64 KiB
%% (`{error, key_too_large}').
-spec put(term(), term(), opts()) -> ok | error().
put(Key, Value, Opts) ->
    with_opts(Opts, fun(#{durability := D, timeout := T}) -> put_as(Key, Value, D, T) end).

%% A put joins the running transaction, if any (which then decides its durability).
put_as(Key, Value, Durability, Timeout) ->
    case strata_tx:in_transaction() of
        true -> strata_tx:write(Key, Value);
        false -> strata_store:put(Key, Value, Durability, Timeout)
    end.

%% @equiv get(Key, #{})
-spec get(term()) -> {ok, term()} | {error, not_found} | error().
get(Key) ->
    case strata_tx:in_transaction() of
        true -> strata_tx:read(Key);
        false -> strata_store:get(Key)
    end.

%% @doc Reads the value of `Key'.
-spec get(term(), opts()) -> {ok, term()} | {error, not_found} | error().
get(Key, Opts) ->
    with_opts(Opts, fun(_) -> get(Key) end).

%% @equiv delete(Key, #{})
-spec delete(term()) -> ok | error().
delete(Key) ->
    delete_as(Key, default_durability(), ?DEFAULT_TIMEOUT).

%% @doc Deletes `Key' (deleting a missing key is `ok').
-spec delete(term(), opts()) -> ok | error().
delete(Key, Opts) ->
    with_opts(Opts, fun(#{durability := D, timeout := T}) -> delete_as(Key, D, T) end).

%% A delete joins the running transaction, if any.
delete_as(Key, Durability, Timeout) ->
    case strata_tx:in_transaction() of
        true -> strata_tx:delete(Key);
        false -> strata_store:delete(Key, Durability, Timeout)
    end.

%% @equiv test_and_set(Key, Old, New, #{})
-spec test_and_set(term(), term(), term()) ->
          ok | {error, not_found} | {error, {key_changed, term()}} | error().
test_and_set(Key, Old, New) ->
    test_and_set(Key, Old, New, #{}).

%% @doc Writes `New' if the value of `Key' is exactly (`=:=') `Old'.
-spec test_and_set(term(), term(), term(), opts()) ->
          ok | {error, not_found} | {error, {key_changed, term()}} | error().
test_and_set(Key, Old, New, Opts) ->
    update(Key, fun(Cur) -> strata_ops:test_and_set(Cur, Old, New) end, Opts).

%% @equiv add_on_nr(Key, N, #{}, #{})
-spec add_on_nr(term(), number()) -> ok | {error, not_a_number} | error().
add_on_nr(Key, N) ->
    add_on_nr(Key, N, #{}, #{}).

%% @equiv add_on_nr(Key, N, Bounds, #{})
-spec add_on_nr(term(), number(), strata_ops:bounds()) ->
          ok | {error, not_a_number} | {error, out_of_bounds} | error().
add_on_nr(Key, N, Bounds) ->
    add_on_nr(Key, N, Bounds, #{}).

%% @doc Adds `N' to the number stored under `Key' (a missing key becomes `N'). With bounds
%% (`#{min => Min, max => Max}'), a result outside them writes nothing and returns
%% `{error, out_of_bounds}' (inside a transaction it aborts the transaction).
-spec add_on_nr(term(), number(), strata_ops:bounds(), opts()) ->
          ok | {error, not_a_number} | {error, out_of_bounds} | error().
add_on_nr(Key, N, Bounds, Opts) ->
    case strata_ops:check_bounds(Bounds) of
        ok -> update(Key, fun(Old) -> strata_ops:add_on_nr(Old, N, Bounds) end, Opts);
        {error, _} = Error -> Error
    end.

%% @equiv add_del_on_list(Key, Add, Del, #{})
-spec add_del_on_list(term(), list(), list()) -> ok | {error, not_a_list} | error().
add_del_on_list(Key, Add, Del) ->
    add_del_on_list(Key, Add, Del, #{}).

%% @doc Stores `Add ++ Old' minus the first occurrence of each element of `Del' (a missing key
%% counts as `[]').
-spec add_del_on_list(term(), list(), list(), opts()) -> ok | {error, not_a_list} | error().
add_del_on_list(Key, Add, Del, Opts) ->
    update(Key, fun(Old) -> strata_ops:add_del_on_list(Old, Add, Del) end, Opts).

update(Key, Op, Opts) ->
    with_opts(Opts, fun(O) ->
                            case strata_tx:in_transaction() of
                                true -> strata_tx:update(Key, Op);
                                false -> strata_tx:single(Key, Op, O#{retries => ?SINGLE_RETRIES})
                            end
                    end).

%%% Transactions

%% @equiv req_list(Ops, #{})
-spec req_list([strata_tx:op()]) -> [strata_tx:result()] | error().
req_list(Ops) ->
    req_list(Ops, #{}).

%% @doc Runs a batch of operations as one transaction, with Scalaris' semantics. Ops are
%% `{read, K}', `{write, K, V}', `{add_on_nr, K, N}', `{add_on_nr, K, N, Bounds}',
%% `{add_del_on_list, K, Add, Del}', `{test_and_set, K, Old, New}', and `commit' as the last op
%% (elsewhere its slot gets `{fail, abort, []}'); without `commit' nothing is written. Each op
%% gets a result: `{ok}', `{ok, V}', `{fail, not_found}', `{fail, not_a_number}',
%% `{fail, not_a_list}', `{fail, {key_changed, Cur}}', `{fail, out_of_bounds}', or for the
%% commit `{fail, abort, Keys}'. Reads see the batch's earlier writes. A failed op (other than
%% a read of a missing key) makes the commit abort, and nothing is written.
-spec req_list([strata_tx:op()], opts()) -> [strata_tx:result()] | error().
req_list(Ops, Opts) when is_list(Ops) ->
    with_opts(Opts, fun(O) -> strata_tx:req_list(Ops, O) end);
req_list(Ops, _Opts) ->
    {error, {bad_request, Ops}}.

%% @equiv transaction(Fun, #{})
-spec transaction(fun(() -> term())) -> {ok, term()} | error().
transaction(Fun) ->
    transaction(Fun, #{}).

%% @doc Runs `Fun' (no arguments) as a transaction and commits when it returns. Reads inside
%% see one snapshot plus the transaction's own writes. If another commit changed a key it read,
%% nothing is written and `Fun' runs again, at most `retries' (default 10) times; then the
%% result is `{error, {abort, Keys}}'. A failed operation inside (say a `test_and_set' that
%% found another value) returns its error to `Fun' and makes the commit abort. An exception in
%% `Fun' discards the transaction and propagates; {@link abort/1} discards it and returns
%% `{error, {aborted, Reason}}'. A transaction inside a transaction joins the outer one.
-spec transaction(fun(() -> term()), opts()) -> {ok, term()} | error().
transaction(Fun, Opts) when is_function(Fun, 0) ->
    with_opts(Opts, fun(O) -> strata_tx:transaction(Fun, O) end);
transaction(Fun, _Opts) ->
    {error, {bad_fun, Fun}}.

%% @doc Aborts the running transaction; `transaction/1,2' returns `{error, {aborted, Reason}}'.
-spec abort(term()) -> no_return().
abort(Reason) ->
    strata_tx:abort(Reason).

%% @doc True while the calling process runs a transaction fun: strata calls made now join
%% that transaction.
-spec in_transaction() -> boolean().
in_transaction() ->
    strata_tx:in_transaction().

%%% Scans

%% @doc Reads keys from `From' (inclusive) to `To' (exclusive) in Erlang term order, a page at
%% a time, all pages from one snapshot. `'$min'' and `'$max'' stand for no bound. Opts:
%% `limit' (entries per page, default 100, at most 10000), `reverse' (descending order) and
%% `keys' (default true; with false the items are the values alone, which saves turning each
%% key back into a term). Returns `{ok, Items, Cont}' where Items are `{Key, Value}' and
%% `Cont' is `done' or a continuation for {@link scan/1}.
%% When both bounds carry the same hash tag (see {@link tag/2}), only that tag's partition is
%% read. Inside a transaction a scan reads the transaction's snapshot, so it agrees with the
%% transaction's reads; it does not show the transaction's own writes, its range is not
%% checked at commit (a key another transaction adds to it is not a conflict), and its
%% continuation is valid only while the transaction runs.
-spec scan(term(), term(), #{limit => pos_integer(), reverse => boolean(), keys => boolean()}) ->
          {ok, [{term(), term()}] | [term()], scan_cont() | done} | error().
scan(From, To, Opts) when is_map(Opts) ->
    Limit = maps:get(limit, Opts, 100),
    Reverse = maps:get(reverse, Opts, false),
    Keys = maps:get(keys, Opts, true),
    case maps:keys(maps:without([limit, reverse, keys], Opts)) of
        [Bad | _] ->
            {error, {bad_option, Bad}};
        [] when not (is_integer(Limit) andalso Limit > 0 andalso Limit =< ?MAX_SCAN_LIMIT) ->
            {error, {bad_option, {limit, Limit}}};
        [] when not is_boolean(Reverse) ->
            {error, {bad_option, {reverse, Reverse}}};
        [] when not is_boolean(Keys) ->
            {error, {bad_option, {keys, Keys}}};
        [] ->
            Lo = case From of '$min' -> unbounded; _ -> {incl, From} end,
            Hi = case To of '$max' -> unbounded; _ -> {excl, To} end,
            case scan_snapshot() of
                {ok, Snap} ->
                    page({strata_scan, Snap, {Lo, Hi, Reverse, Limit, tag_partition(From, To), Keys}});
                {error, _} = Error -> Error
            end
    end;
scan(_From, _To, Opts) ->
    {error, {bad_option, Opts}}.

%% @doc The next page of a scan.
-spec scan(scan_cont()) -> {ok, [{term(), term()}] | [term()], scan_cont() | done} | error().
scan({strata_scan, _, {_, _, _, _, _, _}} = Cont) ->
    page(Cont);
scan(Other) ->
    {error, {bad_continuation, Other}}.

%% @doc Ends a scan before its continuation is `done', releasing its snapshot now. A scan
%% that runs to `done' needs no call; an abandoned one holds its snapshot until the process
%% that started it exits (which matters in port mode, where a store has at most 4096 open).
-spec scan_close(scan_cont() | done) -> ok.
scan_close({strata_scan, Snap, _}) ->
    release_scan(Snap);
scan_close(done) ->
    ok.

%% A scan in a transaction borrows the transaction's snapshot, which the transaction releases.
scan_snapshot() ->
    case strata_tx:snapshot() of
        {ok, Snap} -> {ok, {tx, Snap}};
        none -> strata_store:snapshot()
    end.

release_scan({tx, _}) -> ok;
release_scan(Snap) -> strata_store:release(Snap).

read_view({tx, Snap}) -> Snap;
read_view(Snap) -> Snap.

page({strata_scan, Snap, {_, _, Reverse, _, _, _} = Page}) ->
    case strata_store:scan(read_view(Snap), Page) of
        {ok, Items, done} ->
            release_scan(Snap),
            {ok, Items, done};
        {ok, Items, Last} when Reverse ->
            {ok, Items, {strata_scan, Snap, setelement(2, Page, {before, Last})}};
        {ok, Items, Last} ->
            {ok, Items, {strata_scan, Snap, setelement(1, Page, {'after', Last})}};
        {error, _} = Error ->
            Error
    end.

tag_partition({'$tag', Tag, _} = From, {'$tag', Tag, _}) ->
    case strata_store:partition_of(From) of
        P when is_integer(P) -> P;
        {error, _} -> undefined
    end;
tag_partition(_, _) ->
    undefined.

%% @doc A hash-tagged key: every key with the same `Tag' lives in the same partition, so
%% transactions and scans over them touch one partition.
-spec tag(term(), term()) -> {'$tag', term(), term()}.
tag(Tag, Rest) ->
    {'$tag', Tag, Rest}.

%%% Node

%% @doc Writes a consistent checkpoint of this node's store into `Dir' (which must not exist).
%% The checkpoint is a data directory: point `data_dir' at it to start from it.
-spec backup(file:filename()) -> ok | error().
backup(Dir) ->
    strata_store:backup(Dir).

%% @doc The node's state: its data directory, configuration, engine statistics, and the
%% cluster as this node sees it (`cluster': name, ring epoch, partitions, n_val, and for each
%% member its zone, primary partition count, detector state `up' | `suspect' | `down' and
%% milliseconds since this node last heard from it).
-spec status() -> #{atom() => term()} | error().
status() ->
    case strata_store:config() of
        {error, _} = Error ->
            Error;
        Config ->
            case strata_store:info() of
                {error, _} = Error -> Error;
                Info -> #{node => node(), engine => maps:get(engine, Config),
                          config => Config, store => Info, cluster => strata_cluster:status()}
            end
    end.

%%% Cluster

%% @equiv join(Seed, #{})
-spec join(node()) -> ok | error().
join(Seed) ->
    join(Seed, #{}).

%% @doc Joins the cluster that `Seed' is a member of. This node must be alone (a cluster of
%% one, the state after start or after {@link leave/0}); it takes the seed's cluster name,
%% which must equal its own `cluster_name' (else `{error, {cluster_name_mismatch, _}}'), and
%% the seed's partition count must equal its own; the node must be distributed (started with
%% `-sname' or `-name', else `{error, not_distributed}'). Waits at most `timeout' ms (finite)
%% for the seed: `{error, timeout}' or `{error, unavailable}' when it does not answer. After
%% `{error, timeout}' the seed may have added the node; calling `join' again is safe. After a
%% restart the node is back in its cluster without joining again.
-spec join(node(), opts()) -> ok | error().
join(Seed, Opts) ->
    remote(Opts, fun(T) -> strata_cluster:join(Seed, T) end).

%% @equiv leave(#{})
-spec leave() -> ok | error().
leave() ->
    leave(#{}).

%% @doc Leaves the cluster: the other members drop this node from their ring (at least one
%% must acknowledge within `timeout' ms, else `{error, unavailable}' and nothing changes), and
%% this node goes on as a cluster of one, with its data. `{error, not_in_cluster}' when it is
%% alone.
-spec leave(opts()) -> ok | error().
leave(Opts) ->
    remote(Opts, fun(T) -> strata_cluster:leave(T) end).

%% @doc The nodes of the cluster as this node knows them, sorted.
-spec members() -> [node()].
members() ->
    strata_cluster:members().

%% Calls that cross nodes need a finite timeout.
remote(Opts, Fun) ->
    with_opts(Opts, fun(#{timeout := infinity}) -> {error, {bad_option, {timeout, infinity}}};
                       (#{timeout := T}) -> Fun(T)
                    end).

%%% Options

with_opts(Opts, Fun) when map_size(Opts) =:= 0 ->
    Fun(defaults());
with_opts(Opts, Fun) when is_map(Opts) ->
    Merged = maps:merge(defaults(), Opts),
    case [{K, V} || {K, V} <- maps:to_list(Merged), not valid_opt(K, V)] of
        [] -> Fun(Merged);
        [Bad | _] -> {error, {bad_option, Bad}}
    end;
with_opts(Opts, _Fun) ->
    {error, {bad_option, Opts}}.

valid_opt(timeout, infinity) -> true;
valid_opt(timeout, T) -> is_integer(T) andalso T >= 0;
valid_opt(durability, D) -> D =:= async orelse D =:= sync;
valid_opt(retries, R) -> is_integer(R) andalso R >= 0;
valid_opt(_, _) -> false.

defaults() ->
    #{timeout => ?DEFAULT_TIMEOUT, durability => default_durability(),
      retries => ?DEFAULT_RETRIES}.

default_durability() ->
    case strata_store:config() of
        #{durability := D} -> D;
        {error, _} -> async
    end.
