# The Elixir peer: BENCHMARKS.md's W2 (DynamicSupervisor, GenServer children) and W3/W3b
# (Supervisor one_for_one / one_for_all) as Elixir would naturally write them.
#
# One workload per VM: bench/peers/elixir/run compiles this file with elixirc into
# build/peers/elixir/ and runs `elixir -pa build/peers/elixir -e 'CoppicePeer.main("NAME")'`
# in a fresh OS process for each workload. The workload runs in a fresh process (the benchmark
# process); main prints one JSON line on standard output, with the figures or with the reason
# the run failed its own check, then halts (status 0 or 1). Progress goes to standard error.

defmodule CoppicePeer.Idle do
  @moduledoc "W2's child: an idle GenServer whose state is one integer."
  use GenServer

  def start_link(n), do: GenServer.start_link(__MODULE__, n)

  @impl true
  def init(n), do: {:ok, n}
end

defmodule CoppicePeer.Worker do
  @moduledoc "W3's and W3b's child: an idle GenServer whose init reports {:ready, self(), index}."
  use GenServer

  def start_link({bench, index, nil}), do: GenServer.start_link(__MODULE__, {bench, index})
  def start_link({bench, index, name}), do: GenServer.start_link(__MODULE__, {bench, index}, name: name)

  @impl true
  def init({bench, index}) do
    send(bench, {:ready, self(), index})
    {:ok, {bench, index}}
  end
end

defmodule CoppicePeer do
  @million 1_000_000

  def main(name) do
    parent = self()
    {pid, ref} = spawn_monitor(fn -> send(parent, {self(), :result, run(name)}) end)

    result =
      receive do
        {^pid, :result, r} -> r
        {:DOWN, ^ref, :process, ^pid, reason} -> {:error, "the benchmark process died: #{inspect(reason)}"}
      end

    IO.puts(json_line(name, result))
    System.halt(if match?({:ok, _, _}, result), do: 0, else: 1)
  end

  defp run(name) do
    case name do
      "W2_dynsup_1m" -> w2_dynsup()
      "W3_restart_latency" -> w3_restart(:one_for_one, 1, 10_000)
      "W3b_restart_one_for_all_100" -> w3_restart(:one_for_all, 100, 1_000)
      _ -> {:error, "unknown workload #{name}"}
    end
  rescue
    e -> {:error, Exception.format(:error, e, __STACKTRACE__)}
  catch
    kind, reason -> {:error, Exception.format(kind, reason, __STACKTRACE__)}
  end

  # ---- helpers ------------------------------------------------------------------------------

  defp now_ns, do: System.monotonic_time(:nanosecond)
  defp ms(from, to), do: (to - from) / 1.0e6

  # VmRSS of this OS process, in bytes (from /proc/<pid>/status).
  defp rss do
    status = File.read!("/proc/#{System.pid()}/status")
    [_, kb] = Regex.run(~r/VmRSS:\s+(\d+) kB/, status)
    String.to_integer(kb) * 1024
  end

  defp progress(text), do: IO.puts(:stderr, "elixir: " <> text)

  defp wait_process_count(count, limit_ms) do
    deadline = System.monotonic_time(:millisecond) + limit_ms
    wait_process_count_until(count, deadline)
  end

  defp wait_process_count_until(count, deadline) do
    n = :erlang.system_info(:process_count)

    cond do
      n <= count -> :ok
      System.monotonic_time(:millisecond) > deadline -> {:left, n - count}
      true ->
        Process.sleep(1)
        wait_process_count_until(count, deadline)
    end
  end

  # ---- W2 dynsup_1m -------------------------------------------------------------------------

  defp w2_dynsup do
    n = @million
    base = :erlang.system_info(:process_count)
    {:ok, sup} = DynamicSupervisor.start_link(strategy: :one_for_one)
    before = rss()
    t0 = now_ns()
    started = start_children(sup, n)
    t1 = now_ns()
    after_ = rss()

    case started do
      :ok ->
        progress(
          "W2: #{n} children started in #{Float.round(ms(t0, t1), 1)} ms, " <>
            "#{Float.round((after_ - before) / n, 1)} bytes each; shutting down"
        )

        # The figures so far, for the run script to report should the shutdown time out.
        IO.puts(
          :stderr,
          "elixir: partial {\"start_ms\": #{ms(t0, t1)}, \"bytes_per_child\": #{(after_ - before) / n}}"
        )

        Process.unlink(sup)
        t2 = now_ns()
        :ok = Supervisor.stop(sup, :shutdown, :infinity)
        t3 = now_ns()

        case wait_process_count(base, 10_000) do
          :ok ->
            {:ok, [start_ms: ms(t0, t1), shutdown_ms: ms(t2, t3), bytes_per_child: (after_ - before) / n],
             "DynamicSupervisor, GenServer children"}

          {:left, left} ->
            {:error, "dynsup: #{left} processes left after the shutdown"}
        end

      {:error, reason} ->
        {:error, "dynsup: start_child failed: #{inspect(reason)}"}
    end
  end

  defp start_children(_sup, 0), do: :ok

  defp start_children(sup, k) do
    case DynamicSupervisor.start_child(sup, {CoppicePeer.Idle, 7}) do
      {:ok, _} -> start_children(sup, k - 1)
      other -> {:error, other}
    end
  end

  # ---- W3 restart_latency, W3b restart_one_for_all_100 ----------------------------------------

  defp w3_restart(strategy, children, rounds) do
    # As BENCHMARKS.md says: the logger off (a report per restart would inflate the figures).
    :ok = :logger.set_primary_config(:level, :none)
    bench = self()
    # W3's one child is registered under a name; W3b's hundred are not (as coppice's W3b).
    name = if children == 1, do: CoppicePeer.W3Worker, else: nil

    specs =
      for i <- 0..(children - 1) do
        Supervisor.child_spec({CoppicePeer.Worker, {bench, i, name}}, id: {:worker, i})
      end

    {:ok, sup} = Supervisor.start_link(specs, strategy: strategy, max_restarts: 1_000_000, max_seconds: 1)

    case collect_ready(children, :erlang.make_tuple(children, nil)) do
      {:ok, pids} ->
        result = restart_rounds(0, rounds, children, pids, [])
        Process.unlink(sup)
        :ok = Supervisor.stop(sup, :shutdown, :infinity)

        case result do
          {:ok, us} ->
            label =
              case strategy do
                :one_for_one -> "Supervisor one_for_one, a GenServer child registered by name, logger off"
                :one_for_all -> "Supervisor one_for_all, 100 GenServer children, logger off"
              end

            write_samples(if(children == 1, do: "W3_restart_latency", else: "W3b_restart_one_for_all_100"), us)
            {:ok, percentiles(us), label}

          error ->
            error
        end

      error ->
        error
    end
  end

  defp restart_rounds(rounds, rounds, _children, _pids, us), do: {:ok, us}

  defp restart_rounds(round, rounds, children, pids, us) do
    victim = elem(pids, rem(round, children))
    t0 = now_ns()
    Process.exit(victim, :kill)

    case collect_ready(children, pids) do
      {:ok, new_pids} ->
        t1 = now_ns()

        if elem(new_pids, rem(round, children)) == victim do
          {:error, "restart: round #{round}: the killed child was not replaced"}
        else
          restart_rounds(round + 1, rounds, children, new_pids, [(t1 - t0) / 1000.0 | us])
        end

      {:error, why} ->
        {:error, "restart: round #{round}: #{why}"}
    end
  end

  # Waits for k children's init reports ({:ready, pid, index}); pids is a tuple by index.
  defp collect_ready(0, pids), do: {:ok, pids}

  defp collect_ready(k, pids) do
    receive do
      {:ready, pid, index} -> collect_ready(k - 1, put_elem(pids, index, pid))
    after
      10_000 -> {:error, "#{k} children did not report within 10 s"}
    end
  end

  # Every latency (µs, one per line, in the order measured) to
  # $PEER_LATENCY_SAMPLES_DIR/<workload>.txt when that is set, for tools/plot's distributions.
  defp write_samples(workload, us) do
    case System.get_env("PEER_LATENCY_SAMPLES_DIR") do
      dir when dir in [nil, ""] ->
        :ok

      dir ->
        lines = us |> Enum.reverse() |> Enum.map(&:io_lib.format("~.3f~n", [&1]))

        case File.write(Path.join(dir, workload <> ".txt"), lines) do
          :ok -> :ok
          {:error, why} -> progress("cannot write latency samples to #{dir}: #{inspect(why)}")
        end
    end
  end

  defp percentiles(us) do
    sorted = us |> Enum.sort() |> List.to_tuple()
    n = tuple_size(sorted)
    at = fn q -> elem(sorted, min(n - 1, trunc(q * n))) end
    [p50_us: at.(0.50), p90_us: at.(0.90), p99_us: at.(0.99), p999_us: at.(0.999), max_us: elem(sorted, n - 1)]
  end

  # ---- the JSON line ------------------------------------------------------------------------

  defp json_line(name, {:ok, counters, label}) do
    cs = Enum.map_join(counters, ", ", fn {k, v} -> json_string(Atom.to_string(k)) <> ": " <> json_number(v) end)

    ~s({"peer": "elixir", "workload": #{json_string(name)}, "counters": {#{cs}}, "label": #{json_string(label)}})
  end

  defp json_line(name, {:error, reason}) do
    ~s({"peer": "elixir", "workload": #{json_string(name)}, "error": #{json_string(IO.chardata_to_string(reason))}})
  end

  defp json_number(v) when is_integer(v), do: Integer.to_string(v)
  defp json_number(v) when is_float(v), do: :erlang.float_to_binary(v, [{:decimals, 3}, :compact])

  defp json_string(s) do
    escaped =
      s
      |> String.to_charlist()
      |> Enum.map(fn
        ?" -> "\\\""
        ?\\ -> "\\\\"
        ?\n -> "\\n"
        c when c < 32 -> "\\u" <> String.pad_leading(Integer.to_string(c, 16), 4, "0")
        c -> <<c::utf8>>
      end)

    "\"" <> IO.iodata_to_binary(escaped) <> "\""
  end
end
