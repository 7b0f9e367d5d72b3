%%% @doc Tests of the consistency checkers and of the history harness.
%%%
%%% Every anomaly class has a hand-built history that must be flagged with
%%% exactly that class and a minimally different valid variant that must
%%% pass, so a checker that flags everything fails as surely as one that
%%% passes everything. PropEr properties check generated valid histories
%%% (valid by construction) and corruptions of them (invalid by
%%% construction). The harness is tested against an ETS table as the store.
-module(strata_checker_SUITE).

-include_lib("common_test/include/ct.hrl").

-export([all/0, groups/0, suite/0]).
-export([harness_well_formed/1, harness_op_bound/1, harness_time_bound/1,
         harness_info_replaces_process/1, harness_timeouts_and_crashes/1,
         harness_write_read/1, harness_validate_rejects_malformed/1,
         harness_concat/1]).
-export([register_valid_concurrent/1, register_fail_never_takes_effect/1,
         register_stale_read/1, register_inverted_reads/1,
         register_info_takes_effect_late/1, register_cas/1,
         register_independent_keys/1, register_budget_unknown/1,
         register_unfinished_invoke/1, register_nothing_observed/1,
         checker_rejects_malformed/1]).
-export([bank_valid/1, bank_wrong_total/1, bank_negative/1,
         bank_missing_account/1, bank_no_reads/1]).
-export([set_valid/1, set_lost/1, set_unexpected/1, set_no_reads/1]).
-export([la_valid/1, la_g0/1, la_g1a/1, la_g1b/1, la_g1c/1, la_g_single/1,
         la_g2/1, la_duplicate/1, la_internal/1, la_incompatible_order/1,
         la_lost_append_realtime/1, la_stale_read_realtime/1, la_no_reads/1]).
-export([prop_register/1, prop_list_append/1, generated_large/1]).

suite() -> [{timetrap, {minutes, 3}}].

all() ->
    [{group, harness}, {group, register}, {group, bank}, {group, set},
     {group, list_append}, {group, properties}].

groups() ->
    [{harness, [], [harness_well_formed, harness_op_bound, harness_time_bound,
                    harness_info_replaces_process, harness_timeouts_and_crashes,
                    harness_write_read, harness_validate_rejects_malformed,
                    harness_concat]},
     {register, [], [register_valid_concurrent, register_fail_never_takes_effect,
                     register_stale_read, register_inverted_reads,
                     register_info_takes_effect_late, register_cas,
                     register_independent_keys, register_budget_unknown,
                     register_unfinished_invoke, register_nothing_observed,
                     checker_rejects_malformed]},
     {bank, [], [bank_valid, bank_wrong_total, bank_negative, bank_missing_account,
                 bank_no_reads]},
     {set, [], [set_valid, set_lost, set_unexpected, set_no_reads]},
     {list_append, [], [la_valid, la_g0, la_g1a, la_g1b, la_g1c, la_g_single, la_g2,
                        la_duplicate, la_internal, la_incompatible_order,
                        la_lost_append_realtime, la_stale_read_realtime, la_no_reads]},
     {properties, [], [prop_register, prop_list_append, generated_large]}].

%%% Helpers.

%% Builds a history from {Process, Type, F, Value} tuples in order.
h(Events) ->
    [maps:merge(#{index => I, time => I * 1000, process => P, type => T, f => F, value => V},
                case T of info -> #{error => timeout}; _ -> #{} end)
     || {I, {P, T, F, V}} <- lists:zip(lists:seq(0, length(Events) - 1), Events)].

types(#{anomalies := As}) -> lists:usort([T || #{type := T} <- As]).

%% The history must be flagged with exactly the anomaly types Expected.
flagged(Model, Expected, History) ->
    R = strata_checker:check(Model, History),
    case {maps:get(valid, R), types(R)} of
        {false, Expected} -> R;
        _ -> ct:fail({expected_anomalies, Expected, R})
    end.

passes(Model, History) ->
    R = strata_checker:check(Model, History),
    case R of
        #{valid := true, anomalies := []} -> R;
        _ -> ct:fail({expected_valid, R})
    end.

%% Hand-built register histories: {P, T, F, V} shorthands.
w(P, T, K, V) -> {P, T, write, {K, V}}.
r(P, invoke, K) -> {P, invoke, read, {K, nil}}.
r(P, T, K, V) -> {P, T, read, {K, V}}.
c(P, T, K, Old, New) -> {P, T, cas, {K, {Old, New}}}.
t(P, T, Mops) -> {P, T, txn, Mops}.

%% An invoke with the reads blanked, as a client would record it.
ti(P, Mops) -> {P, invoke, txn, [case M of {r, K, _} -> {r, K, nil}; _ -> M end || M <- Mops]}.

%%% The harness, against an ETS table.

ets_register(Tab) ->
    fun(read, {K, _}) ->
            case ets:lookup(Tab, K) of
                [{K, V}] -> {ok, {K, V}};
                [] -> {ok, {K, nil}}
            end;
       (write, {K, V}) ->
            true = ets:insert(Tab, {K, V}),
            {ok, {K, V}};
       (cas, {K, {Old, New}}) ->
            Done = case Old of
                       nil -> ets:insert_new(Tab, {K, New});
                       _ -> ets:select_replace(Tab, [{{K, Old}, [], [{const, {K, New}}]}]) =:= 1
                   end,
            case Done of
                true -> {ok, {K, {Old, New}}};
                false -> {fail, {K, {Old, New}}}
            end
    end.

register_generator(Keys) ->
    fun(_Process) ->
            K = rand:uniform(Keys),
            case rand:uniform(10) of
                N when N =< 5 -> {read, {K, nil}};
                N when N =< 8 -> {write, {K, erlang:unique_integer([positive])}};
                _ -> {cas, {K, {rand:uniform(20), erlang:unique_integer([positive])}}}
            end
    end.

harness_well_formed(_Config) ->
    Tab = ets:new(register, [public, set]),
    H = strata_history:run(#{clients => 4, ops => 400, time_ms => 20000,
                             generator => register_generator(3),
                             invoke => ets_register(Tab)}),
    ok = strata_history:validate(H),
    #{invoke := 400, ok := Ok, fail := Fail, info := 0} = strata_history:counts(H),
    400 = Ok + Fail,
    Indices = [I || #{index := I} <- H],
    Indices = lists:seq(0, 799),
    [] = [E || E <- H, lists:sort(maps:keys(E)) =/= [f, index, process, time, type, value]],
    %% Concurrency really happened: some op was invoked while another was pending.
    true = lists:any(fun({#{type := invoke}, #{type := invoke}}) -> true; (_) -> false end,
                     lists:zip(lists:droplast(H), tl(H))),
    #{valid := true} = strata_checker:check(register, H),
    ok.

harness_op_bound(_Config) ->
    Tab = ets:new(register, [public, set]),
    H = strata_history:run(#{clients => 3, ops => 25, time_ms => 20000,
                             generator => register_generator(2),
                             invoke => ets_register(Tab)}),
    #{invoke := 25} = strata_history:counts(H),
    %% A generator that stops ends its client early.
    H2 = strata_history:run(#{clients => 2, ops => 1000,
                              generator => fun(_) -> stop end,
                              invoke => ets_register(Tab)}),
    [] = H2,
    ok.

harness_time_bound(_Config) ->
    Tab = ets:new(register, [public, set]),
    Gen = register_generator(2),
    T0 = erlang:monotonic_time(millisecond),
    H = strata_history:run(#{clients => 2, ops => 1000000000, time_ms => 300,
                             generator => fun(P) -> timer:sleep(2), Gen(P) end,
                             invoke => ets_register(Tab)}),
    Elapsed = erlang:monotonic_time(millisecond) - T0,
    ct:pal("time-bounded run: ~b entries in ~b ms", [length(H), Elapsed]),
    true = Elapsed < 3000,
    ok = strata_history:validate(H),
    #{invoke := N, ok := Ok, fail := Fail} = strata_history:counts(H),
    true = N > 0 andalso N =:= Ok + Fail,
    ok.

%% Every 7th operation ends info (half of them after taking effect): the
%% process must never be seen again, its client continues as P + Clients,
%% and the register checker still accepts the history.
harness_info_replaces_process(_Config) ->
    Tab = ets:new(register, [public, set]),
    Counter = atomics:new(1, []),
    Store = ets_register(Tab),
    Invoke = fun(F, V) ->
                     N = atomics:add_get(Counter, 1, 1),
                     case N rem 7 of
                         0 when N rem 2 =:= 0 -> _ = Store(F, V), {info, applied_then_lost};
                         0 -> {info, lost_before_applying};
                         _ -> Store(F, V)
                     end
             end,
    Clients = 4,
    H = strata_history:run(#{clients => Clients, ops => 300, generator => register_generator(2),
                             invoke => Invoke}),
    ok = strata_history:validate(H),
    #{info := Infos, invoke := 300} = strata_history:counts(H),
    true = Infos >= 40,
    Crashed = [{P, I} || #{type := info, process := P, index := I} <- H],
    [] = [E || {P, I} <- Crashed, E = #{process := P2, index := I2} <- H, P2 =:= P, I2 > I],
    Processes = lists:usort([P || #{process := P} <- H]),
    true = lists:max(Processes) >= Clients,
    %% Each crashed process is succeeded by P + Clients, except at most one
    %% per client whose budget ran out right after it.
    true = length([P || {P, _} <- Crashed, not lists:member(P + Clients, Processes)]) =< Clients,
    true = length(Processes) =< Clients + Infos,
    #{valid := true} = strata_checker:check(register, H),
    ok.

harness_timeouts_and_crashes(_Config) ->
    Invoke = fun(hang, _) -> timer:sleep(10000), {ok, late};
                (boom, _) -> error(boom);
                (die, _) -> exit(self(), kill);
                (odd, _) -> unexpected_return;
                (fine, V) -> {ok, V}
             end,
    Script = [hang, boom, die, odd, fine],
    Calls = ets:new(calls, [public, set]),
    %% One scripted op per client; replacement processes and second calls stop.
    Gen = fun(P) ->
                  case P < 5 andalso ets:update_counter(Calls, P, 1, {P, 0}) =:= 1 of
                      true -> {lists:nth(P + 1, Script), P};
                      false -> stop
                  end
          end,
    T0 = erlang:monotonic_time(millisecond),
    H = strata_history:run(#{clients => 5, ops => 100, op_timeout_ms => 100, generator => Gen,
                             invoke => Invoke}),
    true = erlang:monotonic_time(millisecond) - T0 < 5000,
    ok = strata_history:validate(H),
    Errors = lists:sort([{F, E} || #{type := info, f := F, error := E} <- H]),
    [{boom, {error, boom}}, {die, {crashed, killed}}, {hang, timeout},
     {odd, {bad_result, unexpected_return}}] = Errors,
    [#{f := fine, value := 4}] = [E || E = #{type := ok} <- H],
    ok.

harness_write_read(Config) ->
    File = filename:join(?config(priv_dir, Config), "history.terms"),
    H = h([w(0, invoke, k, "string"), w(0, ok, k, "string"),
           {1, invoke, read, {{k, <<"bin">>}, nil}},
           {1, info, read, {{k, <<"bin">>}, nil}},
           {2, invoke, write, {k, #{map => [1.5, -3, 'quoted atom']}}},
           {2, fail, write, {k, #{map => [1.5, -3, 'quoted atom']}}}]),
    ok = strata_history:write(File, H),
    {ok, H} = strata_history:read(File),
    WithPid = [E#{error => {down, self(), make_ref()}} || E <- H],
    ok = strata_history:write(File, WithPid),
    {ok, Back} = strata_history:read(File),
    true = length(Back) =:= length(H),
    [{'$unprintable', _}, {'$unprintable', _}] =
        tl(tuple_to_list(maps:get(error, hd(Back)))),
    {error, _} = strata_history:read(filename:join(?config(priv_dir, Config), "missing")),
    %% A generated history survives the trip with the same verdict.
    Reg = strata_checker_gen:register_history(3, 2000, 4),
    ok = strata_history:write(File, Reg),
    {ok, Reg} = strata_history:read(File),
    Bad = element(1, strata_checker_gen:corrupt_register(3, Reg)),
    ok = strata_history:write(File, Bad),
    {ok, Bad1} = strata_history:read(File),
    #{valid := false} = strata_checker:check(register, Bad1),
    ok.

harness_validate_rejects_malformed(_Config) ->
    Bad = [[w(0, ok, k, 1)],                                           % completion alone
           [w(0, invoke, k, 1), w(0, invoke, k, 2)],                   % two pending
           [w(0, invoke, k, 1), w(0, info, k, 1), w(0, invoke, k, 2)], % reuse after info
           [w(0, invoke, k, 1), r(0, ok, k, 1)],                       % f mismatch
           [w(0, invoke, k, 1), {0, done, write, {k, 1}}]],            % unknown type
    [{error, _} = strata_history:validate(h(X)) || X <- Bad],
    {error, {bad_entry, not_a_map}} = strata_history:validate([not_a_map]),
    {error, {index_not_increasing, _}} =
        strata_history:validate(lists:reverse(h([w(0, invoke, k, 1), w(1, invoke, k, 2)]))),
    ok = strata_history:validate(h([w(0, invoke, k, 1), w(0, ok, k, 1), w(0, invoke, k, 2)])),
    ok.

harness_concat(_Config) ->
    A = h([w(0, invoke, k, 1), w(0, info, k, 1), w(1, invoke, k, 2), w(1, ok, k, 2)]),
    B = h([r(0, invoke, k), r(0, ok, k, 2)]),
    C = strata_history:concat([A, B]),
    ok = strata_history:validate(C),
    [0, 0, 1, 1, 2, 2] = [P || #{process := P} <- C],
    [0, 1, 2, 3, 4, 5] = [I || #{index := I} <- C],
    ok.

%%% Register.

register_valid_history() ->
    h([w(1, invoke, x, 1),
       w(2, invoke, x, 2),
       r(3, invoke, x),
       r(3, ok, x, 2),          % W2 before this read
       w(1, ok, x, 1),          % W1 may still follow it
       r(3, invoke, x),
       r(3, ok, x, 1),          % order: W2, read 2, W1, read 1
       w(2, ok, x, 2),
       c(4, invoke, x, 1, 3),
       w(5, invoke, x, 4),
       c(4, info, x, 1, 3),     % unknown outcome; read below shows it applied
       w(5, fail, x, 4),        % known not applied
       r(6, invoke, x),
       r(6, ok, x, 3),
       c(7, invoke, x, 3, 5),
       c(7, fail, x, 3, 5),
       w(8, invoke, y, 10),
       w(8, info, y, 10),       % never observed
       r(9, invoke, y),
       r(9, ok, y, nil),
       r(3, invoke, x),
       r(3, ok, x, 3)]).

register_valid_concurrent(_Config) ->
    #{stats := #{states_explored := N}} = passes(register, register_valid_history()),
    true = N > 0,
    ok.

register_fail_never_takes_effect(_Config) ->
    H = register_valid_history(),
    Bad = lists:droplast(H) ++ [(lists:last(H))#{value := {x, 4}}],
    #{anomalies := [#{key := x, op := #{value := {x, 4}}}]} =
        flagged(register, [nonlinearizable], Bad),
    ok.

%% The same operations and values; only the order of one completion
%% differs between the valid and the invalid history.
register_stale_read(_Config) ->
    Bad = h([w(1, invoke, x, 1), w(1, ok, x, 1),
             w(1, invoke, x, 2), w(1, ok, x, 2),
             r(2, invoke, x), r(2, ok, x, 1)]),
    #{anomalies := [#{op := #{index := 5}}]} = flagged(register, [nonlinearizable], Bad),
    passes(register, h([w(1, invoke, x, 1), w(1, ok, x, 1),
                        w(1, invoke, x, 2), r(2, invoke, x),
                        w(1, ok, x, 2), r(2, ok, x, 1)])),
    ok.

register_inverted_reads(_Config) ->
    Valid = [w(1, invoke, x, 1), w(2, invoke, x, 2),
             r(3, invoke, x), r(3, ok, x, 2),
             r(3, invoke, x), r(3, ok, x, 1)],
    Tail = [w(1, ok, x, 1), w(2, ok, x, 2)],
    passes(register, h(Valid ++ Tail)),
    flagged(register, [nonlinearizable],
            h(Valid ++ [r(3, invoke, x), r(3, ok, x, 2)] ++ Tail)),
    ok.

register_info_takes_effect_late(_Config) ->
    Valid = [w(1, invoke, x, 1), w(1, info, x, 1),
             r(2, invoke, x), r(2, ok, x, nil),
             r(2, invoke, x), r(2, ok, x, 1)],
    passes(register, h(Valid)),
    flagged(register, [nonlinearizable], h(Valid ++ [r(2, invoke, x), r(2, ok, x, nil)])),
    ok.

register_cas(_Config) ->
    Prefix = [w(1, invoke, x, 1), w(1, ok, x, 1), c(1, invoke, x, 1, 2)],
    Read = [r(2, invoke, x), r(2, ok, x, 1)],
    flagged(register, [nonlinearizable], h(Prefix ++ [c(1, ok, x, 1, 2)] ++ Read)),
    passes(register, h(Prefix ++ [c(1, fail, x, 1, 2)] ++ Read)),
    %% A cas that succeeded from a value the register never held.
    flagged(register, [nonlinearizable],
            h([w(1, invoke, x, 1), w(1, ok, x, 1), c(1, invoke, x, 7, 2), c(1, ok, x, 7, 2)])),
    ok.

register_independent_keys(_Config) ->
    H = h([w(1, invoke, x, 1), w(1, ok, x, 1), w(1, invoke, y, 1), w(1, ok, y, 1),
           w(1, invoke, y, 2), w(1, ok, y, 2),
           r(2, invoke, x), r(2, ok, x, 1), r(2, invoke, y), r(2, ok, y, 1)]),
    #{anomalies := [#{key := y}], stats := #{keys := 2}} =
        flagged(register, [nonlinearizable], H),
    ok.

%% Running out of budget is never a pass.
register_budget_unknown(_Config) ->
    H = register_valid_history(),
    #{valid := unknown, anomalies := [], stats := #{unknown_keys := [x]}} =
        strata_checker:check({register, #{budget => 2}}, H),
    Big = strata_checker_gen:register_history(7, 400, 1, #{concurrency => 8}),
    #{valid := unknown} = strata_checker:check({register, #{budget => 50}}, Big),
    #{valid := true} = strata_checker:check(register, Big),
    ok.

%% A history cut off with operations pending: they count as info.
register_unfinished_invoke(_Config) ->
    Valid = [w(1, invoke, x, 1), r(2, invoke, x), r(2, ok, x, 1)],
    passes(register, h(Valid)),
    flagged(register, [nonlinearizable], h(Valid ++ [r(2, invoke, x), r(2, ok, x, 5)])),
    ok.

register_nothing_observed(_Config) ->
    #{valid := unknown} =
        strata_checker:check(register, h([w(1, invoke, x, 1), w(1, info, x, 1)])),
    ok.

checker_rejects_malformed(_Config) ->
    {'EXIT', {{malformed_history, _}, _}} =
        (catch strata_checker:check(register, h([w(1, ok, x, 1)]))),
    {'EXIT', {{malformed_history, _}, _}} =
        (catch strata_checker:check(register, h([{1, invoke, incr, x}, {1, ok, incr, x}]))),
    {'EXIT', {{unknown_model, _}, _}} =
        (catch strata_checker:check(binary_to_atom(<<"nosuch">>), [])),
    ok.

%%% Bank.

bank_opts() -> {bank, #{accounts => [a, b, c], total => 30}}.

bank_history(LastRead) ->
    h([{1, invoke, transfer, #{from => a, to => b, amount => 5}},
       {2, invoke, read, nil},
       {2, ok, read, #{a => 10, b => 10, c => 10}},
       {1, ok, transfer, #{from => a, to => b, amount => 5}},
       {3, invoke, transfer, #{from => b, to => c, amount => 3}},
       {3, info, transfer, #{from => b, to => c, amount => 3}},
       {2, invoke, read, nil},
       {2, ok, read, #{a => 5, b => 15, c => 10}},
       {4, invoke, transfer, #{from => c, to => a, amount => 1}},
       {4, fail, transfer, #{from => c, to => a, amount => 1}},
       {2, invoke, read, nil},
       {2, ok, read, LastRead}]).

bank_valid(_Config) ->
    #{stats := #{reads := 3}} = passes(bank_opts(), bank_history(#{a => 5, b => 12, c => 13})),
    ok.

bank_wrong_total(_Config) ->
    #{anomalies := [#{total := 29, ops := [#{index := 11}]}]} =
        flagged(bank_opts(), [wrong_total], bank_history(#{a => 5, b => 12, c => 12})),
    ok.

bank_negative(_Config) ->
    #{anomalies := [#{negative := [{a, -5}]}]} =
        flagged(bank_opts(), [negative], bank_history(#{a => -5, b => 22, c => 13})),
    ok.

bank_missing_account(_Config) ->
    #{anomalies := [#{missing := [c]}]} =
        flagged(bank_opts(), [missing_account], bank_history(#{a => 5, b => 25})),
    flagged(bank_opts(), [missing_account], bank_history(#{a => 5, b => 25, c => nil})),
    flagged(bank_opts(), [missing_account],
            bank_history(#{a => 5, b => 12, c => 13, d => 0})),
    ok.

bank_no_reads(_Config) ->
    #{valid := unknown} =
        strata_checker:check(bank_opts(), h([{1, invoke, transfer, x}, {1, ok, transfer, x}])),
    ok.

%%% Set.

set_history(FinalRead) ->
    h([{1, invoke, add, 1}, {1, ok, add, 1},
       {2, invoke, add, 2}, {2, info, add, 2},      % appears
       {3, invoke, add, 3}, {3, info, add, 3},      % does not
       {4, invoke, add, 4}, {4, fail, add, 4},
       {6, invoke, read, nil}, {6, ok, read, [1]},  % not final: more adds follow
       {5, invoke, add, 5},
       {6, invoke, read, nil},                      % final, concurrent with add 5
       {5, ok, add, 5},
       {6, ok, read, [2, 1]},
       {7, invoke, read, nil}, {7, ok, read, FinalRead}]).

set_valid(_Config) ->
    #{stats := #{final_reads := 2, recovered := 1}} = passes(set, set_history([1, 2, 5])),
    ok.

set_lost(_Config) ->
    #{anomalies := [#{element := 1}]} = flagged(set, [lost], set_history([2, 5])),
    #{anomalies := [#{element := 5}]} = flagged(set, [lost], set_history([1, 2])),
    ok.

set_unexpected(_Config) ->
    #{anomalies := [#{element := 4, reason := failed_add}]} =
        flagged(set, [unexpected], set_history([1, 2, 5, 4])),
    #{anomalies := [#{element := 99, reason := never_added}]} =
        flagged(set, [unexpected], set_history([1, 2, 5, 99])),
    %% Seen by a read that completed before the add was invoked.
    #{anomalies := [#{element := 9, reason := read_before_add}]} =
        flagged(set, [unexpected], h([{1, invoke, read, nil}, {1, ok, read, [9]},
                                      {2, invoke, add, 9}, {2, ok, add, 9},
                                      {1, invoke, read, nil}, {1, ok, read, [9]}])),
    ok.

set_no_reads(_Config) ->
    #{valid := unknown} = strata_checker:check(set, h([{1, invoke, add, 1}, {1, ok, add, 1}])),
    ok.

%%% List append.

la_valid(_Config) ->
    passes(list_append,
           h([ti(1, [{append, x, 1}, {r, y, nil}]),
              ti(2, [{append, y, 1}]),
              ti(3, [{append, x, 2}]),
              t(2, info, [{append, y, 1}]),                 % committed: observed below
              t(3, fail, [{append, x, 2}]),                 % aborted: never observed
              t(1, ok, [{append, x, 1}, {r, y, [1]}]),
              ti(4, [{append, z, 1}]),
              t(4, info, [{append, z, 1}]),                 % never observed
              ti(5, [{r, x, nil}, {append, x, 3}, {r, x, nil}]),
              ti(6, [{r, x, nil}, {r, z, nil}]),
              t(5, ok, [{r, x, [1]}, {append, x, 3}, {r, x, [1, 3]}]),
              t(6, ok, [{r, x, [1]}, {r, z, nil}]),         % concurrent: before 5
              ti(1, [{r, x, nil}, {r, y, nil}]),
              t(1, ok, [{r, x, [1, 3]}, {r, y, [1]}])])),
    ok.

la_g0(_Config) ->
    H = fun(Y) -> h([ti(1, [{append, x, 1}, {append, y, 1}]),
                     ti(2, [{append, x, 2}, {append, y, 2}]),
                     t(1, ok, [{append, x, 1}, {append, y, 1}]),
                     t(2, ok, [{append, x, 2}, {append, y, 2}]),
                     ti(3, [{r, x, nil}, {r, y, nil}]),
                     t(3, ok, [{r, x, [1, 2]}, {r, y, Y}])])
        end,
    #{anomalies := [#{cycle := Cycle, ops := [_, _]}]} = flagged(list_append, ['G0'], H([2, 1])),
    [ww, ww] = [K || #{kind := K} <- Cycle],
    passes(list_append, H([1, 2])),
    ok.

la_g1a(_Config) ->
    H = fun(Type, Read) -> h([ti(1, [{append, x, 1}]), t(1, Type, [{append, x, 1}]),
                              ti(2, [{r, x, nil}]), t(2, ok, [{r, x, Read}])])
        end,
    #{anomalies := [#{element := 1, ops := [#{index := 3}, #{index := 1}]}]} =
        flagged(list_append, ['G1a'], H(fail, [1])),
    #{anomalies := [#{element := 7, writer := none}]} =
        flagged(list_append, ['G1a'], H(ok, [1, 7])),
    passes(list_append, H(info, [1])),
    passes(list_append, H(fail, [])),
    ok.

la_g1b(_Config) ->
    H = fun(Read) -> h([ti(1, [{append, x, 1}, {append, x, 2}]),
                        ti(2, [{r, x, nil}]),
                        t(2, ok, [{r, x, Read}]),
                        t(1, ok, [{append, x, 1}, {append, x, 2}])])
        end,
    #{anomalies := [#{element := 1, final := 2}]} = flagged(list_append, ['G1b'], H([1])),
    passes(list_append, H([1, 2])),
    passes(list_append, H(nil)),
    ok.

la_g1c(_Config) ->
    H = fun(XRead) -> h([ti(1, [{append, x, 1}, {r, y, nil}]),
                         ti(2, [{append, y, 1}, {r, x, nil}]),
                         t(1, ok, [{append, x, 1}, {r, y, [1]}]),
                         t(2, ok, [{append, y, 1}, {r, x, XRead}])])
        end,
    #{anomalies := [#{cycle := Cycle}]} = flagged(list_append, ['G1c'], H([1])),
    [wr, wr] = [K || #{kind := K} <- Cycle],
    passes(list_append, H(nil)),
    ok.

%% Read skew: T2 sees T1's x but not its y.
la_g_single(_Config) ->
    H = fun(YRead) -> h([ti(1, [{append, x, 1}, {append, y, 1}]),
                         ti(2, [{r, x, nil}, {r, y, nil}]),
                         t(1, ok, [{append, x, 1}, {append, y, 1}]),
                         t(2, ok, [{r, x, [1]}, {r, y, YRead}]),
                         ti(3, [{r, y, nil}]),
                         t(3, ok, [{r, y, [1]}])])
        end,
    #{anomalies := [#{cycle := Cycle}]} = flagged(list_append, ['G-single'], H(nil)),
    [rw, wr] = lists:sort([K || #{kind := K} <- Cycle]),
    passes(list_append, H([1])),
    %% The writer's outcome unknown: its appends were observed, so it
    %% committed, and the same cycle stands.
    Info = [case E of #{process := 1, type := ok} -> E#{type := info, error => timeout};
                      _ -> E
            end || E <- H(nil)],
    flagged(list_append, ['G-single'], Info),
    ok.

%% Write skew: each reads the key the other appends to, neither sees it.
la_g2(_Config) ->
    H = fun(YRead) -> h([ti(1, [{r, x, nil}, {append, y, 1}]),
                         ti(2, [{r, y, nil}, {append, x, 1}]),
                         t(1, ok, [{r, x, nil}, {append, y, 1}]),
                         t(2, ok, [{r, y, YRead}, {append, x, 1}]),
                         ti(3, [{r, x, nil}, {r, y, nil}]),
                         t(3, ok, [{r, x, [1]}, {r, y, [1]}])])
        end,
    #{anomalies := [#{cycle := Cycle}]} = flagged(list_append, ['G2'], H(nil)),
    [rw, rw] = [K || #{kind := K} <- Cycle],
    passes(list_append, H([1])),
    ok.

la_duplicate(_Config) ->
    H = fun(Read) -> h([ti(1, [{append, x, 1}]), t(1, ok, [{append, x, 1}]),
                        ti(2, [{r, x, nil}]), t(2, ok, [{r, x, Read}])])
        end,
    #{anomalies := [#{duplicated := [1]}]} = flagged(list_append, [duplicate], H([1, 1])),
    passes(list_append, H([1])),
    ok.

la_internal(_Config) ->
    H = fun(Second) -> h([ti(1, [{r, x, nil}, {append, x, 1}, {r, x, nil}]),
                          t(1, ok, [{r, x, nil}, {append, x, 1}, {r, x, Second}])])
        end,
    flagged(list_append, [internal], H([])),
    passes(list_append, H([1])),
    %% An append without an earlier read: the read must end with it.
    flagged(list_append, [internal],
            h([ti(1, [{append, x, 1}, {r, x, nil}]), t(1, ok, [{append, x, 1}, {r, x, []}])])),
    %% A read showing the transaction's own later append.
    flagged(list_append, [internal],
            h([ti(1, [{r, x, nil}, {append, x, 1}]), t(1, ok, [{r, x, [1]}, {append, x, 1}])])),
    ok.

la_incompatible_order(_Config) ->
    H = fun(Read) -> h([ti(1, [{append, x, 1}]), ti(2, [{append, x, 2}]),
                        t(1, ok, [{append, x, 1}]), t(2, ok, [{append, x, 2}]),
                        ti(3, [{r, x, nil}]), t(3, ok, [{r, x, [1, 2]}]),
                        ti(4, [{r, x, nil}]), t(4, ok, [{r, x, Read}])])
        end,
    #{anomalies := [#{read := [2], longest := [1, 2]}]} =
        flagged(list_append, [incompatible_order], H([2])),
    passes(list_append, H([1, 2])),
    ok.

%% An acknowledged append that a later transaction does not see and nobody
%% ever reads: a lost write, caught through real time.
la_lost_append_realtime(_Config) ->
    Bad = h([ti(1, [{append, x, 1}]), t(1, ok, [{append, x, 1}]),
             ti(2, [{r, x, nil}]), t(2, ok, [{r, x, nil}])]),
    #{anomalies := [#{cycle := Cycle}]} = flagged(list_append, ['G-single'], Bad),
    [realtime, rw] = lists:sort([K || #{kind := K} <- Cycle]),
    passes(list_append, h([ti(1, [{append, x, 1}]), ti(2, [{r, x, nil}]),
                           t(1, ok, [{append, x, 1}]), t(2, ok, [{r, x, nil}])])),
    %% Without real-time order it is only serializable, which this is.
    NoOrder = {list_append, #{realtime => false, process => false}},
    #{valid := true} = strata_checker:check(NoOrder, Bad),
    %% Per-process order alone catches it when one process does both.
    SameProcess = [E#{process := 1} || E <- Bad],
    #{valid := true} = strata_checker:check(NoOrder, SameProcess),
    #{anomalies := [#{cycle := Cycle2}]} =
        flagged({list_append, #{realtime => false}}, ['G-single'], SameProcess),
    [process, rw] = lists:sort([K || #{kind := K} <- Cycle2]),
    ok.

la_stale_read_realtime(_Config) ->
    H = fun(Read) -> h([ti(1, [{append, x, 1}]), t(1, ok, [{append, x, 1}]),
                        ti(2, [{r, x, nil}]), t(2, ok, [{r, x, Read}]),
                        ti(3, [{r, x, nil}]), t(3, ok, [{r, x, [1]}])])
        end,
    flagged(list_append, ['G-single'], H(nil)),
    passes(list_append, H([1])),
    ok.

la_no_reads(_Config) ->
    #{valid := unknown} = strata_checker:check(list_append,
                                               h([ti(1, [{append, x, 1}]),
                                                  t(1, ok, [{append, x, 1}])])),
    ok.

%%% Properties and generated histories.

prop_register(_Config) ->
    Prop = proper:forall(
             {proper_types:integer(), proper_types:integer(4, 60),
              proper_types:integer(1, 3), proper_types:integer(1, 5)},
             fun({Seed, Ops, Keys, Conc}) ->
                     H = strata_checker_gen:register_history(
                           Seed, Ops, Keys, #{concurrency => Conc, info_rate => 0.05,
                                              fail_rate => 0.05}),
                     Valid = maps:get(valid, strata_checker:check(register, H)),
                     HasOk = lists:any(fun(#{type := T}) -> T =:= ok end, H),
                     Corrupt = strata_checker_gen:corrupt_register(Seed, H),
                     Caught = case Corrupt of
                                  none -> true;
                                  {H2, _} -> maps:get(valid, strata_checker:check(register, H2))
                                                 =:= false
                              end,
                     Ok = (Valid =:= true orelse (Valid =:= unknown andalso not HasOk))
                         andalso Caught,
                     Ok orelse io:format("seed ~p: valid ~p, corruption ~p~n",
                                         [Seed, Valid, Corrupt]),
                     Ok
             end),
    true = proper:quickcheck(Prop, [{numtests, 300}, {to_file, user}]),
    ok.

prop_list_append(_Config) ->
    Prop = proper:forall(
             {proper_types:integer(), proper_types:integer(3, 60),
              proper_types:integer(1, 5), proper_types:integer(1, 4)},
             fun({Seed, Txns, Conc, Keys}) ->
                     H = strata_checker_gen:list_append_history(
                           Seed, Txns, #{concurrency => Conc, active_keys => Keys,
                                         info_rate => 0.05, appends_per_key => 6}),
                     R = strata_checker:check(list_append, H),
                     Valid = maps:get(valid, R),
                     Corrupt = strata_checker_gen:corrupt_list_append(Seed, H),
                     Caught = case Corrupt of
                                  none -> Valid =/= false;
                                  {H2, _} -> maps:get(valid, strata_checker:check(list_append, H2))
                                                 =:= false
                              end,
                     Ok = (Valid =:= true orelse (Valid =:= unknown andalso Corrupt =:= none))
                         andalso Caught,
                     Ok orelse io:format("seed ~p: ~p, corruption ~p~n", [Seed, R, Corrupt]),
                     Ok
             end),
    true = proper:quickcheck(Prop, [{numtests, 300}, {to_file, user}]),
    ok.

%% The benchmark sizes: a 10,000-op register history over 10 keys and a
%% 5,000-transaction list-append history. Reports the times (no timed
%% assertion), and checks both pass and that a corruption of each is caught.
generated_large(_Config) ->
    {GenR, Reg} = timer:tc(strata_checker_gen, register_history, [42, 10000, 10]),
    {CheckR, #{valid := true, stats := #{states_explored := States}}} =
        timer:tc(strata_checker, check, [register, Reg]),
    {GenL, La} = timer:tc(strata_checker_gen, list_append_history, [42, 5000]),
    {CheckL, #{valid := true, stats := LaStats}} =
        timer:tc(strata_checker, check, [list_append, La]),
    {Reg2, _} = strata_checker_gen:corrupt_register(42, Reg),
    {CheckR2, #{valid := false}} = timer:tc(strata_checker, check, [register, Reg2]),
    {La2, _} = strata_checker_gen:corrupt_list_append(42, La),
    {CheckL2, #{valid := false}} = timer:tc(strata_checker, check, [list_append, La2]),
    ct:pal("register 10000 ops / 10 keys: generated in ~b ms, checked in ~b ms "
           "(~b states); corrupted checked in ~b ms~n"
           "list-append 5000 txns: generated in ~b ms, checked in ~b ms (~p); "
           "corrupted checked in ~b ms",
           [GenR div 1000, CheckR div 1000, States, CheckR2 div 1000,
            GenL div 1000, CheckL div 1000, LaStats, CheckL2 div 1000]),
    ok.
