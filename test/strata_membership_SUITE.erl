%%% The membership value (strata_membership) under random histories, without processes: five
%%% nodes each hold a copy; random joins through random seeds, leaves and pairwise gossip are
%%% applied in any order, as strata_cluster applies them. Then gossip runs until nothing
%%% changes, and every copy of the cluster must hold the same members, epoch and ring, the
%%% ring must be valid for its members, and merging must be commutative and idempotent.
-module(strata_membership_SUITE).
-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-compile([export_all, nowarn_export_all]).
-import(proper_types, [list/1, oneof/1, frequency/1]).

-define(NODES, ['n1@h', 'n2@h', 'n3@h', 'n4@h', 'n5@h']).
-define(SHAPE, {16, 3}).

all() ->
    [random_histories_converge_to_one_ring, merge_is_commutative_and_idempotent].

random_histories_converge_to_one_ring(_Config) ->
    ?assert(proper:quickcheck(prop_converge(), [{numtests, 300}, {to_file, user}])).

merge_is_commutative_and_idempotent(_Config) ->
    ?assert(proper:quickcheck(prop_merge(), [{numtests, 200}, {to_file, user}])).

%%% Properties

site() -> oneof(?NODES).

op() ->
    frequency([{4, {join, site(), site()}},
               {1, {leave, site()}},
               {6, {gossip, site(), site()}}]).

prop_converge() ->
    proper:forall(
      list(op()),
      fun(Ops) ->
              Sites = lists:foldl(fun apply_op/2, initial(), Ops),
              Final = settle(Sites, 0),
              proper:whenfail(fun() -> io:format("ops ~p~nfinal ~p~n", [Ops, summaries(Final)]) end,
                              fun() -> agreed(Final) end)
      end).

prop_merge() ->
    proper:forall(
      {list(op()), site(), site()},
      fun({Ops, X, Y}) ->
              Sites = lists:foldl(fun apply_op/2, initial(), Ops),
              A = maps:get(X, Sites),
              B = maps:get(Y, Sites),
              case {strata_membership:merge(A, B), strata_membership:merge(B, A)} of
                  {{ok, AB}, {ok, BA}} ->
                      AB =:= BA andalso strata_membership:merge(AB, AB) =:= {ok, AB}
                          andalso strata_membership:merge(AB, A) =:= {ok, AB};
                  {{error, {other_cluster, _, _}}, {error, {other_cluster, _, _}}} ->
                      maps:get(id, A) =/= maps:get(id, B)
              end
      end).

%%% The model of strata_cluster's handling

initial() ->
    maps:from_list([{N, alone(N, 0)} || N <- ?NODES]).

alone(N, Inc) ->
    {ok, M} = strata_membership:new(<<"c">>, N, zone(N), ?SHAPE, Inc),
    M.

zone(N) -> case lists:member(N, ['n1@h', 'n2@h']) of true -> <<"z1">>; false -> <<"z2">> end.

apply_op({join, X, Seed}, Sites) when X =/= Seed ->
    #{X := MX, Seed := MS} = Sites,
    case strata_membership:joined(MX) of
        [X] ->
            Inc = strata_membership:incarnation(MX, X),
            {ok, New} = strata_membership:join(MS, X, zone(X), Inc),
            Sites#{Seed := New, X := New};
        _ ->
            Sites
    end;
apply_op({leave, X}, Sites) ->
    %% As strata_cluster:leave/1: the departure is sent to every other member, and happens
    %% only if at least one of them (still in the same cluster) takes it.
    #{X := MX} = Sites,
    Others = strata_membership:joined(MX) -- [X],
    {ok, Left} = strata_membership:leave(MX, X),
    case [O || O <- Others, maps:get(id, maps:get(O, Sites)) =:= maps:get(id, Left)] of
        [] ->
            Sites;
        Takers ->
            Sites1 = lists:foldl(fun(O, Acc) -> receive_copy(O, Left, Acc) end, Sites, Takers),
            Sites1#{X := alone(X, strata_membership:incarnation(Left, X))}
    end;
apply_op({gossip, From, To}, Sites) when From =/= To ->
    receive_copy(To, maps:get(From, Sites), Sites);
apply_op(_, Sites) ->
    Sites.

receive_copy(To, Remote, Sites) ->
    Local = maps:get(To, Sites),
    case strata_membership:merge(Local, Remote) of
        {ok, Merged} ->
            case strata_membership:entry(Merged, To) of
                {_, joined, _} -> Sites#{To := Merged};
                _ -> Sites#{To := alone(To, strata_membership:incarnation(Merged, To))}
            end;
        {error, {other_cluster, _, _}} ->
            Sites
    end.

%% Gossip between every ordered pair of members until no copy changes (bounded).
settle(Sites, Round) when Round > 20 ->
    Sites;
settle(Sites, Round) ->
    Next = lists:foldl(fun({From, To}, Acc) ->
                               Members = strata_membership:joined(maps:get(From, Acc)),
                               case lists:member(To, Members) of
                                   true -> apply_op({gossip, From, To}, Acc);
                                   false -> Acc
                               end
                       end, Sites, [{F, T} || F <- ?NODES, T <- ?NODES, F =/= T]),
    case Next =:= Sites of
        true -> Sites;
        false -> settle(Next, Round + 1)
    end.

%% Every node's copy names a member set that contains it; all members of a set hold the same
%% copy; the ring is valid and balanced for it.
agreed(Sites) ->
    lists:all(fun(N) ->
                      M = maps:get(N, Sites),
                      Members = strata_membership:joined(M),
                      lists:member(N, Members)
                          andalso lists:all(fun(O) -> same(maps:get(O, Sites), M) end, Members)
                          andalso valid_ring(M)
              end, ?NODES).

same(A, B) ->
    strata_membership:summary(A) =:= strata_membership:summary(B)
        andalso maps:get(id, A) =:= maps:get(id, B).

valid_ring(#{ring := Ring} = M) ->
    Members = strata_membership:joined(M),
    Len = min(3, length(Members)),
    Counts = maps:values(strata_membership:owner_counts(M)),
    length(Ring) =:= 16
        andalso lists:all(fun(L) -> length(lists:usort(L)) =:= Len andalso L -- Members =:= [] end,
                          Ring)
        andalso lists:max(Counts) - lists:min(Counts) =< 1.

summaries(Sites) ->
    maps:map(fun(_, M) -> {strata_membership:joined(M), maps:get(epoch, M)} end, Sites).
