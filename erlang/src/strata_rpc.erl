%%% @doc The node-to-node request layer: everything that crosses nodes goes through here.
%%%
%%% Every call has a timeout (an integer; `infinity' is refused) and returns the server's
%%% reply, `{error, timeout}' when no reply came in time, or `{error, unavailable}' when the
%%% node or the service on it cannot be reached. A call never hangs and never raises. Late
%%% replies are dropped by the runtime (calls use process aliases), so they never pile up in
%%% the caller's mailbox.
%%%
%%% `{error, unavailable}' means the request was refused before the server handled it (no such
%%% process, node unreachable) or the connection broke while it was pending; the requests that
%%% use this layer today (membership, gossip, heartbeats) are idempotent, so either outcome is
%%% safe to act on.
%%%
%%% Servers receive calls as ordinary `gen_server' calls and answer with {@link reply/2}
%%% (returning `noreply'), so that the fault hook also applies to replies.
%%%
%%% == Fault hook (tests only) ==
%%%
%%% {@link set_fault/2} makes this node drop or delay what it sends to a chosen node: calls,
%%% casts and replies. A fault is one-way: set on node A for node B, it cuts A to B only. It is
%%% off by default; when off the cost is one `persistent_term' lookup per message. Delayed
%%% casts and replies are sent by a short-lived process per message.
-module(strata_rpc).

-export([call/4, cast/3, reply/2, set_fault/2, clear_faults/0, faults/0]).

-export_type([fault/0, from/0]).

-type fault() :: drop | {delay, non_neg_integer()}.
-type from() :: gen_server:from().

-define(FAULTS, {?MODULE, faults}).

%% @doc Calls the server registered as `Server' on `Node' and waits at most `Timeout' ms.
-spec call(node(), atom(), term(), non_neg_integer()) ->
          term() | {error, timeout} | {error, unavailable}.
call(Node, Server, Request, Timeout)
  when is_atom(Node), is_atom(Server), is_integer(Timeout), Timeout >= 0 ->
    case fault(Node) of
        none ->
            do_call(Node, Server, Request, Timeout);
        drop ->
            pause(Timeout),
            {error, timeout};
        {delay, Ms} when Ms >= Timeout ->
            pause(Timeout),
            {error, timeout};
        {delay, Ms} ->
            pause(Ms),
            do_call(Node, Server, Request, Timeout - Ms)
    end.

do_call(Node, Server, Request, Timeout) ->
    try
        gen_server:call({Server, Node}, Request, Timeout)
    catch
        exit:{timeout, _} -> {error, timeout};
        exit:{_Reason, {gen_server, call, _}} -> {error, unavailable}
    end.

%% @doc Sends `Msg' to the server registered as `Server' on `Node', without waiting.
-spec cast(node(), atom(), term()) -> ok.
cast(Node, Server, Msg) when is_atom(Node), is_atom(Server) ->
    Send = fun() -> gen_server:cast({Server, Node}, Msg) end,
    case fault(Node) of
        none -> Send();
        drop -> ok;
        {delay, Ms} -> later(Ms, Send)
    end.

%% @doc Answers a call received through {@link call/4}.
-spec reply(from(), term()) -> ok.
reply({Pid, _} = From, Reply) ->
    Send = fun() -> gen_server:reply(From, Reply), ok end,
    case fault(node(Pid)) of
        none -> Send();
        drop -> ok;
        {delay, Ms} -> later(Ms, Send)
    end.

%% @doc Test hook: from now on this node drops (`drop') or delays (`{delay, Ms}') every
%% message it sends to `To' through this module.
-spec set_fault(node(), fault()) -> ok.
set_fault(To, Fault) when is_atom(To), (Fault =:= drop orelse
                                        (is_tuple(Fault) andalso element(1, Fault) =:= delay
                                         andalso is_integer(element(2, Fault))
                                         andalso element(2, Fault) >= 0)) ->
    persistent_term:put(?FAULTS, maps:put(To, Fault, faults())).

%% @doc Test hook: removes every fault set on this node.
-spec clear_faults() -> ok.
clear_faults() ->
    _ = persistent_term:erase(?FAULTS),
    ok.

%% @doc The faults set on this node, by destination.
-spec faults() -> #{node() => fault()}.
faults() ->
    persistent_term:get(?FAULTS, #{}).

fault(To) ->
    case persistent_term:get(?FAULTS, none) of
        none -> none;
        Faults -> maps:get(To, Faults, none)
    end.

pause(Ms) ->
    receive after Ms -> ok end.

later(Ms, Send) ->
    _ = spawn(fun() -> pause(Ms), Send() end),
    ok.
