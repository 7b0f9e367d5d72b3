%%% @doc Combines concurrent appends to one feed into shared transactions.
%%%
%%% Every append reads and writes its feed's writer, so two appends to one feed that run at
%%% the same time conflict and one of them retries; with eight appenders most of the work would
%%% be retries. So appends to a feed that another process on this node is already appending to
%%% go to a lane: a process that takes every append waiting in its mailbox and commits those
%%% of one feed in one transaction (flat combining). An append with no competitor runs in the
%%% caller, with no message hop.
%%%
%%% Who competes is counted in an `atomics' array (4096 slots by feed hash, made once and kept
%%% in `persistent_term'): the caller that finds its slot at zero runs directly, the others
%%% queue. Lanes (64, by feed hash) are started on first use under strata_kvs_lanes,
%%% registered, and keep nothing between batches: every batch reads the writer from the store
%%% in its transaction. So a lane that dies loses no feed state (its waiting callers get
%%% `{error, {lane_down, Reason}}', and the next append starts it again), and appenders on other
%%% nodes stay correct: their transactions conflict with the lane's and retry, as any two
%%% transactions do.
%%%
%%% Inside a caller's own strata transaction an append joins that transaction instead.
-module(strata_kvs_lane).

-export([append/2, start_link/1]).
-export([init/2, loop/1, system_continue/3, system_terminate/4, system_code_change/4]).

-define(SLOTS, 4096).
-define(LANES, 64).
-define(MAX_BATCH, 512).
-define(IDLE_MS, 5000).
-define(SPIN_US, 100).
-define(STATE, {?MODULE, state}).

%% @doc Appends `Recs' to feed `F'; see strata_kvs_feed:append_now/2 for the result.
-spec append(term(), [tuple()]) -> [term() | {error, term()}] | {error, term()}.
append(F, Recs) ->
    case strata:in_transaction() of
        true -> strata_kvs_feed:append_now(F, Recs);
        false -> route(F, Recs)
    end.

route(F, Recs) ->
    {Inflight, Lanes} = state(),
    Slot = erlang:phash2(F, ?SLOTS) + 1,
    try
        case atomics:add_get(Inflight, Slot, 1) of
            1 -> strata_kvs_feed:append_now(F, Recs);
            _ -> via_lane(element(erlang:phash2(F, ?LANES) + 1, Lanes), F, Recs)
        end
    after
        atomics:sub(Inflight, Slot, 1)
    end.

via_lane(Name, F, Recs) ->
    case lane(Name) of
        {ok, Pid} -> call_lane(Pid, F, Recs);
        {error, not_started} = Error -> Error;
        {error, Reason} -> {error, {lane_down, Reason}}
    end.

call_lane(Pid, F, Recs) ->
    MRef = monitor(process, Pid),
    Pid ! {append, self(), MRef, F, Recs},
    await(MRef, erlang:monotonic_time(microsecond) + ?SPIN_US).

%% The lane's reply. Until `Until' the caller yields to other processes between looks at its
%% mailbox instead of blocking in `receive': a lane answers a batch within tens of
%% microseconds, and a reply that finds its caller runnable wakes no sleeping scheduler, which
%% on the lane's side is a system call for each reply. Then it blocks.
await(MRef, Until) ->
    receive
        {MRef, Reply} ->
            demonitor(MRef, [flush]),
            Reply;
        {'DOWN', MRef, process, _, Reason} ->
            {error, {lane_down, Reason}}
    after spin(Until) ->
            erlang:yield(),
            await(MRef, Until)
    end.

spin(Until) ->
    case erlang:monotonic_time(microsecond) < Until of
        true -> 0;
        false -> infinity
    end.

state() ->
    case persistent_term:get(?STATE, undefined) of
        undefined ->
            %% Two first callers may both get here; the array that loses is only used by
            %% its own caller, which decrements what it incremented.
            Names = [list_to_atom("strata_kvs_lane_" ++ integer_to_list(N))
                     || N <- lists:seq(1, ?LANES)],
            State = {atomics:new(?SLOTS, [{signed, true}]), list_to_tuple(Names)},
            persistent_term:put(?STATE, State),
            State;
        State ->
            State
    end.

lane(Name) ->
    case whereis(Name) of
        undefined -> strata_kvs_lanes:start_lane(Name);
        Pid -> {ok, Pid}
    end.

%%% The lane process

%% @doc Starts the lane registered as `Name' (called by strata_kvs_lanes);
%% `{error, {already_started, Pid}}' when another caller started it first.
-spec start_link(atom()) -> {ok, pid()} | {error, term()}.
start_link(Name) ->
    proc_lib:start_link(?MODULE, init, [self(), Name]).

%% @private
-spec init(pid(), atom()) -> ok | no_return().
init(Parent, Name) ->
    try register(Name, self()) of
        true ->
            proc_lib:init_ack(Parent, {ok, self()}),
            loop({Parent, Name})
    catch
        error:badarg ->
            proc_lib:init_ack(Parent, {error, {already_started, whereis(Name)}})
    end.

%% @private
-spec loop({pid(), atom()}) -> no_return().
loop({Parent, Name} = State) ->
    receive
        {append, _, _, _, _} = Request ->
            run(collect([Request], length(element(5, Request)))),
            loop(State);
        {system, From, Request} ->
            sys:handle_system_msg(Request, From, Parent, ?MODULE, [], State);
        Other ->
            logger:warning("~p: unexpected message ~p", [Name, Other]),
            loop(State)
    after ?IDLE_MS ->
            proc_lib:hibernate(?MODULE, loop, [State])
    end.

%% @private
system_continue(_Parent, _Debug, State) ->
    loop(State).

%% @private
-spec system_terminate(term(), pid(), [sys:dbg_opt()], term()) -> no_return().
system_terminate(Reason, _Parent, _Debug, _State) ->
    exit(Reason).

%% @private
system_code_change(State, _Module, _OldVsn, _Extra) ->
    {ok, State}.

%% Every request already waiting, up to MAX_BATCH records.
collect(Acc, N) when N >= ?MAX_BATCH ->
    lists:reverse(Acc);
collect(Acc, N) ->
    receive
        {append, _, _, _, Recs} = Request -> collect([Request | Acc], N + length(Recs))
    after 0 ->
            lists:reverse(Acc)
    end.

%% One transaction per feed, its requests in arrival order.
run(Requests) ->
    Feeds = lists:usort([F || {append, _, _, F, _} <- Requests]),
    lists:foreach(fun(F) -> run(F, [R || {append, _, _, F1, _} = R <- Requests, F1 =:= F]) end,
                  Feeds).

run(F, Requests) ->
    Results = try strata_kvs_feed:append_now(F, lists:append([Recs || {append, _, _, _, Recs} <- Requests]))
              catch Class:Reason -> {error, {Class, Reason}}
              end,
    reply(Requests, Results).

reply([], _) ->
    ok;
reply([{append, From, MRef, _, _} | Rest], {error, _} = Error) ->
    From ! {MRef, Error},
    reply(Rest, Error);
reply([{append, From, MRef, _, Recs} | Rest], Results) ->
    {Mine, Others} = lists:split(length(Recs), Results),
    From ! {MRef, Mine},
    reply(Rest, Others).
