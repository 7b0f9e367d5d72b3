%%% @doc The top supervisor.
%%%
%%% rest_for_one, in the order store, failure detector, cluster membership, strata_kvs' lanes:
%%% everything after the store reads through its owner's handle, so if the owner dies (and the
%%% store with it) the rest restarts with the reopened store; the membership tells the detector
%%% whom to watch, so it restarts with the detector. The intensity is low because a store that fails
%%% to reopen will keep failing; then the application stops with the reason instead of
%%% looping.
-module(strata_sup).
-behaviour(supervisor).

-export([start_link/1, init/1]).

%% @doc Starts the tree for a checked configuration.
-spec start_link(strata_store:config()) -> {ok, pid()} | {error, term()}.
start_link(Config) ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, Config).

%% @private
init(Config) ->
    Store = #{id => strata_store,
              start => {strata_store, start_link, [Config]},
              restart => permanent,
              shutdown => 30000,
              type => worker},
    Worker = fun(M) -> #{id => M, start => {M, start_link, [Config]}, restart => permanent,
                         shutdown => 5000, type => worker} end,
    Lanes = #{id => strata_kvs_lanes,
              start => {strata_kvs_lanes, start_link, []},
              restart => permanent,
              shutdown => infinity,
              type => supervisor},
    {ok, {#{strategy => rest_for_one, intensity => 3, period => 10},
          [Store, Worker(strata_fd), Worker(strata_cluster), Lanes]}}.
