%%% @doc The supervisor of strata_kvs' lanes (see strata_kvs_lane): started empty with the
%%% application; a lane joins it on its first use and stays until the application stops. A
%%% lane keeps no state between batches, so one that dies is not restarted here: the next
%%% append that needs it starts it again.
-module(strata_kvs_lanes).
-behaviour(supervisor).

-export([start_link/0, start_lane/1, init/1]).

%% @doc Starts the (empty) lane supervisor, registered under this module's name.
-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, []).

%% @doc The lane registered as `Name', started under this supervisor if it is not running;
%% `{error, not_started}' when strata is not running.
-spec start_lane(atom()) -> {ok, pid()} | {error, term()}.
start_lane(Name) ->
    try supervisor:start_child(?MODULE, [Name]) of
        {ok, Pid} -> {ok, Pid};
        {error, {already_started, Pid}} -> {ok, Pid};
        {error, _} = Error -> Error
    catch
        exit:{noproc, _} -> {error, not_started}
    end.

%% @private
init([]) ->
    Lane = #{id => strata_kvs_lane,
             start => {strata_kvs_lane, start_link, []},
             restart => temporary,
             shutdown => 5000,
             type => worker},
    {ok, {#{strategy => simple_one_for_one, intensity => 10, period => 10}, [Lane]}}.
