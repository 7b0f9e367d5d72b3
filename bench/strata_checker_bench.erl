%%% @doc How long the consistency checkers take (issue 11, deliverable 6). Reports, does not
%%% assert: the time `strata_checker:check/2' needs for a 10,000-op register history over
%%% 10 keys and a 5,000-transaction list-append history, both generated valid by
%%% `strata_checker_gen', median of 3 runs each. The full mode adds the corrupted variants
%%% (which must be rejected) and a 16-client register history.
%%%
%%% Needs the compiled test modules strata_history, strata_checker* on the code path:
%%%
%%%   erlc -o EBIN bench/strata_checker_bench.erl test/strata_history.erl \
%%%     test/strata_checker.erl test/strata_checker_{bank,elle,gen,graph,register,set}.erl
%%%   erl -noshell -pa EBIN -eval 'strata_checker_bench:main(["quick"])' -s init stop
-module(strata_checker_bench).

-export([main/1]).

-define(SEED, 11).
-define(RUNS, 3).

%% @doc `main([])' or `main(["full"])': everything; `main(["quick"])': the two histories
%% the issue asks for.
-spec main([string()]) -> ok.
main(Args) ->
    Mode = case Args of
               [] -> full;
               ["full" | _] -> full;
               ["quick" | _] -> quick;
               _ -> error({usage, "strata_checker_bench:main([] | [\"quick\"] | [\"full\"])"})
           end,
    Cases = cases(Mode),
    io:format("## Consistency checkers (~p mode, median of ~b runs, ~b schedulers)~n~n",
              [Mode, ?RUNS, erlang:system_info(schedulers_online)]),
    io:format("| history | ops | entries | check, median | min | max | verdict | work |~n"
              "|---|---:|---:|---:|---:|---:|---|---|~n"),
    lists:foreach(fun row/1, Cases),
    io:format("~n"),
    ok.

cases(Mode) ->
    Reg = strata_checker_gen:register_history(?SEED, 10000, 10),
    La = strata_checker_gen:list_append_history(?SEED, 5000),
    Base = [{"register, 10,000 ops over 10 keys", register, Reg, true},
            {"list-append, 5,000 txns", list_append, La, true}],
    case Mode of
        quick ->
            Base;
        full ->
            {BadReg, _} = strata_checker_gen:corrupt_register(?SEED, Reg),
            {BadLa, _} = strata_checker_gen:corrupt_list_append(?SEED, La),
            Base ++
                [{"register, 10,000 ops, 10 keys, one corrupted read", register, BadReg, false},
                 {"list-append, 5,000 txns, one corrupted read", list_append, BadLa, false},
                 {"register, 10,000 ops over 10 keys, 16 clients", register,
                  strata_checker_gen:register_history(?SEED, 10000, 10, #{concurrency => 16}),
                  true},
                 {"list-append, 5,000 txns, 16 clients", list_append,
                  strata_checker_gen:list_append_history(?SEED, 5000, #{concurrency => 16}),
                  true}]
    end.

row({Name, Model, History, Expected}) ->
    Ops = length(strata_history:ops(History)),
    erlang:garbage_collect(),
    Runs = [timer:tc(fun() -> strata_checker:check(Model, History) end)
            || _ <- lists:seq(1, ?RUNS)],
    Times = lists:sort([Us || {Us, _} <- Runs]),
    {_, #{valid := Valid, stats := Stats}} = hd(Runs),
    Verdict = case Valid of
                  Expected -> io_lib:format("~p (as expected)", [Valid]);
                  _ -> io_lib:format("~p (EXPECTED ~p)", [Valid, Expected])
              end,
    io:format("| ~s | ~b | ~b | ~s | ~s | ~s | ~s | ~s |~n",
              [Name, Ops, length(History), secs(lists:nth((?RUNS + 1) div 2, Times)),
               secs(hd(Times)), secs(lists:last(Times)), Verdict, work(Model, Stats)]).

secs(Us) -> io_lib:format("~.3f s", [Us / 1.0e6]).

work(register, Stats) ->
    io_lib:format("~p configurations", [maps:get(states_explored, Stats, '?')]);
work(list_append, Stats) ->
    case maps:find(edges, Stats) of
        {ok, E} when is_map(E) -> io_lib:format("~b edges", [lists:sum(maps:values(E))]);
        {ok, E} when is_integer(E) -> io_lib:format("~b edges", [E]);
        _ -> ""
    end.
