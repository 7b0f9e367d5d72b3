%%% @doc The membership of a cluster as a value: who is in it, and the ring claimed for them.
%%%
%%% Pure functions (the ring is claimed by a pure NIF); {@link strata_cluster} is the process
%%% that owns the node's copy, persists it and gossips it. See doc/membership.md.
%%%
%%% A membership holds the cluster's name and id, one entry per node that ever joined
%%% (`{Incarnation, joined | left, Zone}'), and the ring: its epoch, the joined nodes it was
%%% claimed for, and a preference list per partition. Two copies of the same cluster (same id)
%%% merge by taking, for every node, the entry with the higher incarnation (`left' wins a tie),
%%% so merging is commutative, associative and idempotent and every order of gossip ends in
%%% the same members. The ring then follows deterministically: if either copy's ring was
%%% claimed for exactly the merged joined nodes, the one with the higher `{Epoch, Ring}' wins;
%%% otherwise the ring is claimed afresh from the higher of the two, with an epoch one above
%%% both. Every node that merges the same inputs computes the same ring, and an epoch only
%%% grows, so all copies converge to one ring and one epoch.
-module(strata_membership).

-export([new/5, join/4, leave/2, merge/2, joined/1, entry/2, summary/1, owner_counts/1,
         incarnation/2]).

-export_type([membership/0, entry/0]).

-type entry() :: {pos_integer(), joined | left, binary()}.
-type membership() :: #{cluster := binary(),
                        id := binary(),
                        partitions := pos_integer(),
                        n_val := pos_integer(),
                        members := #{node() => entry()},
                        epoch := pos_integer(),
                        ring_for := [node()],
                        ring := [[node()]]}.

%% @doc A cluster of one: `Node' alone in a new cluster called `Cluster'. `Incarnation' is
%% the node's last incarnation (0 for a node that was never a member of anything).
-spec new(binary(), node(), binary(), {pos_integer(), pos_integer()}, non_neg_integer()) ->
          {ok, membership()} | {error, term()}.
new(Cluster, Node, Zone, {Partitions, NVal}, Incarnation) ->
    claimed(#{cluster => Cluster,
              id => crypto:strong_rand_bytes(16),
              partitions => Partitions,
              n_val => NVal,
              members => #{Node => {Incarnation + 1, joined, Zone}},
              epoch => 0,
              ring_for => [],
              ring => []}, undefined).

%% @doc Adds `Node' (in `Zone'), whose own last incarnation is `Incarnation', and claims the
%% ring again.
-spec join(membership(), node(), binary(), non_neg_integer()) ->
          {ok, membership()} | {error, term()}.
join(#{members := Members} = M, Node, Zone, Incarnation) ->
    Inc = max(Incarnation, incarnation(M, Node)) + 1,
    claimed(M#{members := Members#{Node => {Inc, joined, Zone}}}, M).

%% @doc Marks `Node' as having left and claims the ring for the others.
-spec leave(membership(), node()) -> {ok, membership()} | {error, term()}.
leave(#{members := Members} = M, Node) ->
    case Members of
        #{Node := {Inc, joined, Zone}} ->
            claimed(M#{members := Members#{Node => {Inc + 1, left, Zone}}}, M);
        #{} ->
            {error, not_a_member}
    end.

%% @doc Merges two copies of one cluster (same id); see the module documentation. Copies of
%% two clusters give `{error, {other_cluster, IdA, IdB}}'; a term that is not a membership,
%% `{error, bad_membership}'.
-spec merge(membership(), membership()) -> {ok, membership()} | {error, term()}.
merge(A, B) ->
    case well_formed(A) andalso well_formed(B) of
        false -> {error, bad_membership};
        true when map_get(id, A) =/= map_get(id, B) ->
            {error, {other_cluster, map_get(id, A), map_get(id, B)}};
        true -> merge_copies(A, B)
    end.

merge_copies(#{members := MA} = A, #{members := MB} = B) ->
    Members = maps:fold(fun(Node, E, Acc) ->
                                maps:update_with(Node, fun(Old) -> newer(Old, E) end, E, Acc)
                        end, MA, MB),
    Joined = joined_nodes(Members),
    Best = max_ring(A, B),
    case [X || X <- [A, B], maps:get(ring_for, X) =:= Joined] of
        [] ->
            claimed(Best#{members := Members}, Best#{epoch := max_epoch(A, B)});
        Valid ->
            {ok, (lists:foldl(fun max_ring/2, hd(Valid), Valid))#{members := Members}}
    end.

%% The shape of a membership, checked before merging a copy that came over the network.
well_formed(#{cluster := C, id := Id, partitions := P, n_val := N, members := Members,
              epoch := E, ring_for := For, ring := Ring})
  when is_binary(C), is_binary(Id), is_integer(P), is_integer(N), is_map(Members),
       is_integer(E), is_list(For), is_list(Ring) ->
    lists:all(fun({Node, {Inc, State, Zone}}) ->
                      is_atom(Node) andalso is_integer(Inc) andalso is_binary(Zone)
                          andalso (State =:= joined orelse State =:= left);
                 (_) ->
                      false
              end, maps:to_list(Members));
well_formed(_) ->
    false.

%% @doc The nodes currently in the cluster, sorted.
-spec joined(membership()) -> [node()].
joined(#{members := Members}) ->
    joined_nodes(Members).

%% @doc A node's entry, or `undefined' if it never joined.
-spec entry(membership(), node()) -> entry() | undefined.
entry(#{members := Members}, Node) ->
    maps:get(Node, Members, undefined).

%% @doc A node's incarnation in this membership (0 if it never joined).
-spec incarnation(membership(), node()) -> non_neg_integer().
incarnation(M, Node) ->
    case entry(M, Node) of
        undefined -> 0;
        {Inc, _, _} -> Inc
    end.

%% @doc The number of partitions each joined node is primary for.
-spec owner_counts(membership()) -> #{node() => non_neg_integer()}.
owner_counts(#{ring := Ring, ring_for := Nodes}) ->
    lists:foldl(fun([Primary | _], Acc) -> maps:update_with(Primary, fun(C) -> C + 1 end, Acc) end,
                maps:from_list([{N, 0} || N <- Nodes]), Ring).

%% @doc What two nodes compare to see whether they agree: the cluster, the epoch and the ring.
-spec summary(membership()) -> {binary(), pos_integer(), [node()], [[node()]]}.
summary(#{cluster := Cluster, epoch := Epoch, ring_for := Nodes, ring := Ring}) ->
    {Cluster, Epoch, Nodes, Ring}.

%%% Internal

newer({IncA, _, _} = A, {IncB, _, _}) when IncA > IncB -> A;
newer({Inc, left, _} = A, {Inc, _, _}) -> A;
newer({Inc, _, _}, {Inc, left, _} = B) -> B;
newer({Inc, _, _} = A, {Inc, _, _} = B) -> max(A, B);
newer(_, B) -> B.

joined_nodes(Members) ->
    lists:sort([N || {N, {_, joined, _}} <- maps:to_list(Members)]).

max_ring(#{epoch := EA, ring := RA} = A, #{epoch := EB, ring := RB} = B) ->
    case {EA, RA} >= {EB, RB} of
        true -> A;
        false -> B
    end.

max_epoch(#{epoch := A}, #{epoch := B}) ->
    max(A, B).

%% Claims the ring for the joined members of `M', keeping what it can of `Previous''s ring,
%% with an epoch one above `Previous''s.
claimed(#{members := Members, partitions := P, n_val := NVal} = M, Previous) ->
    Joined = joined_nodes(Members),
    Zones = [{atom_to_binary(N), Zone} || {N, {_, joined, Zone}} <- maps:to_list(Members)],
    {PrevRing, PrevEpoch} =
        case Previous of
            undefined -> {undefined, 0};
            #{ring := [], epoch := E} -> {undefined, E};
            #{ring := R, epoch := E} -> {[[atom_to_binary(N) || N <- L] || L <- R], E}
        end,
    case Joined of
        [] ->
            {ok, M#{epoch := PrevEpoch + 1, ring_for := [], ring := []}};
        _ ->
            case strata_nif:ring_claim(lists:sort(Zones), P, NVal, PrevRing) of
                {ok, Lists} ->
                    Ring = [[binary_to_atom(N) || N <- L] || L <- Lists],
                    {ok, M#{epoch := PrevEpoch + 1, ring_for := Joined, ring := Ring}};
                {error, _} = Error ->
                    Error
            end
    end.
