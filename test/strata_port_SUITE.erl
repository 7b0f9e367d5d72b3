%%% Port mode's isolation: the engine's OS process is killed with `kill -9' in the middle of
%%% sync writes and the VM carries on (callers in flight get an error, the port comes back
%%% under supervision, every acknowledged write is there); the port program answers malformed
%%% frames with errors and keeps serving; it exits when its input closes and never outlives its
%%% VM; snapshots are released by their owners and capped; a stalled port (SIGSTOP) gives
%%% timeouts and `overloaded', and its late replies are dropped.
-module(strata_port_SUITE).
-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-compile([export_all, nowarn_export_all]).

-define(WRITERS, 8).

%% A case that hangs (a caller stuck on a stalled port) fails instead of waiting forever.
suite() -> [{timetrap, {minutes, 5}}].

all() ->
    [kill_9_of_the_port_during_sync_writes, malformed_frames_are_answered,
     port_exits_on_end_of_input, port_dies_with_its_vm, snapshots_are_released_and_capped,
     a_stalled_port_overloads_and_late_replies_vanish].

init_per_suite(Config) ->
    ok = strata_test_util:use_engine(port),
    Config.

end_per_suite(_Config) ->
    strata_test_util:use_engine(nif).

init_per_testcase(Case, Config) ->
    Dir = strata_test_util:fresh_dir(Config, atom_to_list(Case)),
    [{dir, Dir} | Config].

end_per_testcase(_Case, _Config) ->
    strata_test_util:stop().

%%% A stalled port (SIGSTOP)

%% With the port program stopped: a call that gives up returns `{error, timeout}', callers pile
%% up to the in-flight bound and the next one gets `{error, overloaded}' at once; once the port
%% runs again, the waiting callers get their answers, the timed-out write is applied, and its
%% late reply never reaches the caller's mailbox. (Callers past what the pipe and the port's
%% queue hold wait inside `port_command' (busy port), outside their timeout: a stalled port
%% program holds them until it runs again or dies.)
a_stalled_port_overloads_and_late_replies_vanish(Config) ->
    ok = strata_test_util:start(?config(dir, Config), [{durability, async}]),
    ok = strata:put(k, 0),
    OsPid = integer_to_list(strata_port:os_pid()),
    Parent = self(),
    "" = os:cmd("kill -STOP " ++ OsPid),
    try
        ?assertEqual({error, timeout}, strata:put(late, 1, #{timeout => 100})),
        Readers = [spawn_link(fun() -> Parent ! {self(), strata:get(k)} end)
                   || _ <- lists:seq(1, 1024)],
        %% The in-flight count (the handle's counter) reaches the bound.
        {_Port, InFlight} = strata_store:handle(),
        ok = strata_test_util:wait_until(fun() -> atomics:get(InFlight, 1) >= 1024 end, 30000),
        ?assertEqual({error, overloaded}, strata:put(refused, 1, #{timeout => 10})),
        "" = os:cmd("kill -CONT " ++ OsPid),
        Answers = [receive {R, A} -> A after 30000 -> ct:fail({reader_hangs, R}) end
                   || R <- Readers],
        ?assertEqual([{ok, 0}], lists:usort(Answers)),
        ?assertEqual({ok, 1}, strata:get(late)),
        ?assertEqual({error, not_found}, strata:get(refused)),
        receive Stray -> ct:fail({late_reply_delivered, Stray})
        after 200 -> ok
        end
    after
        os:cmd("kill -CONT " ++ OsPid)
    end.

%%% kill -9 of the port

kill_9_of_the_port_during_sync_writes(Config) ->
    ok = strata_test_util:start(?config(dir, Config), [{durability, sync}]),
    Sup = whereis(strata_sup),
    Owner = whereis(strata_port),
    OsPid = strata_port:os_pid(),
    ?assert(is_integer(OsPid)),
    Acked = ets:new(acked, [public, set]),
    Running = atomics:new(1, []),
    atomics:put(Running, 1, 1),
    Parent = self(),
    Writers = [spawn_link(fun() -> Parent ! {self(), write_loop(W, 0, Acked, Running, #{})} end)
               || W <- lists:seq(1, ?WRITERS)],
    ok = strata_test_util:wait_until(fun() -> ets:info(Acked, size) >= 500 end, 60000),
    strata_test_util:kill9(integer_to_list(OsPid)),
    %% The port comes back (a new OS process, a new owner) and serves writes again.
    ok = strata_test_util:wait_until(
           fun() ->
                   New = strata_port:os_pid(),
                   is_integer(New) andalso New =/= OsPid
                       andalso strata:put(probe, ok, #{durability => sync}) =:= ok
           end, 60000),
    %% Let the writers run against the new port for a while, then stop them.
    Seen = ets:info(Acked, size),
    ok = strata_test_util:wait_until(fun() -> ets:info(Acked, size) >= Seen + 200 end, 60000),
    atomics:put(Running, 1, 0),
    Errors = lists:foldl(fun(W, Acc) ->
                                 receive {W, Errs} -> merge(Errs, Acc)
                                 after 30000 -> ct:fail({writer_hangs, W})
                                 end
                         end, #{}, Writers),
    ct:pal("~p writes acknowledged; errors seen: ~p", [ets:info(Acked, size), Errors]),
    %% The VM and the top supervisor are untouched; the owner was restarted.
    ?assertEqual(Sup, whereis(strata_sup)),
    ?assertNotEqual(Owner, whereis(strata_port)),
    ?assertNot(os_alive(OsPid)),
    %% Calls in flight at the kill failed, with the documented reasons only.
    ?assert(maps:get(engine_down, Errors, 0) >= 1),
    ?assertEqual([], maps:keys(Errors) -- [engine_down, not_started]),
    %% Every acknowledged write is there.
    Missing = [K || {K, V} <- ets:tab2list(Acked), strata:get(K) =/= {ok, V}],
    ?assertEqual([], Missing),
    %% And after a clean restart too.
    strata_test_util:stop(),
    ok = strata_test_util:start(?config(dir, Config), [{durability, sync}]),
    ?assertEqual([], [K || {K, V} <- ets:tab2list(Acked), strata:get(K) =/= {ok, V}]).

write_loop(W, I, Acked, Running, Errors) ->
    case atomics:get(Running, 1) of
        0 ->
            Errors;
        1 ->
            Key = {W, I},
            case strata:put(Key, I, #{durability => sync, timeout => 10000}) of
                ok ->
                    ets:insert(Acked, {Key, I}),
                    write_loop(W, I + 1, Acked, Running, Errors);
                {error, Reason} ->
                    %% Nothing is running for a moment: do not spin on not_started.
                    timer:sleep(1),
                    write_loop(W, I + 1, Acked, Running, merge(#{Reason => 1}, Errors))
            end
    end.

merge(A, B) ->
    maps:fold(fun(K, N, Acc) -> Acc#{K => maps:get(K, Acc, 0) + N} end, B, A).

%%% Malformed frames

malformed_frames_are_answered(Config) ->
    Port = open_engine(),
    Req = fun(Id, R) -> term_to_binary({Id, R}) end,
    Bad = [<<"hello">>,                               % not ETF
           <<>>,                                      % empty
           <<131, 255, 1, 2>>,                        % unknown tag
           <<131, 108, 255, 255, 255, 255, 106>>,     % a list of 4 billion elements
           <<131, 109, 0, 0, 16, 0, 1, 2, 3>>,        % a binary longer than the frame
           <<131, 82, 0>>,                            % an atom cache reference
           <<131, 80, 255, 255, 255, 255, 1, 2>>,     % "compressed", claiming 4 GiB
           deep(100000),                              % nesting
           term_to_binary(foo),                       % not {ReqId, Request}
           term_to_binary({1, 2, 3}),
           binary:copy(<<0>>, 20 * 1024 * 1024)],     % over the frame size limit
    [?assertMatch({undefined, {error, {bad_request, _}}}, rpc(Port, B)) || B <- Bad],
    WrongShape = [{frobnicate}, {get}, {get, not_a_binary}, {get, <<"k">>, extra},
                  {put, <<"k">>}, {commit, [x], [], sync}, {commit, [], [{put, a}], sync},
                  {commit, [], [], maybe}, {scan, 1, sideways, unbounded, false, 10, undefined},
                  {open, 42, #{}}, {open, <<"/tmp">>, #{colour => red}}, {release, -1},
                  {log_since, 70000, 0, 10}, {scan, 1, unbounded, unbounded, false, 1 bsl 40,
                                                undefined},
                  "a string", 3.14, #{}],
    [?assertMatch({7, {error, {bad_request, _}}}, rpc(Port, Req(7, W))) || W <- WrongShape],
    %% Well-formed, but before the store is open.
    ?assertEqual({8, {error, not_open}}, rpc(Port, Req(8, {get, term_to_binary(k)}))),
    Dir = unicode:characters_to_binary(filename:absname(?config(dir, Config))),
    ?assertEqual({9, ok}, rpc(Port, Req(9, {open, Dir, #{partitions => 8}}))),
    ?assertMatch({10, {error, {bad_request, _}}},
                 rpc(Port, Req(10, {open, Dir, #{partitions => 8}}))),
    %% Keys and values that are binaries but not terms.
    ?assertMatch({11, {error, {bad_key, _}}}, rpc(Port, Req(11, {get, <<"not etf">>}))),
    ?assertMatch({12, {error, {bad_key, _}}},
                 rpc(Port, Req(12, {put, <<131, 97>>, term_to_binary(v)}))),
    ?assertEqual({13, {error, no_snapshot}},
                 rpc(Port, Req(13, {get_versioned, 99, term_to_binary(k)}))),
    %% Any term is a ReqId and comes back unchanged.
    Id = {make_ref(), self(), [1.5, <<"x">>]},
    ?assertEqual({Id, {error, not_found}}, rpc(Port, Req(Id, {get, term_to_binary(k)}))),
    %% After all that, the program still works.
    ?assertEqual({14, ok}, rpc(Port, Req(14, {put, term_to_binary(k), term_to_binary(#{v => 1})}))),
    {15, {ok, V}} = rpc(Port, Req(15, {get, term_to_binary(k)})),
    ?assertEqual(#{v => 1}, binary_to_term(V)),
    ?assertEqual({16, ok}, rpc(Port, Req(16, close))),
    ?assertEqual({17, {error, closed}}, rpc(Port, Req(17, {get, term_to_binary(k)}))),
    port_close(Port).

open_engine() ->
    open_port({spawn_executable, strata_port:executable()},
              [{packet, 4}, binary, exit_status, use_stdio]).

rpc(Port, Frame) ->
    true = port_command(Port, Frame),
    receive
        {Port, {data, Bin}} -> binary_to_term(Bin);
        {Port, {exit_status, S}} -> ct:fail({port_exited, S, Frame})
    after 10000 ->
            ct:fail({no_reply, Frame})
    end.

deep(N) ->
    <<131, (binary:copy(<<104, 1>>, N))/binary, 106>>.

%%% The process never outlives its input or its VM

port_exits_on_end_of_input(Config) ->
    Port = open_engine(),
    {os_pid, OsPid} = erlang:port_info(Port, os_pid),
    Dir = unicode:characters_to_binary(filename:absname(?config(dir, Config))),
    {1, ok} = rpc(Port, term_to_binary({1, {open, Dir, #{}}})),
    {2, ok} = rpc(Port, term_to_binary({2, {put, term_to_binary(k), term_to_binary(v)}})),
    %% Closing the port closes the program's stdin.
    port_close(Port),
    ok = strata_test_util:wait_until(fun() -> not os_alive(OsPid) end, 30000),
    %% It closed its store on the way out: the directory opens again at once.
    ok = strata_test_util:start(?config(dir, Config), []),
    ?assertEqual({ok, v}, strata:get(k)).

port_dies_with_its_vm(Config) ->
    {Peer, _Node} = strata_test_util:start_peer(strata_port_orphan, ?config(dir, Config), []),
    ?assertEqual(port, peer:call(Peer, strata_store, engine, [])),
    OsPid = peer:call(Peer, strata_port, os_pid, []),
    ?assert(os_alive(OsPid)),
    ok = peer:call(Peer, strata, put, [k, v, #{durability => sync}]),
    strata_test_util:kill9(strata_test_util:os_pid(Peer)),
    ok = strata_test_util:wait_until(fun() -> not os_alive(OsPid) end, 30000),
    ok = strata_test_util:start(?config(dir, Config), []),
    ?assertEqual({ok, v}, strata:get(k)).

%% Alive and not a zombie (a dead child its parent has not reaped yet).
os_alive(OsPid) ->
    case file:read_file("/proc/" ++ integer_to_list(OsPid) ++ "/stat") of
        {ok, Stat} ->
            [_, AfterName] = string:split(Stat, ") ", trailing),
            not lists:member(binary:first(AfterName), [$Z, $X]);
        {error, _} ->
            false
    end.

%%% Snapshots

snapshots_are_released_and_capped(Config) ->
    ok = strata_test_util:start(?config(dir, Config), []),
    ok = strata:put(k, 0),
    %% Transactions, batches and finished scans release theirs.
    [{ok, ok} = strata:transaction(fun() -> {ok, N} = strata:get(k), strata:put(k, N + 1) end)
     || _ <- lists:seq(1, 50)],
    [[{ok, _}] = strata:req_list([{read, k}]) || _ <- lists:seq(1, 50)],
    [{ok, _, done} = strata:scan('$min', '$max', #{}) || _ <- lists:seq(1, 50)],
    {ok, _, Cont} = strata:scan('$min', '$max', #{limit => 1}),
    ok = strata:put(k2, x),
    ok = strata:scan_close(Cont),
    ok = wait_snapshots(0),
    %% A process that exits releases what it took; the cap holds in between.
    Parent = self(),
    Taker = spawn(fun() ->
                          Taken = take_all(0),
                          Parent ! {taken, Taken, strata_store:snapshot()},
                          receive stop -> ok end
                  end),
    receive
        {taken, Taken, Over} ->
            ?assertEqual(4096, Taken),
            ?assertEqual({error, too_many_snapshots}, Over)
    after 60000 -> ct:fail(taker_hangs)
    end,
    ?assertEqual({error, too_many_snapshots}, strata_store:snapshot()),
    Taker ! stop,
    ok = wait_snapshots(0),
    {ok, Snap} = strata_store:snapshot(),
    ?assertMatch({ok, 50, _}, strata_store:get_versioned(Snap, k)),
    ok = strata_store:release(Snap),
    ok = wait_snapshots(0),
    ?assertEqual({error, no_snapshot}, strata_store:get_versioned(Snap, k)).

take_all(N) ->
    case strata_store:snapshot() of
        {ok, _} -> take_all(N + 1);
        {error, too_many_snapshots} -> N
    end.

wait_snapshots(N) ->
    strata_test_util:wait_until(fun() -> maps:get(snapshots, strata_store:info()) =:= N end,
                                10000).
