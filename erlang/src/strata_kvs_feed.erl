%%% @doc Feeds of strata_kvs: append-ordered lists of records with a writer and cursors.
%%%
%%% Layout. Everything of feed `F' is hash-tagged with `{'$kvs_feed', F}', so it lives in one
%%% partition: an append is a single-partition transaction and a page is a single-partition
%%% scan.
%%% <pre>
%%%   {'$tag', {'$kvs_feed', F}, w}          the writer state   #kvs_writer{}
%%%   {'$tag', {'$kvs_feed', F}, {e, Seq}}   an entry           #kvs_entry{}
%%%   {'$tag', {'$kvs_feed', F}, {i, Id}}    id index           Seq
%%%   {'$kvs_feeds', F}                      feed directory     [] (written when F is created)
%%% </pre>
%%% `Seq' is the feed's own sequence: 1, 2, 3... in commit order, never reused (the writer
%%% keeps the last one issued even when entries are removed). So entries are kept in append
%%% order by the key order itself, a page is a range scan, and feed ids are just terms:
%%% `<<"luck">>' and `<<"lucky">>' are different tags and never mix; `/' means nothing.
%%% Each entry carries a `prev' link, the sequence number of the entry before it; the entry
%%% after it (KVS' `next') is the next one in key order. So an append writes only its own
%%% entry, and every link change (a remove relinks the entry after the removed one) is
%%% written in the transaction that causes it.
%%%
%%% Every write here is one strata transaction that reads the writer: an append writes the
%%% entry, its id index and the writer (count, last sequence, oldest and newest entry); a
%%% remove deletes the entry and its id, relinks the entry after it and writes the writer.
%%% Two appenders anywhere (two processes, later two nodes) conflict on the writer and one of
%%% them retries: there is no feed state outside the store.
%%%
%%% Cursors over these entries are in strata_kvs_cursor.
-module(strata_kvs_feed).

-include("../include/strata_kvs.hrl").

-export([append/2, append_now/2, add/1, remove/2, cut/1,
         writer/1, lookup_writer/1, save_writer/1, subfeeds/1, entry/2, check/1]).
-export([ends/2, entries/5, scan_all/4, scan_values/4]).

-record(kvs_entry, {seq :: pos_integer(),
                    prev = [] :: [] | pos_integer(),
                    rec :: tuple()}).
%% `oldest' and `newest' are sequence numbers, `[]' in an empty feed.
-record(kvs_writer, {count = 0 :: non_neg_integer(),
                     last = 0 :: non_neg_integer(),
                     newest = [] :: [] | pos_integer(),
                     oldest = [] :: [] | pos_integer()}).

-define(RETRIES, 100).
-define(PAGE, 1000).
-define(CUT_BATCH, 500).

%%% Keys

tag(F) -> {'$kvs_feed', F}.
wkey(F) -> strata:tag(tag(F), w).
ekey(F, Seq) -> strata:tag(tag(F), {e, Seq}).
ikey(F, Id) -> strata:tag(tag(F), {i, Id}).
dkey(F) -> {'$kvs_feeds', F}.

tx(Fun) ->
    strata:transaction(Fun, #{retries => ?RETRIES}).

%%% Appends

%% @doc Appends records to feed `F' in order; one result per record: its id, or an error.
%% Concurrent appenders to one feed on this node are combined (see strata_kvs_lane).
-spec append(term(), [tuple()]) -> [term() | {error, term()}] | {error, term()}.
append(F, Recs) ->
    case [R || R <- Recs, not (is_tuple(R) andalso tuple_size(R) >= 2)] of
        [Bad | _] -> {error, {bad_record, Bad}};
        [] -> strata_kvs_lane:append(F, Recs)
    end.

%% @doc Appends in one transaction, in the calling process (joining its transaction if it is
%% in one). An id already in the feed has its record replaced in place (its position and the
%% count do not change), as KVS' rocks layer does. A record whose id is `[]' gets the entry's
%% sequence number as its id.
-spec append_now(term(), [tuple()]) -> [term() | {error, term()}] | {error, term()}.
append_now(F, Recs) ->
    case tx(fun() -> append_tx(F, Recs) end) of
        {ok, {Results, _W}} -> Results;
        {error, _} = Error -> Error
    end.

append_tx(F, Recs) ->
    W0 = case strata:get(wkey(F)) of
             {ok, #kvs_writer{} = W} ->
                 W;
             {error, not_found} ->
                 ok = strata:put(dkey(F), []),
                 #kvs_writer{}
         end,
    {Results, W1} = lists:mapfoldl(fun(R, W) -> append_one(F, R, W) end, W0, Recs),
    ok = strata:put(wkey(F), W1),
    {Results, W1}.

append_one(F, Rec, #kvs_writer{last = Last} = W) ->
    case element(2, Rec) of
        [] ->
            auto_id(F, Rec, Last + 1, W);
        Id ->
            case strata:get(ikey(F, Id)) of
                {ok, Seq} -> {Id, replace(F, Seq, Rec, W)};
                {error, not_found} -> {Id, push(F, Last + 1, Id, Rec, W)}
            end
    end.

%% A record without an id gets its entry's sequence number; a number some explicit id took
%% already is skipped.
auto_id(F, Rec, Seq, W) ->
    case strata:get(ikey(F, Seq)) of
        {ok, _} -> auto_id(F, Rec, Seq + 1, W);
        {error, not_found} -> {Seq, push(F, Seq, Seq, setelement(2, Rec, Seq), W)}
    end.

push(F, Seq, Id, Rec, #kvs_writer{count = C, newest = Newest, oldest = Oldest} = W) ->
    ok = strata:put(ekey(F, Seq), #kvs_entry{seq = Seq, prev = Newest, rec = Rec}),
    ok = strata:put(ikey(F, Id), Seq),
    W#kvs_writer{count = C + 1, last = Seq, newest = Seq,
                 oldest = case Oldest of [] -> Seq; _ -> Oldest end}.

replace(F, Seq, Rec, W) ->
    ok = strata:put(ekey(F, Seq), (read_entry(F, Seq))#kvs_entry{rec = Rec}),
    W.

%% @doc KVS' add/1: appends `args' to the writer's feed and returns the writer as read right
%% after the append (so it may show later appends of others too), with `args' the record as
%% appended (its id filled in when it was `[]').
-spec add(#writer{}) -> #writer{} | {error, term()}.
add(#writer{id = F, args = Rec}) ->
    case append(F, [Rec]) of
        [{error, _} = Error] ->
            Error;
        [Id] ->
            case tx(fun() -> writer_view(F) end) of
                {ok, W} ->
                    Appended = case element(2, Rec) of
                                   [] -> setelement(2, Rec, Id);
                                   _ -> Rec
                               end,
                    W#writer{args = Appended};
                {error, _} = Error ->
                    Error
            end;
        {error, _} = Error ->
            Error
    end.

%%% Removes

%% @doc Removes the entry with the id of `Rec' from feed `F' and returns the feed's count
%% after it. `Rec' is a record (its element 2 is the id), or an id that is not a tuple; pass
%% a record for a tuple id. Removing an id that is not in the feed changes nothing.
-spec remove(term(), term()) -> non_neg_integer() | {error, term()}.
remove(Rec, F) ->
    Id = case Rec of
             _ when is_tuple(Rec), tuple_size(Rec) >= 2 -> element(2, Rec);
             _ -> Rec
         end,
    case tx(fun() -> remove_tx(F, Id) end) of
        {ok, Count} -> Count;
        {error, _} = Error -> Error
    end.

remove_tx(F, Id) ->
    case strata:get(wkey(F)) of
        {error, not_found} ->
            0;
        {ok, W} ->
            case strata:get(ikey(F, Id)) of
                {error, not_found} ->
                    W#kvs_writer.count;
                {ok, Seq} ->
                    ok = strata:delete(ikey(F, Id)),
                    W1 = unlink(F, read_entry(F, Seq), W),
                    ok = strata:put(wkey(F), W1),
                    W1#kvs_writer.count
            end
    end.

%% Deletes entry E and links the entry after it to the one before it.
unlink(F, #kvs_entry{seq = Seq, prev = Prev}, #kvs_writer{count = C, newest = Newest} = W) ->
    ok = strata:delete(ekey(F, Seq)),
    Next = case Newest of
               Seq ->
                   [];
               _ ->
                   %% The scan reads the transaction's snapshot, where the writer shows an
                   %% entry after Seq. This transaction has not written or deleted it
                   %% (removals go oldest first), and any later change to the feed changes
                   %% the writer this transaction read, so its commit would fail.
                   [{N, _}] = entries(F, Seq + 1, infinity, false, 1),
                   ok = strata:put(ekey(F, N), (read_entry(F, N))#kvs_entry{prev = Prev}),
                   N
           end,
    W#kvs_writer{count = C - 1,
                 oldest = case W#kvs_writer.oldest of Seq -> Next; Oldest -> Oldest end,
                 newest = case Next of [] -> Prev; _ -> Newest end}.

%% An entry as the transaction sees it.
read_entry(F, Seq) ->
    {ok, #kvs_entry{} = E} = strata:get(ekey(F, Seq)),
    E.

%% @doc Removes every entry of feed `F' appended before the call, oldest first, a batch per
%% transaction (each leaves a consistent feed); entries appended meanwhile stay. Returns the
%% number removed. The writer stays, with its sequence: ids and positions are never reused.
-spec cut(term()) -> {ok, non_neg_integer()} | {error, term()}.
cut(F) ->
    case strata:get(wkey(F)) of
        {error, not_found} -> {ok, 0};
        {ok, #kvs_writer{last = UpTo}} -> cut(F, UpTo, 0);
        {error, _} = Error -> Error
    end.

cut(F, UpTo, Removed) ->
    case tx(fun() -> cut_tx(F, UpTo) end) of
        {ok, 0} -> {ok, Removed};
        {ok, N} -> cut(F, UpTo, Removed + N);
        {error, _} = Error -> Error
    end.

cut_tx(F, UpTo) ->
    {ok, W} = strata:get(wkey(F)),
    case cut_oldest(F, UpTo, ?CUT_BATCH, W, 0) of
        {_, 0} -> 0;
        {W1, N} -> ok = strata:put(wkey(F), W1), N
    end.

cut_oldest(F, UpTo, Left, #kvs_writer{oldest = Seq} = W, N)
  when Left > 0, Seq =/= [], Seq =< UpTo ->
    #kvs_entry{rec = Rec} = E = read_entry(F, Seq),
    ok = strata:delete(ikey(F, element(2, Rec))),
    cut_oldest(F, UpTo, Left - 1, unlink(F, E, W), N + 1);
cut_oldest(_F, _UpTo, _Left, W, N) ->
    {W, N}.

%%% Writers

%% @doc The writer of feed `F' (count 0 and no entries when the feed does not exist).
-spec writer(term()) -> #writer{}.
writer(F) ->
    case lookup_writer(F) of
        {ok, W} -> W;
        {error, not_found} -> #writer{id = F};
        {error, Reason} -> error({strata_kvs, Reason})
    end.

%% @doc The writer of feed `F', or `{error, not_found}' when the feed does not exist.
-spec lookup_writer(term()) -> {ok, #writer{}} | {error, term()}.
lookup_writer(F) ->
    case tx(fun() -> writer_view(F) end) of
        {ok, #writer{} = W} -> {ok, W};
        {ok, none} -> {error, not_found};
        {error, _} = Error -> Error
    end.

writer_view(F) ->
    case strata:get(wkey(F)) of
        {error, not_found} ->
            none;
        {ok, #kvs_writer{count = C, newest = Newest, oldest = Oldest}} ->
            #writer{id = F, count = C,
                    cache = case Newest of [] -> []; _ -> (read_entry(F, Newest))#kvs_entry.rec end,
                    first = case Oldest of [] -> []; _ -> (read_entry(F, Oldest))#kvs_entry.rec end}
    end.

%% @doc save/1 of a writer: creates the feed if it does not exist and returns its writer. The
%% count, cache and first of the argument are ignored: they belong to the store.
-spec save_writer(#writer{}) -> #writer{} | {error, term()}.
save_writer(#writer{id = F}) ->
    Create = fun() ->
                     ok = case strata:get(wkey(F)) of
                              {ok, _} ->
                                  ok;
                              {error, not_found} ->
                                  ok = strata:put(dkey(F), []),
                                  strata:put(wkey(F), #kvs_writer{})
                          end,
                     writer_view(F)
             end,
    case tx(Create) of
        {ok, W} -> W;
        {error, _} = Error -> Error
    end.

%%% Reads for cursors (strata_kvs_cursor)

%% @doc Where a cursor placed at one end of feed `F' stands: `{Count, Pos, Cache}' with the
%% oldest (`Dir' 0) or newest (`Dir' 1) entry's sequence number and `{Table, Id}', or, in an
%% empty feed, the sequence number the next append will take and `[]'.
-spec ends(term(), 0 | 1) -> {non_neg_integer(), non_neg_integer(), [] | {term(), term()}}.
ends(F, Dir) ->
    Place = fun() ->
                    case strata:get(wkey(F)) of
                        {error, not_found} ->
                            {0, 1, []};
                        {ok, #kvs_writer{count = C, last = Last, newest = Newest, oldest = Oldest}} ->
                            case {Dir, Newest} of
                                {_, []} -> {C, Last + 1, []};
                                {0, _} -> {C, Oldest, ref(read_entry(F, Oldest))};
                                {1, _} -> {C, Newest, ref(read_entry(F, Newest))}
                            end
                    end
            end,
    case tx(Place) of
        {ok, Ends} -> Ends;
        {error, Reason} -> error({strata_kvs, Reason})
    end.

ref(#kvs_entry{rec = Rec}) -> {element(1, Rec), element(2, Rec)}.

%% @doc The ids of the feeds under `F': for a binary or string id, the feeds whose id starts
%% with `F' followed by `/' (`<<"a/b">>' and `<<"a/b/c">>' are under `<<"a">>', `<<"ab">>' is
%% not). Other ids have no sub-feeds.
-spec subfeeds(term()) -> [term()].
subfeeds(F) when is_binary(F) ->
    subfeeds(<<F/binary, "/">>, <<F/binary, "0">>,
             fun(S) -> binary:longest_common_prefix([S, <<F/binary, "/">>]) =:= byte_size(F) + 1 end);
subfeeds(F) when is_list(F) ->
    subfeeds(F ++ "/", F ++ "0", fun(S) -> lists:prefix(F ++ "/", S) end);
subfeeds(_F) ->
    [].

subfeeds(Lo, Hi, Under) ->
    [S || {{'$kvs_feeds', S}, _} <- scan_all(dkey(Lo), dkey(Hi), infinity, false),
          is_list(S) orelse is_binary(S), Under(S)].

%% @doc The record with id `Id' in feed `F'.
-spec entry(term(), term()) -> {ok, tuple()} | {error, not_found}.
entry(F, Id) ->
    Read = fun() ->
                   case strata:get(ikey(F, Id)) of
                       {ok, Seq} -> {ok, (read_entry(F, Seq))#kvs_entry.rec};
                       {error, not_found} = NotFound -> NotFound
                   end
           end,
    case tx(Read) of
        {ok, Result} -> Result;
        {error, _} = Error -> Error
    end.

%% @doc The entries of feed `F' with sequence numbers in `[Lo, Hi]' (`Hi' may be `infinity'),
%% ascending or, with `Reverse', descending, at most `Max' (or `infinity') of them, from one
%% snapshot, as `{Seq, Record}'.
-spec entries(term(), integer(), integer() | infinity, boolean(), pos_integer() | infinity) ->
          [{pos_integer(), tuple()}].
entries(F, Lo, Hi, Reverse, Max) ->
    To = case Hi of infinity -> ekey(F, infinity); _ -> ekey(F, Hi + 1) end,
    [{Seq, Rec} || #kvs_entry{seq = Seq, rec = Rec} <- scan_values(ekey(F, max(Lo, 0)), To, Max, Reverse)].

%% @private A range scan of up to Max items, paging through strata's continuations. Pages may come
%% back short (deleted keys count against a page's budget), so only `done' or Max ends it.
-spec scan_all(term(), term(), pos_integer() | infinity, boolean()) -> [{term(), term()}].
scan_all(From, To, Max, Reverse) ->
    scan(From, To, Max, #{reverse => Reverse}).

%% @private {@link scan_all/4} returning only the values.
-spec scan_values(term(), term(), pos_integer() | infinity, boolean()) -> [term()].
scan_values(From, To, Max, Reverse) ->
    scan(From, To, Max, #{reverse => Reverse, keys => false}).

scan(From, To, Max, Opts) ->
    case strata:scan(From, To, Opts#{limit => page_limit(Max)}) of
        {ok, Items, Cont} -> scan_more(Items, Cont, Max, []);
        {error, Reason} -> error({strata_kvs, Reason})
    end.

scan_more(Items, Cont, Max, Acc) ->
    Acc1 = lists:reverse(Items, Acc),
    Left = case Max of infinity -> infinity; _ -> Max - length(Items) end,
    case Cont of
        done -> lists:reverse(Acc1);
        _ when Left =/= infinity, Left =< 0 -> strata:scan_close(Cont), lists:reverse(Acc1);
        _ ->
            case strata:scan(Cont) of
                {ok, More, Cont1} -> scan_more(More, Cont1, Left, Acc1);
                {error, Reason} -> error({strata_kvs, Reason})
            end
    end.

page_limit(infinity) -> ?PAGE;
page_limit(Max) -> max(1, min(Max, ?PAGE)).

%%% Integrity

%% @doc Checks feed `F' against its invariants, from one snapshot: the count equals the
%% entries; each entry's `prev' link is the entry before it (`[]' for the first); the writer's
%% oldest and newest are the first and last entries and its last sequence is at least the
%% newest; the id index maps exactly the entries' ids. Returns `ok' or `{error, Problems}'.
-spec check(term()) -> ok | {error, [term()]}.
check(F) ->
    Items = scan_all(strata:tag(tag(F), 0), strata:tag(tag(F), {z, z, z}), infinity, false),
    W = case [V || {{'$tag', _, w}, V} <- Items] of
            [V] -> V;
            [] -> #kvs_writer{}
        end,
    Es = [E || {{'$tag', _, {e, _}}, E} <- Items],
    Ids = lists:sort([{Id, Seq} || {{'$tag', _, {i, Id}}, Seq} <- Items]),
    Seqs = [S || #kvs_entry{seq = S} <- Es],
    Problems =
        [{count, W#kvs_writer.count, length(Es)} || W#kvs_writer.count =/= length(Es)]
        ++ links(Es)
        ++ [{oldest, W#kvs_writer.oldest} || W#kvs_writer.oldest =/= first(Seqs)]
        ++ [{newest, W#kvs_writer.newest} || W#kvs_writer.newest =/= last(Seqs)]
        ++ [{last, W#kvs_writer.last} || Seqs =/= [], W#kvs_writer.last < lists:last(Seqs)]
        ++ [{ids, Ids} || Ids =/= lists:sort([{element(2, R), S} || #kvs_entry{seq = S, rec = R} <- Es])],
    case Problems of
        [] -> ok;
        _ -> {error, Problems}
    end.

links(Es) ->
    {Problems, _} = lists:mapfoldl(fun(#kvs_entry{seq = S, prev = P} = E, Before) ->
                                           {[{link, E} || P =/= Before], S}
                                   end, [], Es),
    lists:append(Problems).

first([]) -> [];
first([S | _]) -> S.

last([]) -> [];
last(L) -> lists:last(L).
