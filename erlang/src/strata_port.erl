%%% @doc Port mode: the engine as an OS process (`priv/strata_port'), and the process that owns it.
%%%
%%% The same Rust core as the NIF runs outside the VM, so a crash of the engine (a bug, an
%%% abort in RocksDB, `kill -9') costs the calls in flight and a restart, never the VM. Chosen
%%% with `{engine, port}' in the application environment; {@link strata_store} dispatches to the
%%% functions here, so nothing above it knows which engine runs.
%%%
%%% Protocol: `{packet, 4}' frames of external term format, `{ReqId, Request}' answered by
%%% `{ReqId, Reply}', possibly out of order (native/strata_port/src/main.rs). Keys and values
%%% travel as `term_to_binary' binaries, so the port stores the very bytes the NIF stores and a
%%% data directory can move between the engines.
%%%
%%% Calls: the caller writes its frame to the port itself (`port_command/2' works from any
%%% process) with a fresh monitor of the port as `ReqId'; the monitor is also an alias, and the
%%% owner, which receives everything the port writes, sends each reply to that alias. So a call
%%% costs one process hop on the way back and none on the way out, and:
%%% <ul>
%%% <li>when the port dies (or its owner, which closes it), every caller in flight gets the
%%%   monitor's `DOWN' and returns `{error, engine_down}': never a hang. The outcome of a write
%%%   that got `engine_down' is unknown; a write that returned `ok' is in the store (sync ones
%%%   on disk);</li>
%%% <li>a caller that gives up (`{error, timeout}') drops its alias, so a late reply is discarded
%%%   instead of landing in its mailbox;</li>
%%% <li>at most `?MAX_IN_FLIGHT' calls are in flight per store (an atomic counter); past that a
%%%   call returns `{error, overloaded}' at once. Inside the port every queue is bounded, and a
%%%   port that cannot keep up stops reading, which makes `port_command/2' wait (busy port):
%%%   back-pressure rather than growing queues.</li>
%%% </ul>
%%%
%%% Snapshots are ids inside the port. The owner records which process took each one and
%%% releases it when that process exits; {@link strata_store:release/1} releases one at once
%%% (transactions do at their end, scans when their continuation is `done'). At most 4096 are
%%% open per store; past that `snapshot' returns `{error, too_many_snapshots}'. A snapshot dies
%%% with its port: reads through it then return `{error, engine_down}'.
%%%
%%% Supervision: when the port exits, the owner stops with `{engine_down, Why}' and its
%%% supervisor restarts it, which starts and opens a new port (RocksDB recovers from its WAL,
%%% as after a crash of the machine). `strata_sup' is `rest_for_one' with the store first, so
%%% the rest of the tree restarts too, exactly as when the NIF store's owner dies.
-module(strata_port).
-behaviour(gen_server).

-export([start_link/1]).
-export([get/2, put/5, delete/4, get_versioned/3, snapshot/1, release/1, commit/5, scan/7,
         partition_of/2, log_since/4, last_seq/2, backup/2, info/1,
         meta_get/2, meta_put/3]).
-export([executable/0, os_pid/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-export_type([handle/0, snapshot/0]).

-opaque handle() :: {port(), atomics:atomics_ref()}.
-opaque snapshot() :: {strata_port_snapshot, port(), pos_integer()}.
-type error() :: {error, term()}.

%% Calls a store may have in flight from all callers together.
-define(MAX_IN_FLIGHT, 1024).
%% For calls that take no timeout of their own (reads, snapshots, scans).
-define(CALL_TIMEOUT, 5000).
%% Calls that walk the disk: log reads, truncation, backups.
-define(SLOW_TIMEOUT, 600000).
%% How long opening waits for a previous port on the same directory to let go of it.
-define(LOCKED_WAIT_MS, 10000).
-define(OPEN_TIMEOUT, 120000).
-define(CLOSE_TIMEOUT, 30000).

%% @doc Starts the owner: it starts the port program and opens the store in it.
-spec start_link(strata_store:config()) -> {ok, pid()} | {error, term()}.
start_link(Config) ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, Config, []).

%% @doc The path of the port program.
-spec executable() -> file:filename().
executable() ->
    Dir = case code:priv_dir(strata) of
              {error, bad_name} ->
                  filename:join(filename:dirname(filename:dirname(code:which(?MODULE))), "priv");
              D -> D
          end,
    filename:join(Dir, "strata_port").

%% @doc The OS process id of the running port program, or `undefined' (NIF mode, or no store).
-spec os_pid() -> non_neg_integer() | undefined.
os_pid() ->
    case strata_store:engine() of
        port ->
            {Port, _} = strata_store:handle(),
            case erlang:port_info(Port, os_pid) of
                {os_pid, Pid} -> Pid;
                undefined -> undefined
            end;
        _ ->
            undefined
    end.

%%% Calls (run in the caller)

%% @doc Reads the current value of a key.
-spec get(handle(), term()) -> {ok, term()} | error().
get(H, Key) ->
    case call(H, {get, term_to_binary(Key)}, ?CALL_TIMEOUT) of
        {ok, Bin} -> {ok, binary_to_term(Bin)};
        Other -> Other
    end.

%% @doc Stores one value.
-spec put(handle(), term(), term(), strata_store:durability(), timeout()) -> ok | error().
put(H, Key, Value, async, Timeout) ->
    call(H, {put, term_to_binary(Key), term_to_binary(Value)}, Timeout);
put(H, Key, Value, sync, Timeout) ->
    commit(H, [], [{put, Key, Value}], sync, Timeout).

%% @doc Deletes one key.
-spec delete(handle(), term(), strata_store:durability(), timeout()) -> ok | error().
delete(H, Key, async, Timeout) ->
    call(H, {delete, term_to_binary(Key)}, Timeout);
delete(H, Key, sync, Timeout) ->
    commit(H, [], [{delete, Key}], sync, Timeout).

%% @doc Reads a key and its version as of a snapshot (or of now, given `latest').
-spec get_versioned(handle(), snapshot() | latest, term()) ->
          {ok, term(), non_neg_integer()} | {not_found, non_neg_integer()} | error().
get_versioned(H, Snap, Key) ->
    Reply = case Snap of
                latest ->
                    call(H, {get_versioned, latest, term_to_binary(Key)}, ?CALL_TIMEOUT);
                {strata_port_snapshot, Port, Id} ->
                    call(on(Port, H), {get_versioned, Id, term_to_binary(Key)}, ?CALL_TIMEOUT)
            end,
    case Reply of
        {ok, Bin, Vsn} -> {ok, binary_to_term(Bin), Vsn};
        Other -> Other
    end.

%% @doc A consistent read view; the calling process owns it (see the module doc).
-spec snapshot(handle()) -> {ok, snapshot()} | error().
snapshot({Port, _} = H) ->
    Self = self(),
    case call(H, fun(Ref) -> {snapshot, Self, Ref} end, snapshot, ?CALL_TIMEOUT) of
        {ok, Id} -> {ok, {strata_port_snapshot, Port, Id}};
        Other -> Other
    end.

%% @doc Releases a snapshot now, without waiting for the port's answer.
-spec release(snapshot()) -> ok.
release({strata_port_snapshot, Port, Id}) ->
    _ = command(Port, {{release, Id}, {release, Id}}),
    ok.

%% @doc Validates read versions and applies writes atomically. A conflict is
%% `{error, {conflict, ReadIndexes}}' (indexes into `Reads', from 0).
-spec commit(handle(), [{term(), non_neg_integer()}], [strata_nif:write()],
             strata_store:durability(), timeout()) -> ok | error().
commit(H, Reads, Writes, Durability, Timeout) ->
    Req = {commit, [{term_to_binary(K), V} || {K, V} <- Reads],
           [encode_write(W) || W <- Writes], Durability},
    call(H, Req, Timeout).

encode_write({put, K, V}) -> {put, term_to_binary(K), term_to_binary(V)};
encode_write({delete, K}) -> {delete, term_to_binary(K)};
encode_write(Other) -> Other.  % the port answers {error, {bad_request, _}}

%% @doc One page of a scan over a snapshot.
-spec scan(handle(), snapshot(), strata_nif:bound(), strata_nif:bound(), boolean(),
           non_neg_integer(), non_neg_integer() | undefined) ->
          {ok, [{term(), term()}], done | binary()} | error().
scan(H, {strata_port_snapshot, Port, Id}, Lo, Hi, Reverse, Limit, Partition) ->
    Req = {scan, Id, bound(Lo), bound(Hi), Reverse, Limit, Partition},
    case call(on(Port, H), Req, ?CALL_TIMEOUT) of
        {ok, Items, Next} ->
            {ok, [{binary_to_term(K), binary_to_term(V)} || {K, V} <- Items], Next};
        Other ->
            Other
    end;
scan(_H, Snap, _Lo, _Hi, _Reverse, _Limit, _Partition) ->
    {error, {bad_snapshot, Snap}}.

bound({incl, K}) -> {incl, term_to_binary(K)};
bound({excl, K}) -> {excl, term_to_binary(K)};
bound(Other) -> Other.

%% @doc The partition a key belongs to.
-spec partition_of(handle(), term()) -> non_neg_integer() | error().
partition_of(H, Key) ->
    call(H, {partition_of, term_to_binary(Key)}, ?CALL_TIMEOUT).

%% @doc The writes of a partition after a sequence number, from its commit log, oldest first.
-spec log_since(handle(), non_neg_integer(), non_neg_integer(), pos_integer()) ->
          {ok, [{pos_integer(), term(), put | delete}]} | error().
log_since(H, Partition, After, Limit) ->
    case call(H, {log_since, Partition, After, Limit}, ?SLOW_TIMEOUT) of
        {ok, Entries} -> {ok, [{Seq, binary_to_term(K), Op} || {Seq, K, Op} <- Entries]};
        Other -> Other
    end.

%% @doc The last sequence number of a partition.
-spec last_seq(handle(), non_neg_integer()) -> non_neg_integer() | error().
last_seq(H, Partition) ->
    call(H, {last_seq, Partition}, ?CALL_TIMEOUT).

%% @doc Writes a checkpoint of the store into `Dir' (an absolute path as a binary).
-spec backup(handle(), binary()) -> ok | error().
backup(H, Dir) ->
    call(H, {backup, Dir}, ?SLOW_TIMEOUT).

%% @doc A record of the layers above from the meta column family.
-spec meta_get(handle(), binary()) -> {ok, binary()} | not_found | error().
meta_get(H, Name) ->
    call(H, {meta_get, Name}, ?CALL_TIMEOUT).

%% @doc Replaces a meta record durably (fsynced before the reply).
-spec meta_put(handle(), binary(), binary()) -> ok | error().
meta_put(H, Name, Value) ->
    call(H, {meta_put, Name, Value}, ?CALL_TIMEOUT).

%% @doc Engine statistics as `[{Name, Integer}]', with the port program's `os_pid' and its
%% open `snapshots'.
-spec info(handle()) -> [{atom(), non_neg_integer()}] | error().
info({Port, _} = H) ->
    case call(H, info, ?CALL_TIMEOUT) of
        Pairs when is_list(Pairs) ->
            case erlang:port_info(Port, os_pid) of
                {os_pid, Pid} -> [{os_pid, Pid} | Pairs];
                undefined -> Pairs
            end;
        Error ->
            Error
    end.

%% The handle to use for a snapshot's port: the snapshot's own port, which may be a dead one.
on(Port, {_, Counter}) -> {Port, Counter}.

call(H, Req, Timeout) ->
    call(H, fun(Ref) -> Ref end, Req, Timeout).

%% Sends `{ReqId(Ref), Req}' and waits for the reply sent to the alias `Ref'.
call({Port, Counter}, ReqId, Req, Timeout) ->
    case atomics:add_get(Counter, 1, 1) of
        N when N > ?MAX_IN_FLIGHT ->
            atomics:sub(Counter, 1, 1),
            {error, overloaded};
        _ ->
            try
                Ref = erlang:monitor(port, Port, [{alias, reply_demonitor}]),
                case command(Port, {ReqId(Ref), Req}) of
                    true ->
                        wait(Ref, Timeout);
                    false ->
                        erlang:demonitor(Ref, [flush]),
                        {error, engine_down}
                end
            after
                atomics:sub(Counter, 1, 1)
            end
    end.

command(Port, Frame) ->
    try erlang:port_command(Port, term_to_binary(Frame))
    catch error:badarg -> false  % the port is closed
    end.

wait(Ref, Timeout) ->
    receive
        {Ref, Reply} ->
            %% A DOWN may have come in just before the reply.
            erlang:demonitor(Ref, [flush]),
            Reply;
        {'DOWN', Ref, port, _, _} ->
            {error, engine_down}
    after Timeout ->
            erlang:demonitor(Ref, [flush]),  % also drops the alias: late replies vanish
            receive
                {Ref, Reply} -> Reply
            after 0 ->
                    {error, timeout}
            end
    end.

%%% The owner

%% @private
init(#{data_dir := Dir} = Config) ->
    process_flag(trap_exit, true),
    case filelib:ensure_dir(filename:join(Dir, "x")) of
        ok ->
            Port = open_port({spawn_executable, executable()},
                             [{packet, 4}, binary, exit_status, use_stdio]),
            Opts = maps:with([partitions, block_cache_bytes, write_buffer_bytes], Config),
            Path = unicode:characters_to_binary(filename:absname(Dir)),
            Deadline = erlang:monotonic_time(millisecond) + ?LOCKED_WAIT_MS,
            case open(Port, Path, Opts, Deadline) of
                ok ->
                    Handle = {Port, atomics:new(1, [{signed, true}])},
                    strata_store:publish(port, Handle, Config),
                    schedule_truncate(Config),
                    logger:info("strata: store open in ~ts (port ~p)", [Dir, Port]),
                    {ok, #{port => Port, config => Config, owners => #{}, snapshots => #{}}};
                {error, Reason} ->
                    catch port_close(Port),
                    {stop, {open_failed, Dir, Reason}}
            end;
        {error, Reason} ->
            {stop, {open_failed, Dir, {file, Reason}}}
    end.

%% Opens the store in the port; waits while a previous port (that of a crashed owner, still
%% closing) holds the directory's lock.
open(Port, Path, Opts, Deadline) ->
    true = port_command(Port, term_to_binary({open, {open, Path, Opts}})),
    receive
        {Port, {data, Bin}} ->
            case binary_to_term(Bin) of
                {open, {error, locked}} ->
                    case erlang:monotonic_time(millisecond) < Deadline of
                        true -> timer:sleep(100), open(Port, Path, Opts, Deadline);
                        false -> {error, locked}
                    end;
                {open, {error, _} = Error} -> Error;
                {open, ok} -> ok;
                Other -> {error, {unexpected_reply, Other}}
            end;
        {Port, {exit_status, Status}} ->
            {error, {engine_down, {exit_status, Status}}}
    after ?OPEN_TIMEOUT ->
            {error, timeout}
    end.

%% @private
handle_call(Request, _From, State) ->
    {reply, {error, {unknown_call, Request}}, State}.

%% @private
handle_cast(Request, State) ->
    logger:warning("strata_port: unexpected cast ~p", [Request]),
    {noreply, State}.

%% @private
handle_info({Port, {data, Bin}}, #{port := Port} = State) ->
    {noreply, route(binary_to_term(Bin), State)};
handle_info({Port, {exit_status, Status}}, #{port := Port} = State) ->
    logger:error("strata: engine port exited with status ~p", [Status]),
    {stop, {engine_down, {exit_status, Status}}, State};
handle_info({'EXIT', Port, Reason}, #{port := Port} = State) ->
    {stop, {engine_down, Reason}, State};
handle_info({'DOWN', _, process, Pid, _}, #{owners := Owners, port := Port} = State) ->
    {Ids, Owners1} = case maps:take(Pid, Owners) of
                         {{_MRef, Set}, Rest} -> {maps:keys(Set), Rest};
                         error -> {[], Owners}
                     end,
    [release({strata_port_snapshot, Port, Id}) || Id <- Ids],
    {noreply, State#{owners := Owners1}};
handle_info(truncate_log, #{port := Port, config := #{log_keep := Keep} = Config} = State) ->
    _ = command(Port, {truncate_log, {truncate_log, Keep}}),
    schedule_truncate(Config),
    {noreply, State};
handle_info({'EXIT', _, normal}, State) ->
    {noreply, State};
handle_info(Info, State) ->
    logger:warning("strata_port: unexpected message ~p", [Info]),
    {noreply, State}.

%% A reply from the port, to its caller or to the owner itself.
route({Ref, Reply}, State) when is_reference(Ref) ->
    Ref ! {Ref, Reply},
    State;
route({{snapshot, Pid, Ref}, {ok, Id} = Reply}, State) ->
    Ref ! {Ref, Reply},
    track(Pid, Id, State);
route({{snapshot, _Pid, Ref}, Reply}, State) ->
    Ref ! {Ref, Reply},
    State;
route({{release, Id}, _}, State) ->
    untrack(Id, State);
route({truncate_log, {ok, _}}, State) ->
    State;
route({truncate_log, Error}, State) ->
    logger:error("strata: log truncation failed: ~p", [Error]),
    State;
route(Other, State) ->
    logger:error("strata_port: reply nobody asked for: ~P", [Other, 20]),
    State.

track(Pid, Id, #{owners := Owners, snapshots := Snaps} = State) ->
    Entry = case Owners of
                #{Pid := {MRef, Set}} -> {MRef, Set#{Id => true}};
                #{} -> {erlang:monitor(process, Pid), #{Id => true}}
            end,
    State#{owners := Owners#{Pid => Entry}, snapshots := Snaps#{Id => Pid}}.

untrack(Id, #{owners := Owners, snapshots := Snaps} = State) ->
    case maps:take(Id, Snaps) of
        {Pid, Snaps1} ->
            Owners1 = case Owners of
                          #{Pid := {MRef, Set}} when map_size(Set) =:= 1 ->
                              erlang:demonitor(MRef, [flush]),
                              maps:remove(Pid, Owners);
                          #{Pid := {MRef, Set}} ->
                              Owners#{Pid := {MRef, maps:remove(Id, Set)}};
                          #{} ->
                              Owners
                      end,
            State#{owners := Owners1, snapshots := Snaps1};
        error ->
            State
    end.

%% @private
terminate(_Reason, #{port := Port}) ->
    strata_store:unpublish(),
    %% Close the store before the port: the next owner can open the directory at once, and
    %% queued sync commits are answered first.
    case command(Port, {close, close}) of
        true -> await_close(Port, erlang:monotonic_time(millisecond) + ?CLOSE_TIMEOUT);
        false -> ok
    end,
    catch port_close(Port),
    ok.

await_close(Port, Deadline) ->
    Left = max(0, Deadline - erlang:monotonic_time(millisecond)),
    receive
        {Port, {data, Bin}} ->
            case binary_to_term(Bin) of
                {close, _} -> ok;
                {Ref, Reply} when is_reference(Ref) -> Ref ! {Ref, Reply}, await_close(Port, Deadline);
                _ -> await_close(Port, Deadline)
            end;
        {Port, {exit_status, _}} ->
            ok
    after Left ->
            logger:warning("strata: the engine port did not close in time"),
            ok
    end.

schedule_truncate(#{log_truncate_ms := Ms}) ->
    erlang:send_after(Ms, self(), truncate_log).
