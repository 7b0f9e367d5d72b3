%%% @doc The failure detector: how reachable each other member is, as seen from this node.
%%%
%%% Every `heartbeat_ms' the detector pings each member that has no ping outstanding, through
%%% {@link strata_rpc} with a timeout of `heartbeat_ms'. Each member has an unreliability
%%% score: a ping that times out or cannot be delivered adds 2, one that is answered subtracts
%%% 1 (not below 0), and a `nodedown' from the runtime's node monitoring sets it to the limit
%%% at once. The state follows from the score:
%%%
%%% <ul>
%%% <li>`up': below 2;</li>
%%% <li>`suspect': from 2 (one missed ping) to 7; a member not contacted yet starts here;</li>
%%% <li>`down': 8, the limit (the score never goes higher).</li>
%%% </ul>
%%%
%%% Bounds (doc/membership.md): a crashed node whose connection breaks is `down' as soon as
%%% the runtime reports it; one that stops answering without a broken connection is `down'
%%% after 4 missed pings, within `4 * 2 * heartbeat_ms' (4 s with the default 500 ms). A `down'
%%% member is `up' again after 7 answered pings, within `8 * heartbeat_ms'.
%%%
%%% The detector only reports: it never changes membership or ownership.
-module(strata_fd).
-behaviour(gen_server).

-export([start_link/1, set_peers/1, states/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

-export_type([peer_state/0]).

-type peer_state() :: #{state := up | suspect | down,
                        score := non_neg_integer(),
                        since_last_contact_ms := non_neg_integer() | never}.

-define(MISS, 2).
-define(HIT, 1).
-define(SUSPECT, 2).
-define(LIMIT, 8).

%% @doc Starts the detector with `heartbeat_ms' from the configuration.
-spec start_link(#{heartbeat_ms := pos_integer(), _ => _}) -> {ok, pid()} | {error, term()}.
start_link(Config) ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, Config, []).

%% @doc Sets the nodes to watch (the other members); new ones start as `suspect'.
-spec set_peers([node()]) -> ok.
set_peers(Nodes) ->
    gen_server:cast(?MODULE, {set_peers, Nodes}).

%% @doc The state of every watched node.
-spec states() -> #{node() => peer_state()}.
states() ->
    gen_server:call(?MODULE, states).

%%% gen_server

%% @private
init(#{heartbeat_ms := Interval}) ->
    ok = net_kernel:monitor_nodes(true),
    erlang:send_after(Interval, self(), tick),
    {ok, #{interval => Interval, peers => #{}}}.

%% @private
handle_call(ping, From, State) ->
    strata_rpc:reply(From, pong),
    {noreply, State};
handle_call(states, _From, #{peers := Peers} = State) ->
    Now = now_ms(),
    {reply, maps:map(fun(_, P) -> describe(P, Now) end, Peers), State};
handle_call(Request, _From, State) ->
    {reply, {error, {unknown_call, Request}}, State}.

%% @private
handle_cast({set_peers, Nodes}, #{peers := Peers} = State) ->
    New = maps:from_list([{N, maps:get(N, Peers, #{score => ?SUSPECT, last => never,
                                                    pinging => false})}
                          || N <- Nodes, N =/= node()]),
    {noreply, State#{peers := New}};
handle_cast(Request, State) ->
    logger:warning("strata_fd: unexpected cast ~p", [Request]),
    {noreply, State}.

%% @private
handle_info(tick, #{interval := Interval, peers := Peers} = State) ->
    Self = self(),
    Pinged = maps:map(fun(Node, #{pinging := false} = P) ->
                              _ = spawn(fun() -> ping(Self, Node, Interval) end),
                              P#{pinging := true};
                         (_Node, P) ->
                              P
                      end, Peers),
    erlang:send_after(Interval, self(), tick),
    {noreply, State#{peers := Pinged}};
handle_info({pong, Node, Answered}, #{peers := Peers} = State) ->
    case Peers of
        #{Node := #{score := Score} = P} when Answered ->
            {noreply, State#{peers := Peers#{Node := P#{score := max(0, Score - ?HIT),
                                                        last := now_ms(), pinging := false}}}};
        #{Node := #{score := Score} = P} ->
            {noreply, State#{peers := Peers#{Node := P#{score := min(?LIMIT, Score + ?MISS),
                                                        pinging := false}}}};
        #{} ->
            {noreply, State}
    end;
handle_info({nodedown, Node}, #{peers := Peers} = State) ->
    case Peers of
        #{Node := P} -> {noreply, State#{peers := Peers#{Node := P#{score := ?LIMIT}}}};
        #{} -> {noreply, State}
    end;
handle_info({nodeup, _Node}, State) ->
    {noreply, State};
handle_info(Info, State) ->
    logger:warning("strata_fd: unexpected message ~p", [Info]),
    {noreply, State}.

ping(Parent, Node, Timeout) ->
    Parent ! {pong, Node, strata_rpc:call(Node, ?MODULE, ping, Timeout) =:= pong}.

describe(#{score := Score, last := Last}, Now) ->
    #{state => if Score >= ?LIMIT -> down;
                  Score >= ?SUSPECT -> suspect;
                  true -> up
               end,
      score => Score,
      since_last_contact_ms => case Last of
                                   never -> never;
                                   T -> Now - T
                               end}.

now_ms() ->
    erlang:monotonic_time(millisecond).
