%%% @doc The bank model: money moves between accounts by transactions and is
%%% never created or destroyed.
%%%
%%% Operations: `transfer' (any value; not checked, it may succeed, fail or
%%% be unknown) and `read' whose `ok' value is a map `Account => Balance'.
%%% Every `ok' read must be a consistent snapshot:
%%% <ul>
%%% <li>`missing_account': the read does not show exactly the configured
%%%     accounts (an account absent, or with balance `nil', is listed in
%%%     `missing'; an account nobody created in `extra');</li>
%%% <li>`negative': some balance is below zero;</li>
%%% <li>`wrong_total': the balances (all numbers) do not add up to `total'
%%%     (a non-numeric balance makes the total wrong too).</li>
%%% </ul>
%%% A torn or non-serializable read of a transfer shows up as a wrong total.
%%% Options: `total' (required), `accounts' (optional list; without it the
%%% account set is not checked). Without any `ok' read the result is
%%% `unknown'.
-module(strata_checker_bank).

-export([check/2]).

%% @doc Check paired operations; called by `strata_checker:check/2'.
-spec check([strata_history:op()], map()) ->
          #{valid := boolean() | unknown, anomalies := [map()], stats := map()}.
check(Ops, Opts) ->
    Total = case maps:find(total, Opts) of
                {ok, T} when is_number(T) -> T;
                _ -> error({badarg, {bank_needs_total, Opts}})
            end,
    Accounts = maps:get(accounts, Opts, undefined),
    Reads = [Op || Op = #{f := read, type := ok} <- Ops],
    Anomalies = lists:append([check_read(Op, Accounts, Total) || Op <- Reads]),
    #{valid => strata_checker:verdict(Anomalies, Reads),
      anomalies => Anomalies,
      stats => #{reads => length(Reads),
                 transfers => length([x || #{f := transfer} <- Ops]),
                 bad_reads => length(lists:usort([E || #{ops := [E]} <- Anomalies]))}}.

check_read(#{value := Balances, complete := Entry}, Accounts, Total) ->
    is_map(Balances) orelse error({malformed_history, {bank_read_not_a_map, Entry}}),
    Present = maps:filter(fun(_, V) -> V =/= nil end, Balances),
    Missing = case Accounts of
                  undefined -> [];
                  _ -> [A || A <- Accounts, not is_map_key(A, Present)]
              end,
    Extra = case Accounts of
                undefined -> [];
                _ -> [A || A <- lists:sort(maps:keys(Present)), not lists:member(A, Accounts)]
            end,
    Negative = [{A, V} || {A, V} <- lists:sort(maps:to_list(Present)),
                          is_number(V), V < 0],
    Values = maps:values(Present),
    Sum = case lists:all(fun is_number/1, Values) of
              true -> lists:sum(Values);
              false -> not_a_number
          end,
    Base = #{ops => [Entry]},
    [Base#{type => missing_account, missing => Missing, extra => Extra}
     || Missing =/= [] orelse Extra =/= []] ++
        [Base#{type => negative, negative => Negative} || Negative =/= []] ++
        [Base#{type => wrong_total, expected => Total, total => Sum}
         || not (is_number(Sum) andalso Sum == Total)].
