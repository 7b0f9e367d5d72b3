%%% Crash safety: a peer node running strata is killed with `kill -9' in the middle of 10,000
%%% writes from concurrent clients, restarted on the same data directory, and every write
%%% that was acknowledged must be there. Run with sync durability (survives a machine crash)
%%% and async (survives a crash of the node, which is what kill -9 is), with each engine (in
%%% port mode the port program dies with the node: it reads EOF and exits).
-module(strata_crash_SUITE).
-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-compile([export_all, nowarn_export_all]).

-define(WRITES, 10000).
-define(CLIENTS, 8).

all() ->
    [{group, nif}, {group, port}].

groups() ->
    [{nif, [], [{group, sync}, {group, async}]},
     {port, [], [{group, sync}, {group, async}]},
     {sync, [], [acknowledged_writes_survive_kill_9]},
     {async, [], [acknowledged_writes_survive_kill_9]}].

init_per_group(Engine, Config) when Engine =:= nif; Engine =:= port ->
    ok = strata_test_util:use_engine(Engine),
    Config;
init_per_group(Durability, Config) ->
    [{durability, Durability} | Config].

end_per_group(port, _Config) ->
    strata_test_util:use_engine(nif);
end_per_group(_, _Config) ->
    ok.

acknowledged_writes_survive_kill_9(Config) ->
    Durability = ?config(durability, Config),
    Dir = strata_test_util:fresh_dir(Config, "crash"),
    Name = list_to_atom("strata_crash_" ++ atom_to_list(Durability)),
    {Peer, _Node} = strata_test_util:start_peer(Name, Dir, [{durability, Durability}]),
    ?assertEqual(strata_test_util:engine(), peer:call(Peer, strata_store, engine, [])),
    OsPid = strata_test_util:os_pid(Peer),
    Acked = ets:new(acked, [public, set]),
    Parent = self(),
    %% Each client writes its share of the keys one at a time and records each ack.
    Clients = [spawn(fun() -> client(Peer, C, Acked, Parent) end)
               || C <- lists:seq(0, ?CLIENTS - 1)],
    %% Kill the node once a third of the writes are acknowledged.
    ok = strata_test_util:wait_until(fun() -> ets:info(Acked, size) >= ?WRITES div 3 end,
                                     120000),
    strata_test_util:kill9(OsPid),
    Outcomes = [receive {client_done, C, Outcome} -> Outcome after 60000 -> error(timeout) end
                || C <- Clients],
    AckedKeys = [K || {K} <- ets:tab2list(Acked)],
    ct:pal("~p writes acknowledged before kill -9; clients ended with ~p",
           [length(AckedKeys), lists:usort(Outcomes)]),
    ?assert(length(AckedKeys) >= ?WRITES div 3),
    ?assert(length(AckedKeys) < ?WRITES),
    %% Restart on the same name and data directory.
    {Peer2, _} = strata_test_util:start_peer(Name, Dir, [{durability, Durability}]),
    Missing = peer:call(Peer2, ?MODULE, missing, [AckedKeys], 60000),
    ?assertEqual([], Missing),
    %% And the node goes on working.
    ok = peer:call(Peer2, strata, put, [after_restart, ok]),
    ?assertEqual({ok, ok}, peer:call(Peer2, strata, get, [after_restart])),
    peer:stop(Peer2).

client(Peer, C, Acked, Parent) ->
    Outcome = write_loop(Peer, C, Acked),
    Parent ! {client_done, self(), Outcome}.

write_loop(Peer, C, Acked) ->
    write_loop(Peer, C, Acked, C).

write_loop(_Peer, _C, _Acked, I) when I >= ?WRITES ->
    finished;
write_loop(Peer, C, Acked, I) ->
    Key = {key, I},
    try peer:call(Peer, strata, put, [Key, {value, I}], 10000) of
        ok ->
            ets:insert(Acked, {Key}),
            write_loop(Peer, C, Acked, I + ?CLIENTS);
        Other ->
            {unexpected, Other}
    catch
        exit:_ -> node_gone;
        error:_ -> node_gone
    end.

%% Runs on the restarted peer: the acknowledged keys whose value is not there.
missing(Keys) ->
    [K || {key, I} = K <- Keys, strata:get(K) =/= {ok, {value, I}}].
