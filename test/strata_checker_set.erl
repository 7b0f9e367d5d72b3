%%% @doc The set model: no acknowledged element is lost, nothing appears that
%%% was not added.
%%%
%%% Operations: `add' with value Element, and `read' whose `ok' value is the
%%% list of elements present.
%%% <ul>
%%% <li>`lost': an `ok' add that completed before a final read was invoked is
%%%     missing from that final read. The final reads are the `ok' reads
%%%     invoked after every add was invoked (or, if there is none, the last
%%%     `ok' read). Non-final reads are not required to be complete.</li>
%%% <li>`unexpected': an `ok' read (any, not only final) shows an element that
%%%     no add attempted, that only `fail' adds attempted, or whose every
%%%     non-failed add was invoked after the read completed.</li>
%%% </ul>
%%% `info' adds may or may not appear. Without any `ok' read the result is
%%% `unknown'.
-module(strata_checker_set).

-export([check/2]).

%% @doc Check paired operations; called by `strata_checker:check/2'.
-spec check([strata_history:op()], map()) ->
          #{valid := boolean() | unknown, anomalies := [map()], stats := map()}.
check(Ops, _Opts) ->
    Adds = [Op || Op = #{f := add} <- Ops],
    Reads = [Op || Op = #{f := read, type := ok} <- Ops],
    lists:foreach(fun(#{value := V, complete := E}) ->
                          is_list(V) orelse error({malformed_history, {set_read_not_a_list, E}})
                  end, Reads),
    AddsOf = lists:foldl(fun(A = #{invoke := #{value := E}}, M) ->
                                 maps:update_with(E, fun(L) -> [A | L] end, [A], M)
                         end, #{}, Adds),
    Finals = final_reads(Adds, Reads),
    Lost = lost(Adds, Finals),
    Unexpected = unexpected(Reads, AddsOf),
    Anomalies = Lost ++ Unexpected,
    FinalSeen = lists:foldl(fun(#{value := V}, S) -> sets:union(S, set(V)) end,
                            sets:new([{version, 2}]), Finals),
    #{valid => strata_checker:verdict(Anomalies, Reads),
      anomalies => Anomalies,
      stats => #{adds => count_types(Adds),
                 reads => length(Reads),
                 final_reads => length(Finals),
                 lost => length(Lost),
                 unexpected => length(Unexpected),
                 recovered => length([x || #{type := info, invoke := #{value := E}} <- Adds,
                                           sets:is_element(E, FinalSeen)]),
                 unconfirmed => unconfirmed(Adds, Finals)}}.

final_reads(_Adds, []) ->
    [];
final_reads(Adds, Reads) ->
    LastAddCall = lists:max([0 | [C || #{call := C} <- Adds]]),
    case [R || R = #{call := C} <- Reads, C > LastAddCall] of
        [] ->
            {_, Last} = lists:max([{Ret, R} || R = #{ret := Ret} <- Reads]),
            [Last];
        Finals ->
            Finals
    end.

%% An ok add must be in every final read invoked after the add completed.
lost(Adds, Finals) ->
    lists:append(
      [case [R || R = #{call := RCall, value := V} <- Finals,
                  RCall > Ret, not lists:member(E, V)] of
           [] -> [];
           [R | _] -> [#{type => lost, element => E,
                         ops => [Done, maps:get(complete, R)]}]
       end || #{type := ok, ret := Ret, complete := Done, invoke := #{value := E}} <- Adds]).

%% One anomaly per element, at the first read that shows it wrongly.
unexpected(Reads, AddsOf) ->
    {Anomalies, _} =
        lists:foldl(
          fun(R = #{value := V}, {Acc, Seen}) ->
                  lists:foldl(
                    fun(E, {Acc1, Seen1}) ->
                            case is_map_key(E, Seen1) of
                                true -> {Acc1, Seen1};
                                false ->
                                    case why_unexpected(E, R, AddsOf) of
                                        ok -> {Acc1, Seen1};
                                        A -> {[A | Acc1], Seen1#{E => true}}
                                    end
                            end
                    end, {Acc, Seen}, V)
          end, {[], #{}}, Reads),
    lists:reverse(Anomalies).

why_unexpected(E, R = #{ret := RRet}, AddsOf) ->
    Attempts = maps:get(E, AddsOf, []),
    Live = [A || A = #{type := T} <- Attempts, T =/= fail],
    Base = #{type => unexpected, element => E},
    case {Attempts, Live, [A || A = #{call := C} <- Live, C < RRet]} of
        {[], _, _} ->
            Base#{reason => never_added, ops => [maps:get(complete, R)]};
        {_, [], _} ->
            Base#{reason => failed_add,
                  ops => [maps:get(complete, R) | [entry(A) || A <- Attempts]]};
        {_, _, []} ->
            Base#{reason => read_before_add,
                  ops => [maps:get(complete, R) | [entry(A) || A <- Live]]};
        _ ->
            ok
    end.

%% Ok adds that completed only after every final read was invoked: neither
%% confirmed nor lost.
unconfirmed(_Adds, []) ->
    0;
unconfirmed(Adds, Finals) ->
    MaxCall = lists:max([C || #{call := C} <- Finals]),
    length([x || #{type := ok, ret := Ret} <- Adds, Ret > MaxCall]).

count_types(Ops) ->
    lists:foldl(fun(#{type := T}, Acc) -> maps:update_with(T, fun(N) -> N + 1 end, Acc) end,
                #{ok => 0, fail => 0, info => 0}, Ops).

set(L) -> sets:from_list(L, [{version, 2}]).

entry(#{complete := none, invoke := Inv}) -> Inv;
entry(#{complete := Done}) -> Done.
