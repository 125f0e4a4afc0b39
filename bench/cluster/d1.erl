%% D1 node_ping_pong (../shared/BENCHMARKS.md), the Erlang side: the server every client measures
%% against, and the Erlang client that is the BEAM pair's figure (tools/bench_cluster.py).
-module(d1).
-export([server/0, client/3]).

%% Registered as d1_echo: {From, N} is answered {pong, N}; {sink, From, M} takes M messages and
%% answers {sunk, M}; {blast, To, M} sends To M messages, then blast_done.
server() ->
    register(d1_echo, self()),
    loop().

loop() ->
    receive
        {From, N} when is_pid(From) -> From ! {pong, N};
        {sink, From, M} -> sink(M), From ! {sunk, M};
        {blast, To, M} -> blast(To, M), To ! blast_done;
        _ -> ok
    end,
    loop().

sink(0) -> ok;
sink(M) -> receive {m, _} -> sink(M - 1) end.

blast(_, 0) -> ok;
blast(To, M) -> To ! {m, M}, blast(To, M - 1).

%% From another Erlang node: K round trips, M messages one way each way; prints one line of JSON
%% (as coppice_node_bench does) and halts.
client(Server, K, M) ->
    Echo = {d1_echo, Server},
    up(Echo, 150),
    {RtUs, ok} = timer:tc(fun() -> round_trips(Echo, K) end),
    {OutUs, _} = timer:tc(fun() -> Echo ! {sink, self(), M}, send_m(Echo, M), receive {sunk, M} -> ok end end),
    {InUs, _} = timer:tc(fun() -> Echo ! {blast, self(), M}, take_m(M), receive blast_done -> ok end end),
    io:format("{\"rt_ns\": ~.1f, \"out_msgs_per_s\": ~.1f, \"in_msgs_per_s\": ~.1f}~n",
              [RtUs * 1000 / K, M * 1.0e6 / OutUs, M * 1.0e6 / InUs]),
    halt(0).

%% The first ping connects, and d1_echo may not be registered yet: asked again until it answers.
up(_, 0) -> halt(1);
up(Echo, Tries) ->
    Echo ! {self(), 0},
    receive {pong, 0} -> flush() after 200 -> up(Echo, Tries - 1) end.

flush() -> receive {pong, 0} -> flush() after 50 -> ok end.

round_trips(_, 0) -> ok;
round_trips(Echo, K) ->
    Echo ! {self(), K},
    receive {pong, K} -> round_trips(Echo, K - 1) end.

send_m(_, 0) -> ok;
send_m(Echo, M) -> Echo ! {m, M}, send_m(Echo, M - 1).

take_m(0) -> ok;
take_m(M) -> receive {m, _} -> take_m(M - 1) end.
