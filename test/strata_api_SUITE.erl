%%% The public API on a single node, with each engine (NIF and port) and under both
%%% durabilities: single-key calls, the Scalaris batch and transaction rules, scans, backups,
%%% persistence across restarts, concurrency and bad input.
-module(strata_api_SUITE).
-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-compile([export_all, nowarn_export_all]).

all() ->
    [{group, nif}, {group, port}].

groups() ->
    Api = [put_get_delete_any_terms, options_and_bad_input, value_and_key_limits,
           test_and_set_exact, add_on_nr_rules, add_on_nr_bounds, add_del_on_list_rules,
           req_list_reads_see_earlier_writes, req_list_commit_placement,
           req_list_failed_op_poisons, req_list_without_commit_writes_nothing,
           stale_transaction_aborts_lost_update, read_missing_then_created_aborts,
           transaction_reads_own_writes, transaction_writes_and_deletes_keys_it_read,
           transaction_exception_writes_nothing,
           transaction_abort_and_retries, concurrent_increments_exact,
           concurrent_transfers_keep_total, scan_pages_in_term_order, scan_reverse_and_tags,
           scan_in_transaction_reads_its_snapshot],
    Engine = [{group, async}, {group, sync}, {group, node}],
    [{nif, [], Engine}, {port, [], Engine},
     {async, [], Api}, {sync, [], Api},
     {node, [], [commit_log_follows_writes, persists_across_restart, backup_opens_as_store, second_open_is_locked,
                 unwritable_data_dir, bad_config_is_refused, status_reports,
                 data_moves_between_engines]}].

init_per_group(Engine, Config) when Engine =:= nif; Engine =:= port ->
    ok = strata_test_util:use_engine(Engine),
    [{engine, Engine} | Config];
init_per_group(node, Config) ->
    [{durability, async} | Config];
init_per_group(Durability, Config) ->
    [{durability, Durability} | Config].

end_per_group(port, _Config) ->
    strata_test_util:use_engine(nif);
end_per_group(_, _Config) ->
    ok.

init_per_testcase(Case, Config) ->
    Dir = strata_test_util:fresh_dir(Config, atom_to_list(Case)),
    ok = strata_test_util:start(Dir, [{durability, ?config(durability, Config)},
                                      {block_cache_mb, 16}]),
    [{dir, Dir} | Config].

end_per_testcase(_Case, _Config) ->
    strata_test_util:stop().

%%% Single keys

put_get_delete_any_terms(_Config) ->
    Terms = [<<"k">>, <<>>, <<0, 255, 0>>, atom, 'é', 1, -1, 1.0, 1 bsl 200, -(1 bsl 200),
             2.5e-300, "string", [], [a | b], {}, {a, {b, [c]}}, #{a => 1, 1.0 => x},
             <<1:3>>, make_ref(), self(), fun lists:map/2],
    [begin
         ?assertEqual({error, not_found}, strata:get(K)),
         ?assertEqual(ok, strata:put(K, {value, K})),
         ?assertEqual({ok, {value, K}}, strata:get(K))
     end || K <- Terms],
    %% 1 and 1.0 compare equal but are distinct keys.
    ok = strata:put(7, int),
    ok = strata:put(7.0, float),
    ?assertEqual({ok, int}, strata:get(7)),
    ?assertEqual({ok, float}, strata:get(7.0)),
    ok = strata:delete(<<"k">>),
    ?assertEqual({error, not_found}, strata:get(<<"k">>)),
    ?assertEqual(ok, strata:delete(<<"never there">>)),
    Big = binary:copy(<<"x">>, 100000),
    ok = strata:put(big, Big),
    ?assertEqual({ok, Big}, strata:get(big)).

options_and_bad_input(_Config) ->
    ?assertEqual({error, {bad_option, {durability, maybe}}},
                 strata:put(k, v, #{durability => maybe})),
    ?assertEqual({error, {bad_option, {timeout, -1}}}, strata:put(k, v, #{timeout => -1})),
    ?assertEqual({error, {bad_option, {colour, red}}}, strata:get(k, #{colour => red})),
    ?assertEqual({error, {bad_option, not_a_map}}, strata:delete(k, not_a_map)),
    ?assertEqual({error, {bad_request, nope}}, strata:req_list(nope)),
    ?assertEqual({error, {bad_fun, nope}}, strata:transaction(nope)),
    ?assertMatch({error, {bad_fun, _}}, strata:transaction(fun(_) -> x end)),
    ?assertEqual({error, {bad_option, {limit, 0}}}, strata:scan('$min', '$max', #{limit => 0})),
    ?assertEqual({error, {bad_option, {reverse, yes}}},
                 strata:scan('$min', '$max', #{reverse => yes})),
    ?assertEqual({error, {bad_continuation, junk}}, strata:scan(junk)),
    ?assertEqual({error, {bad_option, {min, x}}}, strata:add_on_nr(n, 1, #{min => x})),
    ?assertEqual([{fail, {bad_op, {frobnicate, k}}}, {fail, abort, [{bad_op, {frobnicate, k}}]}],
                 strata:req_list([{frobnicate, k}, commit])),
    %% The node keeps serving.
    ok = strata:put(k, v, #{durability => sync, timeout => 1000}),
    ?assertEqual({ok, v}, strata:get(k)).

value_and_key_limits(_Config) ->
    TooBig = binary:copy(<<0>>, 16 * 1024 * 1024 + 1),
    ?assertEqual({error, value_too_large}, strata:put(k, TooBig)),
    ?assertEqual({error, not_found}, strata:get(k)),
    LongKey = binary:copy(<<"k">>, 70000),
    ?assertEqual({error, key_too_large}, strata:put(LongKey, v)),
    ?assertEqual({error, key_too_large}, strata:get(LongKey)),
    [_ | _] = strata:req_list([{write, k, TooBig}, commit]),
    ?assertEqual({error, not_found}, strata:get(k)),
    ok = strata:put(k, small),
    ?assertEqual({ok, small}, strata:get(k)).

test_and_set_exact(_Config) ->
    ?assertEqual({error, not_found}, strata:test_and_set(t, 1, 2)),
    ok = strata:put(t, 1),
    ?assertEqual({error, {key_changed, 1}}, strata:test_and_set(t, 1.0, 2)),
    ?assertEqual(ok, strata:test_and_set(t, 1, 2)),
    ?assertEqual({ok, 2}, strata:get(t)),
    ?assertEqual({error, {key_changed, 2}}, strata:test_and_set(t, 1, 3)).

add_on_nr_rules(_Config) ->
    ok = strata:add_on_nr(n, 5),
    ?assertEqual({ok, 5}, strata:get(n)),
    ok = strata:add_on_nr(n, 2),
    ?assertEqual({ok, 7}, strata:get(n)),
    ok = strata:add_on_nr(n, 0.5),
    ?assertEqual({ok, 7.5}, strata:get(n)),
    ok = strata:put(i, 3),
    ok = strata:add_on_nr(i, 0.0),
    ?assertEqual({ok, 3}, strata:get(i)),  % adding 0 keeps the type
    ok = strata:put(f, 3.0),
    ok = strata:add_on_nr(f, 0),
    ?assertEqual({ok, 3.0}, strata:get(f)),
    ok = strata:put(s, "text"),
    ?assertEqual({error, not_a_number}, strata:add_on_nr(s, 1)),
    ?assertEqual({error, not_a_number}, strata:add_on_nr(n, one)),
    ?assertEqual({ok, "text"}, strata:get(s)).

add_on_nr_bounds(_Config) ->
    ok = strata:put(stock, 3),
    ?assertEqual({error, out_of_bounds}, strata:add_on_nr(stock, -4, #{min => 0})),
    ?assertEqual({ok, 3}, strata:get(stock)),
    ok = strata:add_on_nr(stock, -3, #{min => 0}),
    ?assertEqual({ok, 0}, strata:get(stock)),
    ?assertEqual({error, out_of_bounds}, strata:add_on_nr(stock, 11, #{max => 10})),
    %% In a batch a violation fails the whole transaction.
    ?assertEqual([{ok}, {fail, out_of_bounds}, {fail, abort, [stock]}],
                 strata:req_list([{write, other, 1}, {add_on_nr, stock, -1, #{min => 0}},
                                  commit])),
    ?assertEqual({error, not_found}, strata:get(other)),
    ?assertEqual({error, {abort, [stock]}},
                 strata:transaction(fun() ->
                                            ok = strata:put(other, 1),
                                            strata:add_on_nr(stock, -1, #{min => 0})
                                    end)),
    ?assertEqual({error, not_found}, strata:get(other)).

add_del_on_list_rules(_Config) ->
    ok = strata:add_del_on_list(l, [a, b], []),
    ?assertEqual({ok, [a, b]}, strata:get(l)),
    ok = strata:add_del_on_list(l, [c, a], [a]),
    %% Add ++ Old minus the first occurrence of each element of Del.
    ?assertEqual({ok, [c, a, b]}, strata:get(l)),
    ok = strata:add_del_on_list(l, [], [b, zzz]),
    ?assertEqual({ok, [c, a]}, strata:get(l)),
    ok = strata:put(notlist, 42),
    ?assertEqual({error, not_a_list}, strata:add_del_on_list(notlist, [x], [])),
    ?assertEqual({error, not_a_list}, strata:add_del_on_list(l, x, [])),
    ?assertEqual({error, not_a_list}, strata:add_del_on_list(l, [x | y], [])),
    ?assertEqual({ok, [c, a]}, strata:get(l)).

%%% Batches (Scalaris semantics)

req_list_reads_see_earlier_writes(_Config) ->
    ok = strata:put(a, 1),
    ?assertEqual([{ok, 1}, {ok}, {ok, 2}, {fail, not_found}, {ok}, {ok, 7}, {ok}, {ok, [x]},
                  {ok}],
                 strata:req_list([{read, a}, {write, a, 2}, {read, a}, {read, b},
                                  {add_on_nr, b, 7}, {read, b}, {add_del_on_list, c, [x], []},
                                  {read, c}, commit])),
    ?assertEqual({ok, 2}, strata:get(a)),
    ?assertEqual({ok, 7}, strata:get(b)),
    ?assertEqual({ok, [x]}, strata:get(c)).

req_list_commit_placement(_Config) ->
    ?assertEqual([{ok}, {fail, abort, []}, {ok}],
                 strata:req_list([{write, a, 1}, commit, {write, b, 2}])),
    ?assertEqual({error, not_found}, strata:get(a)),
    ?assertEqual({error, not_found}, strata:get(b)),
    ?assertEqual([{ok}, {ok}], strata:req_list([{write, a, 1}, commit])),
    ?assertEqual({ok, 1}, strata:get(a)),
    ?assertEqual([{ok}], strata:req_list([commit])).

req_list_failed_op_poisons(_Config) ->
    ok = strata:put(n, "not a number"),
    ok = strata:put(t, old),
    Cases = [{{add_on_nr, n, 1}, {fail, not_a_number}, n},
             {{add_del_on_list, t, [x], []}, {fail, not_a_list}, t},
             {{test_and_set, t, wrong, new}, {fail, {key_changed, old}}, t},
             {{test_and_set, missing, x, y}, {fail, not_found}, missing}],
    [?assertEqual([{ok}, Fail, {ok}, {fail, abort, [Key]}],
                  strata:req_list([{write, w1, 1}, Op, {write, w2, 2}, commit]))
     || {Op, Fail, Key} <- Cases],
    ?assertEqual({error, not_found}, strata:get(w1)),
    ?assertEqual({error, not_found}, strata:get(w2)),
    %% A read of a missing key is not a failure.
    ?assertEqual([{fail, not_found}, {ok}, {ok}],
                 strata:req_list([{read, missing}, {write, w1, 1}, commit])),
    ?assertEqual({ok, 1}, strata:get(w1)).

req_list_without_commit_writes_nothing(_Config) ->
    ?assertEqual([{ok}, {ok, 1}], strata:req_list([{write, a, 1}, {read, a}])),
    ?assertEqual({error, not_found}, strata:get(a)).

%%% Transactions

stale_transaction_aborts_lost_update(_Config) ->
    ok = strata:put(x, 1),
    Parent = self(),
    %% The transaction reads x, waits while another writer changes x, then writes x + 1:
    %% it must abort rather than lose the other write.
    Result = strata:transaction(
               fun() ->
                       {ok, X} = strata:get(x),
                       case get(interfered) of
                           undefined ->
                               put(interfered, true),
                               spawn_link(fun() -> Parent ! {done, strata:put(x, 100)} end),
                               receive {done, ok} -> ok end;
                           true ->
                               ok
                       end,
                       ok = strata:put(x, X + 1),
                       X
               end, #{retries => 0}),
    ?assertEqual({error, {abort, [x]}}, Result),
    ?assertEqual({ok, 100}, strata:get(x)),
    %% With retries it runs again on the new value.
    erase(interfered),
    ?assertEqual({ok, 100}, strata:transaction(fun() ->
                                                        {ok, X} = strata:get(x),
                                                        ok = strata:put(x, X + 1),
                                                        X
                                                end)),
    ?assertEqual({ok, 101}, strata:get(x)).

read_missing_then_created_aborts(_Config) ->
    Parent = self(),
    Result = strata:transaction(
               fun() ->
                       {error, not_found} = strata:get(ghost),
                       spawn_link(fun() -> Parent ! {done, strata:put(ghost, boo)} end),
                       receive {done, ok} -> ok end,
                       ok = strata:put(seen_no_ghost, true)
               end, #{retries => 0}),
    ?assertEqual({error, {abort, [ghost]}}, Result),
    ?assertEqual({error, not_found}, strata:get(seen_no_ghost)).

%% Keys a transaction read go to its commit as the engine stored them (the NIF does not encode
%% them again): a write, a delete and a write of a key read as missing must all land, on
%% tagged and plain keys alike.
transaction_writes_and_deletes_keys_it_read(_Config) ->
    Tagged = strata:tag(<<"t">>, {k, 1}),
    ok = strata:put(Tagged, 1),
    ok = strata:put(plain, 2),
    {ok, {1, 2}} = strata:transaction(
                     fun() ->
                             {ok, A} = strata:get(Tagged),
                             {ok, B} = strata:get(plain),
                             {error, not_found} = strata:get({new, key}),
                             ok = strata:put(Tagged, A + 10),
                             ok = strata:delete(plain),
                             ok = strata:put({new, key}, B),
                             {A, B}
                     end),
    ?assertEqual({ok, 11}, strata:get(Tagged)),
    ?assertEqual({error, not_found}, strata:get(plain)),
    ?assertEqual({ok, 2}, strata:get({new, key})),
    %% The same through a single-key update outside a transaction.
    ?assertEqual(ok, strata:test_and_set(Tagged, 11, 12)),
    ?assertEqual({ok, 12}, strata:get(Tagged)),
    ?assertEqual({ok, [{Tagged, 12}], done},
                 strata:scan(strata:tag(<<"t">>, 0), strata:tag(<<"t">>, <<>>), #{})).

transaction_reads_own_writes(_Config) ->
    ok = strata:put(a, 1),
    {ok, Seen} = strata:transaction(
                   fun() ->
                           ok = strata:put(a, 2),
                           ok = strata:add_on_nr(a, 3),
                           ok = strata:delete(b),
                           {strata:get(a), strata:get(b)}
                   end),
    ?assertEqual({{ok, 5}, {error, not_found}}, Seen),
    ?assertEqual({ok, 5}, strata:get(a)),
    %% Nested transactions join the outer one.
    {ok, {ok, inner}} = strata:transaction(fun() ->
                                                   strata:transaction(fun() ->
                                                                              strata:put(c, 1),
                                                                              inner
                                                                      end)
                                           end),
    ?assertEqual({ok, 1}, strata:get(c)),
    ?assertEqual({error, nested_req_list},
                 element(2, strata:transaction(fun() -> strata:req_list([commit]) end))),
    ?assertNot(strata:in_transaction()),
    ?assertEqual({ok, true}, strata:transaction(fun strata:in_transaction/0)).

transaction_exception_writes_nothing(_Config) ->
    ?assertError(boom, strata:transaction(fun() -> ok = strata:put(e, 1), error(boom) end)),
    ?assertEqual({error, not_found}, strata:get(e)),
    ?assertEqual({error, {aborted, changed_my_mind}},
                 strata:transaction(fun() -> ok = strata:put(e, 1),
                                             strata:abort(changed_my_mind) end)),
    ?assertEqual({error, not_found}, strata:get(e)),
    %% After an exception the process is not left inside a transaction.
    ok = strata:put(e, 2),
    ?assertEqual({ok, 2}, strata:get(e)).

transaction_abort_and_retries(_Config) ->
    ok = strata:put(c, 0),
    Counter = counters:new(1, []),
    %% Every attempt is disturbed by a concurrent write: after 1 + 3 attempts it gives up.
    Result = strata:transaction(
               fun() ->
                       counters:add(Counter, 1, 1),
                       {ok, V} = strata:get(c),
                       Self = self(),
                       spawn_link(fun() -> Self ! {w, strata:put(c, V + 1000)} end),
                       receive {w, ok} -> ok end,
                       strata:put(c, V + 1)
               end, #{retries => 3}),
    ?assertEqual({error, {abort, [c]}}, Result),
    ?assertEqual(4, counters:get(Counter, 1)),
    ?assertEqual({ok, 4000}, strata:get(c)).

concurrent_increments_exact(_Config) ->
    Procs = 8,
    Each = 100,
    Parent = self(),
    [spawn_link(fun() -> Parent ! {inc_done, increment(counter, Each)} end)
     || _ <- lists:seq(1, Procs)],
    Retries = lists:sum([receive {inc_done, R} -> R after 60000 -> error(timeout) end
                         || _ <- lists:seq(1, Procs)]),
    ct:pal("~p increments, ~p conflicts retried", [Procs * Each, Retries]),
    ?assertEqual({ok, Procs * Each}, strata:get(counter)).

%% Increments `Key' `N' times, each as a transaction retried on abort; returns the aborts.
increment(_Key, 0) ->
    0;
increment(Key, N) ->
    Txn = fun() ->
                  Old = case strata:get(Key) of {ok, V} -> V; {error, not_found} -> 0 end,
                  strata:put(Key, Old + 1)
          end,
    case strata:transaction(Txn, #{retries => 0}) of
        {ok, ok} -> increment(Key, N - 1);
        {error, {abort, [Key]}} -> 1 + increment(Key, N)
    end.

concurrent_transfers_keep_total(_Config) ->
    Accounts = [{acct, I} || I <- lists:seq(1, 5)],
    [ok = strata:put(A, 100) || A <- Accounts],
    Parent = self(),
    Worker = fun(Seed) ->
                     rand:seed(exsss, {Seed, Seed, Seed}),
                     [begin
                          From = lists:nth(rand:uniform(5), Accounts),
                          To = lists:nth(rand:uniform(5), Accounts),
                          _ = strata:transaction(
                                fun() ->
                                        {ok, F} = strata:get(From),
                                        case F >= 10 of
                                            true ->
                                                ok = strata:put(From, F - 10),
                                                {ok, T} = strata:get(To),
                                                strata:put(To, T + 10);
                                            false ->
                                                ok
                                        end
                                end, #{retries => 50})
                      end || _ <- lists:seq(1, 100)],
                     Parent ! transfers_done
             end,
    [spawn_link(fun() -> Worker(S) end) || S <- lists:seq(1, 6)],
    Reads = read_totals(Accounts, 6, []),
    ?assert(lists:all(fun(T) -> T =:= 500 end, Reads)),
    {ok, Final} = strata:transaction(fun() -> [element(2, strata:get(A)) || A <- Accounts] end),
    ?assertEqual(500, lists:sum(Final)),
    ?assert(lists:all(fun(B) -> B >= 0 end, Final)).

read_totals(_Accounts, 0, Acc) ->
    Acc;
read_totals(Accounts, Left, Acc) ->
    {ok, Total} = strata:transaction(
                    fun() -> lists:sum([element(2, strata:get(A)) || A <- Accounts]) end),
    receive
        transfers_done -> read_totals(Accounts, Left - 1, [Total | Acc])
    after 0 ->
            read_totals(Accounts, Left, [Total | Acc])
    end.

%%% Scans

scan_pages_in_term_order(_Config) ->
    Keys = [1, 2.5, 3, atom, zzz, {1}, {1, 2}, #{}, [], [1], "ab", <<>>, <<"a">>, <<"b">>,
            -10, 1 bsl 70],
    [ok = strata:put(K, {v, K}) || K <- Keys],
    ok = strata:delete(zzz),
    Expected = [{K, {v, K}} || K <- lists:sort(Keys), K =/= zzz],
    ?assertEqual(Expected, scan_all('$min', '$max', #{limit => 3})),
    ?assertEqual(lists:reverse(Expected), scan_all('$min', '$max', #{limit => 4, reverse => true})),
    %% From inclusive, To exclusive.
    ?assertEqual([{K, {v, K}} || K <- [2.5, 3, 1 bsl 70, atom]], scan_all(2.5, {1}, #{limit => 2})),
    %% Values alone, over the same pages and continuations.
    ?assertEqual([V || {_, V} <- Expected], scan_all('$min', '$max', #{limit => 3, keys => false})),
    ?assertEqual([{v, K} || K <- [atom, 1 bsl 70, 3, 2.5]],
                 scan_all(2.5, {1}, #{limit => 2, reverse => true, keys => false})),
    ?assertEqual({error, {bad_option, {keys, no}}}, strata:scan('$min', '$max', #{keys => no})),
    %% Pages come from one snapshot: writes after the first page are not seen.
    {ok, [_], Cont} = strata:scan('$min', '$max', #{limit => 1}),
    ok = strata:put(0, late),
    ok = strata:delete(<<"b">>),
    Rest = scan_rest(Cont, []),
    ?assertEqual(tl(Expected), Rest),
    ?assertEqual({ok, [], done}, strata:scan(5, 5, #{})).

%% A scan inside a transaction agrees with the transaction's reads: a write another process
%% commits meanwhile is not seen, on the first page or later ones.
scan_in_transaction_reads_its_snapshot(_Config) ->
    K = fun(I) -> {scan_tx, I} end,
    [ok = strata:put(K(I), I) || I <- [1, 2, 3]],
    {ok, Seen} =
        strata:transaction(
          fun() ->
                  {ok, 1} = strata:get(K(1)),
                  {_, Ref} = spawn_monitor(fun() ->
                                                   ok = strata:put(K(4), 4),
                                                   ok = strata:delete(K(2))
                                           end),
                  receive {'DOWN', Ref, _, _, Reason} -> normal = Reason end,
                  ok = strata:put(K(5), own),
                  {ok, [First], Cont} = strata:scan(K(0), K(9), #{limit => 1}),
                  [First | scan_rest(Cont, [])]
          end),
    ?assertEqual([{K(I), I} || I <- [1, 2, 3]], Seen),
    ?assertEqual([{K(1), 1}, {K(3), 3}, {K(4), 4}, {K(5), own}], scan_all(K(0), K(9), #{limit => 2})).

scan_all(From, To, Opts) ->
    {ok, Items, Cont} = strata:scan(From, To, Opts),
    ?assert(length(Items) =< maps:get(limit, Opts)),
    scan_rest(Cont, lists:reverse(Items)).

scan_rest(done, Acc) ->
    lists:reverse(Acc);
scan_rest(Cont, Acc) ->
    {ok, Items, Next} = strata:scan(Cont),
    scan_rest(Next, lists:reverse(Items, Acc)).

scan_reverse_and_tags(_Config) ->
    [ok = strata:put(strata:tag(feed1, I), I) || I <- lists:seq(1, 50)],
    [ok = strata:put(strata:tag(feed2, I), I) || I <- lists:seq(1, 50)],
    ?assertEqual(strata_store:partition_of(strata:tag(feed1, 1)),
                 strata_store:partition_of(strata:tag(feed1, 999))),
    Page = scan_all(strata:tag(feed1, 10), strata:tag(feed1, 20), #{limit => 4}),
    ?assertEqual([{strata:tag(feed1, I), I} || I <- lists:seq(10, 19)], Page),
    {ok, Top, _} = strata:scan(strata:tag(feed2, 0), strata:tag(feed2, 1000),
                               #{limit => 3, reverse => true}),
    ?assertEqual([50, 49, 48], [V || {_, V} <- Top]).

%%% The node

commit_log_follows_writes(_Config) ->
    Key = strata:tag(log, 1),
    P = strata_store:partition_of(Key),
    ?assertEqual(P, strata_store:partition_of(strata:tag(log, 2))),
    Before = strata_store:last_seq(P),
    ok = strata:put(Key, a),
    ok = strata:put(strata:tag(log, 2), b),
    ok = strata:delete(Key),
    ?assertEqual(Before + 3, strata_store:last_seq(P)),
    ?assertEqual({ok, [{Before + 1, Key, put}, {Before + 2, strata:tag(log, 2), put},
                       {Before + 3, Key, delete}]},
                 strata_store:log_since(P, Before, 10)),
    ?assertEqual({ok, [{Before + 3, Key, delete}]}, strata_store:log_since(P, Before + 2, 10)),
    ?assertEqual({ok, [{Before + 1, Key, put}]}, strata_store:log_since(P, Before, 1)).

persists_across_restart(Config) ->
    Dir = ?config(dir, Config),
    ok = strata:put(durable, #{a => 1}),
    ok = strata:put(synced, yes, #{durability => sync}),
    [ok = strata:put({n, I}, I) || I <- lists:seq(1, 1000)],
    strata_test_util:stop(),
    ?assertEqual({error, not_started}, strata:get(durable)),
    ok = strata_test_util:start(Dir, []),
    ?assertEqual({ok, #{a => 1}}, strata:get(durable)),
    ?assertEqual({ok, yes}, strata:get(synced)),
    ?assertEqual({ok, 1000}, strata:get({n, 1000})),
    ok = strata:add_on_nr({n, 1}, 1),
    ?assertEqual({ok, 2}, strata:get({n, 1})).

backup_opens_as_store(Config) ->
    Backup = filename:join(?config(priv_dir, Config),
                           "backup-" ++ integer_to_list(erlang:unique_integer([positive]))),
    ok = strata:put(kept, 1),
    ?assertEqual(ok, strata:backup(Backup)),
    ok = strata:put(kept, 2),
    ok = strata:put(later, x),
    ?assertMatch({error, {invalid, _}}, strata:backup(Backup)),
    strata_test_util:stop(),
    ok = strata_test_util:start(Backup, []),
    ?assertEqual({ok, 1}, strata:get(kept)),
    ?assertEqual({error, not_found}, strata:get(later)).

second_open_is_locked(Config) ->
    ?assertEqual({error, locked}, strata_nif:open(list_to_binary(?config(dir, Config)), #{})),
    ok = strata:put(still, serving),
    ?assertEqual({ok, serving}, strata:get(still)).

unwritable_data_dir(Config) ->
    strata_test_util:stop(),
    ReadOnly = filename:join(?config(priv_dir, Config), "readonly"),
    ok = filelib:ensure_dir(filename:join(ReadOnly, "x")),
    ok = file:change_mode(ReadOnly, 8#500),
    Inside = filename:join(ReadOnly, "db"),
    application:set_env(strata, data_dir, Inside),
    Result = application:ensure_all_started(strata),
    strata_test_util:stop(),
    ok = file:change_mode(ReadOnly, 8#700),
    case os:getenv("USER") =:= "root" orelse os:cmd("id -u") =:= "0\n" of
        true ->
            %% root ignores file modes; a file where the directory should be still fails.
            File = filename:join(?config(priv_dir, Config), "a-file"),
            ok = file:write_file(File, <<>>),
            application:set_env(strata, data_dir, filename:join(File, "db")),
            ?assertMatch({error, {strata, {{shutdown, {failed_to_start_child, strata_store,
                                                       {open_failed, _, _}}}, _}}},
                         application:ensure_all_started(strata));
        false ->
            ?assertMatch({error, {strata, _}}, Result)
    end,
    ok = strata_test_util:start(?config(dir, Config), []),
    ok = strata:put(k, v),
    ?assertEqual({ok, v}, strata:get(k)).

bad_config_is_refused(Config) ->
    strata_test_util:stop(),
    [begin
         application:set_env(strata, K, V),
         ?assertMatch({error, {strata, {{bad_config, K, V}, _}}},
                      application:ensure_all_started(strata)),
         application:unset_env(strata, K)
     end || {K, V} <- [{partitions, 3}, {durability, fast}, {block_cache_mb, 0},
                       {data_dir, 42}, {engine, diesel}]],
    ok = strata_test_util:use_engine(?config(engine, Config)),
    ok = strata_test_util:start(?config(dir, Config), []),
    strata_test_util:stop(),
    ?assertMatch({error, {strata, _}},
                 begin
                     application:set_env(strata, partitions, 128),
                     application:ensure_all_started(strata)
                 end),
    application:unset_env(strata, partitions).

status_reports(Config) ->
    #{node := N, engine := Engine, config := #{data_dir := Dir}, store := #{partitions := 64}} =
        strata:status(),
    ?assertEqual(node(), N),
    ?assertEqual(?config(engine, Config), Engine),
    ?assertEqual(?config(dir, Config), Dir).

%% Both engines store the same bytes: a data directory written by one opens in the other.
data_moves_between_engines(Config) ->
    Other = case ?config(engine, Config) of nif -> port; port -> nif end,
    Pairs = [{K, {value, K}} || K <- [<<"bin">>, atom, 1, 1.0, "str", {t, [1, 2]}, #{m => 1},
                                       1 bsl 100, strata:tag(feed, 1), strata:tag(feed, 2)]],
    [ok = strata:put(K, V) || {K, V} <- Pairs],
    ok = strata:put(synced, yes, #{durability => sync}),
    ok = strata:delete(atom),
    P = strata_store:partition_of(strata:tag(feed, 1)),
    Seq = strata_store:last_seq(P),
    {ok, Scan, done} = strata:scan('$min', '$max', #{limit => 100}),
    strata_test_util:stop(),
    ok = strata_test_util:start(?config(dir, Config), [{engine, Other}]),
    ?assertEqual(Other, strata_store:engine()),
    ?assertEqual({ok, Scan, done}, strata:scan('$min', '$max', #{limit => 100})),
    [?assertEqual({ok, V}, strata:get(K)) || {K, V} <- Pairs, K =/= atom],
    ?assertEqual({error, not_found}, strata:get(atom)),
    ?assertEqual({ok, yes}, strata:get(synced)),
    ?assertEqual(P, strata_store:partition_of(strata:tag(feed, 2))),
    ?assertEqual(Seq, strata_store:last_seq(P)),
    ?assertEqual(ok, strata:test_and_set(1, {value, 1}, two)),
    ?assertEqual({ok, two}, strata:get(1)),
    strata_test_util:stop(),
    ok = strata_test_util:start(?config(dir, Config), [{engine, ?config(engine, Config)}]).
