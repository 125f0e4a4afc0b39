%% W2's child: an idle gen_server whose state is one integer.
-module(coppice_peer_idle).
-behaviour(gen_server).

-export([start_link/1]).
-export([init/1, handle_call/3, handle_cast/2]).

start_link(N) -> gen_server:start_link(?MODULE, N, []).

init(N) -> {ok, N}.

handle_call(_Request, _From, N) -> {reply, N, N}.

handle_cast(_Request, N) -> {noreply, N}.
