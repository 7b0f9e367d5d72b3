%%% @doc The strata application: reads and checks the configuration, then starts the
%%% supervision tree.
-module(strata_app).
-behaviour(application).

-export([start/2, stop/1, config/0]).

%% @private
start(_Type, _Args) ->
    case config() of
        {ok, Config} -> strata_sup:start_link(Config);
        {error, _} = Error -> Error
    end.

%% @private
stop(_State) ->
    ok.

%% @doc The store configuration from the application environment, with defaults applied, or
%% `{error, {bad_config, Key, Value}}'.
-spec config() -> {ok, strata_store:config()} | {error, {bad_config, atom(), term()}}.
config() ->
    Env = application:get_all_env(strata),
    Get = fun(K, Default) -> proplists:get_value(K, Env, Default) end,
    DataDir = case Get(data_dir, default) of
                  default -> filename:join("strata_data", atom_to_list(node()));
                  D -> D
              end,
    Checks = [{data_dir, DataDir, fun(V) -> io_lib:char_list(V) orelse is_binary(V) end},
              {partitions, Get(partitions, 64),
               fun(V) -> is_integer(V) andalso V >= 2 andalso V =< 4096
                             andalso V band (V - 1) =:= 0 end},
              {engine, Get(engine, nif), fun(V) -> V =:= nif orelse V =:= port end},
              {durability, Get(durability, async), fun(V) -> V =:= async orelse V =:= sync end},
              {block_cache_mb, Get(block_cache_mb, 256), fun pos_int/1},
              {write_buffer_mb, Get(write_buffer_mb, 64), fun pos_int/1},
              {log_keep, Get(log_keep, 100000), fun pos_int/1},
              {log_truncate_ms, Get(log_truncate_ms, 60000), fun pos_int/1},
              {cluster_name, Get(cluster_name, <<"strata">>), fun name/1},
              {zone, Get(zone, <<>>), fun(V) -> V =:= <<>> orelse V =:= "" orelse name(V) end},
              {n_val, Get(n_val, 3), fun(V) -> is_integer(V) andalso V >= 1 andalso V =< 255 end},
              {gossip_ms, Get(gossip_ms, 1000), fun pos_int/1},
              {heartbeat_ms, Get(heartbeat_ms, 500), fun pos_int/1}],
    case [{bad_config, K, V} || {K, V, Ok} <- Checks, not Ok(V)] of
        [Bad | _] ->
            {error, Bad};
        [] ->
            #{data_dir := Dir, block_cache_mb := Cache, write_buffer_mb := Buffer,
              cluster_name := Name, zone := Zone} = Values =
                maps:from_list([{K, V} || {K, V, _} <- Checks]),
            {ok, (maps:without([block_cache_mb, write_buffer_mb], Values))#{
                   data_dir => unicode:characters_to_list(Dir),
                   cluster_name => unicode:characters_to_binary(Name),
                   zone => unicode:characters_to_binary(Zone),
                   block_cache_bytes => Cache * 1024 * 1024,
                   write_buffer_bytes => Buffer * 1024 * 1024}}
    end.

pos_int(V) -> is_integer(V) andalso V > 0.

name(V) ->
    (is_binary(V) orelse io_lib:char_list(V)) andalso
        case unicode:characters_to_binary(V) of
            B when is_binary(B) -> byte_size(B) >= 1 andalso byte_size(B) =< 255;
            _ -> false
        end.
