%% The Erlang/OTP peer: BENCHMARKS.md's workloads W1-W7 as Erlang would naturally write them.
%%
%% One workload per VM: `erl -noshell -pa build/peers/erlang -run coppice_peer main NAME`
%% (bench/peers/erlang/run does this, one fresh OS process each). The workload runs in a fresh
%% process (the benchmark process); main prints one JSON line on standard output, with the
%% figures or with the reason the run failed its own check, then halts (status 0 or 1).
%% Progress goes to standard error.
-module(coppice_peer).

-export([main/1, workloads/0]).

-define(MILLION, 1000000).

workloads() ->
    ["W1_spawn_idle_1m", "W2_dynsup_1m", "W3_restart_latency", "W3b_restart_one_for_all_100",
     "W4_skynet_1m", "W5_ping_pong/workers:1", "W5_ping_pong/workers:2", "W6_fan_in",
     "W7_pairs_throughput"].

main([Name]) ->
    quiet_logger_to_stderr(),
    Parent = self(),
    {Pid, Ref} = spawn_monitor(fun() -> Parent ! {self(), result, run(Name)} end),
    Result = receive
                 {Pid, result, R} -> R;
                 {'DOWN', Ref, process, Pid, Reason} ->
                     {error, io_lib:format("the benchmark process died: ~0p", [Reason])}
             end,
    Line = json_line(Name, Result),
    io:put_chars(standard_io, [Line, $\n]),
    erlang:halt(case Result of {ok, _, _} -> 0; _ -> 1 end);
main(Args) ->
    io:format(standard_error, "usage: coppice_peer main WORKLOAD (got ~p)~n", [Args]),
    erlang:halt(2).

%% The default logger handler writes to standard_io; the contract keeps standard output for the
%% JSON lines, so it is moved to standard error.
quiet_logger_to_stderr() ->
    Config = case logger:get_handler_config(default) of
                 {ok, C} -> C;
                 _ -> #{}
             end,
    _ = logger:remove_handler(default),
    ok = logger:add_handler(default, logger_std_h,
                            #{config => #{type => standard_error},
                              formatter => maps:get(formatter, Config, {logger_formatter, #{}})}).

%% Each returns {ok, Counters, Label} or {error, Reason}.
run(Name) ->
    try
        case Name of
            "W1_spawn_idle_1m" -> w1_spawn_idle();
            "W2_dynsup_1m" -> w2_dynsup();
            "W3_restart_latency" -> w3_restart(one_for_one, 1, 10000);
            "W3b_restart_one_for_all_100" -> w3_restart(one_for_all, 100, 1000);
            "W4_skynet_1m" -> w4_skynet();
            "W5_ping_pong/workers:1" -> w5_ping_pong(1);
            "W5_ping_pong/workers:2" -> w5_ping_pong(2);
            "W6_fan_in" -> w6_fan_in();
            "W7_pairs_throughput" -> w7_pairs();
            _ -> {error, "unknown workload " ++ Name}
        end
    catch
        Class:Reason:Stack ->
            {error, io_lib:format("~p:~0p at ~0p", [Class, Reason, Stack])}
    end.

%% ---- helpers ----------------------------------------------------------------------------

now_ns() -> erlang:monotonic_time(nanosecond).

ms(From, To) -> (To - From) / 1.0e6.

%% VmRSS of this OS process, in bytes (from /proc/<pid>/status).
rss() ->
    {ok, Status} = file:read_file("/proc/" ++ os:getpid() ++ "/status"),
    {match, [Kb]} = re:run(Status, "VmRSS:\\s+([0-9]+) kB", [{capture, all_but_first, list}]),
    list_to_integer(Kb) * 1024.

progress(Fmt, Args) -> io:format(standard_error, "erlang: " ++ Fmt ++ "~n", Args).

%% Waits until the VM runs no more than Count processes (polled every millisecond, as
%% coppice's W1 polls its process count); gives up after Limit ms.
wait_process_count(Count, Limit) ->
    Deadline = erlang:monotonic_time(millisecond) + Limit,
    wait_process_count_until(Count, Deadline).

wait_process_count_until(Count, Deadline) ->
    case erlang:system_info(process_count) of
        N when N =< Count -> ok;
        N ->
            case erlang:monotonic_time(millisecond) > Deadline of
                true -> {left, N - Count};
                false ->
                    receive after 1 -> ok end,
                    wait_process_count_until(Count, Deadline)
            end
    end.

%% ---- W1 spawn_idle_1m -------------------------------------------------------------------

w1_spawn_idle() ->
    N = ?MILLION,
    Self = self(),
    Base = erlang:system_info(process_count),
    %% The pid list is the benchmark's bookkeeping, not the processes' cost, as the other
    %% runtimes' drivers leave their lists out: the driver's own growth (its heap, which holds
    %% the list) is taken off the resident delta.
    {memory, DriverBefore} = process_info(Self, memory),
    Before = rss(),
    T0 = now_ns(),
    Pids = spawn_idle(N, Self, []),
    Acks = count_acks(N, 0),
    T1 = now_ns(),
    After = rss(),
    {memory, DriverAfter} = process_info(Self, memory),
    progress("W1: ~b processes acknowledged in ~.1f ms", [Acks, ms(T0, T1)]),
    T2 = now_ns(),
    lists:foreach(fun(P) -> P ! stop end, Pids),
    Gone = wait_process_count(Base, 60000),
    T3 = now_ns(),
    case {Acks, Gone} of
        {N, ok} ->
            {ok, [{spawn_ms, ms(T0, T1)}, {stop_ms, ms(T2, T3)}, {bytes_per_process, (After - Before - (DriverAfter - DriverBefore)) / N}],
             "spawn/1 of a fun; stop: a message each, all gone when process_count is back"};
        {N, {left, Left}} -> {error, io_lib:format("spawn_idle: ~b processes left 60 s after the stop", [Left])};
        _ -> {error, io_lib:format("spawn_idle: ~b acknowledgements, not ~b", [Acks, N])}
    end.

spawn_idle(0, _, Acc) -> Acc;
spawn_idle(K, Driver, Acc) ->
    P = spawn(fun() -> Driver ! ack, receive stop -> ok end end),
    spawn_idle(K - 1, Driver, [P | Acc]).

count_acks(N, N) -> N;
count_acks(N, Got) ->
    receive ack -> count_acks(N, Got + 1)
    after 60000 -> Got
    end.

%% ---- W2 dynsup_1m -----------------------------------------------------------------------

w2_dynsup() ->
    N = ?MILLION,
    Base = erlang:system_info(process_count),
    {ok, Sup} = supervisor:start_link(coppice_peer_sup, simple),
    Before = rss(),
    T0 = now_ns(),
    Started = start_children(Sup, N),
    T1 = now_ns(),
    After = rss(),
    case Started of
        ok ->
            progress("W2: ~b children started in ~.1f ms, ~.1f bytes each; shutting down",
                     [N, ms(T0, T1), (After - Before) / N]),
            unlink(Sup),
            T2 = now_ns(),
            ok = gen_server:stop(Sup, shutdown, infinity),
            T3 = now_ns(),
            case wait_process_count(Base, 10000) of
                ok ->
                    {ok, [{start_ms, ms(T0, T1)}, {shutdown_ms, ms(T2, T3)}, {bytes_per_child, (After - Before) / N}],
                     "simple_one_for_one supervisor, gen_server children"};
                {left, Left} -> {error, io_lib:format("dynsup: ~b processes left after the shutdown", [Left])}
            end;
        {error, Reason} ->
            {error, io_lib:format("dynsup: start_child failed: ~0p", [Reason])}
    end.

start_children(_, 0) -> ok;
start_children(Sup, K) ->
    case supervisor:start_child(Sup, []) of
        {ok, _} -> start_children(Sup, K - 1);
        Other -> {error, Other}
    end.

%% ---- W3 restart_latency, W3b restart_one_for_all_100 --------------------------------------

w3_restart(Strategy, Children, Rounds) ->
    %% As BENCHMARKS.md says: the logger off (a report per restart would inflate the figures).
    ok = logger:set_primary_config(level, none),
    {ok, Sup} = supervisor:start_link(coppice_peer_sup, {Strategy, Children, self()}),
    case collect_ready(Children, erlang:make_tuple(Children, undefined)) of
        {ok, Pids} ->
            Result = restart_rounds(0, Rounds, Children, Pids, []),
            unlink(Sup),
            ok = gen_server:stop(Sup, shutdown, infinity),
            case Result of
                {ok, Us} ->
                    Label = case Strategy of
                                one_for_one -> "supervisor one_for_one, a gen_server child registered by name, logger off";
                                one_for_all -> "supervisor one_for_all, 100 gen_server children, logger off"
                            end,
                    write_samples(Children, lists:reverse(Us)),
                    {ok, percentiles(Us), Label};
                Error -> Error
            end;
        Error -> Error
    end.

%% When PEER_LATENCY_SAMPLES_DIR names a directory, every sample (µs, one per line, in the order
%% measured) goes to <dir>/<workload>.txt, as coppice's W3 writes its own: tools/plot draws the
%% distributions side by side.
write_samples(Children, Us) ->
    case os:getenv("PEER_LATENCY_SAMPLES_DIR") of
        false -> ok;
        "" -> ok;
        Dir ->
            Name = case Children of 1 -> "W3_restart_latency"; _ -> "W3b_restart_one_for_all_100" end,
            Lines = [io_lib:format("~.3f~n", [U]) || U <- Us],
            case file:write_file(filename:join(Dir, Name ++ ".txt"), Lines) of
                ok -> ok;
                {error, Why} -> io:format(standard_error, "erlang: cannot write samples to ~s: ~p~n", [Dir, Why])
            end
    end.

restart_rounds(Rounds, Rounds, _, _, Us) -> {ok, Us};
restart_rounds(Round, Rounds, Children, Pids, Us) ->
    Victim = element(Round rem Children + 1, Pids),
    T0 = now_ns(),
    exit(Victim, kill),
    case collect_ready(Children, Pids) of
        {ok, NewPids} ->
            T1 = now_ns(),
            case element(Round rem Children + 1, NewPids) of
                Victim -> {error, io_lib:format("restart: round ~b: the killed child was not replaced", [Round])};
                _ -> restart_rounds(Round + 1, Rounds, Children, NewPids, [(T1 - T0) / 1000.0 | Us])
            end;
        {error, Why} -> {error, io_lib:format("restart: round ~b: ~s", [Round, Why])}
    end.

%% Waits for K children's init reports ({ready, Pid, Index}); Pids is a tuple by index.
collect_ready(0, Pids) -> {ok, Pids};
collect_ready(K, Pids) ->
    receive
        {ready, Pid, Index} -> collect_ready(K - 1, setelement(Index + 1, Pids, Pid))
    after 10000 -> {error, io_lib:format("~b children did not report within 10 s", [K])}
    end.

percentiles(Us) ->
    Sorted = list_to_tuple(lists:sort(Us)),
    N = tuple_size(Sorted),
    At = fun(Q) -> element(min(N - 1, trunc(Q * N)) + 1, Sorted) end,
    [{p50_us, At(0.50)}, {p90_us, At(0.90)}, {p99_us, At(0.99)}, {p999_us, At(0.999)}, {max_us, element(N, Sorted)}].

%% ---- W4 skynet_1m -----------------------------------------------------------------------

w4_skynet() ->
    Expected = 499999500000,
    T0 = now_ns(),
    Sum = skynet_children(self(), 0, ?MILLION),
    T1 = now_ns(),
    case Sum of
        Expected -> {ok, [{wall_ms, ms(T0, T1)}], "spawn/1 of a fun per node"};
        _ -> {error, io_lib:format("skynet: the root got ~b, not ~b", [Sum, Expected])}
    end.

skynet(Parent, Num, 1) -> Parent ! Num;
skynet(Parent, Num, Size) -> Parent ! skynet_children(self(), Num, Size).

%% Spawns the ten children of a node of Size leaves starting at Num, returns their sum.
skynet_children(Self, Num, Size) ->
    Child = Size div 10,
    spawn_skynet(0, Self, Num, Child),
    sum_replies(10, 0).

spawn_skynet(10, _, _, _) -> ok;
spawn_skynet(I, Self, Num, Child) ->
    First = Num + I * Child,
    spawn(fun() -> skynet(Self, First, Child) end),
    spawn_skynet(I + 1, Self, Num, Child).

sum_replies(0, Sum) -> Sum;
sum_replies(K, Sum) -> receive N -> sum_replies(K - 1, Sum + N) end.

%% ---- W5 ping_pong -----------------------------------------------------------------------

w5_ping_pong(Workers) ->
    RoundTrips = ?MILLION,
    case {Workers, erlang:system_info(schedulers_online)} of
        {1, Online} when Online =/= 1 ->
            {error, io_lib:format("ping_pong: ~b schedulers online, not 1 (+S 1:1)", [Online])};
        {_, Online} ->
            Ponger = spawn(fun ponger/0),
            T0 = now_ns(),
            ok = ping(Ponger, RoundTrips),
            T1 = now_ns(),
            Ponger ! stop,
            Label = case Workers of
                        1 -> "+S 1:1";
                        _ -> io_lib:format("VM defaults: ~b schedulers", [Online])
                    end,
            {ok, [{ns_per_round_trip, (T1 - T0) / RoundTrips}], Label}
    end.

ping(_, 0) -> ok;
ping(Ponger, K) ->
    Ponger ! {ping, self()},
    receive pong -> ping(Ponger, K - 1) end.

ponger() ->
    receive
        {ping, From} -> From ! pong, ponger();
        stop -> ok
    end.

%% ---- W6 fan_in --------------------------------------------------------------------------

w6_fan_in() ->
    Senders = 1000,
    PerSender = 10000,
    Messages = Senders * PerSender,
    Expected = PerSender * (Senders * (Senders - 1) div 2),
    Self = self(),
    T0 = now_ns(),
    lists:foreach(fun(I) -> spawn(fun() -> send_n(Self, I, PerSender) end) end, lists:seq(0, Senders - 1)),
    Sum = count_in(Messages, 0),
    T1 = now_ns(),
    case Sum of
        Expected ->
            Ms = ms(T0, T1),
            {ok, [{msgs_per_s, Messages / (Ms / 1000)}, {wall_ms, Ms}], "each message its sender's number"};
        _ -> {error, io_lib:format("fan_in: the messages' numbers sum to ~p, not ~b", [Sum, Expected])}
    end.

send_n(_, _, 0) -> ok;
send_n(To, I, K) -> To ! I, send_n(To, I, K - 1).

count_in(0, Sum) -> Sum;
count_in(K, Sum) ->
    receive N -> count_in(K - 1, Sum + N)
    after 60000 -> {missing, K}
    end.

%% ---- W7 pairs_throughput ----------------------------------------------------------------

w7_pairs() ->
    Pairs = 1000,
    PerPair = 10000,
    Self = self(),
    T0 = now_ns(),
    lists:foreach(fun(_) -> spawn(fun() -> pair(Self, PerPair) end) end, lists:seq(1, Pairs)),
    Total = count_done(Pairs, 0),
    T1 = now_ns(),
    Expected = Pairs * PerPair,
    case Total of
        Expected ->
            Ms = ms(T0, T1),
            {ok, [{round_trips_per_s, Expected / (Ms / 1000)}, {wall_ms, Ms}], ""};
        _ -> {error, io_lib:format("pairs: ~p round trips, not ~b", [Total, Expected])}
    end.

%% One side of a pair: spawns its partner, plays its round trips, tells the driver.
pair(Driver, PerPair) ->
    Ponger = spawn(fun ponger/0),
    ok = ping(Ponger, PerPair),
    Driver ! {done, PerPair},
    Ponger ! stop.

count_done(0, Total) -> Total;
count_done(K, Total) ->
    receive {done, N} -> count_done(K - 1, Total + N)
    after 60000 -> {missing_pairs, K, Total}
    end.

%% ---- the JSON line ----------------------------------------------------------------------

json_line(Name, {ok, Counters, Label}) ->
    Cs = lists:join(", ", [[json_string(atom_to_list(K)), ": ", json_number(V)] || {K, V} <- Counters]),
    ["{\"peer\": \"erlang\", \"workload\": ", json_string(Name), ", \"counters\": {", Cs, "}",
     case Label of "" -> ""; _ -> [", \"label\": ", json_string(Label)] end, "}"];
json_line(Name, {error, Reason}) ->
    ["{\"peer\": \"erlang\", \"workload\": ", json_string(Name), ", \"error\": ",
     json_string(lists:flatten(io_lib:format("~s", [Reason]))), "}"].

json_number(V) when is_integer(V) -> integer_to_list(V);
json_number(V) when is_float(V) -> float_to_list(V, [{decimals, 3}, compact]).

json_string(S) -> [$", [json_char(C) || C <- unicode:characters_to_list(S)], $"].

json_char($") -> "\\\"";
json_char($\\) -> "\\\\";
json_char($\n) -> "\\n";
json_char(C) when C < 32 -> io_lib:format("\\u~4.16.0b", [C]);
json_char(C) -> unicode:characters_to_binary([C]).
