%%% @doc Transactions: optimistic, validated at commit, with Scalaris' batch semantics.
%%%
%%% A transaction reads from one snapshot of the store taken when it starts, keeps its writes
%%% to itself, and at commit asks the engine to apply them atomically if every key it read
%%% still has the version it was read at (a key read as missing included). That makes
%%% transactions strictly serializable: each takes effect at its commit, and a read-only one at
%%% its snapshot. A conflict aborts without writing; `transaction/2' then runs the function
%%% again, a bounded number of times.
%%%
%%% The context of the running transaction lives in the process dictionary (one key), as in
%%% Mnesia: that is what lets the ordinary `strata:get/put/...' calls inside a transaction fun
%%% join the transaction.
-module(strata_tx).

-export([transaction/2, req_list/2, abort/1, in_transaction/0, snapshot/0,
         read/1, write/2, delete/1, update/2, single/3]).

-define(TX, '$strata_tx').
-define(ABORT, '$strata_abort').
-define(FAIL, '$strata_engine_error').

-record(tx, {snap :: strata_store:snapshot(),
             %% Key => {Version, none | {value, V}, DataKey} as first read from the snapshot;
             %% DataKey is the key as the commit takes it (see strata_store:read/2) or none.
             reads = #{} :: #{term() => {non_neg_integer(), strata_ops:old(), binary() | none}},
             %% Key => none (deleted) | {value, V}, the transaction's own writes.
             writes = #{} :: #{term() => strata_ops:old()},
             %% Keys of failed operations, newest first: the commit must abort.
             failed = [] :: [term()]}).

-type opts() :: #{durability := strata_store:durability(), timeout := timeout(),
                  retries := non_neg_integer()}.
-type op() :: {read, term()} | {write, term(), term()} | {add_on_nr, term(), term()}
            | {add_on_nr, term(), term(), strata_ops:bounds()}
            | {add_del_on_list, term(), term(), term()}
            | {test_and_set, term(), term(), term()} | commit.
-type result() :: {ok} | {ok, term()} | {fail, term()} | {fail, abort, [term()]}.
-export_type([opts/0, op/0, result/0]).

%% @doc Runs `Fun' in a transaction; see {@link strata:transaction/2}.
-spec transaction(fun(() -> term()), opts()) -> {ok, term()} | {error, term()}.
transaction(Fun, Opts) ->
    case get(?TX) of
        #tx{} -> {ok, Fun()};  % nested: part of the enclosing transaction
        undefined -> attempt(Fun, Opts, maps:get(retries, Opts), 0)
    end.

attempt(Fun, Opts, Left, Attempt) ->
    case strata_store:snapshot() of
        {ok, Snap} ->
            put(?TX, #tx{snap = Snap}),
            %% The snapshot is released before any retry takes the next one.
            Outcome = try run_once(Fun, Opts) after strata_store:release(Snap) end,
            case Outcome of
                {conflict, _} when Left > 0 ->
                    backoff(Attempt),
                    attempt(Fun, Opts, Left - 1, Attempt + 1);
                {conflict, Keys} ->
                    {error, {abort, Keys}};
                {done, Reply} ->
                    Reply
            end;
        {error, _} = Error ->
            Error
    end.

run_once(Fun, Opts) ->
    try Fun() of
        Result ->
            case finish(erase(?TX), Opts) of
                ok -> {done, {ok, Result}};
                {error, {conflict, Keys}} -> {conflict, Keys};
                {error, _} = Error -> {done, Error}
            end
    catch
        throw:{?ABORT, Reason} ->
            erase(?TX),
            {done, {error, {aborted, Reason}}};
        throw:{?FAIL, Reason} ->
            erase(?TX),
            {done, {error, Reason}};
        Class:Reason:Stack ->
            erase(?TX),
            erlang:raise(Class, Reason, Stack)
    end.

%% Randomized exponential backoff between attempts, at most ~32 ms.
backoff(Attempt) ->
    timer:sleep(rand:uniform(1 bsl min(Attempt, 5)) - 1).

finish(#tx{failed = [_ | _] = Failed}, _Opts) ->
    {error, {abort, lists:usort(Failed)}};
finish(#tx{writes = Writes}, _Opts) when map_size(Writes) =:= 0 ->
    ok;  % read-only: its snapshot is its serialization point
finish(#tx{snap = Snap, reads = Reads, writes = Writes}, #{durability := D, timeout := T}) ->
    Checks = [check(K, Vsn, Enc) || {K, {Vsn, _, Enc}} <- maps:to_list(Reads)],
    Puts = [write_op(K, W, data_key(K, Reads)) || {K, W} <- maps:to_list(Writes)],
    strata_store:commit(Snap, Checks, Puts, D, T).

%% A read to validate and a write, given by the key as stored when the key was read (so the
%% engine need not encode it again).
check(Key, Vsn, none) -> {Key, Vsn};
check(Key, Vsn, DataKey) -> {encoded, DataKey, Vsn, Key}.

write_op(Key, {value, V}, none) -> {put, Key, V};
write_op(Key, none, none) -> {delete, Key};
write_op(_Key, {value, V}, DataKey) -> {put_encoded, DataKey, V};
write_op(_Key, none, DataKey) -> {delete_encoded, DataKey}.

%% The key as stored, when the transaction read it (and the engine answered it).
data_key(Key, Reads) ->
    case Reads of
        #{Key := {_, _, DataKey}} -> DataKey;
        #{} -> none
    end.

%% @doc Aborts the running transaction: `transaction/2' returns `{error, {aborted, Reason}}'.
-spec abort(term()) -> no_return().
abort(Reason) ->
    throw({?ABORT, Reason}).

%% @doc True inside a transaction fun.
-spec in_transaction() -> boolean().
in_transaction() ->
    get(?TX) =/= undefined.

%% @doc The snapshot the running transaction reads, or `none' outside a transaction.
-spec snapshot() -> {ok, strata_store:snapshot()} | none.
snapshot() ->
    case get(?TX) of
        #tx{snap = Snap} -> {ok, Snap};
        undefined -> none
    end.

%% @doc Reads a key within the running transaction (seeing its own writes).
-spec read(term()) -> {ok, term()} | {error, not_found}.
read(Key) ->
    case current(Key) of
        {value, V} -> {ok, V};
        none -> {error, not_found}
    end.

%% @doc Writes a key within the running transaction.
-spec write(term(), term()) -> ok.
write(Key, Value) ->
    Tx = get(?TX),
    put(?TX, Tx#tx{writes = (Tx#tx.writes)#{Key => {value, Value}}}),
    ok.

%% @doc Deletes a key within the running transaction.
-spec delete(term()) -> ok.
delete(Key) ->
    Tx = get(?TX),
    put(?TX, Tx#tx{writes = (Tx#tx.writes)#{Key => none}}),
    ok.

%% @doc Applies an operation (a `strata_ops' function of the old value) within the running
%% transaction. A failed operation writes nothing and makes the commit abort.
-spec update(term(), fun((strata_ops:old()) -> strata_ops:outcome())) -> ok | {error, term()}.
update(Key, Op) ->
    case Op(current(Key)) of
        {write, New} ->
            write(Key, New);
        keep ->
            ok;
        {error, _} = Error ->
            Tx = get(?TX),
            put(?TX, Tx#tx{failed = [Key | Tx#tx.failed]}),
            Error
    end.

%% The value a transaction sees: its own write, or the snapshot's (read once, then cached).
current(Key) ->
    #tx{writes = Writes, reads = Reads, snap = Snap} = Tx = get(?TX),
    case Writes of
        #{Key := W} ->
            W;
        #{} ->
            case Reads of
                #{Key := {_, Old, _}} ->
                    Old;
                #{} ->
                    {_, Old, _} = Read = versioned(Snap, Key),
                    put(?TX, Tx#tx{reads = Reads#{Key => Read}}),
                    Old
            end
    end.

versioned(Snap, Key) ->
    case strata_store:read(Snap, Key) of
        {ok, V, Vsn, DataKey} -> {Vsn, {value, V}, DataKey};
        {not_found, Vsn, DataKey} -> {Vsn, none, DataKey};
        {error, Reason} -> throw({?FAIL, Reason})
    end.

%% @doc A single-key read-modify-write outside a transaction: read the current version, apply
%% `Op', commit conditionally on that version; on a conflict (nothing was written) try again,
%% at most `retries' times.
-spec single(term(), fun((strata_ops:old()) -> strata_ops:outcome()), opts()) ->
          ok | {error, term()}.
single(Key, Op, Opts) ->
    single(Key, Op, Opts, maps:get(retries, Opts), 0).

single(Key, Op, #{durability := D, timeout := T} = Opts, Left, Attempt) ->
    Read = try versioned(latest, Key)
           catch throw:{?FAIL, Reason} -> {error, Reason}
           end,
    case Read of
        {error, _} = Error ->
            Error;
        {Vsn, Old, DataKey} ->
            case Op(Old) of
                keep ->
                    ok;
                {error, _} = Error ->
                    Error;
                {write, New} ->
                    case strata_store:commit([check(Key, Vsn, DataKey)],
                                             [write_op(Key, {value, New}, DataKey)], D, T) of
                        {error, {conflict, _}} when Left > 0 ->
                            backoff(Attempt),
                            single(Key, Op, Opts, Left - 1, Attempt + 1);
                        {error, {conflict, Keys}} ->
                            {error, {abort, Keys}};
                        Reply ->
                            Reply
                    end
            end
    end.

%% @doc Runs a Scalaris batch; see {@link strata:req_list/1}.
-spec req_list([op()], opts()) -> [result()] | {error, term()}.
req_list(Ops, Opts) ->
    case get(?TX) of
        #tx{} ->
            {error, nested_req_list};
        undefined ->
            case strata_store:snapshot() of
                {ok, Snap} ->
                    put(?TX, #tx{snap = Snap}),
                    try
                        run(Ops, Opts, [])
                    catch
                        throw:{?FAIL, Reason} -> {error, Reason}
                    after
                        erase(?TX),
                        strata_store:release(Snap)
                    end;
                {error, _} = Error ->
                    Error
            end
    end.

run([], _Opts, Acc) ->
    lists:reverse(Acc);
run([commit], Opts, Acc) ->
    Result = case finish(get(?TX), Opts) of
                 ok -> {ok};
                 {error, {abort, Keys}} -> {fail, abort, Keys};
                 {error, {conflict, Keys}} -> {fail, abort, Keys};
                 {error, Reason} -> {fail, Reason}
             end,
    lists:reverse([Result | Acc]);
run([commit | Rest], Opts, Acc) ->
    run(Rest, Opts, [{fail, abort, []} | Acc]);
run([Op | Rest], Opts, Acc) ->
    run(Rest, Opts, [op(Op) | Acc]).

op({read, Key}) ->
    case read(Key) of
        {ok, V} -> {ok, V};
        {error, Why} -> {fail, Why}
    end;
op({write, Key, Value}) ->
    write(Key, Value),
    {ok};
op({add_on_nr, Key, N}) ->
    result(update(Key, fun(Old) -> strata_ops:add_on_nr(Old, N, #{}) end));
op({add_on_nr, Key, N, Bounds} = Op) ->
    case strata_ops:check_bounds(Bounds) of
        ok -> result(update(Key, fun(Old) -> strata_ops:add_on_nr(Old, N, Bounds) end));
        {error, _} -> bad_op(Op)
    end;
op({add_del_on_list, Key, Add, Del}) ->
    result(update(Key, fun(Old) -> strata_ops:add_del_on_list(Old, Add, Del) end));
op({test_and_set, Key, Old, New}) ->
    result(update(Key, fun(Cur) -> strata_ops:test_and_set(Cur, Old, New) end));
op(Op) ->
    bad_op(Op).

bad_op(Op) ->
    Tx = get(?TX),
    put(?TX, Tx#tx{failed = [{bad_op, Op} | Tx#tx.failed]}),
    {fail, {bad_op, Op}}.

result(ok) -> {ok};
result({error, Why}) -> {fail, Why}.
