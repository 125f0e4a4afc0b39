%% The supervisors of W2 (simple_one_for_one, coppice_peer_idle children) and of W3 and W3b
%% (one_for_one or one_for_all, coppice_peer_worker children, intensity 1,000,000 in 1 s).
-module(coppice_peer_sup).
-behaviour(supervisor).

-export([init/1]).

init(simple) ->
    %% OTP's defaults for the flags (intensity 1 in 5 s) and for a worker's shutdown (5000 ms):
    %% no child restarts in W2.
    {ok, {#{strategy => simple_one_for_one},
          [#{id => idle, start => {coppice_peer_idle, start_link, [7]},
             restart => permanent, shutdown => 5000, type => worker}]}};
init({Strategy, Children, Bench}) ->
    Flags = #{strategy => Strategy, intensity => 1000000, period => 1},
    Specs = [#{id => {worker, I},
               start => {coppice_peer_worker, start_link, [name(Children), Bench, I]},
               restart => permanent, shutdown => 5000, type => worker}
             || I <- lists:seq(0, Children - 1)],
    {ok, {Flags, Specs}}.

%% W3's one child is registered under a name; W3b's hundred are not (as coppice's W3b).
name(1) -> {local, w3_worker};
name(_) -> none.
