//! coppice's workloads W1-W7 (BENCHMARKS.md) as Tokio would naturally write them: a task per
//! process, an unbounded mpsc channel where a process has a mailbox, a oneshot where it waits
//! for one message. `tokio-peer WORKLOAD` runs one workload and prints one JSON line
//! (bench/peers/README.md); `tokio-peer --list` prints the workloads' names.
//!
//! Every runtime is Tokio's default multi-thread runtime (one worker per core: 2 here), except
//! W5 `workers:1`, which uses the `current_thread` runtime. The benchmark's own side (the
//! driver that spawns, counts, kills and waits) is a task, as it is a process in every peer.
//!
//! Written for Debian's rustc 1.63 and tokio 1.24 (no let-else, no `std::future::poll_fn`,
//! no `JoinHandle::abort_handle`, which is unstable in 1.24).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::runtime::{Builder, Runtime};
use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinError, JoinHandle};

const WORKLOADS: &[&str] = &[
    "W1_spawn_idle_1m",
    "W2_dynsup_1m",
    "W3_restart_latency",
    "W3b_restart_one_for_all_100",
    "W4_skynet_1m",
    "W5_ping_pong/workers:1",
    "W5_ping_pong/workers:2",
    "W6_fan_in",
    "W7_pairs_throughput",
];

/// What a workload measured: its counters (coppice's names) and how it was done.
struct Figures {
    counters: Vec<(&'static str, f64)>,
    label: String,
}

type Outcome = Result<Figures, String>;

fn ms_since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1e3
}

/// This program's resident set size in bytes (`VmRSS` in /proc/self/status).
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// CPU time this process has used (user + system), in seconds.
fn cpu_seconds() -> f64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return f64::NAN;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// Tokio's defaults: one worker thread per core.
fn multi_thread() -> Runtime {
    Builder::new_multi_thread().build().expect("a multi-thread runtime")
}

fn current_thread() -> Runtime {
    Builder::new_current_thread().build().expect("a current_thread runtime")
}

/// Runs the workload's driver as a task of `runtime` (not on block_on's own thread, which is
/// no worker of a multi-thread runtime) and returns what it reports.
fn drive<F>(runtime: Runtime, driver: F) -> Outcome
where
    F: Future<Output = Outcome> + Send + 'static,
{
    let (wall, cpu) = (Instant::now(), cpu_seconds());
    let outcome = runtime.block_on(async move { tokio::spawn(driver).await });
    // On a shared machine the figures are only as good as the cores this process got.
    let (wall, cpu) = (wall.elapsed().as_secs_f64(), cpu_seconds() - cpu);
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    eprintln!(
        "tokio-peer: {:.2} s CPU over {:.2} s wall ({:.0}% of {} cores)",
        cpu,
        wall,
        100.0 * cpu / wall / cores as f64,
        cores
    );
    // Tasks a failed check left behind must not hold up the report.
    runtime.shutdown_background();
    match outcome {
        Ok(outcome) => outcome,
        Err(e) => Err(format!("the driver task failed: {}", e)),
    }
}

// ---------------------------------------------------------------------------------------------
// W1 spawn_idle_1m: a million tasks; each acknowledges on the driver's channel once running,
// then waits on its own oneshot; then a stop message to each, and wait until all are gone.

async fn w1_spawn_idle() -> Outcome {
    const TASKS: usize = 1_000_000;
    let (ack_tx, mut ack_rx) = mpsc::unbounded_channel::<()>();
    // The stop senders are the benchmark's bookkeeping, not the tasks' cost: touched before the
    // resident size is taken.
    let mut stops: Vec<Option<oneshot::Sender<()>>> = Vec::with_capacity(TASKS);
    stops.resize_with(TASKS, || None);
    let before = resident_bytes().ok_or("cannot read VmRSS from /proc/self/status")?;

    let spawn_start = Instant::now();
    for slot in stops.iter_mut() {
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let ack = ack_tx.clone();
        tokio::spawn(async move {
            let _ = ack.send(());
            let _ = stop_rx.await;
            drop(ack); // gone: the last clone dropped closes the driver's channel
        });
        *slot = Some(stop_tx);
    }
    drop(ack_tx);
    let mut acks = 0usize;
    while acks < TASKS {
        match ack_rx.recv().await {
            Some(()) => acks += 1,
            None => break,
        }
    }
    let spawn_ms = ms_since(spawn_start);
    let after = resident_bytes().ok_or("cannot read VmRSS from /proc/self/status")?;
    if acks != TASKS {
        return Err(format!("spawn_idle: {} acknowledgements, not {}", acks, TASKS));
    }

    let stop_start = Instant::now();
    for slot in stops.iter_mut() {
        if let Some(stop) = slot.take() {
            let _ = stop.send(());
        }
    }
    // "All gone": every task has ended and dropped its clone of the acknowledgement sender,
    // which closes the channel.
    let mut extra = 0usize;
    while ack_rx.recv().await.is_some() {
        extra += 1;
    }
    let stop_ms = ms_since(stop_start);
    if extra != 0 {
        return Err(format!("spawn_idle: {} acknowledgements more than {}", extra, TASKS));
    }
    Ok(Figures {
        counters: vec![
            ("spawn_ms", spawn_ms),
            ("stop_ms", stop_ms),
            ("bytes_per_process", (after as f64 - before as f64) / TASKS as f64),
        ],
        label: "tokio::spawn per task (detached); acks on the driver's unbounded mpsc, each task \
                waits on its own oneshot; cold memory, multi-thread runtime (defaults)"
            .into(),
    })
}

// ---------------------------------------------------------------------------------------------
// W3 restart_latency, hand-rolled: Tokio has no supervisors, links or exit signals. A
// supervisor task spawns the child and awaits its JoinHandle; the benchmark kills the child with
// JoinHandle::abort() (found through a shared slot, the stand-in for a registered name); the
// supervisor sees the cancelled JoinHandle and spawns a replacement, whose first act reports to
// the benchmark. No restart intensity, no shutdown protocol. Nothing pins a task to a worker,
// but abort(), the JoinHandle's wake-up and tokio::spawn from a worker all schedule onto the
// current worker: a check (thread-local flag, once, on this machine) found the replacement
// running on the killing task's worker thread in 9,999 of 10,000 rounds.

struct Supervised {
    /// The current child's JoinHandle: the supervisor awaits it, the benchmark aborts it.
    child: Mutex<Option<JoinHandle<()>>>,
    shutdown: AtomicBool,
}

async fn w3_child(bench: mpsc::UnboundedSender<()>) {
    let _ = bench.send(()); // "init" reports
    std::future::pending::<()>().await
}

/// Resolves when the child in the slot ends (polls its JoinHandle under the slot's lock).
struct ChildExit(Arc<Supervised>);

impl Future for ChildExit {
    type Output = Result<(), JoinError>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut slot = self.0.child.lock().unwrap();
        match slot.as_mut() {
            Some(handle) => Pin::new(handle).poll(cx),
            None => Poll::Ready(Ok(())),
        }
    }
}

/// Restarts the child whenever it ends, however it ends; returns the number of restarts.
async fn w3_supervisor(shared: Arc<Supervised>, bench: mpsc::UnboundedSender<()>) -> u64 {
    let mut restarts = 0u64;
    loop {
        {
            // Spawned under the lock, so that whoever sees the child's report and then takes
            // the lock finds this child's handle.
            let mut slot = shared.child.lock().unwrap();
            *slot = Some(tokio::spawn(w3_child(bench.clone())));
        }
        let _ = ChildExit(shared.clone()).await;
        if shared.shutdown.load(Ordering::Acquire) {
            return restarts;
        }
        restarts += 1;
    }
}

fn kill_child(shared: &Supervised) -> bool {
    match shared.child.lock().unwrap().as_ref() {
        Some(handle) => {
            handle.abort();
            true
        }
        None => false,
    }
}

async fn w3_restart_latency() -> Outcome {
    const ROUNDS: usize = 10_000;
    let shared = Arc::new(Supervised { child: Mutex::new(None), shutdown: AtomicBool::new(false) });
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<()>();
    let supervisor = tokio::spawn(w3_supervisor(shared.clone(), ready_tx));
    if ready_rx.recv().await.is_none() {
        return Err("restart_latency: the first child never reported".into());
    }
    let mut us = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        let before = Instant::now();
        if !kill_child(&shared) {
            return Err(format!("restart_latency: no child to kill in round {}", round));
        }
        if ready_rx.recv().await.is_none() {
            return Err(format!("restart_latency: no replacement reported in round {}", round));
        }
        us.push(before.elapsed().as_secs_f64() * 1e6);
    }
    shared.shutdown.store(true, Ordering::Release);
    kill_child(&shared);
    let restarts = supervisor.await.map_err(|e| format!("restart_latency: the supervisor failed: {}", e))?;
    let mut extra = 0usize;
    while ready_rx.recv().await.is_some() {
        extra += 1;
    }
    if restarts != ROUNDS as u64 || extra != 0 {
        return Err(format!(
            "restart_latency: {} restarts and {} unexpected reports for {} kills",
            restarts, extra, ROUNDS
        ));
    }
    write_samples("W3_restart_latency", &us);
    us.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let at = |q: f64| us[std::cmp::min(us.len() - 1, (q * us.len() as f64) as usize)];
    Ok(Figures {
        counters: vec![
            ("p50_us", at(0.50)),
            ("p90_us", at(0.90)),
            ("p99_us", at(0.99)),
            ("p999_us", at(0.999)),
            ("max_us", *us.last().unwrap()),
        ],
        label: "hand-rolled: a supervisor task respawns the child when its JoinHandle reports \
                abort(), on the same worker thread; no links, signals or intensity; multi-thread \
                runtime (defaults)"
            .into(),
    })
}

// ---------------------------------------------------------------------------------------------
// W4 skynet_1m: ten wide, six deep; leaf i replies i on its parent's channel, each parent sums
// its ten children's replies; the root must get 499999500000.

const SKYNET_FAN_OUT: u64 = 10;

/// Spawns one node (a plain function, so that the async node can spawn its own kind).
fn spawn_node(parent: mpsc::UnboundedSender<u64>, first: u64, size: u64) {
    tokio::spawn(node(parent, first, size));
}

/// Spawns the ten children of [first, first + size) and sums their replies; None if one died.
async fn sum_children(first: u64, size: u64) -> Option<u64> {
    let (tx, mut rx) = mpsc::unbounded_channel::<u64>();
    let child_size = size / SKYNET_FAN_OUT;
    for i in 0..SKYNET_FAN_OUT {
        spawn_node(tx.clone(), first + i * child_size, child_size);
    }
    drop(tx);
    let mut sum = 0u64;
    for _ in 0..SKYNET_FAN_OUT {
        sum += rx.recv().await?;
    }
    Some(sum)
}

async fn node(parent: mpsc::UnboundedSender<u64>, first: u64, size: u64) {
    if size == 1 {
        let _ = parent.send(first);
        return;
    }
    if let Some(sum) = sum_children(first, size).await {
        let _ = parent.send(sum);
    }
}

async fn w4_skynet() -> Outcome {
    const LEAVES: u64 = 1_000_000;
    const EXPECTED: u64 = LEAVES * (LEAVES - 1) / 2;
    let start = Instant::now();
    let sum = sum_children(0, LEAVES).await;
    let wall_ms = ms_since(start);
    match sum {
        Some(EXPECTED) => Ok(Figures {
            counters: vec![("wall_ms", wall_ms)],
            label: "tokio::spawn per node, replies on the parent's unbounded mpsc; multi-thread \
                    runtime (defaults)"
                .into(),
        }),
        Some(other) => Err(format!("skynet: the root got {}, not {}", other, EXPECTED)),
        None => Err("skynet: a child of the root never replied".into()),
    }
}

// ---------------------------------------------------------------------------------------------
// W5 ping_pong and W7 pairs_throughput: a pinger spawns its ponger and plays round trips over
// two unbounded mpsc channels.

/// Plays `round_trips` round trips with a freshly spawned ponger; returns how many completed.
async fn ping_pong(round_trips: u32) -> u32 {
    let (ping_tx, mut ping_rx) = mpsc::unbounded_channel::<()>();
    let (pong_tx, mut pong_rx) = mpsc::unbounded_channel::<()>();
    tokio::spawn(async move {
        while let Some(()) = ping_rx.recv().await {
            if pong_tx.send(()).is_err() {
                break;
            }
        }
    });
    let mut done = 0u32;
    while done < round_trips {
        if ping_tx.send(()).is_err() {
            break;
        }
        match pong_rx.recv().await {
            Some(()) => done += 1,
            None => break,
        }
    }
    done
}

async fn w5_ping_pong(label: &'static str) -> Outcome {
    const ROUND_TRIPS: u32 = 1_000_000;
    let start = Instant::now();
    let done = ping_pong(ROUND_TRIPS).await;
    let wall = start.elapsed();
    if done != ROUND_TRIPS {
        return Err(format!("ping_pong: {} round trips, not {}", done, ROUND_TRIPS));
    }
    Ok(Figures {
        counters: vec![("ns_per_round_trip", wall.as_secs_f64() * 1e9 / ROUND_TRIPS as f64)],
        label: label.into(),
    })
}

async fn w7_pairs() -> Outcome {
    const PAIRS: u32 = 1_000;
    const ROUND_TRIPS_PER_PAIR: u32 = 10_000;
    const ROUND_TRIPS: u64 = PAIRS as u64 * ROUND_TRIPS_PER_PAIR as u64;
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<u32>();
    let start = Instant::now();
    for _ in 0..PAIRS {
        let done = done_tx.clone();
        tokio::spawn(async move {
            let _ = done.send(ping_pong(ROUND_TRIPS_PER_PAIR).await);
        });
    }
    drop(done_tx);
    let mut total = 0u64;
    for _ in 0..PAIRS {
        match done_rx.recv().await {
            Some(n) => total += n as u64,
            None => break,
        }
    }
    let wall_ms = ms_since(start);
    if total != ROUND_TRIPS {
        return Err(format!("pairs: {} round trips, not {}", total, ROUND_TRIPS));
    }
    Ok(Figures {
        counters: vec![("round_trips_per_s", ROUND_TRIPS as f64 / (wall_ms / 1e3)), ("wall_ms", wall_ms)],
        label: "a pinger task per pair spawns its ponger; unbounded mpsc each way; multi-thread \
                runtime (defaults)"
            .into(),
    })
}

// ---------------------------------------------------------------------------------------------
// W6 fan_in: a thousand sender tasks each send ten thousand numbers (their own) to one
// receiver task; the clock runs from the first spawn to the last message counted.

async fn w6_fan_in() -> Outcome {
    const SENDERS: u64 = 1_000;
    const PER_SENDER: u64 = 10_000;
    const MESSAGES: u64 = SENDERS * PER_SENDER;
    const EXPECTED_SUM: u64 = PER_SENDER * (SENDERS * (SENDERS - 1) / 2);
    let (tx, mut rx) = mpsc::unbounded_channel::<u64>();
    let start = Instant::now();
    for number in 0..SENDERS {
        let tx = tx.clone();
        tokio::spawn(async move {
            for _ in 0..PER_SENDER {
                let _ = tx.send(number);
            }
        });
    }
    drop(tx);
    let (mut count, mut sum) = (0u64, 0u64);
    while count < MESSAGES {
        match rx.recv().await {
            Some(n) => {
                count += 1;
                sum += n;
            }
            None => break,
        }
    }
    let wall_ms = ms_since(start);
    if count != MESSAGES || sum != EXPECTED_SUM {
        return Err(format!(
            "fan_in: {} messages summing to {}, not {} summing to {}",
            count, sum, MESSAGES, EXPECTED_SUM
        ));
    }
    Ok(Figures {
        counters: vec![("msgs_per_s", MESSAGES as f64 / (wall_ms / 1e3)), ("wall_ms", wall_ms)],
        label: "unbounded mpsc; multi-thread runtime (defaults)".into(),
    })
}

// ---------------------------------------------------------------------------------------------

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_number(x: f64) -> String {
    if x.is_finite() {
        format!("{:.3}", x)
    } else {
        "null".into()
    }
}

fn line(workload: &str, rest: &str) -> String {
    format!("{{\"peer\": \"tokio\", \"workload\": {}, {}}}", json_string(workload), rest)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 2 {
        eprintln!("usage: tokio-peer --list | tokio-peer WORKLOAD");
        std::process::exit(2);
    }
    let workload = args[1].as_str();
    let outcome = match workload {
        "--list" => {
            for w in WORKLOADS {
                println!("{}", w);
            }
            return;
        }
        "W2_dynsup_1m" | "W3b_restart_one_for_all_100" => {
            let why = if workload == "W2_dynsup_1m" {
                "no supervisors in Tokio (no DynamicSupervisor equivalent was measured)"
            } else {
                "no supervisors in Tokio (no one_for_all equivalent was measured)"
            };
            println!("{}", line(workload, &format!("\"skipped\": {}", json_string(why))));
            return;
        }
        "W1_spawn_idle_1m" => drive(multi_thread(), w1_spawn_idle()),
        "W3_restart_latency" => drive(multi_thread(), w3_restart_latency()),
        "W4_skynet_1m" => drive(multi_thread(), w4_skynet()),
        "W5_ping_pong/workers:1" => drive(
            current_thread(),
            w5_ping_pong("current_thread runtime; a task each, unbounded mpsc each way"),
        ),
        "W5_ping_pong/workers:2" => drive(
            multi_thread(),
            w5_ping_pong("multi-thread runtime (defaults: a worker per core); a task each, unbounded mpsc each way"),
        ),
        "W6_fan_in" => drive(multi_thread(), w6_fan_in()),
        "W7_pairs_throughput" => drive(multi_thread(), w7_pairs()),
        other => {
            println!("{}", line(other, &format!("\"error\": {}", json_string("no such workload"))));
            std::process::exit(1);
        }
    };
    match outcome {
        Ok(figures) => {
            let counters: Vec<String> = figures
                .counters
                .iter()
                .map(|(name, value)| format!("{}: {}", json_string(name), json_number(*value)))
                .collect();
            println!(
                "{}",
                line(
                    workload,
                    &format!(
                        "\"counters\": {{{}}}, \"label\": {}",
                        counters.join(", "),
                        json_string(&figures.label)
                    )
                )
            );
        }
        Err(error) => {
            println!("{}", line(workload, &format!("\"error\": {}", json_string(&error))));
            std::process::exit(1);
        }
    }
}

/// Every latency (µs, one per line, in the order measured) to
/// `$PEER_LATENCY_SAMPLES_DIR/<workload>.txt` when that is set, for tools/plot's distributions.
fn write_samples(workload: &str, us: &[f64]) {
    let dir = match std::env::var("PEER_LATENCY_SAMPLES_DIR") {
        Ok(d) if !d.is_empty() => d,
        _ => return,
    };
    let text: String = us.iter().map(|u| format!("{:.3}\n", u)).collect();
    let path = format!("{}/{}.txt", dir, workload);
    if let Err(e) = std::fs::write(&path, text) {
        eprintln!("tokio: cannot write latency samples to {}: {}", path, e);
    }
}
