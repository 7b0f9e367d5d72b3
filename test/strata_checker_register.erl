%%% @doc Per-key linearizability of a read / write / cas register.
%%%
%%% Operations: `read' `{K, V}' (the `ok' completion carries the value read;
%%% `nil' means the key was absent), `write' `{K, V}', `cas' `{K, {Old, New}}'
%%% (a cas that found another value completes as `fail'). Linearizability is
%%% local (Herlihy and Wing), so each key is checked on its own
%%% (P-compositionality).
%%%
%%% The search is Wing and Gong's, with Lowe's memoization: a configuration is
%%% the set of operations linearized so far plus the register value, and a
%%% configuration already explored is never explored again. An operation can
%%% be linearized next when it is invoked before the earliest return among
%%% the `ok' operations not yet linearized. The search succeeds when every `ok'
%%% operation is linearized; `info' operations (ret = infinity) may be
%%% linearized at any point after their invocation, or never.
%%%
%%% The linearized set is kept as `{Low, Rel, Pending}': every operation before
%%% position `Low' is linearized except the `info' ones listed in `Pending',
%%% and `Rel' is a bitmask of linearized operations from `Low' on. This keeps
%%% memo keys small however long the history is.
%%%
%%% Reductions that do not change the verdict: `fail' operations and `info'
%%% reads have no effect and are dropped; an `info' write or cas whose new
%%% value is never read by an `ok' read and is not the expected value of any
%%% cas is dropped too (linearizing it can only make later reads and cases
%%% fail, never succeed, and writes are allowed in every state).
%%%
%%% Options: `budget' (default 200000) configurations per key before giving up
%%% with `unknown'; `initial' (default `nil') the value of an absent key.
-module(strata_checker_register).

-export([check/2]).

-define(DEFAULT_BUDGET, 200000).

-record(frame, {low :: non_neg_integer(),
                rel :: non_neg_integer(),
                pending :: [non_neg_integer()],
                state :: term(),
                count :: non_neg_integer(),
                cands :: [non_neg_integer()],
                path :: [non_neg_integer()]}).

%% @doc Check paired operations (from `strata_history:ops/1'); called by
%% `strata_checker:check/2'.
-spec check([strata_history:op()], map()) ->
          #{valid := boolean() | unknown, anomalies := [map()], stats := map()}.
check(Ops, Opts) ->
    Budget = maps:get(budget, Opts, ?DEFAULT_BUDGET),
    Initial = maps:get(initial, Opts, nil),
    Classified = [classify(Op) || Op <- Ops],
    Kept = [C || C = {_K, _} <- Classified],
    ByKey = group(Kept),
    Results = [{K, check_key(K, KeyOps, Initial, Budget)}
               || {K, KeyOps} <- lists:sort(maps:to_list(ByKey))],
    Anomalies = [A || {_, {fail, _, A}} <- Results],
    Unknown = [K || {K, {unknown, _}} <- Results],
    Explored = lists:sum([element(2, R) || {_, R} <- Results]),
    OkCount = length([x || {_, #{kind := ok}} <- Kept]),
    Valid = if Anomalies =/= [] -> false;
               Unknown =/= [] -> unknown;
               OkCount =:= 0 -> unknown;
               true -> true
            end,
    #{valid => Valid,
      anomalies => Anomalies,
      stats => #{keys => maps:size(ByKey),
                 states_explored => Explored,
                 unknown_keys => Unknown,
                 dropped => length(Classified) - length(Kept)}}.

%% Turns an op into {Key, RegisterOp} or dropped.
classify(#{type := fail}) ->
    dropped;
classify(#{f := read, type := info}) ->
    dropped;
classify(Op = #{f := read, type := ok, value := Value}) ->
    {K, V} = pair(Value, Op),
    {K, reg(Op, ok, read, V)};
classify(Op = #{f := write, type := Type, invoke := #{value := Value}}) ->
    {K, V} = pair(Value, Op),
    {K, reg(Op, Type, write, V)};
classify(Op = #{f := cas, type := Type, invoke := #{value := Value}}) ->
    case pair(Value, Op) of
        {K, {Old, New}} -> {K, reg(Op, Type, cas, {Old, New})};
        _ -> error({malformed_history, {bad_cas_value, Op}})
    end;
classify(Op) ->
    error({malformed_history, {unknown_register_f, maps:get(invoke, Op)}}).

pair({K, V}, _Op) -> {K, V};
pair(_, Op) -> error({malformed_history, {bad_register_value, maps:get(invoke, Op)}}).

reg(#{call := Call, ret := Ret} = Op, Kind, F, Arg) ->
    #{call => Call, ret => Ret, kind => Kind, f => F, arg => Arg, op => Op}.

group(Kept) ->
    Rev = lists:foldl(fun({K, R}, Acc) -> maps:update_with(K, fun(L) -> [R | L] end, [R], Acc) end,
                      #{}, Kept),
    maps:map(fun(_, L) -> lists:reverse(L) end, Rev).

check_key(K, KeyOps0, Initial, Budget) ->
    KeyOps = drop_unobserved_info(KeyOps0),
    Ops = list_to_tuple(KeyOps),
    N = tuple_size(Ops),
    case search(Ops, N, Initial, Budget) of
        {ok, Explored} -> {ok, Explored};
        {unknown, Explored} -> {unknown, Explored};
        {fail, Explored, Deepest} -> {fail, Explored, report(K, Ops, N, Deepest)}
    end.

drop_unobserved_info(KeyOps) ->
    Observed = maps:from_list(
                 [{V, true} || #{kind := ok, f := read, arg := V} <- KeyOps] ++
                     [{Old, true} || #{f := cas, arg := {Old, _}} <- KeyOps]),
    [R || R <- KeyOps, keep(R, Observed)].

keep(#{kind := ok}, _) -> true;
keep(#{f := write, arg := V}, Observed) -> is_map_key(V, Observed);
keep(#{f := cas, arg := {_, New}}, Observed) -> is_map_key(New, Observed).

%%% The search.

search(Ops, N, Initial, Budget) ->
    {Low, Rel, Pending} = advance(0, 0, [], Ops, N),
    case Low =:= N of
        true ->
            {ok, 0};
        false ->
            Root = #frame{low = Low, rel = Rel, pending = Pending, state = Initial,
                          count = 0, path = [],
                          cands = cands(Low, Rel, Pending, Ops, N)},
            loop([Root], #{}, 0, Root, Ops, N, Budget)
    end.

loop([], _Visited, Explored, Deepest, _Ops, _N, _Budget) ->
    {fail, Explored, Deepest};
loop([#frame{cands = []} | Rest], Visited, Explored, Deepest, Ops, N, Budget) ->
    loop(Rest, Visited, Explored, Deepest, Ops, N, Budget);
loop([F = #frame{cands = [C | Cs]} | Rest], Visited, Explored, Deepest, Ops, N, Budget) ->
    F1 = F#frame{cands = Cs},
    #{f := Fn, arg := Arg, kind := Kind} = element(C + 1, Ops),
    case step(F#frame.state, Fn, Arg) of
        false ->
            loop([F1 | Rest], Visited, Explored, Deepest, Ops, N, Budget);
        {ok, State} ->
            {Low, Rel, Pending} = linearize(C, F, Ops, N),
            Key = {Low, Rel, Pending, State},
            if
                Low =:= N ->
                    {ok, Explored + 1};
                is_map_key(Key, Visited) ->
                    loop([F1 | Rest], Visited, Explored, Deepest, Ops, N, Budget);
                Explored >= Budget ->
                    {unknown, Explored};
                true ->
                    Count = case Kind of ok -> F#frame.count + 1; info -> F#frame.count end,
                    Child = #frame{low = Low, rel = Rel, pending = Pending, state = State,
                                   count = Count, path = [C | F#frame.path],
                                   cands = cands(Low, Rel, Pending, Ops, N)},
                    Deepest1 = case Count > Deepest#frame.count of
                                   true -> Child;
                                   false -> Deepest
                               end,
                    loop([Child, F1 | Rest], Visited#{Key => true}, Explored + 1,
                         Deepest1, Ops, N, Budget)
            end
    end.

%% The register's sequential specification.
step(State, read, V) when State =:= V -> {ok, State};
step(_State, read, _V) -> false;
step(_State, write, V) -> {ok, V};
step(State, cas, {Old, New}) when State =:= Old -> {ok, New};
step(_State, cas, _) -> false.

linearize(P, #frame{low = Low, rel = Rel, pending = Pending}, Ops, N) when P < Low ->
    advance(Low, Rel, lists:delete(P, Pending), Ops, N);
linearize(P, #frame{low = Low, rel = Rel, pending = Pending}, Ops, N) ->
    advance(Low, Rel bor (1 bsl (P - Low)), Pending, Ops, N).

%% Moves Low to the first ok operation not linearized; info operations left
%% behind unlinearized go to Pending (kept sorted).
advance(Low, _Rel, Pending, _Ops, N) when Low >= N ->
    {N, 0, Pending};
advance(Low, Rel, Pending, Ops, N) ->
    case {Rel band 1, element(Low + 1, Ops)} of
        {1, _} -> advance(Low + 1, Rel bsr 1, Pending, Ops, N);
        {0, #{kind := info}} -> advance(Low + 1, Rel bsr 1, Pending ++ [Low], Ops, N);
        {0, #{kind := ok}} -> {Low, Rel, Pending}
    end.

%% Operations that may be linearized next: not yet linearized and invoked
%% before the earliest return of an unlinearized ok operation. Ok operations
%% come first, by return, then info ones (optional, so tried last).
cands(Low, Rel, Pending, Ops, N) ->
    {OkCands, InfoCands} = scan(Low, Rel, infinity, Ops, N, [], []),
    [P || {_, P} <- lists:sort(OkCands)] ++ lists:reverse(InfoCands) ++ Pending.

scan(P, _Rel, _MinRet, _Ops, N, OkAcc, InfoAcc) when P >= N ->
    {OkAcc, InfoAcc};
scan(P, Rel, MinRet, Ops, N, OkAcc, InfoAcc) ->
    case element(P + 1, Ops) of
        #{call := Call} when Call > MinRet ->
            %% Numbers sort before atoms, so nothing is > infinity.
            {OkAcc, InfoAcc};
        _ when Rel band 1 =:= 1 ->
            scan(P + 1, Rel bsr 1, MinRet, Ops, N, OkAcc, InfoAcc);
        #{kind := ok, ret := Ret} ->
            scan(P + 1, Rel bsr 1, min(MinRet, Ret), Ops, N, [{Ret, P} | OkAcc], InfoAcc);
        #{kind := info} ->
            scan(P + 1, Rel bsr 1, MinRet, Ops, N, OkAcc, [P | InfoAcc])
    end.

%%% Reporting.

report(K, Ops, N, #frame{low = Low, rel = Rel, pending = Pending, state = State,
                         count = Count, path = Path}) ->
    Cands = cands(Low, Rel, Pending, Ops, N),
    OkCands = [P || P <- Cands, maps:get(kind, element(P + 1, Ops)) =:= ok],
    Blocking = hd(OkCands),
    #{type => nonlinearizable,
      key => K,
      ops => [entry(element(P + 1, Ops)) || P <- lists:sublist(OkCands, 10)],
      op => entry(element(Blocking + 1, Ops)),
      state => State,
      linearized => Count,
      previous => [entry(element(P + 1, Ops)) || P <- lists:reverse(lists:sublist(Path, 5))],
      explanation => "op cannot take effect at any point real time allows: the longest "
                     "legal order found ends with previous and leaves the register at "
                     "state; ops lists op and the ok ops concurrent with it"}.

entry(#{op := #{complete := none, invoke := Inv}}) -> Inv;
entry(#{op := #{complete := Done}}) -> Done.
