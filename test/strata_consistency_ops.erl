%%% @doc Transaction bodies of the consistency workloads (strata_consistency_SUITE).
%%%
%%% These functions run on the peer node under test (the suite calls them with
%%% `peer:call/5'), so the funs they hand to `strata:transaction/2' are defined in a module
%%% the peer has loaded. Each returns what `strata:transaction/2' returned; the suite maps
%%% that to a history completion.
%%%
%%% The peer runs one scheduler, so a short transaction would usually run from its snapshot
%%% to its commit without another process running in between. The bodies yield between
%%% their steps so that concurrent transactions interleave and commit validation is
%%% exercised (conflicts, retries, aborts).
-module(strata_consistency_ops).

-export([init/2, transfer/4, read_map/2, read_set/2, txn/2]).

%% @doc Writes every `{Key, Value}' in one transaction (a workload's initial state).
-spec init([{term(), term()}], strata:opts()) -> {ok, ok} | {error, term()}.
init(KVs, Opts) ->
    strata:transaction(fun() ->
                               lists:foreach(fun({K, V}) -> ok = strata:put(K, V) end, KVs)
                       end, Opts).

%% @doc Bank transfer: moves `Amount' from `From' to `To' if `From' holds at least that
%% much. `{ok, ok}' when moved, `{ok, insufficient}' when nothing was written.
-spec transfer(term(), term(), pos_integer(), strata:opts()) ->
          {ok, ok | insufficient} | {error, term()}.
transfer(From, To, Amount, Opts) ->
    strata:transaction(
      fun() ->
              {ok, A} = strata:get(From),
              erlang:yield(),
              {ok, B} = strata:get(To),
              erlang:yield(),
              case A >= Amount of
                  true ->
                      ok = strata:put(From, A - Amount),
                      ok = strata:put(To, B + Amount);
                  false ->
                      insufficient
              end
      end, Opts).

%% @doc Reads `Keys' in one (read-only) transaction: `{ok, #{Key => Value | nil}}'.
-spec read_map([term()], strata:opts()) -> {ok, #{term() => term()}} | {error, term()}.
read_map(Keys, Opts) ->
    strata:transaction(fun() -> maps:from_list([{K, value(strata:get(K))} || K <- Keys]) end,
                       Opts).

%% @doc Reads the lists under `Keys' in one transaction and returns their concatenation.
-spec read_set([term()], strata:opts()) -> {ok, list()} | {error, term()}.
read_set(Keys, Opts) ->
    strata:transaction(fun() -> lists:append([list(strata:get(K)) || K <- Keys]) end, Opts).

%% @doc A list-append transaction: micro-ops `{r, K, _}' (read the list under K) and
%% `{append, K, E}' (read it and write it back with E at the end). Returns the micro-ops
%% with the lists read (`nil' for a missing key).
-spec txn([{r, term(), term()} | {append, term(), term()}], strata:opts()) ->
          {ok, list()} | {error, term()}.
txn(Mops, Opts) ->
    strata:transaction(fun() -> [begin erlang:yield(), mop(M) end || M <- Mops] end, Opts).

mop({r, K, _}) ->
    {r, K, value(strata:get(K))};
mop({append, K, E}) ->
    ok = strata:put(K, list(strata:get(K)) ++ [E]),
    {append, K, E}.

value({ok, V}) -> V;
value({error, not_found}) -> nil.

list({ok, L}) when is_list(L) -> L;
list({error, not_found}) -> [].
