%%% @doc List-append transactions checked as Elle does (Kingsbury and Alvaro,
%%% "Elle: Inferring Isolation Anomalies from Experimental Observations").
%%%
%%% A transaction (f `txn') is a list of micro-ops `{append, K, Elem}' and
%%% `{r, K, List}' (`nil' in the invoke, the list read in the `ok'
%%% completion; `nil' read means an absent key, the same as `[]'). Appended
%%% elements are unique per key, so every element names the transaction that
%%% appended it, and a key's value is the list of its appends in commit order.
%%%
%%% Checks, each reported with the ops (completion entries) that form it:
%%% <ul>
%%% <li>`internal': a read inside a transaction that does not reflect the
%%%     transaction's own earlier reads and appends (or shows one of its later
%%%     appends);</li>
%%% <li>`duplicate': an element appears twice in one read;</li>
%%% <li>`incompatible_order': two reads of a key are not prefixes of one
%%%     another (the version order the longest read gives is contradicted);</li>
%%% <li>`G1a' (aborted read): a read shows an element appended by a `fail'
%%%     transaction, or by no transaction at all;</li>
%%% <li>`G1b' (intermediate read): a read ends at an element that is not the
%%%     last append of its (other) transaction to that key;</li>
%%% <li>cycles in the dependency graph of committed transactions (`ok', and
%%%     `info' ones whose appends were observed): write-write (`ww', successive
%%%     versions), write-read (`wr', the writer of the last element a read
%%%     saw), read-write (`rw', anti-dependency: a read to the writer of the
%%%     next version it did not see), plus per-process order (`process') and
%%%     real-time order (`realtime', T1 completed before T2 was invoked).
%%%     A cycle is `G0' when its data edges are all ww, `G1c' when they are ww
%%%     and wr, `G-single' with exactly one rw edge, `G2' with two or more.
%%%     Process and real-time edges may appear in any class; a cycle that
%%%     needs them is a strict-serializability violation (the `cycle' steps
%%%     show the edge kinds).</li>
%%% </ul>
%%% Beyond Elle: an append of an `ok' transaction that no read ever shows gets
%%% an rw edge from the first read of its key invoked after it completed
%%% (that read saw a state without it), so a lost acknowledged append is a
%%% G-single cycle with a real-time edge.
%%%
%%% Real-time edges are built by a sweep: a transaction is linked from the
%%% frontier of transactions completed before its invocation that are not
%%% already before another such transaction, which keeps the edge count
%%% near n x concurrency while preserving the transitive order.
%%%
%%% Options: `realtime' (default true), `process' (default true),
%%% `cycle_search_limit' (edges explored per component, default 2000000).
-module(strata_checker_elle).

-export([check/2]).

-define(DEFAULT_SEARCH_LIMIT, 2000000).

%% @doc Check paired operations; called by `strata_checker:check/2'.
-spec check([strata_history:op()], map()) ->
          #{valid := boolean() | unknown, anomalies := [map()], stats := map()}.
check(Ops, Opts) ->
    Txns = [txn(Op) || Op <- Ops],
    TxnMap = maps:from_list([{Id, T} || T = #{id := Id} <- Txns]),
    Writers = writers(Txns),
    {Internal, Reads0} = reads(Txns),
    {Orders, Incompatible, IncompatibleIds} = version_orders(Reads0, TxnMap),
    Reads = [R#{compatible => not is_map_key(Id, IncompatibleIds)} || R = #{id := Id} <- Reads0],
    Observed = observed(Orders, Reads),
    Duplicates = duplicates(Reads, Orders, TxnMap),
    G1a = g1a(Reads, Observed, Writers, TxnMap),
    G1b = g1b(Reads, Orders, Writers, TxnMap),
    Nodes = graph_nodes(Txns, Observed),
    Edges = edges(Txns, Nodes, Writers, Orders, Reads, Observed, Opts),
    Graph = graph(Edges),
    Limit = maps:get(cycle_search_limit, Opts, ?DEFAULT_SEARCH_LIMIT),
    Sccs = strata_checker_graph:sccs(Graph),
    Cycles = lists:append([cycles(Scc, Graph, Limit, TxnMap) || Scc <- Sccs]),
    Anomalies = Internal ++ Duplicates ++ Incompatible ++ G1a ++ G1b ++ Cycles,
    #{valid => strata_checker:verdict(Anomalies, Reads),
      anomalies => Anomalies,
      stats => #{txns => maps:size(TxnMap),
                 graph_nodes => maps:size(Nodes),
                 edges => count_edges(Edges),
                 sccs => length(Sccs),
                 keys => maps:size(Orders),
                 reads => length(Reads)}}.

%%% Transactions.

txn(Op = #{f := txn, type := Type, process := P, call := Call, ret := Ret,
           value := Mops}) ->
    is_list(Mops) orelse error({malformed_history, {txn_value_not_a_list, entry(Op)}}),
    lists:foreach(fun({append, _, _}) -> ok;
                     ({r, _, L}) when L =:= nil; is_list(L) -> ok;
                     (M) -> error({malformed_history, {bad_micro_op, M, entry(Op)}})
                  end, Mops),
    #{id => Call, type => Type, process => P, call => Call, ret => Ret,
      mops => Mops, entry => entry(Op)};
txn(Op) ->
    error({malformed_history, {not_a_txn, entry(Op)}}).

entry(#{complete := none, invoke := Inv}) -> Inv;
entry(#{complete := Done}) -> Done.

%% {K, Elem} => {WriterId, AppendPosition} for every attempted append.
writers(Txns) ->
    lists:foldl(
      fun(#{id := Id, mops := Mops, entry := E}, Acc) ->
              {Acc1, _} =
                  lists:foldl(
                    fun({append, K, X}, {A, I}) ->
                            is_map_key({K, X}, A) andalso
                                error({malformed_history, {element_appended_twice, K, X, E}}),
                            {A#{{K, X} => {Id, I}}, I + 1};
                       (_, {A, I}) ->
                            {A, I + 1}
                    end, {Acc, 0}, Mops),
              Acc1
      end, #{}, Txns).

writer(K, X, Writers) ->
    case maps:find({K, X}, Writers) of
        {ok, {Id, _}} -> Id;
        error -> none
    end.

%% Reads of ok transactions as #{id, txn, key, list, len, external} (external:
%% the transaction's first access to the key), plus the internal-consistency
%% anomalies.
reads(Txns) ->
    {Internal, Reads} =
        lists:foldl(fun(T = #{type := ok}, {IAcc, RAcc}) ->
                            {I, R} = txn_reads(T),
                            {lists:reverse(I, IAcc), lists:reverse(R, RAcc)};
                       (_, Acc) ->
                            Acc
                    end, {[], []}, Txns),
    {lists:reverse(Internal),
     [R#{id => I} || {I, R} <- lists:zip(lists:seq(1, length(Reads)), lists:reverse(Reads))]}.

txn_reads(#{id := Id, mops := Mops, entry := E}) ->
    {_, _, Internal, Reads} =
        lists:foldl(
          fun({append, K, X}, {I, State, IAcc, RAcc}) ->
                  S1 = case maps:get(K, State, none) of
                           none -> {suffix, [X]};
                           {suffix, S} -> {suffix, S ++ [X]};
                           {known, L} -> {known, L ++ [X]}
                       end,
                  {I + 1, State#{K => S1}, IAcc, RAcc};
             ({r, K, L0}, {I, State, IAcc, RAcc}) ->
                  L = norm(L0),
                  Prev = maps:get(K, State, none),
                  Bad = case Prev of
                            none -> false;
                            {known, L} -> false;
                            {known, Exp} -> {expected, Exp};
                            {suffix, S} ->
                                case lists:suffix(S, L) of
                                    true -> false;
                                    false -> {expected_suffix, S}
                                end
                        end,
                  Future = [X || {append, K1, X} <- lists:nthtail(I + 1, Mops), K1 =:= K,
                                 lists:member(X, L)],
                  IAcc1 = case {Bad, Future} of
                              {false, []} -> IAcc;
                              _ -> [#{type => internal, key => K, read => L,
                                      expected => Bad, future_appends => Future,
                                      ops => [E]} | IAcc]
                          end,
                  Read = #{txn => Id, key => K, list => L, len => length(L),
                           external => Prev =:= none},
                  {I + 1, State#{K => {known, L}}, IAcc1, [Read | RAcc]}
          end, {0, #{}, [], []}, Mops),
    {lists:reverse(Internal), lists:reverse(Reads)}.

norm(nil) -> [];
norm(L) -> L.

entry_of(Id, TxnMap) -> maps:get(entry, maps:get(Id, TxnMap)).

%%% Version orders.

%% The longest read of each key gives its version order; every other read
%% must be a prefix of it. Returns, per key, `#{raw, order, distinct,
%% first_dup}': the longest read as a tuple, its distinct elements in order,
%% the number of distinct elements in each prefix of it, and the length of
%% its shortest prefix holding a duplicate; the anomalies; and the ids of
%% the reads that are not prefixes. The other reads are marked `compatible'
%% and later steps use only their lengths as positions in these tuples,
%% which keeps the work per read O(1) beyond the prefix check.
version_orders(Reads, TxnMap) ->
    ByKey = lists:foldl(fun(R = #{key := K}, M) ->
                                maps:update_with(K, fun(L) -> [R | L] end, [R], M)
                        end, #{}, Reads),
    maps:fold(
      fun(K, KReads, {OAcc, IAcc, Ids}) ->
              #{list := LL, txn := LT} = longest(KReads),
              {Order, Distinct, FirstDup} = positions(LL),
              Incompatible = [R || R = #{list := L} <- KReads, not lists:prefix(L, LL)],
              Bad = [#{type => incompatible_order, key => K, read => L, longest => LL,
                       ops => [entry_of(T, TxnMap), entry_of(LT, TxnMap)]}
                     || #{list := L, txn := T} <- Incompatible],
              {OAcc#{K => #{raw => list_to_tuple(LL), order => list_to_tuple(Order),
                            distinct => list_to_tuple(Distinct), first_dup => FirstDup}},
               Bad ++ IAcc,
               lists:foldl(fun(#{id := Id}, A) -> A#{Id => true} end, Ids, Incompatible)}
      end, {#{}, [], #{}}, ByKey).

longest([R | Rs]) ->
    lists:foldl(fun(R1 = #{len := N1}, #{len := NB}) when N1 > NB -> R1;
                   (_, Best) -> Best
                end, R, Rs).

positions(LL) ->
    {Order, Distinct, FirstDup, _, _, _} =
        lists:foldl(fun(X, {O, D, F, Seen, N, I}) ->
                            case is_map_key(X, Seen) of
                                true -> {O, [N | D], min(F, I), Seen, N, I + 1};
                                false -> {[X | O], [N + 1 | D], F, Seen#{X => true}, N + 1, I + 1}
                            end
                    end, {[], [], infinity, #{}, 0, 1}, LL),
    {lists:reverse(Order), lists:reverse(Distinct), FirstDup}.

%% Every {K, Elem} some ok read shows.
observed(Orders, Reads) ->
    Compatible = [{K, X} || {K, #{order := O}} <- maps:to_list(Orders), X <- tuple_to_list(O)],
    Others = [{K, X} || #{key := K, list := L, compatible := false} <- Reads, X <- L],
    maps:from_list([{KX, true} || KX <- Compatible ++ Others]).

%% The last element of a read.
last(#{len := 0}, _Orders) -> empty;
last(#{key := K, len := N, compatible := true}, Orders) ->
    {ok, element(N, maps:get(raw, maps:get(K, Orders)))};
last(#{list := L}, _Orders) ->
    {ok, lists:last(L)}.

%%% Read anomalies.

duplicates(Reads, Orders, TxnMap) ->
    [#{type => duplicate, key => K, read => L, duplicated => Dups,
       ops => [entry_of(T, TxnMap)]}
     || #{txn := T, key := K, list := L, len := N, compatible := C} <- Reads,
        N >= maps:get(first_dup, maps:get(K, Orders)) orelse not C,
        (Dups = L -- lists:usort(L)) =/= []].

%% One anomaly per element, at the first read that shows it. Only keys with
%% such an element are scanned read by read.
g1a(Reads, Observed, Writers, TxnMap) ->
    BadByKey = maps:fold(fun({K, X}, true, M) ->
                                 case aborted(K, X, Writers, TxnMap) of
                                     true -> maps:update_with(K, fun(L) -> [X | L] end, [X], M);
                                     false -> M
                                 end
                         end, #{}, Observed),
    first_per_element(
      fun(#{txn := R, key := K, list := L}) ->
              [{{K, X}, case writer(K, X, Writers) of
                            none ->
                                #{type => 'G1a', key => K, element => X, writer => none,
                                  ops => [entry_of(R, TxnMap)]};
                            W ->
                                #{type => 'G1a', key => K, element => X,
                                  ops => [entry_of(R, TxnMap), entry_of(W, TxnMap)]}
                        end}
               || X <- lists:sort(maps:get(K, BadByKey, [])), lists:member(X, L)]
      end, [R || R = #{key := K} <- Reads, is_map_key(K, BadByKey)]).

aborted(K, X, Writers, TxnMap) ->
    case writer(K, X, Writers) of
        none -> true;
        W -> maps:get(type, maps:get(W, TxnMap)) =:= fail
    end.

g1b(Reads, Orders, Writers, TxnMap) ->
    first_per_element(
      fun(Read = #{txn := R, key := K}) ->
              Last = last(Read, Orders),
              case Last =/= empty andalso maps:find({K, element(2, Last)}, Writers) of
                  {ok, {W, _}} when W =/= R ->
                      X = element(2, Last),
                      case last_append(W, K, TxnMap) of
                          X -> [];
                          Final -> [{{K, X}, #{type => 'G1b', key => K, element => X,
                                               final => Final,
                                               ops => [entry_of(R, TxnMap),
                                                       entry_of(W, TxnMap)]}}]
                      end;
                  _ ->
                      []
              end
      end, Reads).

last_append(W, K, TxnMap) ->
    lists:last([X || {append, K1, X} <- maps:get(mops, maps:get(W, TxnMap)), K1 =:= K]).

first_per_element(Fun, Reads) ->
    {Out, _} = lists:foldl(
                 fun(R, Acc) ->
                         lists:foldl(fun({Key, A}, {Out, Seen}) ->
                                             case is_map_key(Key, Seen) of
                                                 true -> {Out, Seen};
                                                 false -> {[A | Out], Seen#{Key => true}}
                                             end
                                     end, Acc, Fun(R))
                 end, {[], #{}}, Reads),
    lists:reverse(Out).

%%% The dependency graph.

%% Committed transactions: ok ones, and info ones with an observed append.
graph_nodes(Txns, Observed) ->
    maps:from_list(
      [{Id, true} || #{id := Id, type := Type, mops := Mops} <- Txns,
                     Type =:= ok orelse
                         (Type =:= info andalso
                          lists:any(fun({append, K, X}) -> is_map_key({K, X}, Observed);
                                       (_) -> false
                                    end, Mops))]).

%% Edges as {From, To, Kind, Detail}; never self-loops.
edges(Txns, Nodes, Writers, Orders, Reads, Observed, Opts) ->
    NodeWriter = fun(K, X) ->
                         W = writer(K, X, Writers),
                         case is_map_key(W, Nodes) of true -> W; false -> none end
                 end,
    Data = ww_edges(Orders, NodeWriter) ++ read_edges(Reads, Orders, NodeWriter)
        ++ unobserved_edges(Txns, Reads, Observed),
    Order = [E || maps:get(process, Opts, true), E <- process_edges(Txns, Nodes)]
        ++ [E || maps:get(realtime, Opts, true), E <- realtime_edges(Txns, Nodes)],
    [E || E = {From, To, _, _} <- Data ++ Order, From =/= To].

ww_edges(Orders, NodeWriter) ->
    lists:append(
      [begin
           Versions = [{X, W} || X <- tuple_to_list(Order),
                                 (W = NodeWriter(K, X)) =/= none],
           successive(K, Versions)
       end || {K, #{order := Order}} <- maps:to_list(Orders)]).

successive(K, [{X1, W1}, {X2, W2} = V2 | Rest]) ->
    [{W1, W2, ww, #{key => K, from => X1, to => X2}} || W1 =/= W2] ++ successive(K, [V2 | Rest]);
successive(_K, _) ->
    [].

%% wr and rw edges from each external read that is consistent with the
%% version order (an inconsistent one is already reported). Seen is the
%% number of distinct versions the read shows.
read_edges(Reads, Orders, NodeWriter) ->
    lists:append(
      [begin
           #{order := Order, distinct := Distinct} = maps:get(K, Orders),
           Seen = case N of 0 -> 0; _ -> element(N, Distinct) end,
           Wr = case prev_version(Order, Seen, K, NodeWriter) of
                    {Last, LW} -> [{LW, R, wr, #{key => K, element => Last}}];
                    none -> []
                end,
           Rw = case next_version(Order, Seen + 1, K, NodeWriter) of
                    {Next, NW} -> [{R, NW, rw, #{key => K, next => Next,
                                                 read => case Seen of
                                                             0 -> nil;
                                                             _ -> element(Seen, Order)
                                                         end}}];
                    none -> []
                end,
           Wr ++ Rw
       end || #{txn := R, key := K, len := N, external := true, compatible := true} <- Reads]).

%% The latest version at or before I (the first after I) written by a
%% committed transaction.
prev_version(_Order, 0, _K, _NodeWriter) ->
    none;
prev_version(Order, I, K, NodeWriter) ->
    X = element(I, Order),
    case NodeWriter(K, X) of
        none -> prev_version(Order, I - 1, K, NodeWriter);
        W -> {X, W}
    end.

next_version(Order, I, _K, _NodeWriter) when I > tuple_size(Order) ->
    none;
next_version(Order, I, K, NodeWriter) ->
    X = element(I, Order),
    case NodeWriter(K, X) of
        none -> next_version(Order, I + 1, K, NodeWriter);
        W -> {X, W}
    end.

%% An ok append no read ever shows: the first external read of its key
%% invoked after the append's transaction completed did not see it.
unobserved_edges(Txns, Reads, Observed) ->
    Calls = maps:from_list([{Id, C} || #{id := Id, call := C} <- Txns]),
    ExternalByKey =
        lists:foldl(fun(#{txn := R, key := K, external := true}, M) ->
                            maps:update_with(K, fun(L) -> [{maps:get(R, Calls), R} | L] end,
                                             [{maps:get(R, Calls), R}], M);
                       (_, M) -> M
                    end, #{}, Reads),
    Sorted = maps:map(fun(_, L) -> list_to_tuple(lists:sort(L)) end, ExternalByKey),
    [{R, T, rw, #{key => K, next => X, unobserved => true}}
     || #{id := T, type := ok, ret := Ret, mops := Mops} <- Txns,
        {append, K, X} <- Mops,
        not is_map_key({K, X}, Observed),
        (R = first_after(maps:get(K, Sorted, {}), Ret)) =/= none].

%% The first {Call, Id} in a sorted tuple with Call > Pos (binary search).
first_after(Tuple, Pos) -> first_after(Tuple, Pos, 1, tuple_size(Tuple) + 1).
first_after(Tuple, _Pos, Lo, Hi) when Lo >= Hi ->
    case Lo =< tuple_size(Tuple) of
        true -> element(2, element(Lo, Tuple));
        false -> none
    end;
first_after(Tuple, Pos, Lo, Hi) ->
    Mid = (Lo + Hi) div 2,
    case element(1, element(Mid, Tuple)) > Pos of
        true -> first_after(Tuple, Pos, Lo, Mid);
        false -> first_after(Tuple, Pos, Mid + 1, Hi)
    end.

process_edges(Txns, Nodes) ->
    ByProc = lists:foldl(fun(#{id := Id, process := P, call := C}, M) ->
                                 case is_map_key(Id, Nodes) of
                                     true -> maps:update_with(P, fun(L) -> [{C, Id} | L] end,
                                                              [{C, Id}], M);
                                     false -> M
                                 end
                         end, #{}, Txns),
    lists:append([chain(P, [Id || {_, Id} <- lists:sort(L)]) || {P, L} <- maps:to_list(ByProc)]).

chain(P, [A, B | Rest]) -> [{A, B, process, #{process => P}} | chain(P, [B | Rest])];
chain(_, _) -> [].

%% Sweep over invoke and completion events in history order. Recent holds
%% the completed transactions not known to precede another completed one;
%% an invoked transaction is linked from all of them.
realtime_edges(Txns, Nodes) ->
    Events = lists:sort(
               lists:append(
                 [[{C, invoke, Id} | [{Ret, complete, Id} || is_integer(Ret)]]
                  || #{id := Id, call := C, ret := Ret} <- Txns, is_map_key(Id, Nodes)])),
    sweep(Events, #{}, #{}, []).

sweep([], _Recent, _Preds, Acc) ->
    Acc;
sweep([{_, invoke, Id} | Es], Recent, Preds, Acc) ->
    Ps = maps:keys(Recent),
    Acc1 = lists:foldl(fun(P, A) -> [{P, Id, realtime, #{}} | A] end, Acc, Ps),
    sweep(Es, Recent, Preds#{Id => Ps}, Acc1);
sweep([{_, complete, Id} | Es], Recent, Preds, Acc) ->
    Recent1 = maps:without(maps:get(Id, Preds), Recent),
    sweep(Es, Recent1#{Id => true}, maps:remove(Id, Preds), Acc).

%% Adjacency lists with the strongest-evidence edge kind first for each
%% target, so searches that accept several kinds report the least
%% anomalous one (ww before wr before order edges before rw).
graph(Edges) ->
    Rev = lists:foldl(fun({F, T, Kind, D}, G) ->
                              maps:update_with(F, fun(L) -> [{T, {Kind, D}} | L] end,
                                               [{T, {Kind, D}}], G)
                      end, #{}, Edges),
    maps:map(fun(_, L) -> lists:sort(fun({_, {K1, _}}, {_, {K2, _}}) ->
                                             rank(K1) =< rank(K2)
                                     end, lists:reverse(L))
             end, Rev).

rank(ww) -> 0;
rank(wr) -> 1;
rank(process) -> 2;
rank(realtime) -> 3;
rank(rw) -> 4.

count_edges(Edges) ->
    lists:foldl(fun({_, _, K, _}, M) -> maps:update_with(K, fun(N) -> N + 1 end, 1, M) end,
                #{ww => 0, wr => 0, rw => 0, process => 0, realtime => 0}, Edges).

%%% Cycles.

%% Finds and classifies cycles in one strongly connected component.
cycles(Scc, Graph, Limit, TxnMap) ->
    InScc = maps:from_list([{V, true} || V <- Scc]),
    Sub = maps:from_list([{V, [E || E = {W, _} <- maps:get(V, Graph, []), is_map_key(W, InScc)]}
                          || V <- Scc]),
    G0 = sub_cycles(Sub, fun g0_kind/1, ww, Limit),
    G1c = sub_cycles(Sub, fun g1_kind/1, wr, Limit),
    {GSingle, G2} = rw_cycles(Sub, InScc, Limit),
    Found = G0 ++ G1c ++ GSingle ++ G2,
    Cycles = case Found of
                 [] -> fallback(Sub, InScc, Scc, Limit);
                 _ -> Found
             end,
    [report(C, TxnMap) || C <- Cycles].

g0_kind({Kind, _}) -> Kind =/= wr andalso Kind =/= rw.
g1_kind({Kind, _}) -> Kind =/= rw.

%% For each component of Sub restricted to Keep-edges, a cycle through one
%% of its Kind edges (G0: ww, G1c: wr).
sub_cycles(Sub, Keep, Kind, Limit) ->
    lists:append(
      [begin
           In = maps:from_list([{V, true} || V <- Comp]),
           case [{U, V, L} || U <- Comp, {V, L = {K, _}} <- maps:get(U, Sub),
                              K =:= Kind, is_map_key(V, In)] of
               [] -> [];
               [{U, V, L} | _] ->
                   case strata_checker_graph:path(Sub, Keep, fun(W) -> is_map_key(W, In) end,
                                                  {V, U}, Limit) of
                       {ok, Path, _} -> [[{U, V, L} | Path]];
                       _ -> []
                   end
           end
       end || Comp <- strata_checker_graph:sccs(Sub, Keep)]).

%% G-single: an rw edge closed by a path without rw edges. G2: an rw edge
%% that no rw-free path closes, closed by any path (so two or more rw).
rw_cycles(Sub, InScc, Limit) ->
    InScope = fun(W) -> is_map_key(W, InScc) end,
    RwEdges = [{U, V, L} || {U, Es} <- lists:sort(maps:to_list(Sub)),
                            {V, L = {rw, _}} <- Es],
    rw_cycles(RwEdges, Sub, InScope, Limit, none, none).

rw_cycles(Edges, _Sub, _InScope, Limit, Single, G2)
  when Edges =:= []; Limit =< 0; Single =/= none andalso G2 =/= none ->
    {[C || Single =/= none, C <- [Single]], [C || G2 =/= none, C <- [G2]]};
rw_cycles([{U, V, L} | Rest], Sub, InScope, Limit, Single, G2) ->
    case strata_checker_graph:path(Sub, fun g1_kind/1, InScope, {V, U}, Limit) of
        {ok, Path, Work} when Single =:= none ->
            rw_cycles(Rest, Sub, InScope, Limit - Work, [{U, V, L} | Path], G2);
        {ok, _Path, Work} ->
            rw_cycles(Rest, Sub, InScope, Limit - Work, Single, G2);
        {none, Work} when G2 =:= none ->
            case strata_checker_graph:path(Sub, fun(_) -> true end, InScope, {V, U},
                                           Limit - Work) of
                {ok, Path, Work2} ->
                    rw_cycles(Rest, Sub, InScope, Limit - Work - Work2, Single,
                              [{U, V, L} | Path]);
                {_, Work2} ->
                    rw_cycles(Rest, Sub, InScope, Limit - Work - Work2, Single, G2)
            end;
        {_, Work} ->
            rw_cycles(Rest, Sub, InScope, Limit - Work, Single, G2)
    end.

%% Search limits hit before any class was found: report one cycle found
%% from the component's first node, classified by its own edges.
fallback(Sub, InScc, [V | _], Limit) ->
    case strata_checker_graph:path(Sub, fun(_) -> true end,
                                   fun(W) -> is_map_key(W, InScc) end, {V, V}, Limit) of
        {ok, Path, _} -> [Path];
        _ -> []
    end.

classify(Steps) ->
    Kinds = [K || {_, _, {K, _}} <- Steps],
    case {length([x || rw <- Kinds]), lists:member(wr, Kinds)} of
        {0, false} -> 'G0';
        {0, true} -> 'G1c';
        {1, _} -> 'G-single';
        _ -> 'G2'
    end.

report(Steps, TxnMap) ->
    Entry = fun(Id) -> entry_of(Id, TxnMap) end,
    #{type => classify(Steps),
      ops => [Entry(From) || {From, _, _} <- Steps],
      cycle => [D#{kind => K,
                   from => maps:get(index, Entry(From), undefined),
                   to => maps:get(index, Entry(To), undefined)}
                || {From, To, {K, D}} <- Steps]}.
