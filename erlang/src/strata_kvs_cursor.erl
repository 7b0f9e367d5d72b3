%%% @doc Cursors over feeds: KVS' `#reader{}' and the calls that move it.
%%%
%%% A cursor holds a feed sequence number (`pos'), the next entry to read, and reads by range
%%% scans of the feed's entries (strata_kvs_feed), never by following links: reading forward
%%% returns entries from `pos' up, backward from `pos' down. Sequence numbers are the feed's
%%% own, so a cursor cannot leave its feed: a read past either end returns `[]' and leaves the
%%% cursor where it was, and a forward cursor at the end reads later appends next. Entries
%%% are appended in sequence order and each append commits before the next one takes a
%%% number, so a cursor never passes a gap that fills later.
%%%
%%% `top' is the oldest end (`dir' 0, reading towards the newest), `bot' the newest (`dir' 1).
%%% Every read comes from one snapshot; nothing here writes.
-module(strata_kvs_cursor).

-include("../include/strata_kvs.hrl").

-export([reader/1, top/1, bot/1, next/1, prev/1, take/1, drop/1, feed/1, feed/2]).

%% @doc A new cursor on feed `F' at its oldest end (see {@link top/1}).
-spec reader(term()) -> #reader{}.
reader(F) ->
    top(#reader{feed = F}).

%% @doc Places the cursor at the oldest entry, reading towards the newest (`dir' 0).
-spec top(#reader{}) -> #reader{}.
top(#reader{} = R) ->
    place(R, 0).

%% @doc Places the cursor at the newest entry, reading towards the oldest (`dir' 1).
-spec bot(#reader{}) -> #reader{}.
bot(#reader{} = R) ->
    place(R, 1).

place(#reader{feed = F} = R, Dir) ->
    {Count, Pos, Cache} = strata_kvs_feed:ends(F, Dir),
    R#reader{count = Count, pos = Pos, cache = Cache, dir = Dir, args = []}.

ref(Rec) -> {element(1, Rec), element(2, Rec)}.

%% @doc Moves the cursor to the next newer entry; `args' is `[Record]' of that entry, or `[]'
%% (the cursor unchanged) when there is none.
-spec next(#reader{}) -> #reader{}.
next(#reader{feed = F, pos = Pos, cache = Cache} = R) ->
    From = case Cache of [] -> Pos; _ -> Pos + 1 end,
    step(R, strata_kvs_feed:entries(F, From, infinity, false, 1)).

%% @doc Moves the cursor to the next older entry; as {@link next/1}.
-spec prev(#reader{}) -> #reader{}.
prev(#reader{feed = F, pos = Pos, cache = Cache} = R) ->
    To = case Cache of [] -> Pos; _ -> Pos - 1 end,
    step(R, strata_kvs_feed:entries(F, 0, To, true, 1)).

step(R, [{Seq, Rec}]) ->
    R#reader{pos = Seq, cache = ref(Rec), args = [Rec]};
step(R, []) ->
    R#reader{args = []}.

%% @doc Reads `args' entries (all of them when negative) from the cursor in its direction
%% (`dir' 0 towards the newest, 1 towards the oldest), the cursor's own entry first; `args'
%% becomes their records and the cursor moves to the entry after the last one read. Past the
%% end, `args' is `[]' and the cursor stays. The page comes from one snapshot.
-spec take(#reader{}) -> #reader{}.
take(#reader{args = N} = R) when is_integer(N) ->
    read(R, N);
take(#reader{} = R) ->
    R#reader{args = []}.

%% @doc Moves the cursor as {@link take/1} would, without returning the records (`args'
%% becomes `[]').
-spec drop(#reader{}) -> #reader{}.
drop(#reader{args = N} = R) when is_integer(N), N > 0 ->
    (read(R, N))#reader{args = []};
drop(#reader{} = R) ->
    R#reader{args = []}.

read(#reader{} = R, 0) ->
    R#reader{args = []};
read(#reader{feed = F, pos = Pos, dir = Dir} = R, N) ->
    Want = case N < 0 of true -> infinity; false -> N + 1 end,
    Es = case Dir of
             1 -> strata_kvs_feed:entries(F, 0, Pos, true, Want);
             _ -> strata_kvs_feed:entries(F, Pos, infinity, false, Want)
         end,
    {Taken, Rest} = case N < 0 of
                        true -> {Es, []};
                        false -> split(N, Es)
                    end,
    {Pos1, Cache} = case {Rest, Taken} of
                        {[{S, Rec} | _], _} -> {S, ref(Rec)};
                        {[], []} -> {Pos, R#reader.cache};
                        {[], _} when Dir =:= 1 -> {element(1, lists:last(Taken)) - 1, []};
                        {[], _} -> {element(1, lists:last(Taken)) + 1, []}
                    end,
    R#reader{pos = Pos1, cache = Cache, args = [Rec || {_, Rec} <- Taken]}.

split(N, Es) when length(Es) =< N -> {Es, []};
split(N, Es) -> lists:split(N, Es).

%% @doc Every record of feed `F', oldest first, from one snapshot. Only `F' itself: see
%% {@link feed/2} for its sub-feeds.
-spec feed(term()) -> [tuple()].
feed(F) ->
    %% Start at the oldest entry: no live entry is ever below it, and the tombstones of
    %% removed ones below it need not be scanned.
    {_Count, Oldest, _} = strata_kvs_feed:ends(F, 0),
    [Rec || {_, Rec} <- strata_kvs_feed:entries(F, Oldest, infinity, false, infinity)].

%% @doc {@link feed/1}; with `#{subfeeds => true}' followed by the records of each of its
%% sub-feeds (see strata_kvs_feed:subfeeds/1), feed by feed in id order.
-spec feed(term(), #{subfeeds => boolean()}) -> [tuple()].
feed(F, #{subfeeds := true}) ->
    feed(F) ++ lists:append([feed(S) || S <- strata_kvs_feed:subfeeds(F)]);
feed(F, #{}) ->
    feed(F).
