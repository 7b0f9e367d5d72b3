%%% @doc Random histories that are valid by construction, and corruptions of
%%% them that are invalid by construction, for testing and benchmarking the
%%% checkers.
%%%
%%% The generators simulate clients of a store that is correct: every
%%% operation is invoked, then takes effect atomically at one instant (its
%%% linearization point) on a single true state, then completes; the
%%% scheduler interleaves these steps at random over `concurrency' clients.
%%% Some operations end `info' (before or after taking effect, the client is
%%% then replaced by a fresh process id) or `fail' (no effect). Written
%%% values and appended elements are unique, so a corruption can be chosen
%%% that no valid execution explains. All randomness comes from the seed.
-module(strata_checker_gen).

-export([register_history/3, register_history/4,
         list_append_history/2, list_append_history/3,
         corrupt_register/2, corrupt_list_append/2]).

-define(CONCURRENCY, 5).

%% @doc A linearizable read/write/cas register history over keys 1..Keys
%% with Ops operations (see {@link register_history/4}).
-spec register_history(integer(), non_neg_integer(), pos_integer()) -> strata_history:history().
register_history(Seed, Ops, Keys) ->
    register_history(Seed, Ops, Keys, #{}).

%% @doc As {@link register_history/3}; Opts: `concurrency' (default 5),
%% `info_rate' (default 0.01, per step: an op ends info), `fail_rate'
%% (default 0.01: a write or cas is rejected without effect), `values'
%% (default `unique': every write and cas writes a fresh value; an integer N
%% draws values from 1..N, as Jepsen's register workloads do, which makes
%% the search harder; {@link corrupt_register/2} needs unique values).
-spec register_history(integer(), non_neg_integer(), pos_integer(), map()) ->
          strata_history:history().
register_history(Seed, Ops, Keys, Opts) ->
    Values = maps:get(values, Opts, unique),
    Model = #{init => fun() -> #{next => 1, keys => Keys, values => Values} end,
              invoke => fun register_invoke/2,
              apply => fun register_apply/3},
    simulate(Seed, Ops, Model, Opts).

register_invoke(Rand, S = #{next := Next, keys := Keys, values := Values}) ->
    {K, R1} = rand:uniform_s(Keys, Rand),
    {X, R2} = rand:uniform_s(R1),
    {New, R3} = case Values of
                    unique -> {Next, R2};
                    N -> rand:uniform_s(N, R2)
                end,
    if
        X < 0.5 ->
            {{read, {K, nil}}, R3, S};
        X < 0.8 ->
            {{write, {K, New}}, R3, S#{next := Next + 1}};
        true ->
            {Y, R4} = rand:uniform_s(R3),
            Cur = maps:get({value, K}, S, nil),
            {Old, R5} = case Y < 0.7 orelse Next =:= 1 of
                            true -> {Cur, R4};
                            false -> rand:uniform_s(Next - 1, R4)
                        end,
            {{cas, {K, {Old, New}}}, R5, S#{next := Next + 1}}
    end.

register_apply(read, {K, _}, S) ->
    {ok, {K, maps:get({value, K}, S, nil)}, S};
register_apply(write, {K, V}, S) ->
    {ok, {K, V}, S#{{value, K} => V}};
register_apply(cas, {K, {Old, New}}, S) ->
    case maps:get({value, K}, S, nil) of
        Old -> {ok, {K, {Old, New}}, S#{{value, K} => New}};
        _ -> {fail, {K, {Old, New}}, S}
    end.

%% @doc A strictly serializable list-append history of Txns transactions
%% (see {@link list_append_history/3}).
-spec list_append_history(integer(), non_neg_integer()) -> strata_history:history().
list_append_history(Seed, Txns) ->
    list_append_history(Seed, Txns, #{}).

%% @doc As {@link list_append_history/2}; Opts: `concurrency' (default 5),
%% `active_keys' (default 8), `appends_per_key' (default 16, then the key is
%% retired and a fresh one used, which keeps lists short), `max_mops'
%% (default 4), `info_rate', `fail_rate' (default 0.01 and 0.02).
-spec list_append_history(integer(), non_neg_integer(), map()) -> strata_history:history().
list_append_history(Seed, Txns, Opts) ->
    Active = maps:get(active_keys, Opts, 8),
    Model = #{init => fun() -> #{next => 1, keys => lists:seq(1, Active), fresh => Active + 1,
                                 planned => #{},
                                 per_key => maps:get(appends_per_key, Opts, 16),
                                 max_mops => maps:get(max_mops, Opts, 4)}
                      end,
              invoke => fun txn_invoke/2,
              apply => fun txn_apply/3},
    simulate(Seed, Txns, Model, Opts#{fail_rate => maps:get(fail_rate, Opts, 0.02)}).

txn_invoke(Rand, S = #{max_mops := Max}) ->
    {N, R1} = rand:uniform_s(Max, Rand),
    {Mops, R2, S1} = mops(N, R1, S, []),
    {{txn, Mops}, R2, S1}.

mops(0, Rand, S, Acc) ->
    {lists:reverse(Acc), Rand, S};
mops(N, Rand, S = #{keys := Keys, next := Next, planned := Planned, per_key := PerKey,
                    fresh := Fresh}, Acc) ->
    {I, R1} = rand:uniform_s(length(Keys), Rand),
    K = lists:nth(I, Keys),
    {X, R2} = rand:uniform_s(R1),
    case X < 0.5 of
        true ->
            mops(N - 1, R2, S, [{r, K, nil} | Acc]);
        false ->
            Count = maps:get(K, Planned, 0) + 1,
            S1 = case Count >= PerKey of
                     true -> S#{keys := (Keys -- [K]) ++ [Fresh], fresh := Fresh + 1};
                     false -> S
                 end,
            mops(N - 1, R2, S1#{next := Next + 1, planned := Planned#{K => Count}},
                 [{append, K, Next} | Acc])
    end.

txn_apply(txn, Mops, S) ->
    {Done, S1} = lists:mapfoldl(
                   fun({r, K, _}, St) ->
                           {{r, K, maps:get({value, K}, St, nil)}, St};
                      ({append, K, E}, St) ->
                           {{append, K, E},
                            St#{{value, K} => maps:get({value, K}, St, []) ++ [E]}}
                   end, S, Mops),
    {ok, Done, S1}.

%%% The scheduler shared by both models.

simulate(Seed, Ops, Model = #{init := Init}, Opts) ->
    Conc = maps:get(concurrency, Opts, ?CONCURRENCY),
    Sim = #{rand => rand:seed_s(exsss, Seed),
            state => Init(),
            issued => 0,
            max => Ops,
            slots => maps:from_list([{S, {S, idle}} || S <- lists:seq(0, Conc - 1)]),
            conc => Conc,
            info_rate => maps:get(info_rate, Opts, 0.01),
            fail_rate => maps:get(fail_rate, Opts, 0.01),
            model => Model,
            time => 0,
            acc => []},
    run_sim(Sim).

run_sim(Sim = #{slots := Slots, issued := Issued, max := Max, rand := Rand}) ->
    Ready = [S || {S, {_, Phase}} <- lists:sort(maps:to_list(Slots)),
                  Phase =/= idle orelse Issued < Max],
    case Ready of
        [] ->
            Entries = lists:reverse(maps:get(acc, Sim)),
            [E#{index => I} || {I, E} <- lists:zip(lists:seq(0, length(Entries) - 1), Entries)];
        _ ->
            {I, R1} = rand:uniform_s(length(Ready), Rand),
            run_sim(act(lists:nth(I, Ready), Sim#{rand := R1}))
    end.

act(Slot, Sim = #{slots := Slots, model := #{invoke := Invoke, apply := Apply},
                  rand := Rand, state := St}) ->
    {P, Phase} = maps:get(Slot, Slots),
    case Phase of
        idle ->
            {{F, V}, R1, St1} = Invoke(Rand, St),
            emit(#{process => P, type => invoke, f => F, value => V},
                 Sim#{rand := R1, state := St1, issued := maps:get(issued, Sim) + 1,
                      slots := Slots#{Slot := {P, {invoked, F, V}}}});
        {invoked, F, V} ->
            {X, R1} = rand:uniform_s(Rand),
            InfoRate = maps:get(info_rate, Sim),
            FailRate = maps:get(fail_rate, Sim),
            Sim1 = Sim#{rand := R1},
            if
                X < InfoRate ->
                    crash(Slot, P, F, V, Sim1);
                X < InfoRate + FailRate, F =/= read ->
                    emit(#{process => P, type => fail, f => F, value => V},
                         Sim1#{slots := Slots#{Slot := {P, idle}}});
                true ->
                    {Type, V2, St1} = Apply(F, V, St),
                    Sim1#{state := St1, slots := Slots#{Slot := {P, {applied, F, V, Type, V2}}}}
            end;
        {applied, F, V, Type, V2} ->
            {X, R1} = rand:uniform_s(Rand),
            Sim1 = Sim#{rand := R1},
            case X < maps:get(info_rate, Sim) of
                true -> crash(Slot, P, F, V, Sim1);
                false -> emit(#{process => P, type => Type, f => F, value => V2},
                              Sim1#{slots := Slots#{Slot := {P, idle}}})
            end
    end.

crash(Slot, P, F, V, Sim = #{slots := Slots, conc := Conc}) ->
    emit(#{process => P, type => info, f => F, value => V, error => timeout},
         Sim#{slots := Slots#{Slot := {P + Conc, idle}}}).

emit(Entry, Sim = #{time := T, acc := Acc}) ->
    Sim#{time := T + 1000, acc := [Entry#{time => T} | Acc]}.

%%% Corruptions.

%% @doc Change the value of one `ok' read so that no linearization explains
%% it: a value that was certainly overwritten before the read began (a
%% value whose write completed before another ok write or cas began, which
%% completed before the read began; or `nil' once any ok write completed),
%% else an invented value. Returns `{History, Description}' or `none' when
%% the history has no `ok' read.
-spec corrupt_register(integer(), strata_history:history()) ->
          {strata_history:history(), map()} | none.
corrupt_register(Seed, History) ->
    Ops = strata_history:ops(History),
    Reads = [Op || Op = #{f := read, type := ok} <- Ops],
    case Reads of
        [] ->
            none;
        _ ->
            Rand = rand:seed_s(exsss, Seed),
            {I, R1} = rand:uniform_s(length(Reads), Rand),
            Read = #{call := Call, value := {K, _}, complete := Entry} = lists:nth(I, Reads),
            Writes = [Op || Op = #{type := ok, f := F, invoke := #{value := {K1, _}}} <- Ops,
                            F =:= write orelse F =:= cas, K1 =:= K],
            Before = [W || W = #{ret := Ret} <- Writes, Ret < Call],
            Stale = case Before of
                        [] -> [];
                        _ ->
                            {_, W2} = lists:max([{C, W} || W = #{call := C} <- Before]),
                            [nil | [written(W) || W = #{ret := Ret} <- Before,
                                                  Ret < maps:get(call, W2)]]
                    end,
            {Kind, V} = case Stale of
                            [] -> {invented, {invented, Seed}};
                            _ ->
                                {J, _} = rand:uniform_s(length(Stale), R1),
                                {stale, lists:nth(J, Stale)}
                        end,
            {replace(History, Entry, Entry#{value := {K, V}}),
             #{kind => Kind, index => maps:get(index, Entry), read => maps:get(value, Read),
               value => {K, V}}}
    end.

written(#{f := write, invoke := #{value := {_, V}}}) -> V;
written(#{f := cas, invoke := #{value := {_, {_, New}}}}) -> New.

%% @doc Change one read of an `ok' transaction so that no strictly
%% serializable execution explains it: drop the last element of a key's
%% first read when that element's (ok) writer completed before the reader
%% began, else add an element nobody appended. Returns `{History,
%% Description}' or `none' when no ok transaction reads.
-spec corrupt_list_append(integer(), strata_history:history()) ->
          {strata_history:history(), map()} | none.
corrupt_list_append(Seed, History) ->
    Ops = strata_history:ops(History),
    Writer = maps:from_list([{{K, E}, Op} || Op = #{f := txn, value := Mops} <- Ops,
                                             {append, K, E} <- Mops]),
    Reads = [{Op, I} || Op = #{f := txn, type := ok, value := Mops} <- Ops,
                        I <- lists:seq(1, length(Mops)), external_read(Mops, I)],
    case Reads of
        [] ->
            none;
        _ ->
            Stale = [{Op, I} || {Op = #{call := Call, value := Mops}, I} <- Reads,
                                {r, K, L} <- [lists:nth(I, Mops)], L =/= nil, L =/= [],
                                case maps:find({K, lists:last(L)}, Writer) of
                                    {ok, #{type := ok, ret := Ret}} -> Ret < Call;
                                    _ -> false
                                end],
            Rand = rand:seed_s(exsss, Seed),
            {Kind, Pool} = case Stale of
                               [] -> {invented, Reads};
                               _ -> {stale, Stale}
                           end,
            {N, _} = rand:uniform_s(length(Pool), Rand),
            {#{value := Mops, complete := Entry}, I} = lists:nth(N, Pool),
            {r, K, L} = lists:nth(I, Mops),
            L1 = case Kind of
                     stale -> lists:droplast(L);
                     invented -> norm(L) ++ [{invented, Seed}]
                 end,
            Mops1 = lists:sublist(Mops, I - 1) ++ [{r, K, L1}] ++ lists:nthtail(I, Mops),
            {replace(History, Entry, Entry#{value := Mops1}),
             #{kind => Kind, index => maps:get(index, Entry), key => K, read => L,
               corrupted => L1}}
    end.

%% The I-th micro-op is the transaction's first read of its key, before any
%% append to that key.
external_read(Mops, I) ->
    case lists:nth(I, Mops) of
        {r, K, _} ->
            not lists:any(fun({append, K1, _}) -> K1 =:= K;
                             ({r, K1, _}) -> K1 =:= K
                          end, lists:sublist(Mops, I - 1));
        _ ->
            false
    end.

norm(nil) -> [];
norm(L) -> L.

replace(History, Old, New) ->
    [case E =:= Old of true -> New; false -> E end || E <- History].
