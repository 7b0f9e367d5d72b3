%%% strata_kvs: KVS' records and feeds over strata. Records with exact indexes and counts;
%%% feeds with KVS' defects fixed (per-feed sequence, atomic entry + writer, cursors that stay
%%% in their feed, top = oldest / bot = newest, exact counts, prefix-safe ids, sub-feeds only
%%% on request); concurrent appenders and readers; kill -9 in the middle of appends.
-module(strata_kvs_SUITE).
-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").
-include("../erlang/include/strata_kvs.hrl").

-compile([export_all, nowarn_export_all]).

-record(person, {id, name, email, age}).
-record(note, {id, text}).

all() ->
    [{group, nif}, {group, port}].

groups() ->
    Engine = [{group, records}, {group, feeds}, {group, concurrency}, {group, crash}],
    [{nif, [], Engine}, {port, [], Engine},
     {records, [], [put_get_delete, put_list_is_atomic, bad_records_are_refused,
                    index_exact_after_updates_and_deletes, index_of_unindexed_field,
                    count_exact, all_in_id_order, seq_counts_without_gaps,
                    writes_join_the_callers_transaction, schema_from_metainfo]},
     {feeds, [], [append_and_feed_in_order, writer_fields, top_is_oldest_bot_is_newest,
                  take_both_directions, paging_past_the_ends_keeps_the_cursor,
                  next_and_prev, drop_skips, sequence_is_per_feed, remove_present_and_absent,
                  remove_keeps_links, cut_empties_the_feed, prefix_ids_never_mix,
                  ids_with_slashes, subfeeds_only_when_asked, append_existing_id_replaces,
                  auto_ids, add_returns_the_writer, save_never_overwrites_the_writer,
                  save_and_load_reader, entry_and_get_writer, append_in_a_transaction]},
     {concurrency, [], [twelve_appenders_one_feed, uncombined_appenders_one_feed,
                       reader_paging_during_appends_sees_no_gap,
                        appenders_and_removers, appenders_on_eight_feeds,
                        concurrent_record_updates_keep_indexes, lanes_are_supervised,
                        a_lane_that_dies_answers_its_waiting_callers]},
     {crash, [], [kill_9_during_appends]}].

%% The suite is its own schema module.
metainfo() ->
    #schema{name = test,
            tables = [#table{name = person, fields = record_info(fields, person),
                             keys = [email, age]},
                      #table{name = note, fields = record_info(fields, note)}]}.

init_per_group(Engine, Config) when Engine =:= nif; Engine =:= port ->
    ok = strata_test_util:use_engine(Engine),
    [{engine, Engine} | Config];
init_per_group(_, Config) ->
    Config.

end_per_group(port, _Config) ->
    strata_test_util:use_engine(nif);
end_per_group(_, _Config) ->
    ok.

init_per_testcase(kill_9_during_appends, Config) ->
    Config;
init_per_testcase(Case, Config) ->
    Dir = strata_test_util:fresh_dir(Config, atom_to_list(Case)),
    ok = strata_test_util:start(Dir, [{durability, async}, {block_cache_mb, 16},
                                      {kvs_schema, [?MODULE]}]),
    Config.

end_per_testcase(_Case, _Config) ->
    strata_test_util:stop().

%%% Records

put_get_delete(_Config) ->
    P = #person{id = 1, name = <<"Ada">>, email = <<"ada@x">>, age = 36},
    ?assertEqual({error, not_found}, strata_kvs:get(person, 1)),
    ?assertEqual(ok, strata_kvs:put(P)),
    ?assertEqual({ok, P}, strata_kvs:get(person, 1)),
    %% Undeclared tables work too (no index).
    ok = strata_kvs:put({thing, "a", 1}),
    ?assertEqual({ok, {thing, "a", 1}}, strata_kvs:get(thing, "a")),
    ?assertEqual(ok, strata_kvs:delete(person, 1)),
    ?assertEqual({error, not_found}, strata_kvs:get(person, 1)),
    ?assertEqual(ok, strata_kvs:delete(person, 1)),
    ?assertEqual([], strata_kvs:index(person, email, <<"ada@x">>)).

put_list_is_atomic(_Config) ->
    %% A list is one transaction: a record that fails its check leaves nothing written.
    Good = #person{id = 1, email = e1},
    ?assertMatch({error, {bad_record, _}}, strata_kvs:put([Good, {person, 2}])),
    ?assertEqual({error, not_found}, strata_kvs:get(person, 1)),
    ?assertEqual(0, strata_kvs:count(person)),
    ok = strata_kvs:put([Good, #person{id = 2, email = e2}, #note{id = 1, text = t}]),
    ?assertEqual(2, strata_kvs:count(person)),
    ?assertEqual(1, strata_kvs:count(note)).

bad_records_are_refused(_Config) ->
    ?assertEqual({error, {bad_record, nope}}, strata_kvs:put(nope)),
    ?assertEqual({error, {bad_record, {person}}}, strata_kvs:put({person})),
    ?assertMatch({error, {bad_record, _}}, strata_kvs:put({person, 1, too, few})),
    ?assertEqual({error, {bad_record, nope}}, strata_kvs:append(nope, feed)).

index_exact_after_updates_and_deletes(_Config) ->
    ok = strata_kvs:put([#person{id = I, email = {mail, I rem 3}, age = 20 + I rem 2}
                         || I <- lists:seq(1, 30)]),
    ?assertEqual([I || I <- lists:seq(1, 30), I rem 3 =:= 1],
                 ids(strata_kvs:index(person, email, {mail, 1}))),
    %% Changing an indexed field moves the record from one index value to the other.
    ok = strata_kvs:put(#person{id = 1, email = {mail, 2}, age = 21}),
    ?assertNot(lists:member(1, ids(strata_kvs:index(person, email, {mail, 1})))),
    ?assert(lists:member(1, ids(strata_kvs:index(person, email, {mail, 2})))),
    %% The index returns the current record, not the one it was indexed with.
    ok = strata_kvs:put(#person{id = 2, name = renamed, email = {mail, 2}, age = 20}),
    ?assertEqual([#person{id = 2, name = renamed, email = {mail, 2}, age = 20}],
                 [P || #person{id = 2} = P <- strata_kvs:index(person, email, {mail, 2})]),
    %% Deletes remove index entries.
    ok = strata_kvs:delete(person, 4),
    ?assertNot(lists:member(4, ids(strata_kvs:index(person, email, {mail, 1})))),
    %% Exact match: 21 and 21.0 are different values.
    ok = strata_kvs:put(#person{id = 100, age = 21.0}),
    ?assertEqual([100], ids(strata_kvs:index(person, age, 21.0))),
    ?assertNot(lists:member(100, ids(strata_kvs:index(person, age, 21)))),
    %% Each index agrees with a full read.
    All = strata_kvs:all(person),
    [?assertEqual([P || P <- All, P#person.email =:= V], strata_kvs:index(person, email, V))
     || V <- [{mail, 0}, {mail, 1}, {mail, 2}]].

index_of_unindexed_field(_Config) ->
    ok = strata_kvs:put([#person{id = 1, name = x}, #person{id = 2, name = y},
                         #person{id = 3, name = x}]),
    ?assertEqual([1, 3], ids(strata_kvs:index(person, name, x))),
    ?assertEqual({error, {not_a_field, person, colour}}, strata_kvs:index(person, colour, red)).

count_exact(_Config) ->
    ?assertEqual(0, strata_kvs:count(person)),
    ok = strata_kvs:put([#person{id = I} || I <- lists:seq(1, 50)]),
    ?assertEqual(50, strata_kvs:count(person)),
    %% Overwrites do not count twice.
    ok = strata_kvs:put([#person{id = I, name = again} || I <- lists:seq(1, 50)]),
    ?assertEqual(50, strata_kvs:count(person)),
    %% Deleting present and absent ids.
    [ok = strata_kvs:delete(person, I) || I <- lists:seq(41, 60)],
    ?assertEqual(40, strata_kvs:count(person)),
    ?assertEqual(40, length(strata_kvs:all(person))),
    ?assertEqual(0, strata_kvs:count(nothing_here)).

all_in_id_order(_Config) ->
    Ids = [3, 1, <<"b">>, a, {x, 1}, "s", 2.5, <<"a">>],
    ok = strata_kvs:put([#note{id = I, text = I} || I <- Ids]),
    ok = strata_kvs:put([#person{id = I} || I <- [1, 2]]),
    ?assertEqual(lists:sort(Ids), ids(strata_kvs:all(note))),
    ?assertEqual([], strata_kvs:all(nothing_here)).

seq_counts_without_gaps(_Config) ->
    ?assertEqual(1, strata_kvs:seq(ticket, [])),
    ?assertEqual(11, strata_kvs:seq(ticket, 10)),
    Parent = self(),
    Pids = [spawn_link(fun() -> Parent ! {self(), [strata_kvs:seq(order, 1) || _ <- lists:seq(1, 50)]} end)
            || _ <- lists:seq(1, 4)],
    Got = lists:append([receive {P, L} -> L end || P <- Pids]),
    ?assertEqual(lists:seq(1, 200), lists:sort(Got)).

writes_join_the_callers_transaction(_Config) ->
    %% A record and a feed entry written together, or not at all.
    ?assertEqual({error, {aborted, no}},
                 strata:transaction(fun() ->
                                            ok = strata_kvs:put(#person{id = 1, email = e}),
                                            1 = strata_kvs:append(#note{id = 1}, f),
                                            strata:abort(no)
                                    end)),
    ?assertEqual({error, not_found}, strata_kvs:get(person, 1)),
    ?assertEqual([], strata_kvs:index(person, email, e)),
    ?assertEqual(0, strata_kvs:count(person)),
    ?assertEqual([], strata_kvs:feed(f)),
    ?assertEqual({ok, 1},
                 strata:transaction(fun() ->
                                            ok = strata_kvs:put(#person{id = 1, email = e}),
                                            strata_kvs:append(#note{id = 1}, f)
                                    end)),
    ?assertEqual(1, strata_kvs:count(person)),
    ?assertEqual([#note{id = 1}], strata_kvs:feed(f)),
    ok = strata_kvs:check(f).

schema_from_metainfo(_Config) ->
    ?assertMatch(#table{name = person, keys = [email, age]}, strata_kvs:table(person)),
    ?assertMatch(#table{name = writer}, strata_kvs:table(writer)),
    ?assertEqual(false, strata_kvs:table(nothing_here)),
    ?assertEqual([?MODULE, strata_kvs], strata_kvs:modules()),
    ?assertEqual([person, note, writer, reader], [N || #table{name = N} <- strata_kvs:tables()]).

%%% Feeds

append_and_feed_in_order(_Config) ->
    ?assertEqual([], strata_kvs:feed(f)),
    Ids = [5, 3, 9, 1, 7],
    [?assertEqual(I, strata_kvs:append(#note{id = I, text = I}, f)) || I <- Ids],
    ?assertEqual(Ids, ids(strata_kvs:feed(f))),
    ok = strata_kvs:check(f).

writer_fields(_Config) ->
    ?assertEqual(#writer{id = f}, strata_kvs:writer(f)),
    strata_kvs:append(#note{id = a}, f),
    ?assertEqual(#writer{id = f, count = 1, cache = #note{id = a}, first = #note{id = a}},
                 strata_kvs:writer(f)),
    strata_kvs:append(#note{id = b}, f),
    strata_kvs:append(#note{id = c}, f),
    ?assertEqual(#writer{id = f, count = 3, cache = #note{id = c}, first = #note{id = a}},
                 strata_kvs:writer(f)).

top_is_oldest_bot_is_newest(_Config) ->
    append_notes(f, 1, 5),
    Top = strata_kvs:top(strata_kvs:reader(f)),
    ?assertMatch(#reader{feed = f, dir = 0, cache = {note, 1}, count = 5}, Top),
    Bot = strata_kvs:bot(strata_kvs:reader(f)),
    ?assertMatch(#reader{feed = f, dir = 1, cache = {note, 5}, count = 5}, Bot),
    %% reader/1 starts at the top.
    ?assertEqual(Top, strata_kvs:reader(f)),
    %% From each end the feed reads inwards.
    ?assertEqual([1, 2, 3, 4, 5], ids(args(strata_kvs:take(Top#reader{args = 10})))),
    ?assertEqual([5, 4, 3, 2, 1], ids(args(strata_kvs:take(Bot#reader{args = 10})))).

take_both_directions(_Config) ->
    append_notes(f, 1, 10),
    R0 = strata_kvs:reader(f),
    R1 = strata_kvs:take(R0#reader{args = 3}),
    ?assertEqual([1, 2, 3], ids(args(R1))),
    ?assertEqual({note, 4}, R1#reader.cache),
    R2 = strata_kvs:take(R1#reader{args = 3}),
    ?assertEqual([4, 5, 6], ids(args(R2))),
    %% Turn around: the cursor's own entry comes first.
    R3 = strata_kvs:take(R2#reader{args = 4, dir = 1}),
    ?assertEqual([7, 6, 5, 4], ids(args(R3))),
    R4 = strata_kvs:take(R3#reader{args = 10}),
    ?assertEqual([3, 2, 1], ids(args(R4))),
    %% All of it with a negative count.
    ?assertEqual(lists:seq(1, 10), ids(args(strata_kvs:take(R0#reader{args = -1})))),
    ?assertEqual(lists:seq(10, 1, -1),
                 ids(args(strata_kvs:take((strata_kvs:bot(R0))#reader{args = -1})))).

paging_past_the_ends_keeps_the_cursor(_Config) ->
    append_notes(f, 1, 5),
    append_notes(g, 100, 105),
    R1 = strata_kvs:take((strata_kvs:reader(f))#reader{args = 10}),
    ?assertEqual([1, 2, 3, 4, 5], ids(args(R1))),
    R2 = strata_kvs:take(R1#reader{args = 10}),
    ?assertEqual([], args(R2)),
    ?assertEqual(R1#reader.pos, R2#reader.pos),
    ?assertEqual([], args(strata_kvs:next(R2))),
    %% Still in the feed: a later append is the next thing it reads.
    strata_kvs:append(#note{id = 6}, f),
    R3 = strata_kvs:take(R2#reader{args = 10}),
    ?assertEqual([6], ids(args(R3))),
    %% And backwards past the oldest.
    B1 = strata_kvs:take((strata_kvs:bot(strata_kvs:reader(f)))#reader{args = 100}),
    ?assertEqual([6, 5, 4, 3, 2, 1], ids(args(B1))),
    B2 = strata_kvs:take(B1#reader{args = 100}),
    ?assertEqual([], args(B2)),
    ?assertEqual([], args(strata_kvs:prev(B2))),
    B3 = strata_kvs:take(B2#reader{args = 2, dir = 0}),
    ?assertEqual([1, 2], ids(args(B3))),
    %% An empty feed.
    E = strata_kvs:reader(empty),
    ?assertEqual([], args(strata_kvs:take(E#reader{args = 5}))),
    ?assertEqual([], args(strata_kvs:next(E))),
    ?assertEqual([], args(strata_kvs:prev(strata_kvs:bot(E)))).

next_and_prev(_Config) ->
    append_notes(f, 1, 3),
    R0 = strata_kvs:reader(f),
    R1 = strata_kvs:next(R0),
    ?assertEqual({[#note{id = 2, text = 2}], {note, 2}}, {args(R1), R1#reader.cache}),
    R2 = strata_kvs:next(R1),
    ?assertEqual([3], ids(args(R2))),
    R3 = strata_kvs:next(R2),
    ?assertEqual({[], {note, 3}}, {args(R3), R3#reader.cache}),
    R4 = strata_kvs:prev(strata_kvs:prev(R3)),
    ?assertEqual({[1], {note, 1}}, {ids(args(R4)), R4#reader.cache}),
    ?assertEqual([], args(strata_kvs:prev(R4))),
    %% A removed entry is stepped over.
    4 = strata_kvs:append(#note{id = 4}, f),
    3 = strata_kvs:remove(#note{id = 2}, f),
    ?assertEqual([3], ids(args(strata_kvs:next(R4)))).

drop_skips(_Config) ->
    append_notes(f, 1, 10),
    R1 = strata_kvs:drop((strata_kvs:reader(f))#reader{args = 4}),
    ?assertEqual([], args(R1)),
    ?assertEqual([5, 6], ids(args(strata_kvs:take(R1#reader{args = 2})))),
    R2 = strata_kvs:drop(R1#reader{args = 100}),
    ?assertEqual([], args(strata_kvs:take(R2#reader{args = 2}))).

sequence_is_per_feed(_Config) ->
    %% Positions are the feed's own sequence: 1, 2, 3 per feed, whatever the clock does.
    append_notes(f, 1, 3),
    append_notes(g, 1, 2),
    append_notes(f, 4, 4),
    ?assertEqual([1, 2, 3, 4], positions(f)),
    ?assertEqual([1, 2], positions(g)),
    %% Removed positions are not reused.
    3 = strata_kvs:remove(#note{id = 4}, f),
    5 = strata_kvs:append(#note{id = 5}, f),
    ?assertEqual([1, 2, 3, 5], positions(f)).

remove_present_and_absent(_Config) ->
    append_notes(f, 1, 5),
    ?assertEqual(4, strata_kvs:remove(#note{id = 3}, f)),
    ?assertEqual(4, strata_kvs:remove(#note{id = 3}, f)),
    ?assertEqual(4, strata_kvs:remove(#note{id = 99}, f)),
    ?assertEqual(3, strata_kvs:remove(1, f)),
    ?assertEqual(0, strata_kvs:remove(#note{id = 1}, no_such_feed)),
    ?assertEqual(3, (strata_kvs:writer(f))#writer.count),
    ?assertEqual([2, 4, 5], ids(strata_kvs:feed(f))),
    ok = strata_kvs:check(f).

remove_keeps_links(_Config) ->
    append_notes(f, 1, 8),
    %% Middle, oldest, newest, then everything.
    Order = [4, 1, 8, 2, 7, 5, 3, 6],
    lists:foldl(fun(I, Left) ->
                        Left1 = Left -- [I],
                        ?assertEqual(length(Left1), strata_kvs:remove(#note{id = I}, f)),
                        ?assertEqual(ok, strata_kvs:check(f)),
                        ?assertEqual(Left1, ids(strata_kvs:feed(f))),
                        W = strata_kvs:writer(f),
                        ?assertEqual(first_or_empty(Left1), rec_id(W#writer.first)),
                        ?assertEqual(first_or_empty(lists:reverse(Left1)), rec_id(W#writer.cache)),
                        Left1
                end, lists:seq(1, 8), Order),
    %% And the feed works again after being emptied.
    9 = strata_kvs:append(#note{id = 9}, f),
    ?assertEqual([9], ids(strata_kvs:feed(f))),
    ok = strata_kvs:check(f).

cut_empties_the_feed(_Config) ->
    append_notes(f, 1, 1200),
    append_notes(g, 1, 3),
    ?assertEqual({ok, 1200}, strata_kvs:cut(f)),
    ?assertEqual([], strata_kvs:feed(f)),
    ?assertMatch(#writer{count = 0, cache = [], first = []}, strata_kvs:writer(f)),
    ok = strata_kvs:check(f),
    ?assertEqual([1, 2, 3], ids(strata_kvs:feed(g))),
    ?assertEqual({ok, 0}, strata_kvs:cut(f)),
    ?assertEqual({ok, 0}, strata_kvs:cut(never_written)),
    %% Ids can be appended again; the sequence goes on.
    1 = strata_kvs:append(#note{id = 1}, f),
    ?assertEqual([1201], positions(f)).

prefix_ids_never_mix(_Config) ->
    Feeds = [<<"luck">>, <<"lucky">>, <<"luc">>, "luck", "lucky", luck, {luck}],
    [append_notes(F, 1, 3) || F <- Feeds],
    [begin
         ?assertEqual([1, 2, 3], ids(strata_kvs:feed(F))),
         R = strata_kvs:take((strata_kvs:reader(F))#reader{args = 10}),
         ?assertEqual([1, 2, 3], ids(args(R))),
         ?assertEqual([], args(strata_kvs:take(R#reader{args = 10}))),
         ?assertEqual([], args(strata_kvs:next(strata_kvs:bot(R)))),
         ?assertEqual(3, (strata_kvs:writer(F))#writer.count)
     end || F <- Feeds].

ids_with_slashes(_Config) ->
    Feeds = [<<"/users/1/inbox">>, <<"users/1">>, <<"/">>, "a/b/c", <<"a//b">>],
    [strata_kvs:append(#note{id = <<"x/y">>, text = F}, F) || F <- Feeds],
    [?assertEqual([#note{id = <<"x/y">>, text = F}], strata_kvs:feed(F)) || F <- Feeds],
    ?assertEqual({ok, #note{id = <<"x/y">>, text = "a/b/c"}}, strata_kvs:entry("a/b/c", <<"x/y">>)),
    ?assertEqual(0, strata_kvs:remove(#note{id = <<"x/y">>}, <<"/">>)),
    ?assertEqual(1, (strata_kvs:writer(<<"/users/1/inbox">>))#writer.count).

subfeeds_only_when_asked(_Config) ->
    strata_kvs:append(#note{id = 1}, <<"a">>),
    strata_kvs:append(#note{id = 2}, <<"a/b">>),
    strata_kvs:append(#note{id = 3}, <<"a/b/c">>),
    strata_kvs:append(#note{id = 4}, <<"ab">>),
    strata_kvs:append(#note{id = 5}, "a/s"),
    ?assertEqual([1], ids(strata_kvs:feed(<<"a">>))),
    ?assertEqual([<<"a/b">>, <<"a/b/c">>], strata_kvs:subfeeds(<<"a">>)),
    ?assertEqual([1, 2, 3], ids(strata_kvs:feed(<<"a">>, #{subfeeds => true}))),
    ?assertEqual([2, 3], ids(strata_kvs:feed(<<"a/b">>, #{subfeeds => true}))),
    ?assertEqual(["a/s"], strata_kvs:subfeeds("a")),
    ?assertEqual([], strata_kvs:subfeeds(a)).

append_existing_id_replaces(_Config) ->
    append_notes(f, 1, 3),
    ?assertEqual(2, strata_kvs:append(#note{id = 2, text = new}, f)),
    ?assertEqual([#note{id = 1, text = 1}, #note{id = 2, text = new}, #note{id = 3, text = 3}],
                 strata_kvs:feed(f)),
    ?assertEqual(3, (strata_kvs:writer(f))#writer.count),
    %% The newest too (its copy in the writer follows).
    3 = strata_kvs:append(#note{id = 3, text = newer}, f),
    ?assertEqual(#note{id = 3, text = newer}, (strata_kvs:writer(f))#writer.cache),
    ok = strata_kvs:check(f).

auto_ids(_Config) ->
    ?assertEqual(1, strata_kvs:append(#note{id = [], text = a}, f)),
    ?assertEqual(2, strata_kvs:append(#note{id = [], text = b}, f)),
    ?assertEqual([#note{id = 1, text = a}, #note{id = 2, text = b}], strata_kvs:feed(f)),
    %% An explicit id that the next automatic one would be: that sequence number is skipped.
    x = strata_kvs:append(#note{id = x}, f),
    5 = strata_kvs:append(#note{id = 5}, f),
    ?assertEqual(6, strata_kvs:append(#note{id = []}, f)),
    ?assertEqual([1, 2, x, 5, 6], ids(strata_kvs:feed(f))),
    ?assertEqual([1, 2, 3, 4, 6], positions(f)),
    ok = strata_kvs:check(f).

add_returns_the_writer(_Config) ->
    W1 = strata_kvs:add((strata_kvs:writer(f))#writer{args = #note{id = a}}),
    ?assertEqual(#writer{id = f, count = 1, cache = #note{id = a}, first = #note{id = a},
                         args = #note{id = a}}, W1),
    W2 = strata_kvs:add(W1#writer{args = #note{id = []}}),
    ?assertEqual(#writer{id = f, count = 2, cache = #note{id = 2}, first = #note{id = a},
                         args = #note{id = 2}}, W2),
    %% KVS' idiom save(add(W)) keeps the count right.
    _ = strata_kvs:save(strata_kvs:add(W1#writer{args = #note{id = b}})),
    ?assertEqual(3, (strata_kvs:writer(f))#writer.count).

save_never_overwrites_the_writer(_Config) ->
    ?assertMatch(#writer{id = f, count = 0}, strata_kvs:save(#writer{id = f, count = 42})),
    ?assertEqual({ok, #writer{id = f}}, strata_kvs:get(writer, f)),
    append_notes(f, 1, 2),
    Stale = #writer{id = f, count = 0, cache = [], first = []},
    ?assertMatch(#writer{count = 2}, strata_kvs:save(Stale)),
    ?assertEqual(ok, strata_kvs:put(Stale)),
    ?assertEqual(2, (strata_kvs:writer(f))#writer.count),
    ok = strata_kvs:check(f).

save_and_load_reader(_Config) ->
    append_notes(f, 1, 5),
    R1 = strata_kvs:take((strata_kvs:reader(f))#reader{args = 2}),
    S1 = strata_kvs:save(R1),
    ?assertMatch(#reader{id = Id, args = []} when is_integer(Id), S1),
    ?assertEqual(S1, strata_kvs:load_reader(S1#reader.id)),
    ?assertEqual([3, 4, 5], ids(args(strata_kvs:take((strata_kvs:load_reader(S1#reader.id))#reader{args = 5})))),
    S2 = strata_kvs:save(strata_kvs:reader(f)),
    ?assertNotEqual(S1#reader.id, S2#reader.id),
    ?assertEqual(#reader{id = []}, strata_kvs:load_reader(nobody)).

entry_and_get_writer(_Config) ->
    append_notes(f, 1, 2),
    ?assertEqual({ok, #note{id = 2, text = 2}}, strata_kvs:entry(f, 2)),
    ?assertEqual({error, not_found}, strata_kvs:entry(f, 3)),
    ?assertEqual({error, not_found}, strata_kvs:entry(g, 1)),
    ?assertMatch({ok, #writer{id = f, count = 2}}, strata_kvs:get(writer, f)),
    ?assertEqual({error, not_found}, strata_kvs:get(writer, g)).

append_in_a_transaction(_Config) ->
    %% Appends inside a transaction see each other and commit together.
    {ok, [1, 2, 3]} = strata:transaction(fun() -> [strata_kvs:append(#note{id = I}, f)
                                                    || I <- [1, 2, 3]] end),
    ?assertEqual([1, 2, 3], ids(strata_kvs:feed(f))),
    ok = strata_kvs:check(f).

%%% Concurrency

twelve_appenders_one_feed(_Config) ->
    {Results, Feed} = appenders(shared, 12, 500),
    ?assertEqual(lists:sort([{P, I} || P <- lists:seq(1, 12), I <- lists:seq(1, 500)]),
                 lists:sort(Results)),
    ?assertEqual(6000, length(Feed)),
    ?assertEqual(6000, length(lists:usort(ids(Feed)))),
    ?assertEqual(6000, (strata_kvs:writer(shared))#writer.count),
    ?assertEqual(lists:seq(1, 6000), positions(shared)),
    %% Each appender's entries are in its own order.
    [?assertEqual(lists:seq(1, 500), [I || #note{id = {P1, I}} <- Feed, P1 =:= P])
     || P <- lists:seq(1, 12)],
    ok = strata_kvs:check(shared).

%% The same without the lanes: every append its own transaction, conflicting on the writer
%% and retried. What keeps the feed exact is the transaction, not the combining.
uncombined_appenders_one_feed(_Config) ->
    Parent = self(),
    Pids = [spawn_link(fun() ->
                               Parent ! {self(), [strata_kvs_feed:append_now(f, [#note{id = {P, I}}])
                                                  || I <- lists:seq(1, 150)]}
                       end) || P <- lists:seq(1, 6)],
    Results = lists:append([receive {Pid, R} -> R end || Pid <- Pids]),
    ?assertEqual(lists:sort([[{P, I}] || P <- lists:seq(1, 6), I <- lists:seq(1, 150)]),
                 lists:sort(Results)),
    ?assertEqual(900, length(strata_kvs:feed(f))),
    ?assertEqual(lists:seq(1, 900), positions(f)),
    ok = strata_kvs:check(f).

reader_paging_during_appends_sees_no_gap(_Config) ->
    Parent = self(),
    Readers = [spawn_link(fun() -> Parent ! {self(), page_until(shared, 6000, [])} end)
               || _ <- lists:seq(1, 3)],
    {_, Feed} = appenders(shared, 12, 500),
    Seen = [receive {R, S} -> S after 120000 -> error(reader_timeout) end || R <- Readers],
    %% Every reader read the whole feed in the same order: a gap that filled after the
    %% reader had passed it would be missing from what the reader saw.
    [?assertEqual(Feed, S) || S <- Seen],
    ok = strata_kvs:check(shared).

%% Pages of 100 from one cursor until N entries were read.
page_until(F, N, []) ->
    page_loop(N, [], strata_kvs:reader(F)).

page_loop(N, Acc, _R) when length(Acc) >= N ->
    Acc;
page_loop(N, Acc, R) ->
    R1 = strata_kvs:take(R#reader{args = 100}),
    case args(R1) of
        [] -> timer:sleep(1);  % caught up with the appenders
        _ -> ok
    end,
    page_loop(N, Acc ++ args(R1), R1).

%% Lanes run under strata_kvs_lanes: started once per name, answering system messages,
%% started again after they die, and stopped with the application.
lanes_are_supervised(_Config) ->
    Name = strata_kvs_lane_1,
    {ok, Lane} = strata_kvs_lanes:start_lane(Name),
    ?assertEqual({ok, Lane}, strata_kvs_lanes:start_lane(Name)),
    ?assertEqual(Lane, whereis(Name)),
    ?assert(lists:keymember(Lane, 2, supervisor:which_children(strata_kvs_lanes))),
    ?assertMatch({_Parent, Name}, sys:get_state(Lane)),
    {Results, Feed} = appenders(shared, 8, 100),
    ?assertEqual(800, length(Results)),
    ?assertEqual(800, length(Feed)),
    ok = strata_kvs:check(shared),
    MRef = monitor(process, Lane),
    exit(Lane, kill),
    receive {'DOWN', MRef, process, Lane, killed} -> ok end,
    {ok, Again} = strata_kvs_lanes:start_lane(Name),
    ?assertNotEqual(Lane, Again),
    Lanes = [Pid || {_, Pid, _, _} <- supervisor:which_children(strata_kvs_lanes)],
    ?assert(lists:member(Again, Lanes)),
    ok = application:stop(strata),
    ?assertEqual([], [Pid || Pid <- Lanes, is_process_alive(Pid)]),
    ?assertEqual({error, not_started}, strata_kvs_lanes:start_lane(Name)).

%% A caller waiting for a lane (first yielding, then blocked) learns that the lane died, and
%% its append was not made. The feed's slot is held here, as an append in progress would hold
%% it, so that the caller goes to the lane; the lane is suspended so that it waits.
a_lane_that_dies_answers_its_waiting_callers(_Config) ->
    Feed = lane_victim,
    1 = strata_kvs:append(#note{id = 1}, Feed),
    {Inflight, Names} = persistent_term:get({strata_kvs_lane, state}),
    Slot = erlang:phash2(Feed, 4096) + 1,
    {ok, Lane} = strata_kvs_lanes:start_lane(element(erlang:phash2(Feed, 64) + 1, Names)),
    ok = sys:suspend(Lane),
    atomics:add(Inflight, Slot, 1),
    Parent = self(),
    Caller = spawn_link(fun() -> Parent ! {self(), strata_kvs:append(#note{id = 2}, Feed)} end),
    %% Wait until the request is in the lane's mailbox, then some more so that the caller has
    %% stopped yielding and blocks.
    ok = strata_test_util:wait_until(
           fun() -> element(2, process_info(Lane, message_queue_len)) > 0 end, 5000),
    timer:sleep(5),
    exit(Lane, kill),
    receive
        {Caller, Reply} -> ?assertEqual({error, {lane_down, killed}}, Reply)
    after 5000 -> error(caller_not_answered)
    end,
    atomics:sub(Inflight, Slot, 1),
    ?assertMatch(#writer{count = 1}, strata_kvs:writer(Feed)),
    ok = strata_kvs:check(Feed),
    2 = strata_kvs:append(#note{id = 2}, Feed),
    ?assertMatch(#writer{count = 2}, strata_kvs:writer(Feed)).

%% Four appenders; two removers each remove one appender's entries as soon as they appear.
appenders_and_removers(_Config) ->
    Parent = self(),
    Appenders = [spawn_link(fun() ->
                                    [strata_kvs:append(#note{id = {P, I}}, f) || I <- lists:seq(1, 300)],
                                    Parent ! {self(), done}
                            end) || P <- lists:seq(1, 4)],
    Removers = [spawn_link(fun() ->
                                   [remove_when_there(#note{id = {P, I}}, f) || I <- lists:seq(1, 300)],
                                   Parent ! {self(), done}
                           end) || P <- [1, 2]],
    [receive {Pid, done} -> ok end || Pid <- Appenders ++ Removers],
    ok = strata_kvs:check(f),
    Feed = strata_kvs:feed(f),
    ?assertEqual(600, (strata_kvs:writer(f))#writer.count),
    ?assertEqual([], [Id || #note{id = {P, _} = Id} <- Feed, P =< 2]),
    [?assertEqual(lists:seq(1, 300), [I || #note{id = {P1, I}} <- Feed, P1 =:= P]) || P <- [3, 4]].

remove_when_there(#note{id = Id} = Rec, F) ->
    case strata_kvs:entry(F, Id) of
        {ok, _} ->
            Count = strata_kvs:remove(Rec, F),
            ?assert(is_integer(Count)),
            ?assertEqual({error, not_found}, strata_kvs:entry(F, Id));
        {error, not_found} ->
            erlang:yield(),
            remove_when_there(Rec, F)
    end.

appenders_on_eight_feeds(_Config) ->
    Parent = self(),
    Pids = [spawn_link(fun() ->
                               [strata_kvs:append(#note{id = I}, {feed, P}) || I <- lists:seq(1, 300)],
                               Parent ! {self(), done}
                       end) || P <- lists:seq(1, 8)],
    [receive {P, done} -> ok end || P <- Pids],
    [begin
         ?assertEqual(lists:seq(1, 300), ids(strata_kvs:feed({feed, P}))),
         ok = strata_kvs:check({feed, P})
     end || P <- lists:seq(1, 8)].

concurrent_record_updates_keep_indexes(_Config) ->
    Parent = self(),
    Pids = [spawn_link(fun() ->
                               rand:seed(exsss, {P, P, P}),
                               [ok = strata_kvs:put(#person{id = rand:uniform(10),
                                                            email = {mail, rand:uniform(4)},
                                                            age = P})
                                || _ <- lists:seq(1, 150)],
                               [ok = strata_kvs:delete(person, rand:uniform(10)) || _ <- lists:seq(1, 5)],
                               Parent ! {self(), done}
                       end) || P <- lists:seq(1, 6)],
    [receive {P, done} -> ok end || P <- Pids],
    All = strata_kvs:all(person),
    ?assertEqual(length(All), strata_kvs:count(person)),
    [?assertEqual([P || P <- All, P#person.email =:= {mail, M}],
                  strata_kvs:index(person, email, {mail, M})) || M <- lists:seq(1, 4)],
    [?assertEqual([P || P <- All, P#person.age =:= A], strata_kvs:index(person, age, A))
     || A <- lists:seq(1, 6)].

%%% Crash

%% A peer appends to one feed from four clients; kill -9 once 1,500 appends were
%% acknowledged; restart on the same directory: the feed's count equals its entries, the links
%% and the id index are intact, and every acknowledged append is there.
kill_9_during_appends(Config) ->
    Dir = strata_test_util:fresh_dir(Config, "kvs_crash"),
    {Peer, _} = start_peer(Dir),
    OsPid = strata_test_util:os_pid(Peer),
    Acked = ets:new(acked, [public, set]),
    Parent = self(),
    Clients = [spawn(fun() -> Parent ! {self(), append_loop(Peer, C, 1, Acked)} end)
               || C <- lists:seq(1, 4)],
    ok = strata_test_util:wait_until(fun() -> ets:info(Acked, size) >= 1500 end, 120000),
    strata_test_util:kill9(OsPid),
    Outcomes = [receive {C, O} -> O after 60000 -> error(timeout) end || C <- Clients],
    AckedIds = [Id || {Id} <- ets:tab2list(Acked)],
    ct:pal("~p appends acknowledged before kill -9; clients: ~p", [length(AckedIds), Outcomes]),
    {Peer2, _} = start_peer(Dir),
    try
        ?assertEqual(ok, peer:call(Peer2, strata_kvs, check, [crash_feed], 60000)),
        Feed = peer:call(Peer2, strata_kvs, feed, [crash_feed], 60000),
        #writer{count = Count} = peer:call(Peer2, strata_kvs, writer, [crash_feed]),
        ?assertEqual(length(Feed), Count),
        ?assertEqual([], AckedIds -- ids(Feed)),
        %% At most the appends in flight at the kill are there without an ack.
        ?assert(length(Feed) - length(AckedIds) =< 4),
        %% And the feed goes on.
        ?assertEqual(after_restart, peer:call(Peer2, strata_kvs, append,
                                              [#note{id = after_restart}, crash_feed])),
        ?assertEqual(ok, peer:call(Peer2, strata_kvs, check, [crash_feed]))
    after
        peer:stop(Peer2)
    end.

start_peer(Dir) ->
    {Peer, Node} = strata_test_util:start_peer(strata_kvs_crash, Dir, [{durability, async}]),
    KvsDir = filename:dirname(code:which(strata_kvs)),
    true = peer:call(Peer, code, add_patha, [KvsDir]),
    {Peer, Node}.

append_loop(Peer, C, I, Acked) ->
    Id = {C, I},
    try peer:call(Peer, strata_kvs, append, [#note{id = Id}, crash_feed], 10000) of
        Id ->
            ets:insert(Acked, {Id}),
            append_loop(Peer, C, I + 1, Acked);
        Other ->
            {unexpected, Other}
    catch
        _:_ -> node_gone
    end.

%%% Helpers

append_notes(F, From, To) ->
    [I = strata_kvs:append(#note{id = I, text = I}, F) || I <- lists:seq(From, To)],
    ok.

%% P appenders of N entries each to feed F; returns their acknowledged ids and the feed.
appenders(F, P, N) ->
    Parent = self(),
    Pids = [spawn_link(fun() ->
                               Parent ! {self(), [strata_kvs:append(#note{id = {Q, I}}, F)
                                                  || I <- lists:seq(1, N)]}
                       end) || Q <- lists:seq(1, P)],
    Results = lists:append([receive {Pid, R} -> R after 300000 -> error(appender_timeout) end
                            || Pid <- Pids]),
    {Results, strata_kvs:feed(F)}.

ids(Records) -> [element(2, R) || R <- Records].

args(#reader{args = A}) -> A.

rec_id([]) -> [];
rec_id(R) -> element(2, R).

first_or_empty([]) -> [];
first_or_empty([X | _]) -> X.

%% The sequence numbers of a feed's entries, oldest first (walking the cursor).
positions(F) ->
    positions(strata_kvs:reader(F), []).

positions(#reader{cache = []}, Acc) ->
    lists:reverse(Acc);
positions(#reader{pos = Pos} = R, Acc) ->
    R1 = strata_kvs:next(R),
    case args(R1) of
        [] -> lists:reverse([Pos | Acc]);
        _ -> positions(R1, [Pos | Acc])
    end.
