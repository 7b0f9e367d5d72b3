%%% @doc Jepsen-style history recording for strata's consistency tests.
%%%
%%% A history is a list of entries, each a map
%%% `#{index, time, process, type, f, value}' (an `info' completion also
%%% carries `error => Reason'). Every operation is an `invoke' entry followed
%%% by exactly one completion by the same process: `ok', `fail' (known not to
%%% have taken effect) or `info' (outcome unknown). A process whose operation
%%% ended `info' never issues another one; its client continues under a fresh
%%% process id (`P + Clients'), as in Jepsen.
%%%
%%% {@link run/1} drives N client processes. Each client keeps its own list of
%%% entries (no recorder process, so no unbounded mailbox); every entry is
%%% stamped with `erlang:unique_integer([monotonic])', which is strictly
%%% increasing node-wide, so merging the lists by stamp gives a total order in
%%% which "A's completion comes before B's invoke" really means A returned
%%% before B was called. `index' is the position in that order.
%%%
%%% Each operation runs in a short-lived worker process so that a hung store
%%% call is abandoned after `op_timeout_ms' and recorded as `info'; a crash of
%%% the invoke fun is recorded as `info' too (the outcome is unknown).
%%%
%%% The module also pairs invokes with completions ({@link ops/1}), checks a
%%% history's well-formedness ({@link validate/1}) and stores histories as
%%% Erlang terms ({@link write/2}, {@link read/1}). See doc/checking.md.
-module(strata_history).

-export([run/1, write/2, read/1, ops/1, validate/1, concat/1, counts/1]).

-export_type([entry/0, history/0, op/0, run_opts/0]).

-type entry_type() :: invoke | ok | fail | info.
-type entry() :: #{index := non_neg_integer(),
                   time := integer(),
                   process := term(),
                   type := entry_type(),
                   f := term(),
                   value := term(),
                   error => term()}.
-type history() :: [entry()].
%% An operation: an invoke entry paired with its completion. `call' and `ret'
%% are positions in the history (1-based); `ret' is `infinity' for an `info'
%% operation, which may take effect at any time after its invocation. `value'
%% is the completion's value for `ok' and the invoke's value otherwise.
-type op() :: #{process := term(),
                f := term(),
                type := ok | fail | info,
                call := pos_integer(),
                ret := pos_integer() | infinity,
                value := term(),
                invoke := entry(),
                complete := entry() | none}.
-type invoke_result() :: {ok, term()} | {fail, term()} | {info, term()}.
-type run_opts() :: #{clients => pos_integer(),
                      ops => non_neg_integer(),
                      time_ms => non_neg_integer(),
                      op_timeout_ms => pos_integer(),
                      generator := fun((term()) -> {term(), term()} | stop),
                      invoke := fun((term(), term()) -> invoke_result())
                              | fun((term(), term(), term()) -> invoke_result())}.

-define(DEFAULT_OPS, 1000).
-define(DEFAULT_TIME_MS, 10000).
-define(DEFAULT_OP_TIMEOUT_MS, 5000).
%% Extra time the runner waits for clients beyond deadline + op timeout
%% (a generator call may still be running); past it the run is an error.
-define(GRACE_MS, 5000).

%% @doc Run a workload and return its history.
%%
%% Options: `clients' (default 1) concurrent clients; `ops' (default 1000)
%% the total number of operations invoked by all clients together;
%% `time_ms' (default 10000) after which no client invokes a new operation;
%% `op_timeout_ms' (default 5000) after which a pending operation is abandoned
%% and recorded `info'; `generator', called as `Gen(Process)' in the client
%% before each operation, returning `{F, Value}' or `stop' (that client ends);
%% `invoke', called as `Invoke(F, Value)' (or `Invoke(Process, F, Value)') in
%% a fresh worker process, returning `{ok, V}', `{fail, V}' or `{info, Reason}'.
%% Any other return or an exception is recorded as `info'.
-spec run(run_opts()) -> history().
run(Opts) ->
    #{generator := Gen, invoke := Invoke} = Opts,
    Clients = maps:get(clients, Opts, 1),
    MaxOps = maps:get(ops, Opts, ?DEFAULT_OPS),
    TimeMs = maps:get(time_ms, Opts, ?DEFAULT_TIME_MS),
    OpTimeout = maps:get(op_timeout_ms, Opts, ?DEFAULT_OP_TIMEOUT_MS),
    true = is_integer(Clients) andalso Clients > 0,
    true = is_integer(MaxOps) andalso MaxOps >= 0,
    true = is_function(Gen, 1),
    true = is_function(Invoke, 2) orelse is_function(Invoke, 3),
    Budget = atomics:new(1, []),
    Deadline = now_ms() + TimeMs,
    Client = #{budget => Budget, max_ops => MaxOps, deadline => Deadline,
               op_timeout => OpTimeout, generator => Gen, invoke => Invoke,
               clients => Clients},
    Parent = self(),
    Tag = make_ref(),
    Pids = maps:from_list(
             [begin
                  {Pid, MRef} = spawn_monitor(
                                  fun() ->
                                          Parent ! {Tag, self(), client(Client, Slot, [])}
                                  end),
                  {Pid, MRef}
              end || Slot <- lists:seq(0, Clients - 1)]),
    Lists = collect(Tag, Pids, Deadline + OpTimeout + ?GRACE_MS, []),
    Stamped = lists:keysort(1, lists:append(Lists)),
    number([E || {_, E} <- Stamped], 0).

collect(_Tag, Pids, _Until, Acc) when map_size(Pids) =:= 0 ->
    Acc;
collect(Tag, Pids, Until, Acc) ->
    Wait = max(0, Until - now_ms()),
    receive
        {Tag, Pid, Entries} when is_map_key(Pid, Pids) ->
            erlang:demonitor(maps:get(Pid, Pids), [flush]),
            collect(Tag, maps:remove(Pid, Pids), Until, [Entries | Acc]);
        {'DOWN', MRef, process, Pid, Reason} when is_map_key(Pid, Pids) ->
            MRef = maps:get(Pid, Pids),
            kill_all(Pids),
            error({client_crashed, Reason})
    after Wait ->
            kill_all(Pids),
            error({clients_did_not_finish, map_size(Pids)})
    end.

kill_all(Pids) ->
    maps:foreach(fun(Pid, MRef) ->
                         erlang:demonitor(MRef, [flush]),
                         exit(Pid, kill)
                 end, Pids).

%% One client: runs operations as logical process Process until the op
%% budget or the deadline is exhausted. Returns [{Stamp, Entry}].
client(C, Process, Acc) ->
    #{budget := Budget, max_ops := MaxOps, deadline := Deadline,
      generator := Gen, clients := Clients} = C,
    case now_ms() < Deadline andalso
        atomics:add_get(Budget, 1, 1) =< MaxOps of
        false ->
            Acc;
        true ->
            case Gen(Process) of
                stop ->
                    Acc;
                {F, Value} ->
                    Inv = stamp(#{process => Process, type => invoke,
                                  f => F, value => Value}),
                    {Type, Extra} = execute(C, Process, F, Value),
                    Done = stamp(maps:merge(#{process => Process, type => Type,
                                              f => F}, Extra)),
                    Acc1 = [Done, Inv | Acc],
                    case Type of
                        info -> client(C, Process + Clients, Acc1);
                        _ -> client(C, Process, Acc1)
                    end
            end
    end.

stamp(Entry) ->
    Stamp = erlang:unique_integer([monotonic]),
    {Stamp, Entry#{time => erlang:monotonic_time(nanosecond)}}.

%% Runs one operation in a worker; the result travels in the exit reason.
execute(#{op_timeout := Timeout, invoke := Invoke}, Process, F, Value) ->
    {Pid, MRef} =
        spawn_monitor(fun() ->
                              exit({?MODULE, result,
                                    call_invoke(Invoke, Process, F, Value)})
                      end),
    receive
        {'DOWN', MRef, process, Pid, {?MODULE, result, Result}} ->
            completion(Result, Value);
        {'DOWN', MRef, process, Pid, Reason} ->
            {info, #{value => Value, error => {crashed, Reason}}}
    after Timeout ->
            erlang:demonitor(MRef, [flush]),
            exit(Pid, kill),
            {info, #{value => Value, error => timeout}}
    end.

call_invoke(Invoke, Process, F, Value) ->
    try
        case is_function(Invoke, 3) of
            true -> Invoke(Process, F, Value);
            false -> Invoke(F, Value)
        end
    catch
        Class:Reason -> {info, {Class, Reason}}
    end.

completion({ok, V}, _Value) -> {ok, #{value => V}};
completion({fail, V}, _Value) -> {fail, #{value => V}};
completion({info, Reason}, Value) -> {info, #{value => Value, error => Reason}};
completion(Other, Value) -> {info, #{value => Value, error => {bad_result, Other}}}.

number([], _) -> [];
number([E | Es], I) -> [E#{index => I} | number(Es, I + 1)].

now_ms() -> erlang:monotonic_time(millisecond).

%% @doc Concatenate histories run one after the other (e.g. a workload then a
%% final read phase). Process ids of each later history are shifted past
%% every id used before (ids must be integers), so a process that ended
%% `info' in an earlier phase is never reused; indices are renumbered.
-spec concat([history()]) -> history().
concat(Histories) ->
    {Parts, _} =
        lists:mapfoldl(
          fun(H, Offset) ->
                  Shifted = [E#{process := P + Offset}
                             || E = #{process := P} <- H],
                  Max = lists:max([Offset - 1 | [P || #{process := P} <- Shifted]]),
                  {Shifted, Max + 1}
          end, 0, Histories),
    number(lists:append(Parts), 0).

%% @doc Count entries by type: `#{invoke, ok, fail, info}'.
-spec counts(history()) -> #{invoke | ok | fail | info => non_neg_integer()}.
counts(History) ->
    lists:foldl(fun(#{type := T}, Acc) -> maps:update_with(T, fun(N) -> N + 1 end, Acc) end,
                #{invoke => 0, ok => 0, fail => 0, info => 0}, History).

%% @doc Check that a history is well formed: entries are maps with the
%% required keys, indices (when present) strictly increase, every completion
%% matches a pending invoke of the same process and `f', a process never has
%% two pending operations, and never invokes again after an `info'.
%% Invokes left without a completion at the end are allowed (they count as
%% `info').
-spec validate(term()) -> ok | {error, term()}.
validate(History) ->
    try ops(History) of
        _ -> ok
    catch
        error:{malformed_history, Why} -> {error, Why}
    end.

%% @doc Pair every invoke with its completion, in invoke order. Raises
%% `error({malformed_history, Why})' on a history that {@link validate/1}
%% rejects. An invoke without completion becomes an `info' op.
-spec ops(term()) -> [op()].
ops(History) when is_list(History) ->
    ops(History, 1, -1, #{}, #{}, []);
ops(_) ->
    malformed(not_a_list).

ops([], _Pos, _LastIndex, Pending, _Crashed, Acc) ->
    Open = [Op#{type => info, ret => infinity, complete => none}
            || Op <- maps:values(Pending)],
    lists:sort(fun(#{call := A}, #{call := B}) -> A =< B end, Acc ++ Open);
ops([E | Es], Pos, LastIndex, Pending, Crashed, Acc) ->
    case E of
        #{process := P, type := Type, f := F, value := _} ->
            Index = maps:get(index, E, LastIndex + 1),
            is_integer(Index) andalso Index > LastIndex
                orelse malformed({index_not_increasing, E}),
            is_map_key(P, Crashed) andalso malformed({process_reused_after_info, E}),
            case {Type, maps:find(P, Pending)} of
                {invoke, error} ->
                    Op = #{process => P, f => F, call => Pos, invoke => E,
                           value => maps:get(value, E)},
                    ops(Es, Pos + 1, Index, Pending#{P => Op}, Crashed, Acc);
                {invoke, {ok, _}} ->
                    malformed({concurrent_invoke, E});
                {_, error} ->
                    malformed({completion_without_invoke, E});
                {_, {ok, #{f := F1}}} when F1 =/= F ->
                    malformed({completion_f_mismatch, E});
                {Done, {ok, Op}} when Done =:= ok; Done =:= fail; Done =:= info ->
                    {Ret, Value, Crashed1} =
                        case Done of
                            ok -> {Pos, maps:get(value, E), Crashed};
                            fail -> {Pos, maps:get(value, Op), Crashed};
                            info -> {infinity, maps:get(value, Op), Crashed#{P => true}}
                        end,
                    Op1 = Op#{type => Done, ret => Ret, complete => E, value => Value},
                    ops(Es, Pos + 1, Index, maps:remove(P, Pending), Crashed1,
                        [Op1 | Acc]);
                _ ->
                    malformed({bad_type, E})
            end;
        _ ->
            malformed({bad_entry, E})
    end.

malformed(Why) -> error({malformed_history, Why}).

%% @doc Write a history to File as Erlang terms, one entry per term, so that
%% `file:consult/1' (or {@link read/1}) reads it back. Pids, ports,
%% references and funs (which cannot be read back) are written as
%% `{'$unprintable', String}'.
-spec write(file:name_all(), history()) -> ok | {error, term()}.
write(File, History) ->
    Header = io_lib:format("%% strata history: ~b entries~n", [length(History)]),
    Body = [io_lib:format("~tp.~n", [printable(E)]) || E <- History],
    file:write_file(File, unicode:characters_to_binary([Header | Body])).

printable(T) when is_pid(T); is_port(T); is_reference(T); is_function(T) ->
    {'$unprintable', lists:flatten(io_lib:format("~p", [T]))};
printable(T) when is_list(T) -> printable_list(T);
printable(T) when is_tuple(T) -> list_to_tuple([printable(X) || X <- tuple_to_list(T)]);
printable(T) when is_map(T) -> maps:from_list([{printable(K), printable(V)}
                                               || {K, V} <- maps:to_list(T)]);
printable(T) -> T.

%% Handles improper lists too.
printable_list([]) -> [];
printable_list([H | T]) when is_list(T) -> [printable(H) | printable_list(T)];
printable_list([H | T]) -> [printable(H) | printable(T)].

%% @doc Read a history written by {@link write/2}.
-spec read(file:name_all()) -> {ok, history()} | {error, term()}.
read(File) ->
    case file:consult(File) of
        {ok, Terms} ->
            case lists:all(fun is_map/1, Terms) of
                true -> {ok, Terms};
                false -> {error, not_a_history}
            end;
        {error, _} = Error ->
            Error
    end.
