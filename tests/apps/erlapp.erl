%% The erlang case of tests/apps/run-apps.sh: an Erlang/OTP node (beam.smp: its scheduler,
%% async and poll threads, its timer wheel, erl_child_setup forking port programs) without
%% distribution.
%%
%%   erl -noshell -pa DIR -run erlapp main DIR
%%
%% A gen_server (erlapp_state) owning an ETS table of 100,000 entries {I, f(I)} and a counter a
%% ticker process bumps every 5 ms (erlang:send_after); a port program (cat, through
%% open_port) that a process sends a numbered line to every 20 ms, checking each comes back;
%% 4 worker processes each folding a running checksum, every round computed twice (the two
%% must agree); an HTTP server on 127.0.0.1 (gen_tcp, {packet, http_bin}; a free port,
%% written to DIR/port), keep-alive with no timeouts: "GET /mark" checks the table, records
%% every counter and answers "request N on connection C" (200), or 500 and the reasons;
%% "GET /ping" answers "pong".
%%
%% Prints "READY <pid of cat>" once all runs.
%% SIGTERM: checks two marks were taken, that the ticker, the workers and the round trips with
%% cat went on after the second with no wrong result, the table is intact, then garbage
%% collects every process with 256 MiB more allocated and churned; prints PASS or
%% "FAIL: " and the reasons, and halts. APPS_CORRUPT=ets|ticks|child breaks that state when
%% the second mark is taken (the test's check that each check can fail).
-module(erlapp).
-behaviour(gen_server).
-export([main/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2, code_change/3]).
-export([handle_event/2, handle_call/2]). % the SIGTERM handler of erl_signal_server (gen_event)

-define(ENTRIES, 100000).

value(I) -> (I * 2654435761 bxor 16#5a17) band 16#ffffffff.

main([Dir]) ->
    {ok, _} = gen_server:start({local, erlapp_state}, ?MODULE, [], []),
    Ticker = spawn(fun() -> tick_loop() end),
    register(erlapp_ticker, Ticker),
    Port = open_port({spawn_executable, "/bin/cat"}, [binary, {line, 256}, use_stdio, exit_status]),
    {os_pid, CatPid} = erlang:port_info(Port, os_pid),
    Tripper = spawn(fun() -> register(erlapp_trips, self()), erlang:port_connect(Port, self()),
                             trip_loop(Port, 1, 0, 0) end),
    unlink(Port),
    Tripper ! hello,
    [spawn(fun() -> register(list_to_atom("erlapp_w" ++ integer_to_list(W)), self()),
                    worker_loop(W, W, 0, 0) end) || W <- lists:seq(1, 4)],
    {ok, L} = gen_tcp:listen(0, [binary, {ip, {127, 0, 0, 1}}, {packet, http_bin},
                                 {active, false}, {reuseaddr, true}]),
    {ok, PortNo} = inet:port(L),
    ok = file:write_file(filename:join(Dir, "port"), integer_to_list(PortNo)),
    spawn(fun() -> accept_loop(L, 1) end),
    ok = gen_event:swap_handler(erl_signal_server, {erl_signal_handler, []}, {?MODULE, []}),
    os:set_signal(sigterm, handle),
    timer:sleep(200),
    io:format("READY ~b~n", [CatPid]),
    receive never -> ok end.

%% the state server: the table and the counter
init({[], _}) -> {ok, sigterm}; % the signal handler, swapped in
init([]) ->
    T = ets:new(erlapp_table, [set, protected]),
    [ets:insert(T, {I, value(I)}) || I <- lists:seq(1, ?ENTRIES)],
    {ok, #{table => T, ticks => 0, marks => []}}.
handle_call(tick, _From, S = #{ticks := N}) -> {reply, N + 1, S#{ticks := N + 1}};
handle_call(check_table, _From, S = #{table := T}) -> {reply, check_table(T), S};
handle_call({mark, M}, _From, S = #{marks := Ms, ticks := N}) ->
    {reply, ok, S#{marks := Ms ++ [M#{ticks => N}]}};
handle_call(state, _From, S) -> {reply, S, S};
handle_call(corrupt_ets, _From, S = #{table := T}) ->
    ets:insert(T, {4711, 0}), {reply, ok, S};
handle_call(corrupt_ticks, _From, S) -> {reply, ok, S#{ticks := -1000000}}.
handle_cast(_, S) -> {noreply, S}.
handle_info(_, S) -> {noreply, S}.
terminate(_, _) -> ok.
code_change(_, S, _) -> {ok, S}.

check_table(T) ->
    Size = ets:info(T, size),
    Bad = ets:foldl(fun({I, V}, Acc) -> case value(I) of V -> Acc; _ -> Acc + 1 end end, 0, T),
    case {Size, Bad} of
        {?ENTRIES, 0} -> ok;
        _ -> io_lib:format("table: ~b entries, ~b wrong", [Size, Bad])
    end.

tick_loop() ->
    erlang:send_after(5, self(), tick),
    receive
        tick -> gen_server:call(erlapp_state, tick), tick_loop();
        stop -> ok
    end.

%% round trips with cat: line N must come back as N
trip_loop(Port, N, Ok, Bad) ->
    receive
        {get, From} -> From ! {trips, Ok, Bad}, trip_loop(Port, N, Ok, Bad);
        corrupt -> Port ! {self(), close}, trip_loop(Port, N, Ok, Bad);
        _ -> trip_loop(Port, N, Ok, Bad)
    after 20 ->
        Port ! {self(), {command, [integer_to_list(N), $\n]}},
        Want = integer_to_binary(N),
        receive
            {Port, {data, {eol, Want}}} -> trip_loop(Port, N + 1, Ok + 1, Bad);
            {Port, {data, _}} -> trip_loop(Port, N + 1, Ok, Bad + 1)
        after 2000 -> trip_loop(Port, N + 1, Ok, Bad + 1)
        end
    end.

%% a worker: a checksum chain, each round computed twice
step(X, W) -> erlang:phash2({X, W}, 1 bsl 32) bxor (X * 31 band 16#ffffffff).
worker_loop(W, X, Rounds, Bad) ->
    receive
        {get, From} -> From ! {rounds, Rounds, Bad}, worker_loop(W, X, Rounds, Bad)
    after 1 ->
        A = step(X, W), B = step(X, W),
        worker_loop(W, A, Rounds + 1, if A =:= B -> Bad; true -> Bad + 1 end)
    end.

ask(Name) -> whereis(Name) ! {get, self()}, receive {_, A, B} -> {A, B} after 5000 -> {-1, -1} end.

counters() ->
    {Trips, TripErrs} = ask(erlapp_trips),
    Ws = [ask(list_to_atom("erlapp_w" ++ integer_to_list(W))) || W <- lists:seq(1, 4)],
    #{trips => Trips, trip_errs => TripErrs, rounds => [R || {R, _} <- Ws],
      bad_rounds => lists:sum([B || {_, B} <- Ws])}.

%% HTTP
accept_loop(L, C) ->
    {ok, S} = gen_tcp:accept(L),
    P = spawn(fun() -> receive go -> serve(S, C, 1) end end),
    ok = gen_tcp:controlling_process(S, P),
    P ! go,
    accept_loop(L, C + 1).

serve(S, C, N) ->
    case read_request(S, undefined) of
        {ok, Path} ->
            {Status, Body} = answer(Path, C, N),
            gen_tcp:send(S, [<<"HTTP/1.1 ">>, Status, <<"\r\nContent-Type: text/plain\r\n">>,
                             <<"Content-Length: ">>, integer_to_list(iolist_size(Body)),
                             <<"\r\n\r\n">>, Body]),
            serve(S, C, N + 1);
        _ -> gen_tcp:close(S)
    end.

read_request(S, Path) ->
    case gen_tcp:recv(S, 0) of
        {ok, {http_request, _, {abs_path, P}, _}} -> read_request(S, P);
        {ok, {http_header, _, _, _, _}} -> read_request(S, Path);
        {ok, http_eoh} -> {ok, Path};
        Other -> Other
    end.

answer(<<"/ping">>, _, _) -> {<<"200 OK">>, <<"pong">>};
answer(<<"/mark">>, C, N) ->
    Marks = maps:get(marks, gen_server:call(erlapp_state, state)),
    case length(Marks) of
        1 -> corrupt(os:getenv("APPS_CORRUPT"));
        _ -> ok
    end,
    case gen_server:call(erlapp_state, check_table, 60000) of
        ok ->
            gen_server:call(erlapp_state, {mark, counters()}),
            {<<"200 OK">>, io_lib:format("request ~b on connection ~b~n", [N, C])};
        Why -> {<<"500 Internal Server Error">>, [Why, $\n]}
    end;
answer(_, _, _) -> {<<"404 Not Found">>, <<"no\n">>}.

corrupt("ets") -> gen_server:call(erlapp_state, corrupt_ets);
corrupt("ticks") -> exit(whereis(erlapp_ticker), kill);
corrupt("child") -> erlapp_trips ! corrupt;
corrupt(_) -> ok.

%% SIGTERM (through erl_signal_server): the verdict
handle_event(sigterm, S) ->
    spawn(fun verdict/0),
    {ok, S};
handle_event(_, S) -> {ok, S}.
handle_call(_, S) -> {ok, ok, S}.

verdict() ->
    timer:sleep(300),
    #{marks := Marks, ticks := Ticks, table := _} = gen_server:call(erlapp_state, state),
    Now = counters(),
    Why = case Marks of
              [_, M2] ->
                  [W || W <- [
                      check(Ticks > maps:get(ticks, M2) + 20,
                            io_lib:format("ticks ~b, ~b at the second mark", [Ticks, maps:get(ticks, M2)])),
                      check(maps:get(trips, Now) > maps:get(trips, M2) + 5,
                            io_lib:format("cat round trips ~b, ~b at the second mark",
                                          [maps:get(trips, Now), maps:get(trips, M2)])),
                      check(maps:get(trip_errs, Now) =:= 0,
                            io_lib:format("~b wrong round trips with cat", [maps:get(trip_errs, Now)])),
                      check(lists:all(fun({A, B}) -> A > B end,
                                      lists:zip(maps:get(rounds, Now), maps:get(rounds, M2))),
                            io_lib:format("worker rounds ~w, ~w at the second mark",
                                          [maps:get(rounds, Now), maps:get(rounds, M2)])),
                      check(maps:get(bad_rounds, Now) =:= 0, "workers computed different results"),
                      case gen_server:call(erlapp_state, check_table, 60000) of
                          ok -> ok;
                          T -> T
                      end,
                      gc()] , W =/= ok];
              _ -> [io_lib:format("~b marks taken, expected 2", [length(Marks)])]
          end,
    case Why of
        [] -> io:format("PASS~n");
        _ -> io:format("FAIL: ~s~n", [lists:join("; ", Why)])
    end,
    erlang:halt(0, [{flush, true}]).

check(true, _) -> ok;
check(false, Why) -> Why.

%% 256 MiB kept across a full collection of every process, and as much churned
gc() ->
    Keep = [binary:copy(<<I:64>>, 1 bsl 17) || I <- lists:seq(1, 256)],
    [begin _ = binary:copy(<<I:64>>, 1 bsl 20), ok end || I <- lists:seq(1, 128)],
    [erlang:garbage_collect(P) || P <- processes()],
    Sum = lists:sum([binary:at(B, 7) + byte_size(B) || B <- Keep]),
    Want = lists:sum([(I band 255) + (8 bsl 17) || I <- lists:seq(1, 256)]),
    check(Sum =:= Want, io_lib:format("after the collection: kept sum ~b, expected ~b", [Sum, Want])).
