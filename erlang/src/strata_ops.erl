%%% @doc The Scalaris operation semantics as pure functions of the old value.
%%%
%%% Each function takes what is stored (`none' for a missing key, `{value, V}' otherwise) and
%%% returns `{write, New}', `keep' (nothing to write), or `{error, Why}'. Transactions and
%%% single-key calls apply them the same way, so there is one definition of each rule.
-module(strata_ops).

-export([add_on_nr/3, add_del_on_list/3, test_and_set/3, check_bounds/1]).

-export_type([old/0, outcome/0, bounds/0]).

-type old() :: none | {value, term()}.
-type outcome() :: {write, term()} | keep | {error, term()}.
-type bounds() :: #{min => number(), max => number()}.

%% @doc Adds `N' to a number. A missing key becomes `N'; int + float is a float; adding 0 (or
%% 0.0) keeps the value and its type. With bounds, a result outside `[min, max]' is
%% `{error, out_of_bounds}'.
-spec add_on_nr(old(), term(), bounds()) -> outcome().
add_on_nr(_Old, N, _Bounds) when not is_number(N) ->
    {error, not_a_number};
add_on_nr(none, N, Bounds) ->
    within(N, Bounds);
add_on_nr({value, V}, _N, _Bounds) when not is_number(V) ->
    {error, not_a_number};
add_on_nr({value, V}, N, Bounds) when N == 0 ->
    case within(V, Bounds) of
        {write, _} -> keep;
        Error -> Error
    end;
add_on_nr({value, V}, N, Bounds) ->
    within(V + N, Bounds).

within(V, Bounds) ->
    Low = maps:get(min, Bounds, V),
    High = maps:get(max, Bounds, V),
    case V >= Low andalso V =< High of
        true -> {write, V};
        false -> {error, out_of_bounds}
    end.

%% @doc Validates bounds given to `add_on_nr': a map with numeric `min' and/or `max'.
-spec check_bounds(term()) -> ok | {error, {bad_option, term()}}.
check_bounds(Bounds) when is_map(Bounds) ->
    Bad = [{K, V} || {K, V} <- maps:to_list(Bounds),
                     not (lists:member(K, [min, max]) andalso is_number(V))],
    case Bad of
        [] -> ok;
        [First | _] -> {error, {bad_option, First}}
    end;
check_bounds(Other) ->
    {error, {bad_option, Other}}.

%% @doc Stores `Add ++ Old' minus the first occurrence of each element of `Del'; a missing
%% key counts as `[]'. Every list involved must be a proper list.
-spec add_del_on_list(old(), term(), term()) -> outcome().
add_del_on_list(Old, Add, Del) ->
    Current = case Old of
                  none -> [];
                  {value, V} -> V
              end,
    case is_proper_list(Current) andalso is_proper_list(Add) andalso is_proper_list(Del) of
        true -> {write, (Add ++ Current) -- Del};
        false -> {error, not_a_list}
    end.

%% @doc Writes `New' only if the value is exactly (`=:=') `Expected'.
-spec test_and_set(old(), term(), term()) -> outcome().
test_and_set(none, _Expected, _New) ->
    {error, not_found};
test_and_set({value, Expected}, Expected, New) ->
    {write, New};
test_and_set({value, Current}, _Expected, _New) ->
    {error, {key_changed, Current}}.

is_proper_list([]) -> true;
is_proper_list([_ | T]) -> is_proper_list(T);
is_proper_list(_) -> false.
