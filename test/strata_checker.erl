%%% @doc The consistency checkers' single entry point.
%%%
%%% `check(Model, History)' judges a history recorded by `strata_history'
%%% against one model and returns `#{valid, anomalies, stats}':
%%% <ul>
%%% <li>`valid' is `true' (no anomaly found and the check was conclusive),
%%%     `false' (at least one anomaly) or `unknown' (the check could not
%%%     conclude: search budget exhausted, or nothing was observed);</li>
%%% <li>`anomalies' is a list of maps, each with a `type' and the `ops' (the
%%%     completion entries, or the invoke entry of an op that never completed)
%%%     that form it, plus model-specific detail;</li>
%%% <li>`stats' always has `entries' (counts by entry type) and `ops' (counts
%%%     of paired operations by outcome), plus model-specific counters.</li>
%%% </ul>
%%% Models: `register' (strata_checker_register), `bank'
%%% (strata_checker_bank), `set' (strata_checker_set), `list_append'
%%% (strata_checker_elle). A malformed history raises
%%% `error({malformed_history, Why})'. See doc/checking.md.
-module(strata_checker).

-export([check/2, models/0, anomaly_types/1, verdict/2]).

-export_type([model/0, result/0, anomaly/0]).

-type model_name() :: register | bank | set | list_append.
-type model() :: model_name() | {model_name(), map()}.
-type anomaly() :: #{type := atom(), ops := [strata_history:entry()], atom() => term()}.
-type result() :: #{valid := true | false | unknown,
                    anomalies := [anomaly()],
                    stats := map()}.

%% @doc Check History against Model (an atom, or `{Model, Opts}'). An
%% unknown model raises `error({unknown_model, Model})'.
-spec check(model() | atom() | {atom(), map()}, strata_history:history()) -> result().
check({Model, Opts}, History) when is_atom(Model), is_map(Opts) ->
    Mod = module(Model),
    Ops = strata_history:ops(History),
    #{valid := Valid, anomalies := Anomalies, stats := Stats} = Mod:check(Ops, Opts),
    #{valid => Valid,
      anomalies => Anomalies,
      stats => Stats#{entries => strata_history:counts(History),
                      ops => op_counts(Ops)}};
check(Model, History) when is_atom(Model) ->
    check({Model, #{}}, History).

%% @doc The verdict of a model's check: `false' with any anomaly, `unknown' when nothing
%% was observed (no `ok' read), `true' otherwise.
-spec verdict([anomaly()], [term()]) -> boolean() | unknown.
verdict([_ | _], _Observed) -> false;
verdict([], []) -> unknown;
verdict([], _Observed) -> true.

%% @doc The models this checker knows.
-spec models() -> [model_name()].
models() -> [register, bank, set, list_append].

%% @doc The anomaly types a model can report.
-spec anomaly_types(model_name()) -> [atom()].
anomaly_types(register) -> [nonlinearizable];
anomaly_types(bank) -> [wrong_total, negative, missing_account];
anomaly_types(set) -> [lost, unexpected];
anomaly_types(list_append) ->
    ['G0', 'G1a', 'G1b', 'G1c', 'G-single', 'G2', duplicate, internal,
     incompatible_order].

module(register) -> strata_checker_register;
module(bank) -> strata_checker_bank;
module(set) -> strata_checker_set;
module(list_append) -> strata_checker_elle;
module(Other) -> error({unknown_model, Other}).

op_counts(Ops) ->
    lists:foldl(fun(#{type := T}, Acc) -> maps:update_with(T, fun(N) -> N + 1 end, Acc) end,
                #{ok => 0, fail => 0, info => 0}, Ops).
