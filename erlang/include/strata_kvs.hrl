%%% Records of strata_kvs, the KVS surface of strata: the names and fields KVS users know.
%%%
%%% Include with `-include_lib("strata/erlang/include/strata_kvs.hrl")'; from Elixir,
%%% `Record.extract(:writer, from: ".../strata_kvs.hrl")'. Defaults are literals so that
%%% Elixir's Record.extract can read them.
-ifndef(STRATA_KVS_HRL).
-define(STRATA_KVS_HRL, true).

%% A schema: what a `metainfo/0' module returns.
-record(schema, {name = [] :: term(),
                 tables = [] :: [tuple()]}).

%% A table: records `{Name, Id, ...}' with `fields' (`record_info(fields, Name)'); `keys'
%% lists the fields that have an index (see strata_kvs:index/3). `container', `type',
%% `copy_type', `instance' and `mappings' are KVS' and accepted but not used: strata keeps
%% every table on disk, as a set keyed by the record's id (element 2).
-record(table, {name :: atom(),
                container = false :: term(),
                type = set :: term(),
                fields = [] :: [atom()],
                keys = [] :: [atom()],
                copy_type = disc_copies :: term(),
                instance = {} :: term(),
                mappings = [] :: term()}).

%% A feed's writer as strata_kvs:writer/1 reads it. `count' is the number of entries,
%% `cache' the newest entry's record and `first' the oldest's (`[]' when the feed is empty).
%% `args' is the argument of add/1 (the record to append) and, in what add/1 returns, the
%% record as appended. The writer is kept by strata_kvs: save/1 never overwrites its count,
%% cache or first.
-record(writer, {id = [] :: term(),
                 count = 0 :: non_neg_integer(),
                 cache = [] :: [] | tuple(),
                 args = [] :: term(),
                 first = [] :: [] | tuple()}).

%% A cursor over one feed. `feed' is the feed's id; `pos' the feed sequence number of the
%% cursor (the next entry to read); `cache' that entry's `{Table, Id}', `[]' when no entry is
%% there (past an end); `dir' 0 reads towards the newest (next), 1 towards the oldest (prev);
%% `count' the feed's count when the cursor was last placed; `args' the number of entries in
%% take/1 and drop/1 and the records read out of take/1, next/1 and prev/1. `id' names a
%% saved reader (assigned by save/1); `seek' is KVS' and unused.
-record(reader, {id = [] :: term(),
                 pos = 0 :: non_neg_integer(),
                 cache = [] :: [] | {term(), term()},
                 args = [] :: term(),
                 feed = [] :: term(),
                 seek = [] :: term(),
                 count = 0 :: non_neg_integer(),
                 dir = 0 :: 0 | 1}).

-endif.
