%%% @doc The NIF library: thin adapters over the Rust core (native/strata_nif).
%%%
%%% Calls without a `_dirty' suffix run on normal schedulers and never block: when they would
%%% have to wait (data not in cache, a busy partition, a write stall, a full queue) they return
%%% `would_block' and the caller repeats the call through its `_dirty' twin, which runs on a
%%% dirty IO scheduler. Use {@link strata_store}, which does this; these functions are its
%%% building blocks.
-module(strata_nif).

-export([open/2, close/1, partition_of/2, info/1,
         get/2, get_dirty/2, read/3, read_dirty/3, snapshot/1, release_snapshot/1,
         put/3, put_dirty/3, delete/2, delete_dirty/2, commit/4, commit_dirty/4, commit_sync/5, commit_sync_dirty/5,
         scan/3, scan_dirty/3,
         log_since/4, last_seq/2, truncate_log/2, backup/2,
         encode_key/1, decode_key/1,
         meta_get/2, meta_put/3,
         ring_partition/2, ring_hash/1, ring_claim/4]).

-on_load(load/0).

-export_type([store/0, snapshot/0, bound/0, read/0, write/0, page/0]).

-type store() :: reference().
-type snapshot() :: reference().
-type bound() :: unbounded | {incl, term()} | {excl, term()} | {'after' | before, binary()}.
-type write() :: {put, term(), term()} | {delete, term()}
               | {put_encoded, binary(), term()} | {delete_encoded, binary()}.
%% A read a commit validates: a key, or a key as {@link read/3} answered it (`DataKey'), with
%% the key itself last, for the caller's conflict report.
-type read() :: {term(), non_neg_integer()} | {encoded, binary(), non_neg_integer(), term()}.
%% One scan page: bounds, direction, limit, the partition to read (or all), keys or values only.
-type page() :: {bound(), bound(), boolean(), non_neg_integer(), non_neg_integer() | undefined,
                 boolean()}.
-type error() :: {error, term()}.

-define(NOT_LOADED, erlang:nif_error({not_loaded, ?MODULE})).

load() ->
    Dir = case code:priv_dir(strata) of
              {error, bad_name} ->
                  filename:join(filename:dirname(filename:dirname(code:which(?MODULE))), "priv");
              D -> D
          end,
    erlang:load_nif(filename:join(Dir, "libstrata_nif"), 0).

%% @doc Opens (creating if needed) a store in `Path'. Options: `partitions',
%% `block_cache_bytes', `write_buffer_bytes'.
-spec open(binary(), map()) -> {ok, store()} | error().
open(_Path, _Opts) -> ?NOT_LOADED.

%% @doc Closes the store; later calls on it answer `{error, closed}'.
-spec close(store()) -> ok.
close(_Store) -> ?NOT_LOADED.

%% @doc The partition a key belongs to.
-spec partition_of(store(), term()) -> non_neg_integer() | error().
partition_of(_Store, _Key) -> ?NOT_LOADED.

%% @doc The partition count and engine statistics.
-spec info(store()) -> [{atom(), non_neg_integer()}] | error().
info(_Store) -> ?NOT_LOADED.

%% @doc Reads a key from memory only.
-spec get(store(), term()) -> {ok, term()} | would_block | error().
get(_Store, _Key) -> ?NOT_LOADED.

%% @doc Reads a key, from disk if needed.
-spec get_dirty(store(), term()) -> {ok, term()} | error().
get_dirty(_Store, _Key) -> ?NOT_LOADED.

%% @doc Reads a key and its version as of a snapshot (or of now, given `latest'), from memory
%% only, with the key as stored (`DataKey'): a commit takes it in `{encoded, DataKey, Version,
%% Key}' reads and `put_encoded'/`delete_encoded' writes instead of encoding the key again.
-spec read(store(), snapshot() | latest, term()) ->
          {ok, term(), non_neg_integer(), binary()} | {not_found, non_neg_integer(), binary()}
          | would_block | error().
read(_Store, _Snap, _Key) -> ?NOT_LOADED.

%% @doc {@link read/3}, from disk if needed.
-spec read_dirty(store(), snapshot() | latest, term()) ->
          {ok, term(), non_neg_integer(), binary()} | {not_found, non_neg_integer(), binary()}
          | error().
read_dirty(_Store, _Snap, _Key) -> ?NOT_LOADED.

%% @doc A consistent read view of the store.
-spec snapshot(store()) -> snapshot() | error().
snapshot(_Store) -> ?NOT_LOADED.

%% @doc Releases a snapshot now rather than when the garbage collector frees it; reads through
%% it then answer `{error, no_snapshot}'.
-spec release_snapshot(snapshot()) -> ok.
release_snapshot(_Snap) -> ?NOT_LOADED.

%% @doc Stores one value (async durability), without waiting: `ok' when done, `{queued, Tag}'
%% when another write was in progress; whoever applies it then sends `{strata_commit, Tag,
%% Result}', Result being `ok', `{error, Reason}' or `would_block' (nothing written).
-spec put(store(), term(), term()) -> ok | {queued, reference()} | would_block | error().
put(_Store, _Key, _Value) -> ?NOT_LOADED.

%% @doc {@link put/3} in the caller, waiting for its turn, locks and write stalls.
-spec put_dirty(store(), term(), term()) -> ok | error().
put_dirty(_Store, _Key, _Value) -> ?NOT_LOADED.

%% @doc Deletes one key (async durability), without waiting; as {@link put/3}.
-spec delete(store(), term()) -> ok | {queued, reference()} | would_block | error().
delete(_Store, _Key) -> ?NOT_LOADED.

%% @doc {@link delete/2} in the caller, waiting for its turn, locks and write stalls.
-spec delete_dirty(store(), term()) -> ok | error().
delete_dirty(_Store, _Key) -> ?NOT_LOADED.

%% @doc Validates read versions and applies writes atomically (async durability), without
%% waiting; as {@link put/3}. `Snap' is the snapshot every read came from, or `latest' when
%% they did not come from one snapshot: with a snapshot, reads of keys nobody wrote since
%% are valid without being looked up again.
-spec commit(store(), snapshot() | latest, [read()], [write()]) ->
          ok | {queued, reference()} | would_block | error().
commit(_Store, _Snap, _Reads, _Writes) -> ?NOT_LOADED.

%% @doc {@link commit/4} in the caller, waiting for its turn, locks and write stalls.
-spec commit_dirty(store(), snapshot() | latest, [read()], [write()]) ->
          ok | error().
commit_dirty(_Store, _Snap, _Reads, _Writes) -> ?NOT_LOADED.

%% @doc Queues a commit for the group-commit writer (sync durability); the outcome arrives as
%% `{strata_commit, Tag, ok | {error, Reason}}'. `Snap' as in {@link commit/4}.
-spec commit_sync(store(), snapshot() | latest, [read()], [write()],
                  term()) ->
          ok | would_block | error().
commit_sync(_Store, _Snap, _Reads, _Writes, _Tag) -> ?NOT_LOADED.

%% @doc {@link commit_sync/5}, waiting for room in the queue.
-spec commit_sync_dirty(store(), snapshot() | latest, [read()], [write()],
                        term()) ->
          ok | error().
commit_sync_dirty(_Store, _Snap, _Reads, _Writes, _Tag) -> ?NOT_LOADED.

%% @doc One page of a scan over a snapshot, from memory only: `{Key, Value}' items, or only
%% the values when the request's `Keys' is false (the keys are then not decoded at all).
-spec scan(store(), snapshot(), page()) ->
          {ok, [{term(), term()}] | [term()], done | binary()} | would_block | error().
scan(_Store, _Snap, _Page) -> ?NOT_LOADED.

%% @doc One page of a scan over a snapshot, from disk if needed.
-spec scan_dirty(store(), snapshot(), page()) ->
          {ok, [{term(), term()}] | [term()], done | binary()} | error().
scan_dirty(_Store, _Snap, _Page) -> ?NOT_LOADED.

%% @doc Up to `Limit' writes of a partition after sequence `After', from its commit log.
-spec log_since(store(), non_neg_integer(), non_neg_integer(), non_neg_integer()) ->
          {ok, [{pos_integer(), term(), put | delete}]} | error().
log_since(_Store, _Partition, _After, _Limit) -> ?NOT_LOADED.

%% @doc The last sequence number of a partition.
-spec last_seq(store(), non_neg_integer()) -> non_neg_integer() | error().
last_seq(_Store, _Partition) -> ?NOT_LOADED.

%% @doc Truncates the commit log of each partition to its last `Keep' writes (a log entry
%% holding one of them is kept whole).
-spec truncate_log(store(), pos_integer()) -> {ok, non_neg_integer()} | error().
truncate_log(_Store, _Keep) -> ?NOT_LOADED.

%% @doc Writes a checkpoint of the store into a new directory.
-spec backup(store(), binary()) -> ok | error().
backup(_Store, _Dir) -> ?NOT_LOADED.

%% @doc The order-preserving encoding of a term.
-spec encode_key(term()) -> {ok, binary()} | error().
encode_key(_Key) -> ?NOT_LOADED.

%% @doc The term an encoding came from.
-spec decode_key(binary()) -> {ok, term()} | error().
decode_key(_Bin) -> ?NOT_LOADED.

%% @doc A record of the layers above from the meta column family.
-spec meta_get(store(), binary()) -> {ok, binary()} | not_found | error().
meta_get(_Store, _Name) -> ?NOT_LOADED.

%% @doc Replaces a record in the meta column family, durably (fsynced before it returns).
-spec meta_put(store(), binary(), binary()) -> ok | error().
meta_put(_Store, _Name, _Value) -> ?NOT_LOADED.

%% @doc The partition of a key (of its hash tag when it has one) in a ring of `Partitions'.
-spec ring_partition(term(), pos_integer()) -> non_neg_integer() | error().
ring_partition(_Key, _Partitions) -> ?NOT_LOADED.

%% @doc The ring's 64-bit hash of a binary: FNV-1a 64 then the murmur3 fmix64 finalizer.
-spec ring_hash(binary()) -> non_neg_integer().
ring_hash(_Bin) -> ?NOT_LOADED.

%% @doc Claims a ring: a preference list of distinct node names per partition, primary first,
%% for `Members' (`[{Name, Zone}]', binaries), keeping what it can of `Previous'.
-spec ring_claim([{binary(), binary()}], pos_integer(), pos_integer(), undefined | [[binary()]]) ->
          {ok, [[binary()]]} | {error, {ring, binary()}} | error().
ring_claim(_Members, _Partitions, _NVal, _Previous) -> ?NOT_LOADED.
