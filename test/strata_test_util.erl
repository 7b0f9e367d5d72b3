%%% @doc Helpers shared by the common_test suites: starting strata on a fresh data directory,
%%% and peer nodes running strata.
-module(strata_test_util).

-export([start/2, stop/0, fresh_dir/2, wait_until/2, use_engine/1, engine/0,
         start_peer/3, peer_eval/3, os_pid/1, kill9/1, code_paths/0]).

%% @doc Starts strata with a data directory `Dir' and extra application env `Env'. The engine
%% is the one chosen with {@link use_engine/1} unless `Env' names one.
-spec start(file:filename(), [{atom(), term()}]) -> ok.
start(Dir, Env) ->
    application:stop(strata),
    application:load(strata),
    Engine = engine(),
    [application:unset_env(strata, K) || {K, _} <- application:get_all_env(strata)],
    application:set_env(strata, engine, Engine),
    application:set_env(strata, data_dir, Dir),
    [application:set_env(strata, K, V) || {K, V} <- Env],
    {ok, _} = application:ensure_all_started(strata),
    ok.

%% @doc Chooses the engine (`nif' or `port') for the following {@link start/2} calls: the
%% suites run their groups once per engine.
-spec use_engine(nif | port) -> ok.
use_engine(Engine) ->
    _ = application:load(strata),
    application:set_env(strata, engine, Engine).

%% @doc The engine chosen for the tests (`nif' unless {@link use_engine/1} said otherwise).
-spec engine() -> nif | port.
engine() ->
    _ = application:load(strata),
    application:get_env(strata, engine, nif).

%% @doc Stops strata.
-spec stop() -> ok.
stop() ->
    _ = application:stop(strata),
    ok.

%% @doc A new directory name under the suite's private directory.
-spec fresh_dir(proplists:proplist(), string()) -> file:filename().
fresh_dir(Config, Name) ->
    Dir = filename:join(proplists:get_value(priv_dir, Config),
                        Name ++ "-" ++ integer_to_list(erlang:unique_integer([positive]))),
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    Dir.

%% @doc Waits until `Fun()' returns true, polling every 20 ms, for at most `Ms'.
-spec wait_until(fun(() -> boolean()), non_neg_integer()) -> ok | timeout.
wait_until(Fun, Ms) when Ms =< 0 ->
    case Fun() of true -> ok; false -> timeout end;
wait_until(Fun, Ms) ->
    case Fun() of
        true -> ok;
        false -> timer:sleep(20), wait_until(Fun, Ms - 20)
    end.

%% @doc The code paths a peer needs to run strata and the test modules.
-spec code_paths() -> [string()].
code_paths() ->
    lists:usort([filename:dirname(code:which(M)) || M <- [strata, ?MODULE]]).

%% @doc Starts a peer node named `Name' (one scheduler, standard_io control) running strata
%% on `Dir', with the engine chosen by {@link use_engine/1} unless `Env' names one. The node
%% is `Name@localhost' and its distribution listens on 127.0.0.1 only. Returns the peer's
%% control pid and node name.
-spec start_peer(atom(), file:filename(), [{atom(), term()}]) -> {pid(), node()}.
start_peer(Name, Dir, Env) ->
    Args = ["+S", "1", "+SDio", "4", "-kernel", "inet_dist_use_interface", "{127,0,0,1}"]
        ++ lists:append([["-pa", P] || P <- code_paths()]),
    {ok, Peer, Node} = peer:start(#{name => Name, host => "localhost", connection => standard_io,
                                    args => Args}),
    ok = peer:call(Peer, application, load, [strata]),
    ok = peer:call(Peer, application, set_env, [strata, data_dir, Dir]),
    [ok = peer:call(Peer, application, set_env, [strata, K, V])
     || {K, V} <- [{engine, engine()} | Env]],
    {ok, _} = peer:call(Peer, application, ensure_all_started, [strata]),
    {Peer, Node}.

%% @doc Evaluates `M:F(A...)' on a peer.
-spec peer_eval(pid(), module(), {atom(), [term()]}) -> term().
peer_eval(Peer, M, {F, A}) ->
    peer:call(Peer, M, F, A, 30000).

%% @doc The OS process id of a peer.
-spec os_pid(pid()) -> string().
os_pid(Peer) ->
    peer:call(Peer, os, getpid, []).

%% @doc `kill -9' of an OS process.
-spec kill9(string()) -> ok.
kill9(OsPid) ->
    _ = os:cmd("kill -9 " ++ OsPid),
    ok.
