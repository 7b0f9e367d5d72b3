%%% A PropEr state-machine model of the store against a map: random sequences of puts, gets,
%%% deletes, read-modify-writes, batches, scans and restarts of the application must agree
%%% with the model at every step. Also the keycodec against Erlang's own term order.
-module(strata_store_prop_SUITE).
-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-compile([export_all, nowarn_export_all]).
%% Debian's PropEr ships no header: the generators and combinators are called directly.
-import(proper_types, [int/0, real/0, atom/0, binary/0, bitstring/0, list/1, oneof/1,
                       frequency/1, exactly/1, boolean/0, largeint/0]).

all() ->
    [{group, nif}, {group, port}, keycodec_follows_term_order, keycodec_round_trips].

%% The model runs against each engine.
groups() ->
    [{nif, [], [store_matches_model]}, {port, [], [store_matches_model]}].

init_per_group(Engine, Config) ->
    ok = strata_test_util:use_engine(Engine),
    Dir = strata_test_util:fresh_dir(Config, "prop-" ++ atom_to_list(Engine)),
    ok = strata_test_util:start(Dir, [{block_cache_mb, 16}]),
    [{dir, Dir} | Config].

end_per_group(_Engine, _Config) ->
    strata_test_util:stop(),
    strata_test_util:use_engine(nif).

%%% The store against a map

store_matches_model(_Config) ->
    ?assert(proper:quickcheck(prop_store(), [{numtests, 150}, {to_file, user}])).

prop_store() ->
    proper:forall(
      proper_statem:commands(?MODULE),
      fun(Cmds) ->
              clear(),
              {History, State, Result} = proper_statem:run_commands(?MODULE, Cmds),
              proper:whenfail(fun() -> io:format("History: ~p~nState: ~p~nResult: ~p~n",
                                                 [History, State, Result])
                              end,
                              fun() -> Result =:= ok end)
      end).

clear() ->
    {ok, Items, done} = strata:scan('$min', '$max', #{limit => 10000}),
    [ok = strata:delete(K) || {K, _} <- Items],
    ok.

key() -> oneof([a, b, 1, 1.0, -5, <<"x">>, <<"x", 0>>, "x", {t, 1}, {t, 1.0}, [], #{k => 1}]).
value() -> oneof([int(), real(), atom(), binary(), list(int()), {tuple, int()}]).

initial_state() -> #{}.

command(_Model) ->
    frequency([{5, {call, strata, put, [key(), value()]}},
               {5, {call, strata, get, [key()]}},
               {2, {call, strata, delete, [key()]}},
               {2, {call, strata, add_on_nr, [key(), oneof([int(), real()])]}},
               {2, {call, strata, test_and_set, [key(), value(), value()]}},
               {2, {call, strata, add_del_on_list, [key(), list(int()), list(int())]}},
               {2, {call, strata, req_list, [list(batch_op())]}},
               {1, {call, ?MODULE, scan_all, [boolean()]}},
               {1, {call, ?MODULE, restart, []}}]).

batch_op() ->
    oneof([{read, key()}, {write, key(), value()}, {add_on_nr, key(), int()}, commit]).

precondition(_Model, _Call) -> true.

next_state(M, _Res, {call, strata, put, [K, V]}) -> M#{K => V};
next_state(M, _Res, {call, strata, delete, [K]}) -> maps:remove(K, M);
next_state(M, _Res, {call, strata, add_on_nr, [K, N]}) -> apply_op(M, K, add(N));
next_state(M, _Res, {call, strata, test_and_set, [K, Old, New]}) -> apply_op(M, K, tas(Old, New));
next_state(M, _Res, {call, strata, add_del_on_list, [K, A, D]}) -> apply_op(M, K, adl(A, D));
next_state(M, _Res, {call, strata, req_list, [Ops]}) -> element(1, batch(M, Ops));
next_state(M, _Res, _Call) -> M.

postcondition(M, {call, strata, get, [K]}, Res) ->
    Res =:= case M of #{K := V} -> {ok, V}; #{} -> {error, not_found} end;
postcondition(_M, {call, strata, put, _}, Res) -> Res =:= ok;
postcondition(_M, {call, strata, delete, _}, Res) -> Res =:= ok;
postcondition(M, {call, strata, add_on_nr, [K, N]}, Res) -> Res =:= op_result(M, K, add(N));
postcondition(M, {call, strata, test_and_set, [K, O, N]}, Res) -> Res =:= op_result(M, K, tas(O, N));
postcondition(M, {call, strata, add_del_on_list, [K, A, D]}, Res) -> Res =:= op_result(M, K, adl(A, D));
postcondition(M, {call, strata, req_list, [Ops]}, Res) -> Res =:= element(2, batch(M, Ops));
postcondition(M, {call, ?MODULE, scan_all, [Reverse]}, Res) ->
    Sorted = lists:sort(fun key_order/2, maps:to_list(M)),
    Res =:= case Reverse of true -> lists:reverse(Sorted); false -> Sorted end;
postcondition(_M, {call, ?MODULE, restart, []}, Res) -> Res =:= ok.

%% Term order, and between keys that compare equal (1 and {t, 1.0}...) integers first, in the
%% order the numbers appear: the documented order of distinct keys that compare equal.
key_order({A, _}, {B, _}) ->
    A < B orelse (A == B andalso number_kinds(A) =< number_kinds(B)).

number_kinds(T) when is_integer(T) -> [0];
number_kinds(T) when is_float(T) -> [1];
number_kinds(T) when is_tuple(T) -> number_kinds(tuple_to_list(T));
number_kinds(T) when is_map(T) -> number_kinds([V || {_, V} <- lists:sort(maps:to_list(T))]);
number_kinds([H | T]) -> number_kinds(H) ++ number_kinds(T);
number_kinds(_) -> [].

%% The model's view of the operations, written independently of strata_ops.
add(N) -> fun(none) -> {write, N};
             ({value, V}) when is_number(V), N == 0 -> keep;
             ({value, V}) when is_number(V) -> {write, V + N};
             (_) -> {error, not_a_number} end.
tas(Old, New) -> fun(none) -> {error, not_found};
                    ({value, V}) when V =:= Old -> {write, New};
                    ({value, V}) -> {error, {key_changed, V}} end.
adl(A, D) -> fun(none) -> {write, A -- D};
                ({value, V}) when is_list(V) -> {write, (A ++ V) -- D};
                (_) -> {error, not_a_list} end.

old(M, K) -> case M of #{K := V} -> {value, V}; #{} -> none end.

apply_op(M, K, F) ->
    case F(old(M, K)) of {write, V} -> M#{K => V}; _ -> M end.

op_result(M, K, F) ->
    case F(old(M, K)) of {error, E} -> {error, E}; _ -> ok end.

%% A batch against the model: {model after, results}.
batch(M, Ops) -> batch(M, M, Ops, [], []).

batch(M0, _M, [], Acc, _Failed) -> {M0, lists:reverse(Acc)};
batch(M0, M, [commit], Acc, Failed) ->
    case Failed of
        [] -> {M, lists:reverse([{ok} | Acc])};
        _ -> {M0, lists:reverse([{fail, abort, lists:usort(Failed)} | Acc])}
    end;
batch(M0, M, [commit | Rest], Acc, Failed) -> batch(M0, M, Rest, [{fail, abort, []} | Acc], Failed);
batch(M0, M, [{read, K} | Rest], Acc, Failed) ->
    R = case M of #{K := V} -> {ok, V}; #{} -> {fail, not_found} end,
    batch(M0, M, Rest, [R | Acc], Failed);
batch(M0, M, [{write, K, V} | Rest], Acc, Failed) ->
    batch(M0, M#{K => V}, Rest, [{ok} | Acc], Failed);
batch(M0, M, [{add_on_nr, K, N} | Rest], Acc, Failed) ->
    case (add(N))(old(M, K)) of
        {write, V} -> batch(M0, M#{K => V}, Rest, [{ok} | Acc], Failed);
        keep -> batch(M0, M, Rest, [{ok} | Acc], Failed);
        {error, E} -> batch(M0, M, Rest, [{fail, E} | Acc], [K | Failed])
    end.

scan_all(Reverse) ->
    {ok, Items, done} = strata:scan('$min', '$max', #{limit => 10000, reverse => Reverse}),
    Items.

restart() ->
    {ok, Dir} = application:get_env(strata, data_dir),
    strata_test_util:stop(),
    strata_test_util:start(Dir, [{block_cache_mb, 16}]).

%%% The keycodec against Erlang's term order

key_term() ->
    proper_types:sized(fun(S) -> key_term(min(S, 6)) end).

key_term(0) ->
    oneof([int(), largeint(), real(), atom(), binary(), bitstring(), [],
           exactly(0.0), exactly(1), exactly(1.0), exactly(-1), exactly(1 bsl 64)]);
key_term(S) ->
    Sub = fun() -> key_term(S div 3) end,
    Let = fun(Gen, F) -> proper_types:lazy(fun() -> proper_types:bind(Gen(), F, false) end) end,
    frequency([{4, key_term(0)},
               {1, Let(fun() -> list(Sub()) end, fun(L) -> L end)},
               {1, Let(fun() -> list(Sub()) end, fun erlang:list_to_tuple/1)},
               {1, Let(fun() -> list({Sub(), Sub()}) end, fun maps:from_list/1)},
               {1, Let(fun() -> {Sub(), oneof([atom(), int(), binary()])} end,
                       fun({H, T}) -> [H | T] end)}]).

enc(T) ->
    {ok, B} = strata_nif:encode_key(T),
    B.

keycodec_follows_term_order(_Config) ->
    Prop = proper:forall({key_term(), key_term()},
                         fun({A, B}) ->
                                 {EA, EB} = {enc(A), enc(B)},
                                 if
                                     A < B -> EA < EB;
                                     A > B -> EA > EB;
                                     A =:= B -> EA =:= EB;
                                     true -> EA =/= EB   % equal, not identical: 1 and 1.0
                                 end
                         end),
    ?assert(proper:quickcheck(Prop, [{numtests, 5000}, {to_file, user}])).

keycodec_round_trips(_Config) ->
    Prop = proper:forall(key_term(), fun(T) -> strata_nif:decode_key(enc(T)) =:= {ok, T} end),
    ?assert(proper:quickcheck(Prop, [{numtests, 5000}, {to_file, user}])),
    %% Pids, references, ports and funs round-trip too.
    Others = [self(), make_ref(), hd(erlang:ports()), fun lists:map/2, fun() -> ok end,
              {self(), [make_ref()]}],
    [?assertEqual({ok, T}, strata_nif:decode_key(enc(T))) || T <- Others],
    ?assertMatch({error, _}, strata_nif:decode_key(<<255, 1, 2>>)).
