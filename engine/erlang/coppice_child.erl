%% The start function of an Erlang supervisor's child that runs on a coppice node (coppice/node.hpp,
%% Node::serve_child). In a child spec:
%%
%%   #{id => worker,
%%     start => {coppice_child, start_link, ['cnode@host', worker, Args]},
%%     restart => permanent, shutdown => 5000}
%%
%% It asks the coppice node's starter for a child of kind `worker` started with Args. The child
%% comes back linked to the caller (the supervisor), as proc_lib:start_link leaves a child: its
%% exit reaches the supervisor as {'EXIT', Pid, Reason}, and the supervisor's shutdown
%% (exit(Pid, shutdown), then its monitor's DOWN) reaches it.
-module(coppice_child).
-export([start_link/3]).

-spec start_link(node(), atom(), term()) -> {ok, pid()} | ignore | {error, term()}.
start_link(Node, Kind, Args) when is_atom(Node), is_atom(Kind) ->
    try gen_server:call({coppice_children, Node}, {start_link, Kind, Args}, 30000) of
        {ok, Pid} when is_pid(Pid) -> {ok, Pid};
        ignore -> ignore;
        {error, Reason} -> {error, Reason};
        Other -> {error, {bad_return, Other}}
    catch
        exit:{Reason, {gen_server, call, _}} -> {error, Reason}
    end.
