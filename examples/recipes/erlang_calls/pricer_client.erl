%% Recipe, the Erlang side (see pricer.cpp beside it): a supervisor whose child is the coppice
%% node's pricer, called with gen_server:call for latency-sensitive work.
%%
%%   pricer_client:main('pricer@host')
%%
%% needs coppice_child (engine/erlang/coppice_child.erl) loaded. It prints what it measured and
%% halts with 0 when every step held.
-module(pricer_client).
-behaviour(supervisor).
-export([main/1, init/1]).

init(Node) ->
    Child = #{id => pricer,
              start => {coppice_child, start_link, [Node, pricer, #{discount_percent => 10}]},
              restart => permanent, shutdown => 5000},
    {ok, {#{strategy => one_for_one, intensity => 3, period => 5}, [Child]}}.

main(Node) ->
    {ok, Sup} = supervisor:start_link(?MODULE, Node),
    [{pricer, Pid, worker, _}] = supervisor:which_children(Sup),
    {ok, 540} = gen_server:call(Pid, {price, 3, 200}),   % 600 less 10%
    %% The hot loop: 10,000 calls, each a round trip to the coppice node.
    N = 10000,
    {Us, ok} = timer:tc(fun() -> loop(Pid, N) end),
    io:format("pricer_client: ~b calls, ~.1f us each~n", [N, Us / N]),
    %% The server crashes: the caller gets an exit, the supervisor a new child.
    {'EXIT', {{error, _Type, _What}, _}} = (catch gen_server:call(Pid, crash)),
    NewPid = wait_restart(Sup, Pid, 100),
    %% Called by name, as a client that never kept the pid would.
    {ok, 450} = gen_server:call({pricer, Node}, {price, 5, 100}),
    io:format("pricer_client: restarted ~p -> ~p, called by name after the restart~n", [Pid, NewPid]),
    ok = supervisor:terminate_child(Sup, pricer),
    {pricer_node, Node} ! stop,
    io:format("pricer_client: ok~n"),
    halt(0).

loop(_, 0) -> ok;
loop(Pid, N) ->
    {ok, _} = gen_server:call(Pid, {price, N, 7}),
    loop(Pid, N - 1).

%% The supervisor has the restarted child once which_children shows another pid.
wait_restart(_, _, 0) -> exit(no_restart);
wait_restart(Sup, Old, Tries) ->
    case supervisor:which_children(Sup) of
        [{pricer, New, worker, _}] when is_pid(New), New =/= Old -> New;
        _ -> receive after 20 -> wait_restart(Sup, Old, Tries - 1) end
    end.
