%%% @doc Cluster membership: the owner of this node's copy of the membership and its gossip.
%%%
%%% The membership (a {@link strata_membership} value: members, ring, epoch) is persisted in
%%% the meta column family on every change, before anyone is told of it, so a node restarted
%%% on its data directory is back in its cluster without naming a seed. Changes spread by push
%%% gossip (every change is sent to every other member) and by a periodic pull from one random
%%% member every `gossip_ms', which also carries this node's copy so both sides merge. Copies of
%%% another cluster (another id) are ignored. See doc/membership.md.
-module(strata_cluster).
-behaviour(gen_server).

-export([start_link/1, join/2, leave/1, members/0, membership/0, status/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

-define(META_KEY, <<"cluster">>).
-define(FORMAT, 1).

%% @doc Starts the owner; it loads the persisted membership or creates a cluster of one.
-spec start_link(map()) -> {ok, pid()} | {error, term()}.
start_link(Config) ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, Config, []).

%% @doc Joins the cluster `Seed' belongs to, waiting at most `Timeout' ms for the seed. This
%% node must be alone in its own cluster; it takes the seed's cluster (its data stays).
-spec join(node(), non_neg_integer()) -> ok | {error, term()}.
join(Seed, _Timeout) when Seed =:= node() ->
    {error, {cannot_join, self}};
join(_Seed, _Timeout) when node() =:= nonode@nohost ->
    {error, not_distributed};
join(Seed, Timeout) when is_atom(Seed) ->
    case gen_server:call(?MODULE, join_request, Timeout) of
        {ok, Request} ->
            case strata_rpc:call(Seed, ?MODULE, {join, Request}, Timeout) of
                {ok, Membership} -> gen_server:call(?MODULE, {adopt, Membership}, Timeout);
                {error, _} = Error -> Error
            end;
        {error, _} = Error ->
            Error
    end;
join(Seed, _Timeout) ->
    {error, {bad_node, Seed}}.

%% @doc Leaves the cluster: the others are told (at least one must acknowledge within
%% `Timeout' ms, or nothing changes and the result is `{error, unavailable}'), then this node
%% becomes a cluster of one.
-spec leave(non_neg_integer()) -> ok | {error, term()}.
leave(Timeout) ->
    case gen_server:call(?MODULE, leave_request, Timeout) of
        {ok, Left, Others} ->
            Acks = parallel(fun(N) -> strata_rpc:call(N, ?MODULE, {gossip, Left}, Timeout) end,
                            Others),
            case lists:member(ok, Acks) of
                true -> gen_server:call(?MODULE, {left, Left}, Timeout);
                false -> {error, unavailable}
            end;
        {error, _} = Error ->
            Error
    end.

%% @doc The nodes in the cluster, sorted.
-spec members() -> [node()].
members() ->
    strata_membership:joined(membership()).

%% @doc This node's copy of the membership.
-spec membership() -> strata_membership:membership().
membership() ->
    gen_server:call(?MODULE, membership).

%% @doc The cluster as this node sees it: name, epoch, partitions, n_val, and for each member
%% its zone, the number of partitions it is primary for, and its detector state (`up',
%% `suspect', `down'), unreliability score and milliseconds since this node last heard from it.
-spec status() -> #{atom() => term()}.
status() ->
    #{cluster := Name, epoch := Epoch, partitions := P, n_val := NVal} = M = membership(),
    States = strata_fd:states(),
    Owners = strata_membership:owner_counts(M),
    Members = [begin
                   {_, joined, Zone} = strata_membership:entry(M, N),
                   Health = case N =:= node() of
                                true -> #{state => up, score => 0, since_last_contact_ms => 0};
                                false -> maps:get(N, States, #{state => suspect, score => 2,
                                                              since_last_contact_ms => never})
                            end,
                   Health#{node => N, zone => Zone, primaries => maps:get(N, Owners, 0)}
               end || N <- strata_membership:joined(M)],
    #{name => Name, epoch => Epoch, partitions => P, n_val => NVal, members => Members}.

%%% gen_server

%% @private
init(Config) ->
    #{cluster_name := Name, zone := Zone, partitions := P, n_val := NVal,
      gossip_ms := GossipMs} = Config,
    State0 = #{name => Name, zone => Zone, shape => {P, NVal}, gossip_ms => GossipMs,
               pulling => undefined},
    case load() of
        {ok, #{cluster := Name, partitions := P} = M} ->
            case strata_membership:entry(M, node()) of
                {_, joined, _} ->
                    logger:info("strata: member of cluster ~ts, epoch ~b, members ~p",
                                [Name, maps:get(epoch, M), strata_membership:joined(M)]),
                    {ok, start_gossip(installed(M, State0))};
                Entry ->
                    Inc = case Entry of undefined -> 0; {I, _, _} -> I end,
                    started(alone(Inc, State0))
            end;
        {ok, #{cluster := Other}} when Other =/= Name ->
            {stop, {cluster_name_mismatch, #{stored => Other, configured => Name}}};
        {ok, #{partitions := Other}} ->
            {stop, {partitions_mismatch, #{stored => Other, configured => P}}};
        not_found ->
            started(alone(0, State0));
        {error, Reason} ->
            {stop, {membership_unreadable, Reason}}
    end.

alone(Incarnation, #{name := Name, zone := Zone, shape := Shape} = State) ->
    case strata_membership:new(Name, node(), Zone, Shape, Incarnation) of
        {ok, M} ->
            case persist(M) of
                ok -> {ok, installed(M, State)};
                {error, Reason} -> {stop, {membership_unwritable, Reason}}
            end;
        {error, Reason} ->
            {stop, {ring, Reason}}
    end.

started({ok, State}) -> {ok, start_gossip(State)};
started(Stop) -> Stop.

%% @private
handle_call(membership, _From, #{membership := M} = State) ->
    {reply, M, State};
handle_call(join_request, _From, #{membership := M, zone := Zone} = State) ->
    case strata_membership:joined(M) of
        [Self] when Self =:= node() ->
            {reply, {ok, #{node => node(), zone => Zone, cluster => maps:get(cluster, M),
                           partitions => maps:get(partitions, M),
                           incarnation => strata_membership:incarnation(M, node())}}, State};
        Members ->
            {reply, {error, {already_in_cluster, Members}}, State}
    end;
handle_call({join, #{node := Node, zone := Zone, cluster := Cluster, partitions := P,
                     incarnation := Inc}}, From, State)
  when is_atom(Node), is_binary(Zone), is_binary(Cluster), is_integer(Inc) ->
    answer(From, admit(Node, Zone, Cluster, P, Inc, State), State);
handle_call({adopt, New}, _From, #{membership := M} = State) ->
    case strata_membership:joined(M) of
        [Self] when Self =:= node() ->
            case change(New, State) of
                {ok, State1} ->
                    logger:info("strata: joined cluster ~ts, members ~p",
                                [maps:get(cluster, New), strata_membership:joined(New)]),
                    {reply, ok, State1};
                {error, _} = Error ->
                    {reply, Error, State}
            end;
        Members ->
            {reply, {error, {already_in_cluster, Members}}, State}
    end;
handle_call(leave_request, _From, #{membership := M} = State) ->
    case strata_membership:joined(M) -- [node()] of
        [] ->
            {reply, {error, not_in_cluster}, State};
        Others ->
            case strata_membership:leave(M, node()) of
                {ok, Left} -> {reply, {ok, Left, Others}, State};
                {error, _} = Error -> {reply, Error, State}
            end
    end;
handle_call({left, Left}, _From, #{membership := M} = State) ->
    Inc = max(strata_membership:incarnation(Left, node()),
              strata_membership:incarnation(M, node())),
    case alone(Inc, State) of
        {ok, State1} ->
            logger:info("strata: left cluster ~ts", [maps:get(cluster, M)]),
            {reply, ok, State1};
        {stop, Reason} ->
            {reply, {error, Reason}, State}
    end;
handle_call({gossip, Remote}, From, State) ->
    answer(From, merged(Remote, State, fun(_) -> ok end), State);
handle_call({pull, Remote}, From, State) ->
    answer(From, merged(Remote, State, fun(M) -> {ok, M} end), State);
handle_call(Request, _From, State) ->
    {reply, {error, {unknown_call, Request}}, State}.

%% @private
handle_cast({gossip, Remote}, State) ->
    case receive_copy(Remote, State) of
        {ok, State1} -> {noreply, State1};
        {error, _} -> {noreply, State}
    end;
handle_cast(Request, State) ->
    logger:warning("strata_cluster: unexpected cast ~p", [Request]),
    {noreply, State}.

%% @private
handle_info(pull, #{membership := M, pulling := undefined, gossip_ms := Ms} = State) ->
    erlang:send_after(Ms, self(), pull),
    case strata_membership:joined(M) -- [node()] of
        [] ->
            {noreply, State};
        Others ->
            Peer = lists:nth(rand:uniform(length(Others)), Others),
            Self = self(),
            {Pid, Ref} = spawn_monitor(
                           fun() ->
                                   Self ! {pulled, self(),
                                           strata_rpc:call(Peer, ?MODULE, {pull, M}, Ms)}
                           end),
            {noreply, State#{pulling := {Pid, Ref}}}
    end;
handle_info(pull, #{gossip_ms := Ms} = State) ->
    erlang:send_after(Ms, self(), pull),
    {noreply, State};
handle_info({pulled, Pid, {ok, Remote}}, #{pulling := {Pid, _}} = State) ->
    case receive_copy(Remote, State) of
        {ok, State1} -> {noreply, State1};
        {error, _} -> {noreply, State}
    end;
handle_info({pulled, _Pid, _Failed}, State) ->
    {noreply, State};
handle_info({'DOWN', Ref, process, _, _}, #{pulling := {_, Ref}} = State) ->
    {noreply, State#{pulling := undefined}};
handle_info(Info, State) ->
    logger:warning("strata_cluster: unexpected message ~p", [Info]),
    {noreply, State}.

%%% Internal

%% Answers a call from another node through strata_rpc, so that the fault hook applies.
answer(From, {ok, Reply, State1}, _State) ->
    strata_rpc:reply(From, Reply),
    {noreply, State1};
answer(From, {error, _} = Error, State) ->
    strata_rpc:reply(From, Error),
    {noreply, State}.

%% The seed's side of a join: the node is added if it names this cluster and partition count.
admit(Node, Zone, Cluster, P, Inc, #{membership := M} = State) ->
    case M of
        #{cluster := Cluster, partitions := P} ->
            case strata_membership:join(M, Node, Zone, Inc) of
                {ok, New} ->
                    case change(New, State) of
                        {ok, State1} ->
                            logger:info("strata: ~p joined through this node", [Node]),
                            {ok, {ok, New}, State1};
                        {error, _} = Error ->
                            Error
                    end;
                {error, _} = Error ->
                    Error
            end;
        #{cluster := Ours, partitions := P} ->
            {error, {cluster_name_mismatch, #{seed => Ours, joining => Cluster}}};
        #{partitions := Ours} ->
            {error, {partitions_mismatch, #{seed => Ours, joining => P}}}
    end.

%% Merges a copy from another member; the reply is made from the merged membership.
merged(Remote, State, Reply) ->
    case receive_copy(Remote, State) of
        {ok, #{membership := M} = State1} -> {ok, Reply(M), State1};
        {error, _} = Error -> Error
    end.

%% Merges a copy received from another member; a copy of another cluster is refused.
receive_copy(Remote, #{membership := M} = State) ->
    case strata_membership:merge(M, Remote) of
        {ok, M} ->
            {ok, State};
        {ok, Merged} ->
            case strata_membership:entry(Merged, node()) of
                {_, joined, _} ->
                    change(Merged, State);
                _ ->
                    %% Removed from the cluster by the others: continue alone.
                    Inc = strata_membership:incarnation(Merged, node()),
                    case alone(Inc, State) of
                        {ok, State1} -> {ok, State1};
                        {stop, Reason} -> {error, Reason}
                    end
            end;
        {error, _} = Error ->
            Error
    end.

%% Installs a new membership: persisted first, then the detector and the other members told.
change(New, #{membership := Old} = State) ->
    case persist(New) of
        ok ->
            State1 = installed(New, State),
            Targets = lists:usort(strata_membership:joined(New) ++ strata_membership:joined(Old))
                -- [node()],
            [strata_rpc:cast(N, ?MODULE, {gossip, New}) || N <- Targets],
            {ok, State1};
        {error, Reason} ->
            logger:error("strata: cannot persist the membership: ~p", [Reason]),
            {error, {membership_unwritable, Reason}}
    end.

installed(M, State) ->
    strata_fd:set_peers(strata_membership:joined(M) -- [node()]),
    State#{membership => M}.

start_gossip(#{gossip_ms := Ms} = State) ->
    erlang:send_after(rand:uniform(Ms), self(), pull),
    State.

load() ->
    case strata_store:meta_get(?META_KEY) of
        {ok, Bin} ->
            try binary_to_term(Bin) of
                #{format := ?FORMAT, membership := M} -> {ok, M};
                _ -> {error, unknown_format}
            catch
                error:badarg -> {error, corrupt}
            end;
        not_found ->
            not_found;
        {error, _} = Error ->
            Error
    end.

persist(M) ->
    strata_store:meta_put(?META_KEY, term_to_binary(#{format => ?FORMAT, membership => M})).

%% Applies `Fun' to every item in its own process; `Fun' must return in bounded time.
parallel(Fun, Items) ->
    Parent = self(),
    Workers = [spawn_monitor(fun() -> Parent ! {self(), Fun(Item)} end) || Item <- Items],
    [receive
         {Pid, Result} ->
             erlang:demonitor(Ref, [flush]),
             Result;
         {'DOWN', Ref, process, Pid, Reason} ->
             {error, Reason}
     end || {Pid, Ref} <- Workers].
