%%% @doc The top supervisor.
%%%
%%% one_for_all: everything else started here reads through the store owner's handle, so if
%%% the owner dies (and the store with it) the rest restarts with the reopened store. The
%%% intensity is low because a store that fails to reopen will keep failing; then the
%%% application stops with the reason instead of looping.
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
    {ok, {#{strategy => one_for_all, intensity => 3, period => 10}, [Store]}}.
