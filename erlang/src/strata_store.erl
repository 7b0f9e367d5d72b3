%%% @doc The engine: the owner of the node's store and the interface everything above uses.
%%%
%%% Two engines run the same Rust core, chosen by `{engine, nif | port}' in the application
%%% environment: the NIF inside the VM (the default, fastest), or the port program
%%% ({@link strata_port}) in its own OS process, whose crash costs the calls in flight and a
%%% restart instead of the VM. The functions of this module run in the caller and look the
%%% engine up in `persistent_term' (`{nif, Store, Config}' or `{port, Handle, Config}'), so
%%% nothing above this module knows which runs and the NIF path pays one tuple match for it.
%%%
%%% In NIF mode one process (this module's gen_server) owns the open store: it opens it at
%%% start, publishes the handle, truncates the commit log to its configured tail now and then,
%%% and closes the store when it stops. Each call tries the non-blocking NIF first and repeats
%%% it on a dirty scheduler when the NIF answers `would_block'. In port mode {@link strata_port}
%%% is the owner.
%%%
%%% Snapshots: a NIF snapshot is a resource, released by {@link release/1} or when the garbage
%%% collector frees it; a port snapshot is an id in the port program, released by
%%% {@link release/1} or when the process that took it exits. Take a snapshot in the process
%%% that uses it.
-module(strata_store).
-behaviour(gen_server).

-export([start_link/1, handle/0, config/0, engine/0]).
-export([get/1, put/4, delete/3, get_versioned/2, read/2, snapshot/0, release/1, commit/4, commit/5, scan/2,
         partition_of/1, log_since/3, last_seq/1, backup/1, info/0, meta_get/1, meta_put/2]).
-export([publish/3, unpublish/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-export_type([durability/0, config/0, engine/0, snapshot/0]).

-type durability() :: async | sync.
-type engine() :: nif | port.
-type config() :: #{data_dir := string(),
                    engine := engine(),
                    partitions := pos_integer(),
                    block_cache_bytes := pos_integer(),
                    write_buffer_bytes := pos_integer(),
                    durability := durability(),
                    log_keep := pos_integer(),
                    log_truncate_ms := pos_integer(),
                    cluster_name := binary(),
                    zone := binary(),
                    n_val := pos_integer(),
                    gossip_ms := pos_integer(),
                    heartbeat_ms := pos_integer()}.
-type snapshot() :: strata_nif:snapshot() | strata_port:snapshot().

-define(HANDLE, {?MODULE, handle}).

%% @doc Starts the owner of the engine `Config' names, which opens the store.
-spec start_link(config()) -> {ok, pid()} | {error, term()}.
start_link(#{engine := port} = Config) ->
    strata_port:start_link(Config);
start_link(Config) ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, Config, []).

%% @doc The open store (a NIF resource or a port handle), or `{error, not_started}'.
-spec handle() -> strata_nif:store() | strata_port:handle() | {error, not_started}.
handle() ->
    case persistent_term:get(?HANDLE, undefined) of
        undefined -> {error, not_started};
        {_Engine, Store, _Config} -> Store
    end.

%% @doc The configuration the store was opened with.
-spec config() -> config() | {error, not_started}.
config() ->
    case persistent_term:get(?HANDLE, undefined) of
        undefined -> {error, not_started};
        {_Engine, _Store, Config} -> Config
    end.

%% @doc The engine that runs: `nif' or `port'.
-spec engine() -> engine() | {error, not_started}.
engine() ->
    case persistent_term:get(?HANDLE, undefined) of
        undefined -> {error, not_started};
        {Engine, _Store, _Config} -> Engine
    end.

%% @private Called by the owner of an engine once its store is open.
-spec publish(engine(), strata_nif:store() | strata_port:handle(), config()) -> ok.
publish(Engine, Store, Config) ->
    persistent_term:put(?HANDLE, {Engine, Store, Config}).

%% @private Called by the owner of an engine when it stops.
-spec unpublish() -> ok.
unpublish() ->
    _ = persistent_term:erase(?HANDLE),
    ok.

%% @doc Reads the current value of a key.
-spec get(term()) -> {ok, term()} | {error, term()}.
get(Key) ->
    case persistent_term:get(?HANDLE, undefined) of
        {nif, S, _} ->
            case strata_nif:get(S, Key) of
                would_block -> strata_nif:get_dirty(S, Key);
                Reply -> Reply
            end;
        {port, P, _} ->
            strata_port:get(P, Key);
        undefined ->
            {error, not_started}
    end.

%% @doc Stores one value, durable as asked; see {@link commit/4} for sync timeouts.
-spec put(term(), term(), durability(), timeout()) -> ok | {error, term()}.
put(Key, Value, async, Timeout) ->
    case persistent_term:get(?HANDLE, undefined) of
        {nif, S, _} ->
            case strata_nif:put(S, Key, Value) of
                ok -> ok;
                Reply -> async_write(Reply, Timeout, fun() -> strata_nif:put_dirty(S, Key, Value) end)
            end;
        {port, P, _} ->
            strata_port:put(P, Key, Value, async, Timeout);
        undefined ->
            {error, not_started}
    end;
put(Key, Value, sync, Timeout) ->
    commit([], [{put, Key, Value}], sync, Timeout).

%% @doc Deletes one key, durable as asked.
-spec delete(term(), durability(), timeout()) -> ok | {error, term()}.
delete(Key, async, Timeout) ->
    case persistent_term:get(?HANDLE, undefined) of
        {nif, S, _} ->
            case strata_nif:delete(S, Key) of
                ok -> ok;
                Reply -> async_write(Reply, Timeout, fun() -> strata_nif:delete_dirty(S, Key) end)
            end;
        {port, P, _} ->
            strata_port:delete(P, Key, async, Timeout);
        undefined ->
            {error, not_started}
    end;
delete(Key, sync, Timeout) ->
    commit([], [{delete, Key}], sync, Timeout).

%% @doc Reads a key and its version as of a snapshot (or of now, given `latest').
-spec get_versioned(snapshot() | latest, term()) ->
          {ok, term(), non_neg_integer()} | {not_found, non_neg_integer()} | {error, term()}.
get_versioned(Snap, Key) ->
    case read(Snap, Key) of
        {ok, V, Vsn, _} -> {ok, V, Vsn};
        {not_found, Vsn, _} -> {not_found, Vsn};
        {error, _} = Error -> Error
    end.

%% @doc {@link get_versioned/2} for a transaction: it also answers the key as a commit takes
%% it, `DataKey' (with the NIF: `{encoded, DataKey, Version, Key}' reads and `put_encoded' or
%% `delete_encoded' writes spare the commit encoding the key again), or `none' (with the port,
%% whose commits take keys).
-spec read(snapshot() | latest, term()) ->
          {ok, term(), non_neg_integer(), binary() | none}
          | {not_found, non_neg_integer(), binary() | none} | {error, term()}.
read(Snap, Key) ->
    case persistent_term:get(?HANDLE, undefined) of
        {nif, S, _} ->
            case strata_nif:read(S, Snap, Key) of
                would_block -> strata_nif:read_dirty(S, Snap, Key);
                Reply -> Reply
            end;
        {port, P, _} ->
            case strata_port:get_versioned(P, Snap, Key) of
                {ok, V, Vsn} -> {ok, V, Vsn, none};
                {not_found, Vsn} -> {not_found, Vsn, none};
                Error -> Error
            end;
        undefined ->
            {error, not_started}
    end.

%% @doc A consistent read view of the whole store, owned by the calling process: release it
%% with {@link release/1} when done (in port mode it is released at the latest when the
%% process exits; at most 4096 are open at once).
-spec snapshot() -> {ok, snapshot()} | {error, term()}.
snapshot() ->
    case persistent_term:get(?HANDLE, undefined) of
        {nif, S, _} ->
            case strata_nif:snapshot(S) of
                {error, _} = E -> E;
                Snap -> {ok, Snap}
            end;
        {port, P, _} ->
            strata_port:snapshot(P);
        undefined ->
            {error, not_started}
    end.

%% @doc Releases a snapshot now (without it, the garbage collector frees a NIF snapshot, and a
%% port snapshot lives until its process exits); in port mode without waiting for the port
%% program. Reads through it afterwards answer `{error, no_snapshot}'.
-spec release(snapshot()) -> ok.
release(Snap) when is_reference(Snap) ->
    strata_nif:release_snapshot(Snap);
release(Snap) ->
    strata_port:release(Snap).

%% @doc Applies writes atomically if every read still has the version it was read at.
%% `{error, {conflict, Keys}}' lists the keys whose versions changed; nothing is written then.
%% A sync commit waits at most `Timeout' ms for its fsync, and an async one that another
%% commit made wait (queued for the caller holding the engine's write gate, or for the writer
%% thread) at most `Timeout' ms for its turn; `{error, timeout}' means its outcome is unknown.
%% With the NIF the late outcome then arrives in the caller's mailbox as `{strata_commit, Tag,
%% Result}' (the engine cannot know the caller stopped waiting); with the port it is
%% dropped. In port mode `{error, engine_down}' also means the outcome is unknown: the port
%% died while the commit was in flight.
-spec commit([strata_nif:read()], [strata_nif:write()], durability(), timeout()) ->
          ok | {error, term()}.
commit(Reads, Writes, Durability, Timeout) ->
    commit(latest, Reads, Writes, Durability, Timeout).

%% @doc {@link commit/4} of reads that all came from snapshot `Snap' (`latest': they did not
%% come from one snapshot). The NIF then takes reads of keys nobody wrote since the snapshot
%% as valid without looking them up again; the port engine looks every read up.
-spec commit(snapshot() | latest, [strata_nif:read()], [strata_nif:write()],
             durability(), timeout()) ->
          ok | {error, term()}.
commit(Snap, Reads, Writes, async, Timeout) ->
    case persistent_term:get(?HANDLE, undefined) of
        {nif, S, _} ->
            case strata_nif:commit(S, Snap, Reads, Writes) of
                ok ->
                    ok;
                Reply ->
                    Dirty = fun() -> strata_nif:commit_dirty(S, Snap, Reads, Writes) end,
                    conflict_keys(async_write(Reply, Timeout, Dirty), Reads)
            end;
        {port, P, _} ->
            conflict_keys(strata_port:commit(P, Reads, Writes, async, Timeout), Reads);
        undefined ->
            {error, not_started}
    end;
commit(Snap, Reads, Writes, sync, Timeout) ->
    with(fun(S) ->
                 Tag = make_ref(),
                 Queued = case strata_nif:commit_sync(S, Snap, Reads, Writes, Tag) of
                              would_block ->
                                  strata_nif:commit_sync_dirty(S, Snap, Reads, Writes, Tag);
                              R -> R
                          end,
                 case Queued of
                     ok -> conflict_keys(await(Tag, Timeout), Reads);
                     Error -> Error
                 end
         end,
         fun(P) -> conflict_keys(strata_port:commit(P, Reads, Writes, sync, Timeout), Reads) end).

%% The outcome of a queued commit, sent by whoever applies it.
await(Tag, Timeout) ->
    receive
        {strata_commit, Tag, Reply} -> Reply
    after Timeout ->
            {error, timeout}
    end.

%% The outcome of an async write the NIF answered without waiting: done, or queued (then
%% awaited), or declined. `would_block', from the NIF or as a queued outcome, means nothing
%% was written, and `Dirty' repeats the write on a dirty scheduler, where it may wait.
async_write({queued, Tag}, Timeout, Dirty) ->
    case await(Tag, Timeout) of
        would_block -> Dirty();
        Reply -> Reply
    end;
async_write(would_block, _Timeout, Dirty) ->
    Dirty();
async_write(Reply, _Timeout, _Dirty) ->
    Reply.

conflict_keys({error, {conflict, Indexes}}, Reads) ->
    {error, {conflict, [read_key(lists:nth(I + 1, Reads)) || I <- Indexes]}};
conflict_keys(Reply, _Reads) ->
    Reply.

read_key({Key, _Version}) -> Key;
read_key({encoded, _DataKey, _Version, Key}) -> Key.

%% @doc One page of a scan over a snapshot: `{Key, Value}' items, or with `Keys' false only
%% the values (the NIF then skips decoding the keys).
-spec scan(snapshot(), strata_nif:page()) ->
          {ok, [{term(), term()}] | [term()], done | binary()} | {error, term()}.
scan(Snap, {Lo, Hi, Reverse, Limit, Partition, Keys} = Page) ->
    with(fun(S) ->
                 case strata_nif:scan(S, Snap, Page) of
                     would_block -> strata_nif:scan_dirty(S, Snap, Page);
                     Reply -> Reply
                 end
         end,
         fun(P) ->
                 case strata_port:scan(P, Snap, Lo, Hi, Reverse, Limit, Partition) of
                     {ok, Items, Next} when not Keys -> {ok, [V || {_, V} <- Items], Next};
                     Reply -> Reply
                 end
         end).

%% @doc The partition a key belongs to.
-spec partition_of(term()) -> non_neg_integer() | {error, term()}.
partition_of(Key) ->
    with(fun(S) -> strata_nif:partition_of(S, Key) end,
         fun(P) -> strata_port:partition_of(P, Key) end).

%% @doc The writes of a partition after a sequence number, from its commit log, oldest first:
%% one `{Seq, Key, put | delete}' per sequence number (a commit's writes to one partition
%% share a log entry and take consecutive sequence numbers).
-spec log_since(non_neg_integer(), non_neg_integer(), pos_integer()) ->
          {ok, [{pos_integer(), term(), put | delete}]} | {error, term()}.
log_since(Partition, After, Limit) ->
    with(fun(S) -> strata_nif:log_since(S, Partition, After, Limit) end,
         fun(P) -> strata_port:log_since(P, Partition, After, Limit) end).

%% @doc The last sequence number of a partition.
-spec last_seq(non_neg_integer()) -> non_neg_integer() | {error, term()}.
last_seq(Partition) ->
    with(fun(S) -> strata_nif:last_seq(S, Partition) end,
         fun(P) -> strata_port:last_seq(P, Partition) end).

%% @doc Writes a consistent checkpoint of the store into `Dir', which must not exist.
-spec backup(file:filename()) -> ok | {error, term()}.
backup(Dir) ->
    with(fun(S) -> strata_nif:backup(S, path(Dir)) end,
         fun(P) -> strata_port:backup(P, path(Dir)) end).

%% @doc Engine statistics.
-spec info() -> #{atom() => term()} | {error, term()}.
info() ->
    Pairs = with(fun strata_nif:info/1, fun strata_port:info/1),
    case Pairs of
        {error, _} = E -> E;
        _ -> maps:from_list(Pairs)
    end.

%% @doc A record of the layers above (the cluster membership) kept in the meta column family.
-spec meta_get(binary()) -> {ok, binary()} | not_found | {error, term()}.
meta_get(Name) ->
    with(fun(S) -> strata_nif:meta_get(S, Name) end,
         fun(P) -> strata_port:meta_get(P, Name) end).

%% @doc Replaces a record in the meta column family, durably: it is on disk when `ok' returns.
-spec meta_put(binary(), binary()) -> ok | {error, term()}.
meta_put(Name, Value) ->
    with(fun(S) -> strata_nif:meta_put(S, Name, Value) end,
         fun(P) -> strata_port:meta_put(P, Name, Value) end).

path(Dir) ->
    unicode:characters_to_binary(filename:absname(Dir)).

with(Nif, Port) ->
    case persistent_term:get(?HANDLE, undefined) of
        {nif, S, _} -> Nif(S);
        {port, P, _} -> Port(P);
        undefined -> {error, not_started}
    end.

%%% gen_server: owns the open store.

%% @private
init(#{data_dir := Dir} = Config) ->
    process_flag(trap_exit, true),
    Opts = maps:with([partitions, block_cache_bytes, write_buffer_bytes], Config),
    case filelib:ensure_dir(filename:join(Dir, "x")) of
        ok ->
            case strata_nif:open(path(Dir), Opts) of
                {ok, Store} ->
                    publish(nif, Store, Config),
                    schedule_truncate(Config),
                    logger:info("strata: store open in ~ts", [Dir]),
                    {ok, #{store => Store, config => Config}};
                {error, Reason} ->
                    {stop, {open_failed, Dir, Reason}}
            end;
        {error, Reason} ->
            {stop, {open_failed, Dir, {file, Reason}}}
    end.

%% @private
handle_call(Request, _From, State) ->
    {reply, {error, {unknown_call, Request}}, State}.

%% @private
handle_cast(Request, State) ->
    logger:warning("strata_store: unexpected cast ~p", [Request]),
    {noreply, State}.

%% @private
handle_info(truncate_log, #{store := Store, config := #{log_keep := Keep} = Config} = State) ->
    case strata_nif:truncate_log(Store, Keep) of
        {ok, _} -> ok;
        {error, Reason} -> logger:error("strata: log truncation failed: ~p", [Reason])
    end,
    schedule_truncate(Config),
    {noreply, State};
handle_info(Info, State) ->
    logger:warning("strata_store: unexpected message ~p", [Info]),
    {noreply, State}.

%% @private
terminate(_Reason, #{store := Store}) ->
    unpublish(),
    strata_nif:close(Store).

schedule_truncate(#{log_truncate_ms := Ms}) ->
    erlang:send_after(Ms, self(), truncate_log).
