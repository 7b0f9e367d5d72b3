%%% @doc `make bench': strata from Erlang against raw RocksDB (measured by the Rust
%%% strata_bench in the same run, on the same keys in the same order, with strata's core from
%%% Rust alongside: rows `core'), ETS, DETS and Mnesia, on the same keys and values.
%%%
%%% Every figure is the median of several runs; latencies are p50/p99 of every operation of
%%% the median run. Results are printed as tables and written as CSV and markdown into the
%%% results directory.
-module(strata_bench).

-export([main/1, memory/1, engines/1]).

-define(VALUE_SIZES, [100, 1024]).

%% @doc Entry point: `[Mode, RawCmd, OutDir]' with Mode `full' or `quick' and RawCmd the
%% command line of the Rust benchmark. That runs before and after the Erlang workloads, and
%% each raw row keeps the faster of its two medians: the ceiling is measured on both sides of
%% the minutes this machine's speed can drift over, and never lower than it was. Then the
%% targets against raw RocksDB are measured in paired rounds (`paired/4'), which decide them.
-spec main([string()]) -> no_return().
main([Mode, RawCmd, OutDir]) ->
    P = params(list_to_atom(Mode)),
    Before = run_raw(RawCmd, OutDir, "before"),
    Dir = filename:join(OutDir, "data"),
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    Rows = lists:append([strata_rows(P, Dir), ets_rows(P), dets_rows(P, Dir),
                         mnesia_rows(P, Dir)]),
    After = run_raw(RawCmd, OutDir, "after"),
    [RawBin | _] = string:split(RawCmd, " "),
    Paired = paired(P, RawBin, Dir, OutDir),
    All = faster(Before, After) ++ Rows,
    report(All, Paired, drift(Before, After), P, OutDir),
    halt(0).

%% Runs the raw RocksDB benchmark (its progress goes to standard error) and keeps its CSV.
run_raw(Cmd, OutDir, When) ->
    progress("raw RocksDB from Rust, strata's options (~s the Erlang workloads)", [When]),
    File = filename:join(OutDir, "raw-" ++ When ++ ".csv"),
    %% os:cmd/1 returns the progress lines (standard error) and then the exit status.
    Lines = string:split(string:trim(os:cmd(Cmd ++ " > " ++ File ++ "; echo $?")), "\n", all),
    {Progress, [Status]} = lists:split(length(Lines) - 1, Lines),
    [io:format(standard_error, "~s~n", [L]) || L <- Progress],
    case Status of
        "0" -> read_raw(File);
        _ -> error({raw_benchmark_failed, Cmd, Status})
    end.

%% Each raw row from the run that measured it faster.
faster(Before, After) ->
    Key = fun(#{system := S, op := O, size := Z, procs := Pr, durability := D}) -> {S, O, Z, Pr, D} end,
    Later = maps:from_list([{Key(R), R} || R <- After]),
    [case maps:get(Key(R), Later, R) of
         #{ops := Ops} = A when Ops > B -> A;
         _ -> R
     end || #{ops := B} = R <- Before].

params(quick) -> #{mode => quick, ops => 20000, sync_ops => 600, runs => 3, scan_pages => 500,
                   dets_ops => 5000, procs => [1, 8, 32], pairs => 5};
params(full) -> #{mode => full, ops => 100000, sync_ops => 2000, runs => 3, scan_pages => 2000,
                  dets_ops => 20000, procs => [1, 8, 32], pairs => 7}.

progress(Fmt, Args) ->
    io:format(standard_error, "  " ++ Fmt ++ "~n", Args).

read_raw(File) ->
    {ok, Bin} = file:read_file(File),
    [begin
         [Sys, Op, Size, Threads, Dur, Ops, P50, P99] = string:split(Line, ",", all),
         #{system => Sys, op => Op, size => binary_to_integer(Size),
           procs => binary_to_integer(Threads), durability => Dur,
           ops => num(Ops), p50 => num(P50), p99 => num(P99)}
     end || Line <- string:split(string:trim(Bin), "\n", all), Line =/= <<>>].

num(B) ->
    try binary_to_float(B) catch error:badarg -> float(binary_to_integer(B)) end.

%%% The measuring loop

key(I) -> <<"key", I:64>>.

%% A spread of indexes 0..N-1 in a scrambled order (N and the multiplier are coprime).
index(I, N) -> (I * 2654435761) rem N.

%% Every index in 0..N-1 once, in the order stores are loaded: sorted by splitmix64 of the
%% index, as YCSB loads in hashed order, and as the Rust benchmark loads raw RocksDB (its
%% `load_order`). In index order, raw RocksDB's memtable would lay its keys out in memory in
%% key order, so that a get's last steps stay within a few pages; strata's keys, spread by
%% their partition prefix, never have that layout (doc/engine.md, "Benchmark load order").
load_order(N) ->
    [I || {_, I} <- lists:sort([{splitmix64(I), I} || I <- lists:seq(0, N - 1)])].

splitmix64(X) ->
    M = 16#FFFFFFFFFFFFFFFF,
    Z0 = (X + 16#9E3779B97F4A7C15) band M,
    Z1 = ((Z0 bxor (Z0 bsr 30)) * 16#BF58476D1CE4E5B9) band M,
    Z2 = ((Z1 bxor (Z1 bsr 27)) * 16#94D049BB133111EB) band M,
    Z2 bxor (Z2 bsr 31).

%% Runs Fun(I) for I in 0..Ops-1 split over Procs processes; returns ops/s and latencies.
%% Each latency goes into a slot of one preallocated array, as the Rust benchmark pushes it
%% into a preallocated vector: a list of them costs the measured process garbage collections
%% (gets measured 15-20% slower with a list than with the array).
measure(Procs, Ops, Fun) ->
    Parent = self(),
    Per = Ops div Procs,
    Lat = atomics:new(max(1, Per * Procs), [{signed, false}]),
    Start = erlang:monotonic_time(),
    Pids = [spawn_link(fun() ->
                               loop(Fun, W * Per, (W + 1) * Per, Lat),
                               Parent ! {self(), done}
                       end) || W <- lists:seq(0, Procs - 1)],
    [receive {Pid, done} -> ok end || Pid <- Pids],
    Secs = erlang:convert_time_unit(erlang:monotonic_time() - Start, native, microsecond) / 1.0e6,
    Sorted = lists:sort([atomics:get(Lat, I) || I <- lists:seq(1, Per * Procs)]),
    #{ops => Per * Procs / Secs, p50 => pct(Sorted, 0.5), p99 => pct(Sorted, 0.99)}.

loop(_Fun, I, End, _Lat) when I >= End ->
    ok;
loop(Fun, I, End, Lat) ->
    T0 = erlang:monotonic_time(),
    Fun(I),
    T1 = erlang:monotonic_time(),
    atomics:put(Lat, I + 1, T1 - T0),
    loop(Fun, I + 1, End, Lat).

pct(Sorted, P) ->
    N = length(Sorted),
    Native = lists:nth(max(1, round(P * N)), Sorted),
    erlang:convert_time_unit(Native * 1000, native, microsecond) / 1000.

%% The median (by ops/s) of Runs measurements; Setup runs before each.
median(Runs, Setup, Measure) ->
    Samples = [begin Setup(), Measure() end || _ <- lists:seq(1, Runs)],
    lists:nth((Runs + 1) div 2, lists:sort(fun(A, B) -> maps:get(ops, A) =< maps:get(ops, B) end,
                                           Samples)).

row(System, Op, Size, Procs, Dur, Sample) ->
    {_, {H, Mi, Se}} = calendar:local_time(),
    progress("~2..0w:~2..0w:~2..0w ~-14s ~-12s ~4w B ~2w proc ~-5s ~10w ops/s  p50 ~8.1f us  p99 ~8.1f us",
             [H, Mi, Se, System, Op, Size, Procs, Dur, round(maps:get(ops, Sample)), maps:get(p50, Sample),
              maps:get(p99, Sample)]),
    Sample#{system => list_to_binary(System), op => list_to_binary(Op), size => Size,
            procs => Procs, durability => list_to_binary(Dur)}.

%%% strata

strata_rows(#{ops := Ops, sync_ops := SyncOps, runs := Runs, procs := ProcList} = P, Dir) ->
    application:load(strata),
    lists:append(
             [begin
                  %% A new store for each value size, as raw opens a new database for each.
                  application:set_env(strata, data_dir,
                                      filename:join(Dir, "strata-" ++ integer_to_list(Size))),
                  {ok, _} = application:ensure_all_started(strata),
                  Value = binary:copy(<<"v">>, Size),
                  Load = fun() -> load(Ops, Value) end,
                  Load(),
                  %% In this order: later steps read what earlier ones wrote. Gets come first,
                  %% on the store as loaded, as raw's do: after more rounds of puts, a get
                  %% searches a memtable holding what came since its last flush, and the two
                  %% sides' flushes fall at different points (strata's entries are larger).
                  Gets = [row("strata", "get", Size, N, "async",
                              median(Runs, fun() -> ok end,
                                     fun() -> measure(N, Ops, get_op(Ops)) end))
                          || N <- ProcList],
                  Puts = [row("strata", "put", Size, N, "async",
                              median(Runs, fun() -> ok end,
                                     fun() -> measure(N, Ops, put_op(Ops, Value)) end))
                          || N <- ProcList],
                  Batches = [row("strata", "batch10", Size, N, "async",
                                 median(Runs, fun() -> ok end,
                                        fun() -> measure(N, Ops div 10, fun(I) -> batch(I, Ops, Value) end) end))
                             || N <- ProcList],
                  Scans = [row("strata", "scan100", Size, N, "async",
                               median(Runs, fun() -> ok end,
                                      fun() -> measure(N, maps:get(scan_pages, P), fun(I) -> scan_page(I, Ops) end) end))
                           || N <- ProcList],
                  [ok = strata:put(strata:tag(bench, I), Value) || I <- lists:seq(0, Ops - 1)],
                  TagScans = [row("strata", "scan100_tag", Size, N, "async",
                                  median(Runs, fun() -> ok end,
                                         fun() -> measure(N, maps:get(scan_pages, P), fun(I) -> tag_page(I, Ops) end) end))
                              || N <- ProcList],
                  Sync = [row("strata", "put", Size, N, "sync",
                              median(Runs, fun() -> ok end,
                                     fun() -> measure(N, SyncOps, fun(I) -> ok = strata:put(key(index(I, Ops)), Value, #{durability => sync}) end) end))
                          || N <- ProcList],
                  Deletes = [row("strata", "delete", Size, N, "async",
                                 median(Runs, Load,
                                        fun() -> measure(N, Ops, fun(I) -> ok = strata:delete(key(index(I, Ops))) end) end))
                             || N <- ProcList],
                  ok = application:stop(strata),
                  Puts ++ Gets ++ Deletes ++ Batches ++ Scans ++ TagScans ++ Sync
              end || Size <- ?VALUE_SIZES]).

%% Stores every key of 0..Ops-1 once, in load_order.
load(Ops, Value) ->
    lists:foreach(fun(I) -> ok = strata:put(key(I), Value) end, load_order(Ops)).

get_op(Ops) -> fun(I) -> {ok, _} = strata:get(key(index(I, Ops))) end.

put_op(Ops, Value) -> fun(I) -> ok = strata:put(key(index(I, Ops)), Value) end.

batch(I, Ops, Value) ->
    Writes = [{write, key(index(I * 10 + J, Ops)), Value} || J <- lists:seq(0, 9)],
    Results = strata:req_list(Writes ++ [commit]),
    {ok} = lists:last(Results).

%% A page of keys sharing one hash tag: a single-partition scan.
tag_page(I, Ops) ->
    {ok, Items, _} = strata:scan(strata:tag(bench, index(I, Ops)), strata:tag(bench, Ops),
                                 #{limit => 100}),
    true = length(Items) > 0.

scan_page(I, Ops) ->
    {ok, Items, _} = strata:scan(key(index(I, Ops)), '$max', #{limit => 100}),
    true = length(Items) > 0.

%%% Paired rounds for the targets against raw RocksDB

%% The targets that compare strata with raw RocksDB, measured in pairs of rounds taken seconds
%% apart: a round of raw (the Rust benchmark's `pair' mode, kept running beside this node) and
%% a round of strata, each on its own store of `Ops' keys of 100 B loaded in hashed order, the
%% order within a pair alternating. The tables' ratios divide figures measured minutes apart,
%% over which this machine's speed drifts by tens of percent; a pair's ratio does not carry
%% that drift, and the median of the pairs' ratios decides each target. The pairs are also
%% written to OutDir/pairs.csv.
paired(#{ops := Ops, pairs := Pairs}, RawBin, Dir, OutDir) ->
    progress("paired rounds for the targets: raw RocksDB and strata alternating, ~w pairs each",
             [Pairs]),
    Port = open_port({spawn_executable, RawBin},
                     [{args, ["pair", integer_to_list(Ops)]}, {line, 256}, binary, use_stdio,
                      exit_status]),
    <<"ready">> = raw_line(Port),
    application:set_env(strata, data_dir, filename:join(Dir, "strata-pair")),
    {ok, _} = application:ensure_all_started(strata),
    Value = binary:copy(<<"v">>, 100),
    load(Ops, Value),
    Get = get_op(Ops),
    Put = put_op(Ops, Value),
    %% Gets first, on the stores as loaded, as in the tables.
    Result = [{Target, [pair(N, Port, Procs, Threads, Ops, Fun, Op) || N <- lists:seq(1, Pairs)]}
              || {Target, Op, Procs, Threads, Fun} <- [{get1, "get", 1, 1, Get},
                                                       {put1, "put", 1, 1, Put},
                                                       {put8, "put", 8, 2, Put}]],
    ok = application:stop(strata),
    port_close(Port),
    ok = file:write_file(filename:join(OutDir, "pairs.csv"),
                         ["target,pair,strata_ops_per_s,raw_ops_per_s,ratio\n" |
                          [io_lib:format("~s,~w,~w,~w,~.3f~n", [T, N, round(S), round(R), S / R])
                           || {T, Ps} <- Result, {N, {S, R}} <- lists:enumerate(Ps)]]),
    maps:from_list(Result).

%% One pair: {strata ops/s, raw ops/s}, raw first in odd pairs.
pair(N, Port, Procs, Threads, Ops, Fun, Op) ->
    Raw = fun() -> raw_round(Port, Op, Threads) end,
    Strata = fun() -> maps:get(ops, measure(Procs, Ops, Fun)) end,
    {S, R} = case N rem 2 of
                 1 -> R1 = Raw(), {Strata(), R1};
                 0 -> S1 = Strata(), {S1, Raw()}
             end,
    progress("pair ~w: strata ~s ~w proc ~10w ops/s, raw ~w thread(s) ~10w ops/s: ~.2fx",
             [N, Op, Procs, round(S), Threads, round(R), S / R]),
    {S, R}.

raw_round(Port, Op, Threads) ->
    port_command(Port, [Op, " ", integer_to_list(Threads), "\n"]),
    [Ops | _] = string:split(raw_line(Port), " "),
    num(Ops).

raw_line(Port) ->
    receive
        {Port, {data, {eol, Line}}} -> Line;
        {Port, {exit_status, Status}} -> error({raw_benchmark_exited, Status})
    after 120000 ->
            error(raw_benchmark_timeout)
    end.

%%% ETS, DETS, Mnesia

ets_rows(#{ops := Ops, runs := Runs}) ->
    lists:append(
      [begin
           Value = binary:copy(<<"v">>, Size),
           T = ets:new(bench, [set, public, {write_concurrency, true}, {read_concurrency, true}]),
           Puts = [row("ets", "put", Size, N, "-",
                    median(Runs, fun() -> ok end,
                           fun() -> measure(N, Ops, fun(I) -> ets:insert(T, {key(index(I, Ops)), Value}) end) end))
                || N <- [1, 8]],
           R = Puts ++
               [row("ets", "get", Size, N, "-",
                    median(Runs, fun() -> ok end,
                           fun() -> measure(N, Ops, fun(I) -> [_] = ets:lookup(T, key(index(I, Ops))) end) end))
                || N <- [1, 8]],
           ets:delete(T),
           R
       end || Size <- ?VALUE_SIZES]).

dets_rows(#{dets_ops := Ops, runs := Runs}, Dir) ->
    lists:append(
      [begin
           Value = binary:copy(<<"v">>, Size),
           File = filename:join(Dir, "bench" ++ integer_to_list(Size) ++ ".dets"),
           {ok, T} = dets:open_file(make_ref(), [{file, File}, {type, set}]),
           Puts = [row("dets", "put", Size, N, "-",
                    median(Runs, fun() -> ok end,
                           fun() -> measure(N, Ops, fun(I) -> ok = dets:insert(T, {key(index(I, Ops)), Value}) end) end))
                || N <- [1, 8]],
           R = Puts ++
               [row("dets", "get", Size, N, "-",
                    median(Runs, fun() -> ok end,
                           fun() -> measure(N, Ops, fun(I) -> [_] = dets:lookup(T, key(index(I, Ops))) end) end))
                || N <- [1, 8]],
           ok = dets:close(T),
           R
       end || Size <- ?VALUE_SIZES]).

mnesia_rows(#{ops := Ops, runs := Runs}, Dir) ->
    application:set_env(mnesia, dir, filename:join(Dir, "mnesia")),
    ok = mnesia:create_schema([node()]),
    ok = mnesia:start(),
    Rows = lists:append(
             [begin
                  Value = binary:copy(<<"v">>, Size),
                  Tab = list_to_atom("bench" ++ integer_to_list(Size)),
                  {atomic, ok} = mnesia:create_table(Tab, [{disc_copies, [node()]},
                                                           {attributes, [k, v]}]),
                  TxPut = fun(K) -> {atomic, ok} = mnesia:transaction(fun() -> mnesia:write({Tab, K, Value}) end) end,
                  TxGet = fun(K) -> {atomic, [_]} = mnesia:transaction(fun() -> mnesia:read(Tab, K) end) end,
                  DirtyPuts = [row("mnesia_dirty", "put", Size, N, "-",
                       median(Runs, fun() -> ok end,
                              fun() -> measure(N, Ops, fun(I) -> ok = mnesia:dirty_write({Tab, key(index(I, Ops)), Value}) end) end))
                   || N <- [1, 8]],
                  DirtyPuts ++
                  [row("mnesia_dirty", "get", Size, N, "-",
                       median(Runs, fun() -> ok end,
                              fun() -> measure(N, Ops, fun(I) -> [_] = mnesia:dirty_read(Tab, key(index(I, Ops))) end) end))
                   || N <- [1, 8]] ++
                  [row("mnesia_tx", "put", Size, N, "-",
                       median(Runs, fun() -> ok end,
                              fun() -> measure(N, Ops, fun(I) -> TxPut(key(index(I, Ops))) end) end))
                   || N <- [1, 8]] ++
                  [row("mnesia_tx", "get", Size, N, "-",
                       median(Runs, fun() -> ok end,
                              fun() -> measure(N, Ops, fun(I) -> TxGet(key(index(I, Ops))) end) end))
                   || N <- [1, 8]]
              end || Size <- ?VALUE_SIZES]),
    stopped = mnesia:stop(),
    Rows.

%%% The two engines: the NIF against the port program, on the same workload.

%% @doc `[Mode, OutDir]': put and get (100 B, async) and sync put, from 1 and 8 processes,
%% with the NIF and with the port engine, each on a fresh store; prints the table and appends
%% it to OutDir/results.md.
-spec engines([string()]) -> no_return().
engines([Mode, OutDir]) ->
    #{ops := Ops, sync_ops := SyncOps, runs := Runs} = params(list_to_atom(Mode)),
    Value = binary:copy(<<"v">>, 100),
    Steps = [{put, async, N} || N <- [1, 8]] ++ [{get, async, N} || N <- [1, 8]]
        ++ [{put, sync, N} || N <- [1, 8]],
    Measured =
        [begin
             Dir = filename:join([OutDir, "data", "engine_" ++ atom_to_list(Engine)]),
             application:load(strata),
             application:set_env(strata, data_dir, Dir),
             application:set_env(strata, engine, Engine),
             {ok, _} = application:ensure_all_started(strata),
             load(Ops, Value),
             Rows = [{{Op, Dur, N}, Engine,
                      row("strata_" ++ atom_to_list(Engine), atom_to_list(Op), 100, N,
                          atom_to_list(Dur),
                          median(Runs, fun() -> ok end,
                                 fun() -> measure(N, count(Dur, Ops, SyncOps), engine_op(Op, Dur, Ops, Value)) end))}
                     || {Op, Dur, N} <- Steps],
             ok = application:stop(strata),
             application:unset_env(strata, engine),
             Rows
         end || Engine <- [nif, port]],
    All = lists:append(Measured),
    Table = ["## Port against NIF (100 B values, median of ", integer_to_list(Runs), " runs)\n\n",
             "| op | durability | procs | NIF ops/s | NIF p50 / p99 us | port ops/s | port p50 / p99 us | port / NIF |\n",
             "|---|---|---|---|---|---|---|---|\n",
             [begin
                  {_, _, Nif} = lists:keyfind(nif, 2, [X || {K, _, _} = X <- All, K =:= Step]),
                  [Port] = [R || {K, port, R} <- All, K =:= Step],
                  io_lib:format("| ~s | ~s | ~w | ~w | ~.1f / ~.1f | ~w | ~.1f / ~.1f | ~.2fx |~n",
                                [Op, Dur, N, round(maps:get(ops, Nif)), maps:get(p50, Nif),
                                 maps:get(p99, Nif), round(maps:get(ops, Port)),
                                 maps:get(p50, Port), maps:get(p99, Port),
                                 maps:get(ops, Port) / maps:get(ops, Nif)])
              end || {Op, Dur, N} = Step <- Steps]],
    io:format("~n~s~n", [Table]),
    ok = file:write_file(filename:join(OutDir, "results.md"), ["\n", Table], [append]),
    halt(0).

count(async, Ops, _SyncOps) -> Ops;
count(sync, _Ops, SyncOps) -> SyncOps.

engine_op(put, Dur, Ops, Value) ->
    fun(I) -> ok = strata:put(key(index(I, Ops)), Value, #{durability => Dur}) end;
engine_op(get, _Dur, Ops, _Value) ->
    get_op(Ops).

%%% Memory: run in a fresh node by bench/run.sh.

%% @doc Loads `Keys' keys of 100 B into strata in `Dir' and prints the node's peak RSS.
-spec memory([string()]) -> no_return().
memory([Dir, Keys]) ->
    N = list_to_integer(Keys),
    application:load(strata),
    application:set_env(strata, data_dir, Dir),
    {ok, _} = application:ensure_all_started(strata),
    Value = binary:copy(<<"v">>, 100),
    Parent = self(),
    Procs = 8,
    [spawn_link(fun() ->
                        [ok = strata:put(key(I), Value) || I <- lists:seq(W, N - 1, Procs)],
                        Parent ! loaded
                end) || W <- lists:seq(0, Procs - 1)],
    [receive loaded -> ok end || _ <- lists:seq(1, Procs)],
    {ok, Status} = file:read_file("/proc/self/status"),
    [HWM] = [string:trim(L) || <<"VmHWM:", L/binary>> <- string:split(Status, "\n", all)],
    #{store := #{block_cache_bytes := Cache}} = strata:status(),
    #{config := #{block_cache_bytes := CacheCap}} = strata:status(),
    io:format("memory,~w,~s,~w,~w~n", [N, HWM, Cache, CacheCap]),
    halt(0).

%%% Report

report(Rows, Paired, Drift, #{mode := Mode}, OutDir) ->
    Find = fun(Sys, Op, Size, Procs, Dur) ->
                   [R || #{system := S, op := O, size := Z, procs := Pr, durability := D} = R <- Rows,
                         S =:= Sys, O =:= Op, Z =:= Size, Pr =:= Procs, D =:= Dur]
           end,
    Ratio = fun(#{system := Sys, op := Op, size := Size, procs := Procs,
                  durability := Dur, ops := Ops}) when Sys =:= <<"strata">>; Sys =:= <<"core">> ->
                    RawProcs = min(Procs, 2),
                    VsRaw = case Find(<<"raw">>, Op, Size, RawProcs, Dur) of
                                [#{ops := R}] -> Ops / R;
                                [] -> undefined
                            end,
                    %% Mnesia never fsyncs, so only async writes compare with it; the core
                    %% runs without Erlang, so only strata does.
                    VsMnesia = case Find(<<"mnesia_tx">>, Op, Size, min(Procs, 8), <<"-">>) of
                                   [#{ops := M}] when Dur =:= <<"async">>, Sys =:= <<"strata">> -> Ops / M;
                                   _ -> undefined
                               end,
                    {VsRaw, VsMnesia};
               (_) ->
                    {undefined, undefined}
            end,
    Lines = [{R, Ratio(R)} || R <- Rows],
    Header = "| system | op | value | procs | durability | ops/s | p50 us | p99 us | vs raw RocksDB | vs Mnesia tx |\n"
             "|---|---|---|---|---|---|---|---|---|---|\n",
    Md = [Header | [io_lib:format("| ~s | ~s | ~w B | ~w | ~s | ~w | ~.1f | ~.1f | ~s | ~s |~n",
                                  [S, O, Z, Pr, D, round(Ops), P50, P99, fmt(VR), fmt(VM)])
                    || {#{system := S, op := O, size := Z, procs := Pr, durability := D,
                          ops := Ops, p50 := P50, p99 := P99}, {VR, VM}} <- Lines]],
    Csv = ["system,op,value_bytes,procs,durability,ops_per_s,p50_us,p99_us,vs_raw,vs_mnesia_tx\n" |
           [io_lib:format("~s,~s,~w,~w,~s,~w,~.2f,~.2f,~s,~s~n",
                          [S, O, Z, Pr, D, round(Ops), P50, P99, fmt(VR), fmt(VM)])
            || {#{system := S, op := O, size := Z, procs := Pr, durability := D,
                  ops := Ops, p50 := P50, p99 := P99}, {VR, VM}} <- Lines]],
    Targets = [targets(Find, Paired), Drift],
    ok = file:write_file(filename:join(OutDir, "results.md"),
                         [io_lib:format("# strata benchmark (~s)~n~n", [Mode]), Md, "\n", Targets]),
    ok = file:write_file(filename:join(OutDir, "results.csv"), Csv),
    io:format("~n~s~n~s", [Md, Targets]).

%% What raw RocksDB measured before and after the Erlang workloads, for the rows the targets
%% compare with: the ratios use the faster, and the gap shows how far the machine drifted.
drift(Before, After) ->
    Ops = fun(Rows, Op, Threads) ->
                  case [O || #{system := <<"raw">>, op := Op1, size := 100, procs := T,
                               durability := <<"async">>, ops := O} <- Rows, Op1 =:= Op, T =:= Threads] of
                      [O] -> io_lib:format("~w", [round(O)]);
                      [] -> "-"
                  end
          end,
    ["\nRaw RocksDB before / after the Erlang workloads (100 B; each ratio uses the faster): ",
     lists:join("; ", [io_lib:format("~s, ~w thread(s): ~s / ~s ops/s",
                                     [Op, T, Ops(Before, Op, T), Ops(After, Op, T)])
                       || {Op, T} <- [{<<"get">>, 1}, {<<"put">>, 1}, {<<"put">>, 2}]]),
     ".\n"].

fmt(undefined) -> "-";
fmt(X) -> io_lib:format("~.2fx", [X]).

targets(Find, Paired) ->
    Get = fun(Sys, Op, Size, Procs, Dur) ->
                  case Find(Sys, Op, Size, Procs, Dur) of
                      [#{ops := O}] -> O;
                      [] -> undefined
                  end
          end,
    Verdict = fun(true) -> "met"; (false) -> "NOT met" end,
    Check = fun(Name, A, B, Factor) when is_number(A), is_number(B) ->
                    io_lib:format("- ~s: ~w vs ~w ops/s = ~.2fx (target ~.2fx): ~s~n",
                                  [Name, round(A), round(B), A / B, Factor, Verdict(A >= Factor * B)]);
               (Name, _, _, _) ->
                    io_lib:format("- ~s: not measured~n", [Name])
            end,
    %% Against raw RocksDB: the median of the paired rounds' ratios decides; the tables'
    %% figures, measured minutes apart, are given beside it.
    VsRaw = fun(Name, Target, Op, Procs, Threads, Factor) ->
                    Pairs = maps:get(Target, Paired),
                    Ratios = [S / R || {S, R} <- Pairs],
                    Median = median_of(Ratios),
                    Tables = case {Get(<<"strata">>, Op, 100, Procs, <<"async">>),
                                   Get(<<"raw">>, Op, 100, Threads, <<"async">>)} of
                                 {A, B} when is_number(A), is_number(B) ->
                                     io_lib:format("~.2fx", [A / B]);
                                 _ -> "-"
                             end,
                    io_lib:format("- ~s: median of ~w paired rounds ~.2fx (pairs from ~.2fx to ~.2fx; "
                                  "median strata ~w, raw ~w ops/s; the tables give ~s) (target ~.2fx): ~s~n",
                                  [Name, length(Ratios), Median, lists:min(Ratios), lists:max(Ratios),
                                   round(median_of([S || {S, _} <- Pairs])),
                                   round(median_of([R || {_, R} <- Pairs])), Tables, Factor,
                                   Verdict(Median >= Factor)])
            end,
    ["## Targets\n\n",
     VsRaw("single-process get vs raw RocksDB 1 thread (100 B)", get1, <<"get">>, 1, 1, 0.5),
     VsRaw("single-process put vs raw RocksDB 1 thread (100 B)", put1, <<"put">>, 1, 1, 0.5),
     VsRaw("8-process put vs raw RocksDB 2 threads (100 B)", put8, <<"put">>, 8, 2, 0.8),
     Check("put vs Mnesia disc_copies transactional write (100 B, 1 proc)",
           Get(<<"strata">>, <<"put">>, 100, 1, <<"async">>), Get(<<"mnesia_tx">>, <<"put">>, 100, 1, <<"-">>), 1.0),
     Check("group commit: 32 sync writers vs 1 sync writer (100 B)",
           Get(<<"strata">>, <<"put">>, 100, 32, <<"sync">>), Get(<<"strata">>, <<"put">>, 100, 1, <<"sync">>), 8.0)].

median_of(Xs) ->
    lists:nth((length(Xs) + 1) div 2, lists:sort(Xs)).
