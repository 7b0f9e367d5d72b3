%%% Cluster membership on real nodes: peers started with `peer' (standard_io control, one
%%% scheduler each), each running strata on its own data directory, killed with `kill -9' of
%%% the OS process and restarted on the same name and directory. What each case proves is in
%%% doc/membership.md.
-module(strata_cluster_SUITE).
-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-compile([export_all, nowarn_export_all]).

%% The detector's documented bound for a node whose process dies: down once the runtime
%% reports the broken connection, and at the latest after 4 missed pings of 2 heartbeats each.
-define(HEARTBEAT_MS, 500).
-define(DOWN_BOUND_MS, 4 * 2 * ?HEARTBEAT_MS).
-define(CONVERGE_MS, 10000).

all() ->
    [single_node_is_a_cluster_of_one,
     five_nodes_join_fail_restart_and_leave,
     a_node_of_another_cluster_is_refused,
     concurrent_joins_converge,
     one_way_drop_makes_the_far_node_suspect,
     request_layer_bounds_every_call,
     port_engine_membership_survives_kill_9].

%% The test node is distributed too, to call the peers directly.
init_per_suite(Config) ->
    _ = os:cmd("epmd -daemon"),
    ok = application:set_env(kernel, inet_dist_use_interface, {127, 0, 0, 1}),
    case net_kernel:start('strata_cluster_ct@localhost', #{name_domain => shortnames}) of
        {ok, _} -> [{stop_dist, true} | Config];
        {error, {already_started, _}} -> Config
    end.

end_per_suite(Config) ->
    case ?config(stop_dist, Config) of
        true -> net_kernel:stop();
        _ -> ok
    end.

init_per_testcase(_Case, Config) ->
    [{peers, ets:new(peers, [public, set])} | Config].

end_per_testcase(_Case, Config) ->
    [catch peer:stop(Peer) || {_, Peer} <- ets:tab2list(?config(peers, Config))],
    ok.

%%% Cases

single_node_is_a_cluster_of_one(Config) ->
    [N] = start(Config, [one]),
    ?assertEqual([N], call(N, strata, members, [])),
    #{cluster := #{name := <<"strata">>, epoch := 1, partitions := 64, n_val := 3,
                   members := [#{node := N, state := up, primaries := 64}]}} =
        call(N, strata, status, []),
    ?assertEqual({error, not_in_cluster}, call(N, strata, leave, [])),
    ?assertEqual({error, {cannot_join, self}}, call(N, strata, join, [N])),
    ?assertEqual({error, {bad_option, {timeout, infinity}}},
                 call(N, strata, join, [N, #{timeout => infinity}])),
    ?assertEqual({error, unavailable}, call(N, strata, join, ['nobody@localhost'])).

five_nodes_join_fail_restart_and_leave(Config) ->
    Nodes = [Seed | Others] = start(Config, [m1, m2, m3, m4, m5]),
    %% Four nodes join through one seed, all at once.
    ?assertEqual([ok, ok, ok, ok],
                 parallel([fun() -> call(N, strata, join, [Seed]) end || N <- Others])),
    {Epoch, Ring} = converged(Nodes),
    ct:pal("5 nodes agree on epoch ~b", [Epoch]),
    check_ring(Nodes, Ring, 3),
    %% The balance property on the live cluster, as every node reports it.
    [begin
         Counts = [P || #{primaries := P} <- members_status(N)],
         ?assertEqual(5, length(Counts)),
         ?assert(lists:max(Counts) - lists:min(Counts) =< 1)
     end || N <- Nodes],

    %% kill -9 of one node: every other node sees it down within the detector's bound.
    Victim = lists:last(Nodes),
    Survivors = Nodes -- [Victim],
    Killed = erlang:monotonic_time(millisecond),
    strata_test_util:kill9(os_pid(Config, Victim)),
    ok = wait(fun() -> lists:all(fun(N) -> state_of(N, Victim) =:= down end, Survivors) end,
              ?DOWN_BOUND_MS + 2000),
    SeenDown = erlang:monotonic_time(millisecond) - Killed,
    ct:pal("~p seen down by all survivors after ~b ms (bound ~b ms)",
           [Victim, SeenDown, ?DOWN_BOUND_MS]),
    ?assert(SeenDown =< ?DOWN_BOUND_MS),
    %% The dead node stays in the ring: the detector never changes ownership.
    ?assertEqual(Nodes, call(Seed, strata, members, [])),

    %% Restart on the same name and data directory, without a seed: it is back, up.
    [Victim] = restart(Config, Victim),
    ok = wait(fun() ->
                      lists:all(fun(N) -> state_of(N, Victim) =:= up end, Survivors) andalso
                          lists:all(fun(N) -> state_of(Victim, N) =:= up end, Survivors)
              end, ?CONVERGE_MS),
    ?assertEqual({Epoch, Ring}, converged(Nodes)),

    %% leave removes the node from every node's ring; it goes on alone.
    Leaver = lists:nth(4, Nodes),
    Stay = Nodes -- [Leaver],
    ok = call(Leaver, strata, leave, []),
    ?assertEqual([Leaver], call(Leaver, strata, members, [])),
    {Epoch2, Ring2} = converged(Stay),
    ?assert(Epoch2 > Epoch),
    check_ring(Stay, Ring2, 3),
    ?assertNot(lists:member(Leaver, lists:append(Ring2))),
    %% And it can join again.
    ok = call(Leaver, strata, join, [Seed]),
    {Epoch3, Ring3} = converged(Nodes),
    ?assert(Epoch3 > Epoch2),
    check_ring(Nodes, Ring3, 3).

a_node_of_another_cluster_is_refused(Config) ->
    [A, B] = start(Config, [r1, r2]),
    [X] = start(Config, [x1], [{cluster_name, <<"elsewhere">>}]),
    ok = call(B, strata, join, [A]),
    converged([A, B]),
    ?assertEqual({error, {cluster_name_mismatch, #{seed => <<"strata">>,
                                                    joining => <<"elsewhere">>}}},
                 call(X, strata, join, [A])),
    ?assertEqual([X], call(X, strata, members, [])),
    ?assertEqual([A, B], call(A, strata, members, [])),
    %% A node already in a cluster of several cannot join another.
    [Y] = start(Config, [y1]),
    ?assertEqual({error, {already_in_cluster, [A, B]}}, call(A, strata, join, [Y])),
    %% A node with another partition count is refused too.
    [Z] = start(Config, [z1], [{partitions, 32}]),
    ?assertEqual({error, {partitions_mismatch, #{seed => 64, joining => 32}}},
                 call(Z, strata, join, [A])).

concurrent_joins_converge(Config) ->
    Nodes = [C1, C2, C3, C4] = start(Config, [c1, c2, c3, c4]),
    ok = call(C2, strata, join, [C1]),
    converged([C1, C2]),
    %% Two nodes join at the same moment, each through a different seed.
    ?assertEqual([ok, ok], parallel([fun() -> call(C3, strata, join, [C1]) end,
                                     fun() -> call(C4, strata, join, [C2]) end])),
    {_Epoch, Ring} = converged(Nodes),
    check_ring(Nodes, Ring, 3).

one_way_drop_makes_the_far_node_suspect(Config) ->
    [F1, F2] = start(Config, [f1, f2]),
    ok = call(F2, strata, join, [F1]),
    converged([F1, F2]),
    ok = wait(fun() -> state_of(F1, F2) =:= up end, ?CONVERGE_MS),
    %% F1 drops everything it sends to F2: its pings go unanswered.
    ok = call(F1, strata_rpc, set_fault, [F2, drop]),
    ok = wait(fun() -> lists:member(state_of(F1, F2), [suspect, down]) end, ?DOWN_BOUND_MS),
    ok = call(F1, strata_rpc, clear_faults, []),
    ok = wait(fun() -> state_of(F1, F2) =:= up end, ?CONVERGE_MS),
    ?assertEqual([F1, F2], call(F1, strata, members, [])).

request_layer_bounds_every_call(Config) ->
    [A, B] = start(Config, [q1, q2]),
    Ping = fun(Timeout) -> call(A, strata_rpc, call, [B, strata_fd, ping, Timeout]) end,
    ?assertEqual(pong, Ping(1000)),
    ?assertEqual({error, unavailable},
                 call(A, strata_rpc, call, [B, no_such_server, ping, 1000])),
    ?assertEqual({error, unavailable},
                 call(A, strata_rpc, call, ['nobody@localhost', strata_fd, ping, 1000])),
    ok = call(A, strata_rpc, set_fault, [B, {delay, 300}]),
    ?assertEqual({error, timeout}, Ping(100)),
    ?assertEqual(pong, Ping(2000)),
    ok = call(A, strata_rpc, set_fault, [B, drop]),
    ?assertEqual({error, timeout}, Ping(200)),
    %% The fault is one-way: B still reaches A, but A's reply to B is dropped.
    ?assertEqual({error, timeout}, call(B, strata_rpc, call, [A, strata_fd, ping, 200])),
    ok = call(A, strata_rpc, clear_faults, []),
    ?assertEqual(#{}, call(A, strata_rpc, faults, [])),
    ?assertEqual(pong, Ping(1000)),
    %% A server that is stuck: the caller gets a timeout, not a hang.
    ok = call(B, sys, suspend, [strata_fd]),
    ?assertEqual({error, timeout}, Ping(200)),
    ok = call(B, sys, resume, [strata_fd]).

%% The membership lives in the meta column family of whichever engine runs: with the port
%% engine too, a node killed with kill -9 comes back in its cluster without a seed.
port_engine_membership_survives_kill_9(Config) ->
    [P1, P2] = start(Config, [p1, p2], [{engine, port}]),
    #{engine := port} = call(P1, strata, status, []),
    ok = call(P2, strata, join, [P1]),
    {Epoch, Ring} = converged([P1, P2]),
    strata_test_util:kill9(os_pid(Config, P2)),
    ok = wait(fun() -> state_of(P1, P2) =:= down end, ?DOWN_BOUND_MS + 2000),
    [P2] = restart(Config, P2),
    ?assertEqual({Epoch, Ring}, converged([P1, P2])),
    ok = wait(fun() -> state_of(P1, P2) =:= up andalso state_of(P2, P1) =:= up end,
              ?CONVERGE_MS).

%%% Helpers

start(Config, Names) ->
    start(Config, Names, []).

start(Config, Names, Env) ->
    Tab = ?config(peers, Config),
    Started = parallel([fun() ->
                                Dir = strata_test_util:fresh_dir(Config, atom_to_list(Name)),
                                {Peer, Node} = strata_test_util:start_peer(Name, Dir, Env),
                                ets:insert(Tab, {Node, Peer}),
                                ets:insert(Tab, {{setup, Node}, Name, Dir, Env}),
                                Node
                        end || Name <- Names]),
    lists:sort(Started).

restart(Config, Node) ->
    Tab = ?config(peers, Config),
    [{_, Name, Dir, Env}] = ets:lookup(Tab, {setup, Node}),
    {Peer, Node} = strata_test_util:start_peer(Name, Dir, Env),
    ets:insert(Tab, {Node, Peer}),
    [Node].

os_pid(Config, Node) ->
    [{_, Peer}] = ets:lookup(?config(peers, Config), Node),
    strata_test_util:os_pid(Peer).

call(Node, M, F, A) ->
    erpc:call(Node, M, F, A, 30000).

parallel(Funs) ->
    Parent = self(),
    Pids = [spawn_link(fun() -> Parent ! {self(), F()} end) || F <- Funs],
    [receive {Pid, R} -> R after 60000 -> error(parallel_timeout) end || Pid <- Pids].

wait(Fun, Ms) ->
    strata_test_util:wait_until(Fun, Ms).

%% Waits until every node reports the same members (exactly `Nodes'), epoch and ring.
converged(Nodes) ->
    Summary = fun(N) ->
                      M = call(N, strata_cluster, membership, []),
                      {strata_membership:joined(M), maps:get(epoch, M), maps:get(ring, M)}
              end,
    Agree = fun() ->
                    case lists:usort([Summary(N) || N <- Nodes]) of
                        [{Nodes, _, _}] -> true;
                        _ -> false
                    end
            end,
    case wait(Agree, ?CONVERGE_MS) of
        ok ->
            {Nodes, Epoch, Ring} = Summary(hd(Nodes)),
            {Epoch, Ring};
        timeout ->
            ct:fail({not_converged, [{N, Summary(N)} || N <- Nodes]})
    end.

%% Every partition has min(NVal, n) distinct replicas among the nodes; primaries balanced.
check_ring(Nodes, Ring, NVal) ->
    ?assertEqual(64, length(Ring)),
    Len = min(NVal, length(Nodes)),
    [begin
         ?assertEqual(Len, length(List)),
         ?assertEqual(Len, length(lists:usort(List))),
         ?assertEqual([], List -- Nodes)
     end || List <- Ring],
    Counts = [length([x || [P | _] <- Ring, P =:= N]) || N <- Nodes],
    ?assert(lists:max(Counts) - lists:min(Counts) =< 1).

members_status(Node) ->
    #{cluster := #{members := Members}} = call(Node, strata, status, []),
    Members.

state_of(Observer, Node) ->
    try members_status(Observer) of
        Members ->
            case [S || #{node := N, state := S} <- Members, N =:= Node] of
                [S] -> S;
                [] -> not_a_member
            end
    catch
        error:{erpc, _} -> unreachable
    end.
