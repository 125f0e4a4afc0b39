%% W3's and W3b's child: an idle gen_server whose init reports {ready, self(), Index} to the
%% benchmark process.
-module(coppice_peer_worker).
-behaviour(gen_server).

-export([start_link/3]).
-export([init/1, handle_call/3, handle_cast/2]).

start_link(none, Bench, Index) -> gen_server:start_link(?MODULE, {Bench, Index}, []);
start_link(Name, Bench, Index) -> gen_server:start_link(Name, ?MODULE, {Bench, Index}, []).

init({Bench, Index}) ->
    Bench ! {ready, self(), Index},
    {ok, {Bench, Index}}.

handle_call(_Request, _From, State) -> {reply, ok, State}.

handle_cast(_Request, State) -> {noreply, State}.
