%%% @doc Directed-graph algorithms for the checkers: strongly connected
%%% components (Tarjan, iterative so deep graphs cannot overflow anything)
%%% and shortest paths by breadth-first search, both over a labelled
%%% adjacency map `#{Node => [{Succ, Label}]}'.
-module(strata_checker_graph).

-export([sccs/1, sccs/2, path/5]).

-export_type([graph/0]).

-type graph() :: #{term() => [{term(), term()}]}.

%% @doc The strongly connected components of Graph with more than one node
%% (a component of one node is a cycle only through a self-loop, and the
%% checkers never add self-loops).
-spec sccs(graph()) -> [[term()]].
sccs(Graph) ->
    sccs(Graph, fun(_) -> true end).

%% @doc Like {@link sccs/1}, following only edges whose label satisfies
%% Keep.
-spec sccs(graph(), fun((term()) -> boolean())) -> [[term()]].
sccs(Graph, Keep) ->
    Succs = fun(V) -> [W || {W, L} <- maps:get(V, Graph, []), Keep(L)] end,
    S0 = #{index => 0, idx => #{}, low => #{}, on => #{}, stack => [], out => []},
    S = lists:foldl(fun(V, S1) ->
                            case is_map_key(V, maps:get(idx, S1)) of
                                true -> S1;
                                false -> strongconnect(V, Succs, S1)
                            end
                    end, S0, lists:sort(maps:keys(Graph))),
    [C || C <- maps:get(out, S), length(C) > 1].

strongconnect(V, Succs, S) ->
    tarjan([{V, Succs(V)}], Succs, visit(V, S)).

visit(V, S = #{index := I, idx := Idx, low := Low, on := On, stack := St}) ->
    S#{index := I + 1, idx := Idx#{V => I}, low := Low#{V => I},
       on := On#{V => true}, stack := [V | St]}.

tarjan([], _Succs, S) ->
    S;
tarjan([{V, [W | Ws]} | Rest], Succs, S = #{idx := Idx, on := On, low := Low}) ->
    case is_map_key(W, Idx) of
        false ->
            tarjan([{W, Succs(W)}, {V, Ws} | Rest], Succs, visit(W, S));
        true ->
            S1 = case is_map_key(W, On) of
                     true -> S#{low := Low#{V => min(maps:get(V, Low), maps:get(W, Idx))}};
                     false -> S
                 end,
            tarjan([{V, Ws} | Rest], Succs, S1)
    end;
tarjan([{V, []} | Rest], Succs, S = #{idx := Idx, low := Low}) ->
    VLow = maps:get(V, Low),
    S1 = case VLow =:= maps:get(V, Idx) of
             true -> pop_component(V, S, []);
             false -> S
         end,
    S2 = case Rest of
             [{U, _} | _] ->
                 Low1 = maps:get(low, S1),
                 S1#{low := Low1#{U => min(maps:get(U, Low1), VLow)}};
             [] ->
                 S1
         end,
    tarjan(Rest, Succs, S2).

pop_component(V, S = #{stack := [W | St], on := On, out := Out}, Acc) ->
    S1 = S#{stack := St, on := maps:remove(W, On)},
    case W =:= V of
        true -> S1#{out := [[W | Acc] | Out]};
        false -> pop_component(V, S1#{out := Out}, [W | Acc])
    end.

%% @doc A shortest path From ->* To (From =/= To, or From =:= To for a cycle
%% through From of length >= 1) following edges whose label satisfies Keep
%% and whose target satisfies InScope. Explores at most Limit edges.
%% Returns `{ok, [{From, To, Label}], Work}', `{none, Work}' or
%% `{limit, Work}'.
-spec path(graph(), fun((term()) -> boolean()), fun((term()) -> boolean()),
           {term(), term()}, non_neg_integer()) ->
          {ok, [{term(), term(), term()}], non_neg_integer()}
              | {none, non_neg_integer()} | {limit, non_neg_integer()}.
path(Graph, Keep, InScope, {From, To}, Limit) ->
    bfs(queue:from_list([From]), #{}, Graph, Keep, InScope, From, To, 0, Limit).

bfs(Queue, Parents, Graph, Keep, InScope, From, To, Work, Limit) ->
    case queue:out(Queue) of
        {empty, _} ->
            {none, Work};
        {{value, V}, Q1} ->
            Edges = [E || E = {W, L} <- maps:get(V, Graph, []), Keep(L), InScope(W)],
            expand(Edges, V, Q1, Parents, Graph, Keep, InScope, From, To, Work, Limit)
    end.

expand(_Edges, _V, _Q, _Parents, _Graph, _Keep, _InScope, _From, _To, Work, Limit)
  when Work >= Limit ->
    {limit, Work};
expand([], _V, Q, Parents, Graph, Keep, InScope, From, To, Work, Limit) ->
    bfs(Q, Parents, Graph, Keep, InScope, From, To, Work, Limit);
expand([{W, L} | Es], V, Q, Parents, Graph, Keep, InScope, From, To, Work, Limit) ->
    if
        W =:= To ->
            {ok, unwind(V, Parents, From, [{V, W, L}]), Work + 1};
        W =:= From; is_map_key(W, Parents) ->
            expand(Es, V, Q, Parents, Graph, Keep, InScope, From, To, Work + 1, Limit);
        true ->
            expand(Es, V, queue:in(W, Q), Parents#{W => {V, L}}, Graph, Keep, InScope,
                   From, To, Work + 1, Limit)
    end.

unwind(From, _Parents, From, Acc) ->
    Acc;
unwind(V, Parents, From, Acc) ->
    {P, L} = maps:get(V, Parents),
    unwind(P, Parents, From, [{P, V, L} | Acc]).
