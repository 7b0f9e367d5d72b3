%%% Feed benchmark: strata_kvs against KVS' own approach on Mnesia, in one run.
%%%
%%%   erlc -o /tmp bench/strata_kvs_bench.erl
%%%   erl -noshell -pa _build/default/lib/strata/ebin -pa /tmp \
%%%       -eval 'strata_kvs_bench:main(["quick"])' -s init stop
%%%
%%% Workloads (100-byte payloads): appends from 1 process to one feed; from 8 processes to one
%%% shared feed; from 8 processes to 8 feeds; and pages of 100 entries read from 1 process.
%%% Systems:
%%% - strata_kvs (async durability: survives a crash of the node);
%%% - KVS on Mnesia in a transaction: what kvs_stream's add does (read the writer and the
%%%   previous newest entry, write the entry, relink the previous one, write the writer), all
%%%   in one mnesia:transaction on disc_copies tables: correct, as safe as strata's async;
%%% - the same in async_dirty, KVS' default Mnesia context: fast but unsafe, concurrent
%%%   appenders lose counts and links (the "ok?" column shows it).
%%% Pages: strata reads a range; KVS follows `next' links, one dirty read per entry.
%%%
%%% Each measurement runs for a fixed time (1 s quick, 2 s otherwise), `runs' times (1 quick,
%%% 3 otherwise), and the median is printed with p50/p99 latency of its median run. Nothing
%%% asserts on speed; the table reports.
-module(strata_kvs_bench).

-include("../erlang/include/strata_kvs.hrl").

-export([main/1, run/1]).

-record(bench_entry, {id, next = [], prev = [], feed, body}).
-record(bench_writer, {id, count = 0, cache = [], first = []}).

-define(BODY, binary:copy(<<"x">>, 100)).

%% @doc From the command line: `main(["quick"])' or `main([])'.
main(Args) ->
    Quick = lists:member("quick", [str(A) || A <- Args]),
    run(#{quick => Quick}).

str(A) when is_atom(A) -> atom_to_list(A);
str(A) -> A.

%% @doc Runs every workload. Options: `quick' (boolean), `seconds' per measurement, `runs',
%% `dir' (scratch directory; default under /tmp), `systems' (subset of
%% `[strata, mnesia_tx, mnesia_dirty]').
run(Opts) ->
    Quick = maps:get(quick, Opts, false),
    Cfg = #{seconds => maps:get(seconds, Opts, case Quick of true -> 1; false -> 2 end),
            runs => maps:get(runs, Opts, case Quick of true -> 1; false -> 3 end),
            fill => case Quick of true -> 5000; false -> 20000 end},
    Dir = maps:get(dir, Opts, filename:join("/tmp", "strata_kvs_bench-" ++ os:getpid())),
    Systems = maps:get(systems, Opts, [strata, mnesia_tx, mnesia_dirty]),
    ok = setup(Dir, Systems),
    try
        %% One system at a time, so that one's background work (Mnesia dumping its log,
        %% RocksDB compacting) lands in its own measurements, not in another's.
        BySystem = [{S, [{Name, measure(S, Workload, Cfg)} || {Name, Workload} <- workloads()]}
                    || S <- Systems, ok =:= settle(S, clear)],
        Rows = [{Name, [{S, proplists:get_value(Name, Res)} || {S, Res} <- BySystem]}
                || {Name, _} <- workloads()],
        print(Rows, Systems, Cfg),
        Rows
    after
        teardown(Dir, Systems)
    end.

workloads() ->
    [{"pages of 100, 1 process", {pages, 1}},
     {"append, 1 process, 1 feed", {append, 1, 1}},
     {"append, 8 processes, 1 shared feed", {append, 8, 1}},
     {"append, 8 processes, 8 feeds", {append, 8, 8}}].

%% Mnesia: dump its log now rather than during the next measurement, and before a new
%% system starts, empty its tables.
settle(strata, _) ->
    ok;
settle(_Mnesia, clear) ->
    {atomic, ok} = mnesia:clear_table(bench_entry),
    {atomic, ok} = mnesia:clear_table(bench_writer),
    settle(mnesia, keep);
settle(_Mnesia, keep) ->
    _ = mnesia:dump_log(),
    ok.

%%% Setup

setup(Dir, Systems) ->
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    ok = case lists:member(strata, Systems) of
             true -> start_strata(Dir);
             false -> ok
         end,
    case uses_mnesia(Systems) of
        true -> start_mnesia(Dir);
        false -> ok
    end.

%% A fresh strata under Dir, or the one already running (the feeds have unique names).
start_strata(Dir) ->
    case whereis(strata_sup) of
        undefined ->
            _ = application:load(strata),
            ok = application:set_env(strata, data_dir, filename:join(Dir, "strata")),
            ok = application:set_env(strata, durability, async),
            {ok, _} = application:ensure_all_started(strata),
            ok;
        _ ->
            ok
    end.

start_mnesia(Dir) ->
    _ = application:stop(mnesia),
    ok = application:set_env(mnesia, dir, filename:join(Dir, "mnesia")),
    ok = mnesia:create_schema([node()]),
    ok = mnesia:start(),
    _ = [{atomic, ok} = mnesia:create_table(T, [{attributes, A}, {disc_copies, [node()]}])
         || {T, A} <- [{bench_entry, record_info(fields, bench_entry)},
                       {bench_writer, record_info(fields, bench_writer)}]],
    ok = mnesia:wait_for_tables([bench_entry, bench_writer], 30000).

uses_mnesia(Systems) ->
    lists:member(mnesia_tx, Systems) orelse lists:member(mnesia_dirty, Systems).

teardown(Dir, Systems) ->
    _ = case uses_mnesia(Systems) of
            true -> _ = application:stop(mnesia), mnesia:delete_schema([node()]);
            false -> ok
        end,
    %% Stop strata only if this run started it.
    _ = case application:get_env(strata, data_dir) of
            {ok, D} when is_list(D) ->
                lists:prefix(Dir, D) andalso application:stop(strata);
            _ ->
                ok
        end,
    _ = file:del_dir_r(Dir),
    ok.

%%% Measurements

%% The median of `runs' runs: {OpsPerSecond, P50us, P99us, Correct}.
measure(System, Workload, #{runs := Runs} = Cfg) ->
    Results = [begin ok = settle(System, keep), once(System, Workload, Cfg) end
               || _ <- lists:seq(1, Runs)],
    Sorted = lists:keysort(1, Results),
    lists:nth((length(Sorted) + 1) div 2, Sorted).

once(System, {append, Procs, Feeds}, #{seconds := S}) ->
    Run = erlang:unique_integer([positive]),
    FeedOf = fun(P) -> {bench, Run, P rem Feeds} end,
    Op = fun(P, I) -> append(System, #bench_entry{id = {Run, P, I}, body = ?BODY}, FeedOf(P)) end,
    {Ops, Lat} = timed(Procs, S, Op),
    Correct = lists:all(fun(F) -> consistent(System, F) end,
                        lists:usort([FeedOf(P) || P <- lists:seq(1, Procs)])),
    {Ops / S, pct(Lat, 50), pct(Lat, 99), Correct};
once(System, {pages, Procs}, #{seconds := S, fill := Fill}) ->
    Feed = {bench_pages, erlang:unique_integer([positive])},
    fill(System, Feed, Fill),
    Cursors = ets:new(cursors, [public, set]),
    Op = fun(P, _I) -> page(System, Feed, Cursors, P) end,
    {Ops, Lat} = timed(Procs, S, Op),
    ets:delete(Cursors),
    {Ops / S, pct(Lat, 50), pct(Lat, 99), true}.

fill(System, Feed, N) ->
    Batch = 500,
    _ = [begin
         Recs = [#bench_entry{id = {fill, Feed, I}, body = ?BODY}
                 || I <- lists:seq(B, min(B + Batch - 1, N))],
         case System of
             strata ->
                 {ok, _} = strata:transaction(fun() -> [strata_kvs:append(R, Feed) || R <- Recs] end);
             _ ->
                 [append(mnesia_tx, R, Feed) || R <- Recs]
         end
     end || B <- lists:seq(1, N, Batch)],
    ok.

%% Procs processes run Op for S seconds; the total ops and a sample of latencies (us).
timed(Procs, S, Op) ->
    Parent = self(),
    Deadline = erlang:monotonic_time(millisecond) + S * 1000,
    Pids = [spawn_link(fun() -> Parent ! {self(), loop(Op, P, Deadline, 0, [])} end)
            || P <- lists:seq(1, Procs)],
    Res = [receive {Pid, R} -> R end || Pid <- Pids],
    {lists:sum([N || {N, _} <- Res]), lists:append([L || {_, L} <- Res])}.

loop(Op, P, Deadline, N, Lat) ->
    T0 = erlang:monotonic_time(microsecond),
    case T0 div 1000 >= Deadline of
        true ->
            {N, Lat};
        false ->
            _ = Op(P, N),
            Lat1 = case N rem 8 of
                       0 -> [erlang:monotonic_time(microsecond) - T0 | Lat];
                       _ -> Lat
                   end,
            loop(Op, P, Deadline, N + 1, Lat1)
    end.

pct([], _) -> 0;
pct(L, P) ->
    S = lists:sort(L),
    lists:nth(max(1, (length(S) * P + 99) div 100), S).

%%% The systems

append(strata, Rec, Feed) ->
    Id = element(2, Rec),
    Id = strata_kvs:append(Rec, Feed);
append(mnesia_tx, Rec, Feed) ->
    {atomic, Id} = mnesia:transaction(fun() -> kvs_add(Rec, Feed, write) end),
    Id;
append(mnesia_dirty, Rec, Feed) ->
    mnesia:async_dirty(fun() -> kvs_add(Rec, Feed, write) end).

%% What kvs_stream does for append/add: skip an id already there, else write the entry
%% linked after the writer's newest, relink that one, and write the writer.
kvs_add(#bench_entry{id = Id} = Rec, Feed, Lock) ->
    case mnesia:read(bench_entry, Id) of
        [_] ->
            Id;
        [] ->
            W = case mnesia:read(bench_writer, Feed, Lock) of
                    [W0] -> W0;
                    [] -> #bench_writer{id = Feed}
                end,
            E = Rec#bench_entry{feed = Feed, prev = W#bench_writer.cache},
            case W#bench_writer.cache of
                [] ->
                    ok;
                PrevId ->
                    case mnesia:read(bench_entry, PrevId) of
                        [Prev] -> mnesia:write(Prev#bench_entry{next = Id});
                        [] -> ok  % only in async_dirty, racing another appender
                    end
            end,
            mnesia:write(E),
            mnesia:write(W#bench_writer{count = W#bench_writer.count + 1, cache = Id,
                                        first = case W#bench_writer.first of
                                                    [] -> Id;
                                                    F -> F
                                                end}),
            Id
    end.

page(strata, Feed, Cursors, P) ->
    R0 = case ets:lookup(Cursors, P) of
             [{_, R}] -> R;
             [] -> strata_kvs:reader(Feed)
         end,
    R1 = strata_kvs:take(R0#reader{args = 100}),
    case R1#reader.args of
        L when length(L) < 100 -> ets:insert(Cursors, {P, strata_kvs:reader(Feed)});
        _ -> ets:insert(Cursors, {P, R1})
    end;
page(_Mnesia, Feed, Cursors, P) ->
    Start = case ets:lookup(Cursors, P) of
                [{_, Id}] when Id =/= [] -> Id;
                _ -> [#bench_writer{first = F}] = mnesia:dirty_read(bench_writer, Feed), F
            end,
    ets:insert(Cursors, {P, follow(Start, 100, [])}).

%% KVS' take: one read per entry, following `next'.
follow([], _N, _Acc) -> [];
follow(Id, 0, _Acc) -> Id;
follow(Id, N, Acc) ->
    case mnesia:dirty_read(bench_entry, Id) of
        [#bench_entry{next = Next} = E] -> follow(Next, N - 1, [E | Acc]);
        [] -> []
    end.

%% Count equals entries, and the links walk through all of them.
consistent(strata, Feed) ->
    strata_kvs:check(Feed) =:= ok;
consistent(_Mnesia, Feed) ->
    case mnesia:dirty_read(bench_writer, Feed) of
        [] -> true;
        [#bench_writer{count = C, first = First}] ->
            Linked = walk(First, 0),
            Stored = length(mnesia:dirty_match_object(#bench_entry{feed = Feed, _ = '_'})),
            C =:= Linked andalso C =:= Stored
    end.

walk([], N) -> N;
walk(Id, N) ->
    case mnesia:dirty_read(bench_entry, Id) of
        [#bench_entry{next = Next}] -> walk(Next, N + 1);
        [] -> N
    end.

%%% Report

print(Rows, Systems, #{seconds := S, runs := Runs}) ->
    io:format("~nstrata_kvs feeds vs KVS on Mnesia: ~b s per run, median of ~b run(s), "
              "100 B payloads, ~b schedulers~n"
              "cells: operations/s (p50/p99 latency in us), then whether every feed's count "
              "equals its linked entries afterwards; then strata's rate over each of the "
              "others'~n~n",
              [S, Runs, erlang:system_info(schedulers_online)]),
    io:format("~-36s", ["workload"]),
    [io:format("~28s", [atom_to_list(Sys)]) || Sys <- Systems],
    Others = [Sys || Sys <- Systems, Sys =/= strata, lists:member(strata, Systems)],
    [io:format("~14s", ["strata/" ++ short(Sys)]) || Sys <- Others],
    io:format("~n"),
    [begin
         io:format("~-36s", [Name]),
         [io:format("~28s", [cell(R)]) || {_, R} <- Results],
         [case {lists:keyfind(strata, 1, Results), lists:keyfind(Sys, 1, Results)} of
              {{_, {A, _, _, _}}, {_, {B, _, _, _}}} when B > 0 -> io:format("~13.2fx", [A / B]);
              _ -> io:format("~14s", ["-"])
          end || Sys <- Others],
         io:format("~n")
     end || {Name, Results} <- Rows],
    io:format("~n"),
    targets(Rows),
    ok.

short(mnesia_tx) -> "tx";
short(mnesia_dirty) -> "dirty".

%% The speed targets of strata_kvs (async durability), as absolute rates.
targets(Rows) ->
    Strata = [{Name, Rate} || {Name, Results} <- Rows,
                              {strata, {Rate, _, _, _}} <- [lists:keyfind(strata, 1, Results)]],
    [io:format("Targets:~n") || Strata =/= []],
    [io:format("- ~s: ~b/s (target ~b/s): ~s~n",
               [Name, round(Rate), Target,
                case Rate >= Target of true -> "met"; false -> "NOT met" end])
     || {Name, Target} <- [{"append, 1 process, 1 feed", 57000},
                           {"append, 8 processes, 1 shared feed", 57000},
                           {"append, 8 processes, 8 feeds", 114000},
                           {"pages of 100, 1 process", 4000}],
        {Name1, Rate} <- Strata, Name1 =:= Name],
    ok.

cell({Rate, P50, P99, Ok}) ->
    lists:flatten(io_lib:format("~b (~b/~b) ~s", [round(Rate), P50, P99,
                                                  case Ok of true -> "ok"; false -> "BROKEN" end])).
