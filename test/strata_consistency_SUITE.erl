%%% Consistency of the single-node store, judged from recorded histories (DESIGN §7, issue 11).
%%%
%%% The store under test runs on a peer node (`connection => standard_io', one scheduler), so
%%% `kill -9' hits only it. Clients run on the common_test node, record every operation with
%%% `strata_history:run/1' and call the peer with `peer:call/5'. Four workloads, each for
%%% `STRATA_CONSISTENCY_SECONDS' (default 30) seconds:
%%%
%%% - register: a handful of keys, `get' / `put' / `test_and_set', checked for per-key
%%%   linearizability;
%%% - bank: 8 accounts holding 100 in all, transfers in `strata:transaction/2' and reads of
%%%   every account in one transaction, checked for conservation of money;
%%% - set: elements added with `add_del_on_list', read in one transaction, checked for lost
%%%   and unexpected elements;
%%% - list_append: multi-key transactions of reads and appends, checked as Elle does.
%%%
%%% Each runs in group `calm' and in group `kill9', where a killer process `kill -9's the peer
%%% at random moments (every 3 to 8 s) and restarts it on the same name and data directory;
%%% operations in flight at a kill end `info'. Every checker must report `valid => true'.
%%%
%%% Group `unsafe' runs bank and list-append through a deliberately unsafe client (read,
%%% then write, outside any transaction) against the same store and asserts that the
%%% checkers catch the lost updates: a checker that passes those runs is broken.
%%%
%%% All of it runs with each engine, `nif' and `port' (except `unsafe', NIF only).
%%%
%%% Every history is written to the case's priv_dir (`<case>-<group>-<engine>.history'); see
%%% doc/checking.md to replay one.
-module(strata_consistency_SUITE).
-include_lib("common_test/include/ct.hrl").

-compile([export_all, nowarn_export_all]).

%% The ETS table (owned by a holder process per case) through which clients find the
%% current peer: `{node, up | down, Peer, OsPid}', `{killer, Pid}', workload counters.
-define(TAB, strata_consistency).
%% peer:call timeout; the harness abandons an op (info) after ?OP_TIMEOUT.
-define(CALL_TIMEOUT, 10000).
-define(OP_TIMEOUT, 15000).
%% How long a generator waits for a restarting node before invoking anyway.
-define(WAIT_UP_MS, 5000).
-define(OPTS, #{}).
%% List-append transactions retry a conflict once, then abort (about 1 in 100 does): the
%% history then holds `fail' transactions whose appends must never be seen (G1a).
-define(LA_OPTS, #{retries => 1}).
-define(REG_KEYS, 5).
-define(ACCOUNTS, 8).
-define(TOTAL, 100).
-define(SET_KEYS, 16).
-define(LA_ACTIVE, 8).
-define(LA_APPENDS_PER_KEY, 32).
-define(UNSAFE_TYPES_LA, ['G-single', 'G2', incompatible_order]).

suite() ->
    [{timetrap, {seconds, 180 + 3 * duration_s()}}].

all() ->
    [{group, nif}, {group, port}].

%% The workloads run with each engine (in port mode a kill -9 of the node takes its port
%% program with it); the unsafe client only needs one.
groups() ->
    [{nif, [], [{group, calm}, {group, kill9}, {group, unsafe}]},
     {port, [], [{group, calm}, {group, kill9}]},
     {calm, [], workloads()},
     {kill9, [], workloads()},
     {unsafe, [], [unsafe_client_is_caught_bank, unsafe_client_is_caught_list_append]}].

workloads() ->
    [register, bank, set, list_append].

%% Seconds per workload run: STRATA_CONSISTENCY_SECONDS, default 30.
duration_s() ->
    case os:getenv("STRATA_CONSISTENCY_SECONDS") of
        false -> 30;
        "" -> 30;
        S ->
            case string:to_integer(string:trim(S)) of
                {N, ""} when N > 0 -> N;
                _ -> error({bad_env, "STRATA_CONSISTENCY_SECONDS", S})
            end
    end.

%% The unsafe runs only need long enough to lose some updates.
unsafe_duration_s() ->
    max(3, min(10, duration_s())).

init_per_suite(Config) ->
    ct:pal("strata_consistency_SUITE: ~b s per workload run "
           "(STRATA_CONSISTENCY_SECONDS); peer code paths ~p",
           [duration_s(), strata_test_util:code_paths()]),
    %% The peer must be able to load the transaction bodies.
    true = lists:member(filename:dirname(code:which(strata_consistency_ops)),
                        strata_test_util:code_paths()),
    Config.

end_per_suite(_Config) ->
    ok.

init_per_group(Engine, Config) when Engine =:= nif; Engine =:= port ->
    ok = strata_test_util:use_engine(Engine),
    Config;
init_per_group(unsafe, Config) ->
    [{mode, unsafe} | Config];
init_per_group(Mode, Config) ->
    [{mode, Mode} | Config].

end_per_group(port, _Config) ->
    strata_test_util:use_engine(nif);
end_per_group(_, _Config) ->
    ok.

%% Durability per case: each workload runs once with each mode, and the kill9 runs of
%% register, set and list_append use sync.
durability(calm, bank) -> sync;
durability(calm, _) -> async;
durability(kill9, bank) -> async;
durability(kill9, _) -> sync;
durability(unsafe, _) -> async.

init_per_testcase(Case, Config) ->
    Mode = ?config(mode, Config),
    Durability = durability(Mode, Case),
    Dir = strata_test_util:fresh_dir(Config, atom_to_list(Case)),
    Name = list_to_atom(lists:concat(["strata_cons_", Case, "_", Mode])),
    Env = [{durability, Durability}],
    Holder = start_holder(),
    {Peer, _Node} = strata_test_util:start_peer(Name, Dir, Env),
    true = ets:insert(?TAB, {node, up, Peer, strata_test_util:os_pid(Peer)}),
    [{peer_name, Name}, {data_dir, Dir}, {peer_env, Env}, {durability, Durability},
     {holder, Holder} | Config].

%% Runs even when the case failed: stops the killer (letting it finish a restart in
%% progress, so no peer is left behind), then the current peer, then the table.
end_per_testcase(_Case, Config) ->
    _ = stop_killer(),
    case ets:whereis(?TAB) of
        undefined -> ok;
        _ ->
            case ets:lookup(?TAB, node) of
                [{node, _, Peer, OsPid}] ->
                    %% A dead control process means the OS process has exited.
                    case is_process_alive(Peer) of
                        true ->
                            try peer:stop(Peer)
                            catch _:_ -> strata_test_util:kill9(OsPid)
                            end;
                        false ->
                            ok
                    end;
                [] ->
                    ok
            end
    end,
    stop_holder(?config(holder, Config)),
    ok.

start_holder() ->
    Parent = self(),
    Pid = spawn(fun() ->
                        ?TAB = ets:new(?TAB, [named_table, public, set,
                                              {read_concurrency, true},
                                              {write_concurrency, true}]),
                        Parent ! {holder_ready, self()},
                        receive stop -> ok end
                end),
    receive {holder_ready, Pid} -> Pid after 5000 -> error(holder_did_not_start) end.

stop_holder(undefined) ->
    ok;
stop_holder(Pid) ->
    MRef = monitor(process, Pid),
    Pid ! stop,
    receive {'DOWN', MRef, _, _, _} -> ok after 5000 -> exit(Pid, kill) end.

%%% The cases.

register(Config) -> expect_valid(run(register, Config)).
bank(Config) -> expect_valid(run(bank, Config)).
set(Config) -> expect_valid(run(set, Config)).
list_append(Config) -> expect_valid(run(list_append, Config)).

unsafe_client_is_caught_bank(Config) ->
    #{result := R} = Run = run(bank, Config),
    Types = types(R),
    case maps:get(valid, R) =:= false andalso
        (lists:member(wrong_total, Types) orelse lists:member(negative, Types)) of
        true -> {comment, lists:flatten(io_lib:format("caught: ~p", [type_counts(R)]))};
        false -> ct:fail({unsafe_bank_not_caught, maps:get(file, Run), summary(R)})
    end.

unsafe_client_is_caught_list_append(Config) ->
    #{result := R} = Run = run(list_append, Config),
    Types = types(R),
    case maps:get(valid, R) =:= false andalso
        [T || T <- Types, lists:member(T, ?UNSAFE_TYPES_LA)] =/= [] of
        true -> {comment, lists:flatten(io_lib:format("caught: ~p", [type_counts(R)]))};
        false -> ct:fail({unsafe_list_append_not_caught, maps:get(file, Run), summary(R)})
    end.

%% The checker must say `true'; the run must have done something (and killed the node in
%% group kill9); and no op may have ended `info' for a reason other than a timeout or (in
%% kill9) the node's death: an exception raised on the peer is a crash in strata (or in this
%% suite), not an unknown outcome to shrug off.
expect_valid(#{result := R, file := File, kills := Kills, mode := Mode, info := Infos}) ->
    #{stats := #{ops := #{ok := Ok}}} = R,
    case [I || I <- maps:keys(Infos), not expected_info(Mode, I)] of
        [] -> ok;
        Unexpected -> ct:fail({unexpected_info, Unexpected, File})
    end,
    case R of
        #{valid := true} when Ok > 0, Mode =/= kill9 orelse Kills > 0 ->
            {comment, lists:flatten(io_lib:format("valid; ~p ok ops, ~p kills", [Ok, Kills]))};
        #{valid := true} ->
            ct:fail({run_too_small, #{ok => Ok, kills => Kills}});
        _ ->
            ct:pal("INVALID history saved in ~s", [File]),
            ct:fail({not_valid, File, summary(R)})
    end.

expected_info(_, timeout) -> true;          % {error, timeout} or the harness's op timeout
expected_info(_, {exit, timeout}) -> true;   % peer:call timed out
expected_info(kill9, {exit, _}) -> true;     % the node died under the call
expected_info(_, _) -> false.

%%% Running a workload.

%% Runs workload W in the case's mode and checks the history. Returns
%% #{result, file, kills, mode, info}.
run(W, Config) ->
    Mode = ?config(mode, Config),
    Seconds = case Mode of unsafe -> unsafe_duration_s(); _ -> duration_s() end,
    Spec = #{clients := Clients, model := Model, final := Final, setup := Setup} =
        workload(W, Mode),
    ok = Setup(),
    Deadline = erlang:monotonic_time(millisecond) + Seconds * 1000,
    Gen = maps:get(generator, Spec),
    Running = fun() -> erlang:monotonic_time(millisecond) < Deadline end,
    Generator = fun(P) ->
                        Running() andalso wait_up(),
                        think(maps:get(think_ms, Spec, 0)),
                        case Running() of
                            true -> Gen(P);
                            false -> stop
                        end
                end,
    Invoke = maps:get(invoke, Spec),
    Killer = case Mode of
                 kill9 -> start_killer(Config, Seconds);
                 _ -> none
             end,
    T0 = erlang:monotonic_time(millisecond),
    Main = strata_history:run(#{clients => Clients, ops => 100000000,
                                time_ms => Seconds * 1000, op_timeout_ms => ?OP_TIMEOUT,
                                generator => Generator, invoke => Invoke}),
    T1 = erlang:monotonic_time(millisecond),
    Kills = case Killer of
                none -> 0;
                _ -> case stop_killer() of
                         {ok, K} -> K;
                         Other -> ct:fail({killer, Other})
                     end
            end,
    %% A final phase on the calm node: one client runs the workload's final reads.
    FinalOps = Final(),
    FinalPhase = strata_history:run(
                   #{clients => 1, ops => length(FinalOps), time_ms => 120000,
                     op_timeout_ms => ?OP_TIMEOUT,
                     generator => fun(_) -> pop_final(FinalOps) end,
                     invoke => maps:get(final_invoke, Spec, Invoke)}),
    History = strata_history:concat([Main, FinalPhase]),
    File = filename:join(?config(priv_dir, Config),
                         lists:concat([W, "-", Mode, "-", strata_test_util:engine(), ".history"])),
    {WriteUs, ok} = timer:tc(fun() -> strata_history:write(File, History) end),
    {CheckUs, R} = timer:tc(fun() -> check(Model, History) end),
    #{stats := Stats} = R,
    Infos = info_reasons(History),
    ct:pal("~p ~p (durability ~p, ~b clients): ran ~.1f s, ~b kills~n"
           "  entries ~p~n  ops ~p~n  info reasons ~p~n"
           "  checker ~p: valid = ~p, anomalies ~p, checked in ~.2f s~n  stats ~p~n"
           "  history (~b entries, written in ~.1f s): ~s",
           [W, Mode, ?config(durability, Config), Clients, (T1 - T0) / 1000, Kills,
            maps:get(entries, Stats), maps:get(ops, Stats), Infos,
            Model, maps:get(valid, R), type_counts(R), CheckUs / 1.0e6,
            maps:without([entries, ops], Stats),
            length(History), WriteUs / 1.0e6, File]),
    #{result => R, file => File, kills => Kills, mode => Mode, info => Infos}.

%% Checks in a fresh process: the case process's heap is large by now, and the checker's
%% garbage collections would pay for it.
check(Model, History) ->
    {Pid, MRef} = spawn_monitor(fun() -> exit({checked, strata_checker:check(Model, History)}) end),
    receive
        {'DOWN', MRef, process, Pid, {checked, R}} -> R;
        {'DOWN', MRef, process, Pid, Reason} -> error({checker_crashed, Reason})
    end.

pop_final(Ops) ->
    case get(final_ops) of
        undefined -> put(final_ops, Ops), pop_final(Ops);
        [] -> stop;
        [Op | Rest] -> put(final_ops, Rest), Op
    end.

%% Mean think time per client between ops (0: none).
think(0) -> ok;
think(Ms) -> timer:sleep(rand:uniform(2 * Ms + 1) - 1).

%% Waits (bounded) while the killer restarts the node.
wait_up() ->
    wait_up(erlang:monotonic_time(millisecond) + ?WAIT_UP_MS).

wait_up(Until) ->
    case ets:lookup(?TAB, node) of
        [{node, up, _, _}] -> ok;
        _ ->
            case erlang:monotonic_time(millisecond) < Until of
                true -> timer:sleep(10), wait_up(Until);
                false -> ok
            end
    end.

%% Calls M:F(A) on the current peer. `{ok, Result}', `{info, Reason}' when the call raised
%% (the node died, the call timed out: the outcome is unknown), or `down' when the node was
%% down and nothing was called.
call(M, F, A) ->
    case ets:lookup(?TAB, node) of
        [{node, up, Peer, _}] ->
            try peer:call(Peer, M, F, A, ?CALL_TIMEOUT) of
                Result -> {ok, Result}
            catch
                Class:Reason -> {info, {Class, short(Reason)}}
            end;
        _ ->
            down
    end.

short({R, {gen_server, call, _}}) -> short(R);
short(R) ->
    case erts_debug:flat_size(R) < 40 of
        true -> R;
        false when is_tuple(R), tuple_size(R) > 0 -> short(element(1, R));
        false -> other
    end.

%% A strata error return. Definite ones are `fail' (nothing was written); anything else,
%% {error, timeout} included, is `info'.
error_outcome({error, {abort, _} = Why}) -> {fail, Why};
error_outcome({error, not_started}) -> {fail, not_started};
error_outcome({error, timeout}) -> {info, timeout};
error_outcome(Other) -> {info, {unexpected, Other}}.

%% Maps call/3's result for an op whose only good return is `Expected'.
outcome({ok, Expected}, Expected, Ok) -> {ok, Ok};
outcome({ok, Other}, _, _) -> error_outcome(Other);
outcome({info, _} = Info, _, _) -> Info;
outcome(down, _, _) -> {fail, node_down}.

unique() -> erlang:unique_integer([positive]).

pick(List) -> lists:nth(rand:uniform(length(List)), List).

%%% The killer: kill -9 of the peer at random moments, restart on the same name and dir.

start_killer(Config, Seconds) ->
    %% 3-8 s between kills in a 30 s run; shorter runs kill sooner.
    Hi = min(8000, max(1000, Seconds * 1000 div 3)),
    Lo = min(3000, Hi div 2),
    S = #{name => ?config(peer_name, Config), dir => ?config(data_dir, Config),
          env => ?config(peer_env, Config), lo => Lo, hi => Hi},
    Pid = spawn(fun() -> killer(S, 0) end),
    true = ets:insert(?TAB, {killer, Pid}),
    Pid.

killer(S = #{lo := Lo, hi := Hi}, Kills) ->
    receive
        {stop, From, Ref} -> From ! {Ref, {ok, Kills}}
    after Lo + rand:uniform(Hi - Lo + 1) - 1 ->
            restart(S),
            killer(S, Kills + 1)
    end.

%% The node is marked down only once it is dead: clients keep calling it up to the kill, so
%% operations are in flight when it lands (they end `info'). Marking it down first would let
%% the clients drain before the kill, and nothing would be in flight.
restart(#{name := Name, dir := Dir, env := Env}) ->
    [{node, up, Peer, OsPid}] = ets:lookup(?TAB, node),
    MRef = monitor(process, Peer),
    T0 = erlang:monotonic_time(millisecond),
    strata_test_util:kill9(OsPid),
    receive {'DOWN', MRef, _, _, _} -> ok
    after 30000 -> error({peer_did_not_die, OsPid})
    end,
    true = ets:insert(?TAB, {node, down, Peer, OsPid}),
    {Peer2, _} = start_peer(Name, Dir, Env, 3),
    OsPid2 = strata_test_util:os_pid(Peer2),
    true = ets:insert(?TAB, {node, up, Peer2, OsPid2}),
    ct:pal("killer: kill -9 ~s, restarted as ~s in ~b ms",
           [OsPid, OsPid2, erlang:monotonic_time(millisecond) - T0]).

%% The node name may take a moment to be released by epmd.
start_peer(Name, Dir, Env, Tries) ->
    try strata_test_util:start_peer(Name, Dir, Env)
    catch
        Class:Reason when Tries > 1 ->
            ct:pal("killer: restart failed (~p:~p), retrying", [Class, Reason]),
            timer:sleep(500),
            start_peer(Name, Dir, Env, Tries - 1)
    end.

%% Stops the killer (it finishes a restart in progress first). `{ok, Kills}', `none' when
%% there is no killer, or `{crashed, Reason}'.
stop_killer() ->
    case ets:whereis(?TAB) =/= undefined andalso ets:lookup(?TAB, killer) of
        [{killer, Pid}] ->
            true = ets:delete(?TAB, killer),
            MRef = monitor(process, Pid),
            Ref = make_ref(),
            Pid ! {stop, self(), Ref},
            receive
                {Ref, Reply} ->
                    demonitor(MRef, [flush]),
                    Reply;
                {'DOWN', MRef, _, _, Reason} ->
                    {crashed, Reason}
            after 120000 ->
                    exit(Pid, kill),
                    {crashed, killer_did_not_stop}
            end;
        _ ->
            none
    end.

%%% Workloads. Each is a map: clients, setup (initial state), generator (called in the
%%% client before each op), invoke (in a fresh worker per op), final (ops of the final
%%% phase), model (for strata_checker:check/2), think_ms (mean pause per client).

workload(register, _Mode) ->
    Keys = [{reg, I} || I <- lists:seq(1, ?REG_KEYS)],
    #{clients => 16,
      think_ms => 8,
      setup => fun() ->
                       [true = ets:insert(?TAB, {{last, K}, 0}) || K <- Keys],
                       setup([{K, 0} || K <- Keys])
               end,
      generator => fun(_P) ->
                           K = pick(Keys),
                           case rand:uniform(100) of
                               X when X =< 50 -> {read, {K, nil}};
                               X when X =< 75 -> {write, {K, unique()}};
                               _ -> {cas, {K, {last_seen(K), unique()}}}
                           end
                   end,
      invoke => fun register_invoke/2,
      final => fun() -> [{read, {K, nil}} || K <- Keys] end,
      %% Setup wrote 0 to every key before the history starts.
      model => {register, #{initial => 0}}};
workload(bank, Mode) ->
    Accounts = [{acct, I} || I <- lists:seq(1, ?ACCOUNTS)],
    Initial = initial_balances(Accounts),
    Invoke = case Mode of
                 unsafe -> fun(transfer, V) -> unsafe_bank_invoke(transfer, V);
                              (F, V) -> bank_invoke(Accounts, F, V)
                           end;
                 _ -> fun(F, V) -> bank_invoke(Accounts, F, V) end
             end,
    #{clients => 8,
      think_ms => 4,
      setup => fun() -> setup(Initial) end,
      generator => fun(_P) ->
                           case rand:uniform(100) of
                               X when X =< 25 -> {read, nil};
                               _ ->
                                   From = pick(Accounts),
                                   To = pick(Accounts -- [From]),
                                   {transfer, {From, To, rand:uniform(5)}}
                           end
                   end,
      invoke => Invoke,
      %% Reads are always transactional, in the unsafe run too: a wrong total then comes
      %% from lost updates of the transfers, not from torn reads.
      final_invoke => fun(F, V) -> bank_invoke(Accounts, F, V) end,
      final => fun() -> [{read, nil}, {read, nil}] end,
      model => {bank, #{total => ?TOTAL, accounts => Accounts}}};
workload(set, _Mode) ->
    Keys = [{set, I} || I <- lists:seq(0, ?SET_KEYS - 1)],
    true = ets:insert(?TAB, {set_last_read, erlang:monotonic_time(millisecond)}),
    %% About 30 reads per run (one a second in a 30 s run): a read returns the whole set,
    %% which keeps growing, so more reads in a longer run would grow the history
    %% quadratically.
    ReadEvery = max(1000, duration_s() * 1000 div 30),
    #{clients => 8,
      think_ms => 3,
      setup => fun() -> ok end,
      generator => fun(_P) ->
                           Now = erlang:monotonic_time(millisecond),
                           [{_, Last}] = ets:lookup(?TAB, set_last_read),
                           case Now - Last > ReadEvery andalso
                               ets:select_replace(?TAB, [{{set_last_read, Last}, [],
                                                          [{const, {set_last_read, Now}}]}])
                               =:= 1 of
                               true -> {read, nil};
                               false -> {add, unique()}
                           end
                   end,
      invoke => fun(F, V) -> set_invoke(Keys, F, V) end,
      final => fun() -> [{read, nil}, {read, nil}] end,
      model => {set, #{}}};
workload(list_append, Mode) ->
    [true = ets:insert(?TAB, {{la_slot, I}, I}) || I <- lists:seq(1, ?LA_ACTIVE)],
    true = ets:insert(?TAB, {la_fresh, ?LA_ACTIVE}),
    Invoke = case Mode of
                 unsafe -> fun unsafe_la_invoke/2;
                 _ -> fun la_invoke/2
             end,
    #{clients => 12,
      think_ms => 6,
      setup => fun() -> ok end,
      generator => fun(_P) -> {txn, la_mops(rand:uniform(4), [])} end,
      invoke => Invoke,
      final_invoke => fun la_invoke/2,
      %% Every key ever used, read in transactions of 16 keys.
      final => fun() ->
                       [{_, Last}] = ets:lookup(?TAB, la_fresh),
                       [{txn, [{r, K, nil} || K <- Chunk]}
                        || Chunk <- chunks(lists:seq(1, Last), 16)]
               end,
      model => {list_append, #{}}}.

setup(KVs) ->
    {ok, {ok, ok}} = call(strata_consistency_ops, init, [KVs, ?OPTS]),
    ok.

initial_balances(Accounts) ->
    N = length(Accounts),
    [{A, ?TOTAL div N + case I =< ?TOTAL rem N of true -> 1; false -> 0 end}
     || {I, A} <- lists:zip(lists:seq(1, N), Accounts)].

chunks([], _) -> [];
chunks(L, N) when length(L) =< N -> [L];
chunks(L, N) -> {H, T} = lists:split(N, L), [H | chunks(T, N)].

%% Register: read = get, write = put, cas = test_and_set. Values are unique, so the
%% checker's search stays small; `{last, K}' remembers a recent value for the next cas.
register_invoke(read, {K, _}) ->
    case call(strata, get, [K]) of
        {ok, {ok, V}} -> note(K, V), {ok, {K, V}};
        {ok, {error, not_found}} -> {ok, {K, nil}};
        Other -> outcome(Other, no_such_result, none)
    end;
register_invoke(write, {K, V}) ->
    case outcome(call(strata, put, [K, V]), ok, {K, V}) of
        {ok, _} = Ok -> note(K, V), Ok;
        Other -> Other
    end;
register_invoke(cas, {K, {Old, New}}) ->
    case call(strata, test_and_set, [K, Old, New]) of
        {ok, ok} -> note(K, New), {ok, {K, {Old, New}}};
        {ok, {error, {key_changed, Cur}}} -> note(K, Cur), {fail, {key_changed, Cur}};
        {ok, {error, not_found}} -> {fail, not_found};
        Other -> outcome(Other, no_such_result, none)
    end.

note(K, V) -> ets:insert(?TAB, {{last, K}, V}).

last_seen(K) ->
    [{_, V}] = ets:lookup(?TAB, {last, K}),
    V.

%% Bank: transfers and reads as transactions on the peer.
bank_invoke(_Accounts, transfer, {From, To, Amount} = V) ->
    case call(strata_consistency_ops, transfer, [From, To, Amount, ?OPTS]) of
        {ok, {ok, ok}} -> {ok, V};
        {ok, {ok, insufficient}} -> {fail, insufficient};  % nothing written
        Other -> outcome(Other, no_such_result, none)
    end;
bank_invoke(Accounts, read, _) ->
    case call(strata_consistency_ops, read_map, [Accounts, ?OPTS]) of
        {ok, {ok, Balances}} -> {ok, Balances};
        Other -> outcome(Other, no_such_result, none)
    end.

%% The unsafe client: read both balances, then write both, each a separate call outside
%% any transaction (with a short pause in between, as a slow client would).
unsafe_bank_invoke(transfer, {From, To, Amount} = V) ->
    {ok, {ok, A}} = call(strata, get, [From]),
    {ok, {ok, B}} = call(strata, get, [To]),
    timer:sleep(rand:uniform(3) - 1),
    case A >= Amount of
        true ->
            {ok, ok} = call(strata, put, [From, A - Amount]),
            {ok, ok} = call(strata, put, [To, B + Amount]),
            {ok, V};
        false ->
            {fail, insufficient}
    end.

%% Set: add E to the list under key E mod ?SET_KEYS; a read reads every list in one
%% transaction.
set_invoke(_Keys, add, E) ->
    outcome(call(strata, add_del_on_list, [{set, E rem ?SET_KEYS}, [E], []]), ok, E);
set_invoke(Keys, read, _) ->
    case call(strata_consistency_ops, read_set, [Keys, ?OPTS]) of
        {ok, {ok, Elements}} -> {ok, Elements};
        Other -> outcome(Other, no_such_result, none)
    end.

%% List-append: 1-4 micro-ops over ?LA_ACTIVE active keys, half reads, half appends of
%% unique elements; a key that got ?LA_APPENDS_PER_KEY appends is retired for a fresh one.
la_mops(0, Acc) ->
    lists:reverse(Acc);
la_mops(N, Acc) ->
    Slot = rand:uniform(?LA_ACTIVE),
    [{_, K}] = ets:lookup(?TAB, {la_slot, Slot}),
    case rand:uniform(2) of
        1 ->
            la_mops(N - 1, [{r, K, nil} | Acc]);
        2 ->
            case ets:update_counter(?TAB, {la_count, K}, 1, {{la_count, K}, 0}) of
                ?LA_APPENDS_PER_KEY ->
                    Fresh = ets:update_counter(?TAB, la_fresh, 1),
                    true = ets:insert(?TAB, {{la_slot, Slot}, Fresh});
                _ ->
                    ok
            end,
            la_mops(N - 1, [{append, K, unique()} | Acc])
    end.

la_invoke(txn, Mops) ->
    case call(strata_consistency_ops, txn, [Mops, ?LA_OPTS]) of
        {ok, {ok, Done}} -> {ok, Done};
        Other -> outcome(Other, no_such_result, none)
    end.

%% The unsafe client: every micro-op on its own, an append as a get then a put.
unsafe_la_invoke(txn, Mops) ->
    {ok, [unsafe_mop(M) || M <- Mops]}.

unsafe_mop({r, K, _}) ->
    {r, K, case call(strata, get, [K]) of
               {ok, {ok, L}} -> L;
               {ok, {error, not_found}} -> nil
           end};
unsafe_mop({append, K, E}) ->
    Old = case call(strata, get, [K]) of
              {ok, {ok, L}} -> L;
              {ok, {error, not_found}} -> []
          end,
    timer:sleep(rand:uniform(3) - 1),
    {ok, ok} = call(strata, put, [K, Old ++ [E]]),
    {append, K, E}.

%%% Reporting.

types(#{anomalies := As}) -> lists:usort([T || #{type := T} <- As]).

type_counts(#{anomalies := As}) ->
    lists:foldl(fun(#{type := T}, M) -> maps:update_with(T, fun(N) -> N + 1 end, 1, M) end,
                #{}, As).

info_reasons(History) ->
    lists:foldl(fun(#{type := info, error := E}, M) ->
                        maps:update_with(E, fun(N) -> N + 1 end, 1, M);
                   (_, M) -> M
                end, #{}, History).

%% The checker's result without the (long) op lists, at most 5 anomalies.
summary(#{valid := V, anomalies := As, stats := S}) ->
    #{valid => V, types => type_counts(#{anomalies => As}), stats => S,
      first => [maps:remove(ops, A) || A <- lists:sublist(As, 5)]}.
