// The Go peer: BENCHMARKS.md's workloads W1 to W7 written as Go would naturally write them,
// with goroutines and channels and nothing but the standard library.
//
// usage: coppice-go-peer WORKLOAD      runs one workload, prints one JSON line
//
//	coppice-go-peer error WORKLOAD REASON   prints an error line (used by the run script)
//
// Go has no supervisors: W2, W3 and W3b are the natural hand-rolled equivalents (a
// supervisor goroutine, children's exit notifications as messages to it) and say so in
// their label. Each workload checks its own result and prints an "error" line instead of
// figures when the check fails (exit status 1).
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// One line of the peer contract (bench/peers/README.md).
type line struct {
	Peer     string             `json:"peer"`
	Workload string             `json:"workload"`
	Counters map[string]float64 `json:"counters,omitempty"`
	Label    string             `json:"label,omitempty"`
	Skipped  string             `json:"skipped,omitempty"`
	Error    string             `json:"error,omitempty"`
}

func emit(l line) {
	l.Peer = "go"
	b, err := json.Marshal(l)
	if err != nil {
		panic(err)
	}
	os.Stdout.Write(append(b, '\n'))
}

// result is what a workload hands back: its counters and label, or the reason its check failed.
type result struct {
	counters map[string]float64
	label    string
	err      string
}

func failed(format string, args ...any) result { return result{err: fmt.Sprintf(format, args...)} }

// residentBytes is VmRSS from /proc/self/status, in bytes.
func residentBytes() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if text := s.Text(); strings.HasPrefix(text, "VmRSS:") {
			fields := strings.Fields(strings.TrimPrefix(text, "VmRSS:")) // "123456 kB"
			if len(fields) >= 1 {
				kb, err := strconv.ParseFloat(fields[0], 64)
				if err == nil {
					return kb * 1024
				}
			}
		}
	}
	return 0
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

func progress(format string, args ...any) { fmt.Fprintf(os.Stderr, "go peer: "+format+"\n", args...) }

// ---------------------------------------------------------------------------------------
// W1 spawn_idle_1m: a million goroutines, each acknowledges once running, then waits on its
// own channel for a stop message.

const w1Processes = 1_000_000

type w1Round struct{ spawnMs, stopMs, bytesPerProcess float64 }

func w1Round1(stops []chan struct{}) (w1Round, string) {
	var r w1Round
	// The acknowledgements share one channel: a buffered channel of empty structs has no
	// buffer to allocate, and an acknowledgement never blocks its sender (a mailbox).
	acks := make(chan struct{}, w1Processes)
	var gone sync.WaitGroup
	gone.Add(w1Processes)
	before := residentBytes()
	start := time.Now()
	for i := range stops {
		stop := make(chan struct{})
		stops[i] = stop
		go func() {
			acks <- struct{}{}
			<-stop
			gone.Done()
		}()
	}
	got := 0
	for ; got < w1Processes; got++ {
		<-acks
	}
	r.spawnMs = ms(time.Since(start))
	r.bytesPerProcess = (residentBytes() - before) / w1Processes
	stopStart := time.Now()
	for _, stop := range stops {
		stop <- struct{}{}
	}
	gone.Wait()
	r.stopMs = ms(time.Since(stopStart))
	if got != w1Processes {
		return r, fmt.Sprintf("spawn_idle: %d acknowledgements, not %d", got, w1Processes)
	}
	if n := waitGoroutines(1, time.Second); n != 1 {
		return r, fmt.Sprintf("spawn_idle: %d goroutines left after the stop", n-1)
	}
	return r, ""
}

// waitGoroutines waits (untimed, up to limit) until at most want goroutines are left: a
// goroutine that has signalled its end may still be on its way out.
func waitGoroutines(want int, limit time.Duration) int {
	deadline := time.Now().Add(limit)
	for runtime.NumGoroutine() > want && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	return runtime.NumGoroutine()
}

func w1() result {
	// The channel list is the benchmark's bookkeeping, not the goroutines' cost: touched
	// before the resident size is taken.
	stops := make([]chan struct{}, w1Processes)
	for i := range stops {
		stops[i] = nil
	}
	cold, err := w1Round1(stops)
	if err != "" {
		return result{err: err}
	}
	r := result{
		counters: map[string]float64{"spawn_ms": cold.spawnMs, "stop_ms": cold.stopMs, "bytes_per_process": cold.bytesPerProcess},
		label:    "goroutines; acknowledgements on one shared buffered channel, stop on each goroutine's own unbuffered channel; all gone = a WaitGroup",
	}
	// A second, warm round in the same process, only when asked for (BENCHMARKS.md: the
	// headline is the first, cold round).
	if os.Getenv("GO_PEER_W1_WARM") != "" {
		warm, err := w1Round1(stops)
		if err != "" {
			return result{err: "warm round: " + err}
		}
		r.counters["warm_spawn_ms"] = warm.spawnMs
		r.counters["warm_stop_ms"] = warm.stopMs
		r.counters["warm_bytes_per_process"] = warm.bytesPerProcess
		r.label += "; warm_* = a second round in the same process"
	}
	return r
}

// ---------------------------------------------------------------------------------------
// W2 dynsup_1m, hand-rolled: a supervisor goroutine starts "GenServer" children on request.
// Each child is a goroutine with a mailbox channel and one integer of state; its start is
// synchronous (the child acknowledges its init to the supervisor, which then replies to the
// client), as start_child is. The supervisor keeps its children in a map, is told of each
// child's exit by a message, restarts a permanent child that exits outside a shutdown, and
// on shutdown stops every child and waits for each one's exit notification.

const w2Children = 1_000_000

type w2Call struct {
	reply chan int64
}

type w2Child struct {
	id    uint64
	value int64
	mbox  chan w2Call
}

type w2Exit struct {
	id     uint64
	reason string
}

type w2StartReq struct {
	value int64
	reply chan uint64 // the new child's id
}

type w2Sup struct {
	starts   chan w2StartReq
	shutdown chan chan int // replies with the number of children left behind
}

func w2ChildLoop(c *w2Child, initAck chan<- struct{}, exits chan<- w2Exit) {
	// init: nothing to do but acknowledge the start.
	initAck <- struct{}{}
	for call := range c.mbox { // a closed mailbox is the supervisor's shutdown
		call.reply <- c.value
	}
	exits <- w2Exit{c.id, "shutdown"}
}

// maxChildren is DynamicSupervisor's max_children: the exit notifications' channel holds
// that many, so that no child ever blocks telling the supervisor it is gone (an Erlang
// mailbox never blocks; with a 1024-slot channel the shutdown took half as long again).
func w2Supervisor(sup w2Sup, maxChildren int) {
	children := make(map[uint64]*w2Child)
	exits := make(chan w2Exit, maxChildren)
	initAck := make(chan struct{})
	var next uint64
	start := func(value int64) uint64 {
		next++
		c := &w2Child{id: next, value: value, mbox: make(chan w2Call)}
		go w2ChildLoop(c, initAck, exits)
		<-initAck
		children[c.id] = c
		return c.id
	}
	for {
		select {
		case req := <-sup.starts:
			if len(children) >= maxChildren {
				req.reply <- 0 // max_children reached
				continue
			}
			req.reply <- start(req.value)
		case e := <-exits: // a permanent child exited on its own: restart it
			if c, ok := children[e.id]; ok {
				delete(children, e.id)
				start(c.value)
			}
		case reply := <-sup.shutdown:
			for _, c := range children {
				close(c.mbox)
			}
			for len(children) > 0 {
				e := <-exits
				delete(children, e.id)
			}
			reply <- len(children)
			return
		}
	}
}

func w2() result {
	sup := w2Sup{starts: make(chan w2StartReq), shutdown: make(chan chan int)}
	go w2Supervisor(sup, w2Children)
	reply := make(chan uint64)
	before := residentBytes()
	start := time.Now()
	var last uint64
	for i := 0; i < w2Children; i++ {
		sup.starts <- w2StartReq{value: 7, reply: reply}
		id := <-reply
		if id != last+1 {
			return failed("dynsup: start %d returned child %d", i, id)
		}
		last = id
	}
	startMs := ms(time.Since(start))
	bytes := (residentBytes() - before) / w2Children
	if n := runtime.NumGoroutine(); n != w2Children+2 {
		return failed("dynsup: %d goroutines after the starts, not %d", n, w2Children+2)
	}
	stopStart := time.Now()
	done := make(chan int)
	sup.shutdown <- done
	left := <-done
	shutdownMs := ms(time.Since(stopStart))
	if left != 0 {
		return failed("dynsup: %d children left after the shutdown", left)
	}
	if n := waitGoroutines(1, time.Second); n != 1 {
		return failed("dynsup: %d goroutines left after the shutdown", n-1)
	}
	return result{
		counters: map[string]float64{"start_ms": startMs, "shutdown_ms": shutdownMs, "bytes_per_child": bytes},
		label:    "hand-rolled: a supervisor goroutine (children in a map, exit notifications as messages on a channel of max_children slots) starts goroutine children with a mailbox channel and one integer, each start acknowledged before the next; shutdown closes every mailbox and waits for every exit notification",
	}
}

// ---------------------------------------------------------------------------------------
// W3 restart_latency and W3b restart_one_for_all_100, hand-rolled: a supervisor goroutine
// with a one_for_one (W3, one child registered under a name) or one_for_all (W3b, 100
// children) strategy and a restart intensity (1,000,000 in 1 s). A goroutine cannot be
// killed from outside: the kill is closing the child's kill channel, which the idle child
// selects on. The child's exit notification is a message to the supervisor, which restarts
// (one_for_all: first shuts the others down, in reverse start order, each waited for) with
// a synchronous start: the new child's init reports to the benchmark, then acknowledges
// the start.

type w3Child struct {
	index    int
	kill     chan struct{} // closed by the benchmark: the untrappable kill
	shutdown chan struct{} // closed by the supervisor
	mbox     chan any      // the idle GenServer's mailbox
}

type w3Exit struct {
	child  *w3Child
	reason string
}

type w3Ready struct {
	child *w3Child
	index int
}

func w3ChildLoop(c *w3Child, bench chan<- w3Ready, initAck chan<- struct{}, exits chan<- w3Exit) {
	bench <- w3Ready{c, c.index} // init reports to the benchmark
	initAck <- struct{}{}
	for {
		select {
		case <-c.kill:
			exits <- w3Exit{c, "killed"}
			return
		case <-c.shutdown:
			exits <- w3Exit{c, "shutdown"}
			return
		case <-c.mbox:
		}
	}
}

// The registry of names (W3's child is registered as "w3_worker").
var registry sync.Map

type w3Flags struct {
	oneForAll bool
	intensity int
	period    time.Duration
}

// w3Supervisor starts the children, restarts them as its strategy says, and on stop shuts
// them all down; it replies "" on stop, or the reason it gave up.
func w3Supervisor(n int, flags w3Flags, bench chan<- w3Ready, stop chan chan string) {
	children := make([]*w3Child, n)
	exits := make(chan w3Exit, n)
	initAck := make(chan struct{})
	start := func(i int) {
		c := &w3Child{index: i, kill: make(chan struct{}), shutdown: make(chan struct{}), mbox: make(chan any)}
		// The name is taken before the child runs, as a gen_server registers before its init:
		// the child's report to the benchmark may come before the supervisor's next step.
		if n == 1 {
			registry.Store("w3_worker", c)
		}
		go w3ChildLoop(c, bench, initAck, exits)
		<-initAck
		children[i] = c
	}
	// Shut a child down and wait for its exit notification (others that arrive meanwhile
	// are children already gone).
	terminate := func(c *w3Child) {
		close(c.shutdown)
		for e := range exits {
			if e.child == c {
				return
			}
		}
	}
	// The restart times inside the intensity window: a queue, oldest first, so that
	// forgetting the old ones costs O(1) per restart.
	var restarts []time.Time
	var gaveUp string
	for i := 0; i < n; i++ {
		start(i)
	}
	for {
		select {
		case e := <-exits:
			if gaveUp != "" || children[e.child.index] != e.child {
				continue // a child already replaced
			}
			now := time.Now()
			restarts = append(restarts, now)
			for len(restarts) > 0 && now.Sub(restarts[0]) > flags.period {
				restarts = restarts[1:]
			}
			if len(restarts) > flags.intensity {
				gaveUp = "reached the restart intensity"
				for j := n - 1; j >= 0; j-- {
					if children[j] != e.child {
						terminate(children[j])
					}
				}
				continue
			}
			if !flags.oneForAll {
				start(e.child.index)
				continue
			}
			for j := n - 1; j >= 0; j-- {
				if j != e.child.index {
					terminate(children[j])
				}
			}
			for j := 0; j < n; j++ {
				start(j)
			}
		case reply := <-stop:
			if gaveUp == "" {
				for j := n - 1; j >= 0; j-- {
					terminate(children[j])
				}
			}
			reply <- gaveUp
			return
		}
	}
}

// writeSamples writes every latency (µs, one per line, in the order measured) to
// $PEER_LATENCY_SAMPLES_DIR/<workload>.txt when that is set, for tools/plot's distributions.
func writeSamples(workload string, us []float64) {
	dir := os.Getenv("PEER_LATENCY_SAMPLES_DIR")
	if dir == "" {
		return
	}
	var b strings.Builder
	for _, u := range us {
		b.WriteString(strconv.FormatFloat(u, 'f', 3, 64))
		b.WriteByte('\n')
	}
	if err := os.WriteFile(dir+"/"+workload+".txt", []byte(b.String()), 0o644); err != nil {
		progress("cannot write latency samples: %v", err)
	}
}

func percentiles(us []float64) map[string]float64 {
	sort.Float64s(us)
	at := func(q float64) float64 {
		i := int(q * float64(len(us)))
		if i > len(us)-1 {
			i = len(us) - 1
		}
		return us[i]
	}
	return map[string]float64{"p50_us": at(0.50), "p90_us": at(0.90), "p99_us": at(0.99), "p999_us": at(0.999), "max_us": us[len(us)-1]}
}

func w3(oneForAll bool, n, rounds int) result {
	bench := make(chan w3Ready, n) // the benchmark's mailbox
	stop := make(chan chan string)
	go w3Supervisor(n, w3Flags{oneForAll: oneForAll, intensity: 1_000_000, period: time.Second}, bench, stop)
	children := make([]*w3Child, n)
	for i := 0; i < n; i++ {
		r := <-bench
		children[r.index] = r.child
	}
	if n == 1 {
		if v, ok := registry.Load("w3_worker"); !ok || v.(*w3Child) != children[0] {
			return failed("restart_latency: w3_worker is not registered as the child")
		}
	}
	us := make([]float64, 0, rounds)
	reports := 0
	for round := 0; round < rounds; round++ {
		victim := round % n
		before := time.Now()
		close(children[victim].kill)
		for got := 0; got < n; got++ {
			r := <-bench
			children[r.index] = r.child
			reports++
		}
		us = append(us, float64(time.Since(before).Nanoseconds())/1e3)
	}
	reply := make(chan string)
	stop <- reply
	if gaveUp := <-reply; gaveUp != "" {
		return failed("restart_latency: the supervisor %s", gaveUp)
	}
	if reports != rounds*n {
		return failed("restart_latency: %d reports, not %d", reports, rounds*n)
	}
	if left := waitGoroutines(1, time.Second); left != 1 {
		return failed("restart_latency: %d goroutines left after the stop", left-1)
	}
	strategy := "one_for_one, one child registered under a name"
	workload := "W3_restart_latency"
	if oneForAll {
		strategy = "one_for_all, 100 children"
		workload = "W3b_restart_one_for_all_100"
	}
	writeSamples(workload, us)
	return result{
		counters: percentiles(us),
		label:    "hand-rolled (" + strategy + "): a supervisor goroutine restarts on the child's exit notification (a message); kill = closing the child's kill channel; intensity counted, no links or signals",
	}
}

// ---------------------------------------------------------------------------------------
// W4 skynet_1m: the classic Go skynet, unbuffered channels; the root is the benchmark's
// goroutine.

const (
	skynetLeaves = 1_000_000
	skynetFanOut = 10
	skynetSum    = skynetLeaves * (skynetLeaves - 1) / 2
)

func skynet(parent chan<- uint64, first, size uint64) {
	if size == 1 {
		parent <- first
		return
	}
	replies := make(chan uint64)
	childSize := size / skynetFanOut
	for i := uint64(0); i < skynetFanOut; i++ {
		go skynet(replies, first+i*childSize, childSize)
	}
	var sum uint64
	for i := 0; i < skynetFanOut; i++ {
		sum += <-replies
	}
	parent <- sum
}

func w4() result {
	start := time.Now()
	replies := make(chan uint64)
	childSize := uint64(skynetLeaves / skynetFanOut)
	for i := uint64(0); i < skynetFanOut; i++ {
		go skynet(replies, i*childSize, childSize)
	}
	var sum uint64
	for i := 0; i < skynetFanOut; i++ {
		sum += <-replies
	}
	wall := ms(time.Since(start))
	if sum != skynetSum {
		return failed("skynet: the root got %d, not %d", sum, uint64(skynetSum))
	}
	return result{counters: map[string]float64{"wall_ms": wall}, label: "goroutines, unbuffered channels"}
}

// ---------------------------------------------------------------------------------------
// W5 ping_pong: two goroutines, a million round trips over two unbuffered channels. The run
// script sets GOMAXPROCS=1 for workers:1 and leaves Go's default for workers:2.

const pingPongRoundTrips = 1_000_000

func ponger(ping <-chan uint32, pong chan<- uint32) {
	for n := range ping {
		pong <- n
	}
}

func w5(workers int) result {
	procs := runtime.GOMAXPROCS(0)
	if workers == 1 && procs != 1 {
		return failed("ping_pong: GOMAXPROCS is %d, not 1 (the run script sets it)", procs)
	}
	ping := make(chan uint32)
	pong := make(chan uint32)
	go ponger(ping, pong)
	start := time.Now()
	var got uint32
	for i := uint32(0); i < pingPongRoundTrips; i++ {
		ping <- i
		if <-pong == i {
			got++
		}
	}
	wall := time.Since(start)
	close(ping)
	if got != pingPongRoundTrips {
		return failed("ping_pong: %d round trips came back, not %d", got, pingPongRoundTrips)
	}
	return result{
		counters: map[string]float64{"ns_per_round_trip": float64(wall.Nanoseconds()) / pingPongRoundTrips},
		label:    fmt.Sprintf("unbuffered channels, GOMAXPROCS=%d", procs),
	}
}

// ---------------------------------------------------------------------------------------
// W6 fan_in: a thousand sender goroutines each send ten thousand numbers (their own) to
// one receiver over one bounded channel.

const (
	fanInSenders    = 1_000
	fanInPerSender  = 10_000
	fanInMessages   = fanInSenders * fanInPerSender
	fanInExpected   = fanInPerSender * (fanInSenders * (fanInSenders - 1) / 2)
	fanInChannelCap = 1024
)

func w6() result {
	in := make(chan uint64, fanInChannelCap)
	start := time.Now()
	for i := uint64(0); i < fanInSenders; i++ {
		go func(number uint64) {
			for j := 0; j < fanInPerSender; j++ {
				in <- number
			}
		}(i)
	}
	var count, sum uint64
	for count < fanInMessages {
		sum += <-in
		count++
	}
	wall := time.Since(start)
	if sum != fanInExpected {
		return failed("fan_in: the messages' numbers sum to %d, not %d", sum, uint64(fanInExpected))
	}
	return result{
		counters: map[string]float64{"wall_ms": ms(wall), "msgs_per_s": fanInMessages / wall.Seconds()},
		label:    fmt.Sprintf("bounded channel (capacity %d)", fanInChannelCap),
	}
}

// ---------------------------------------------------------------------------------------
// W7 pairs_throughput: a thousand pairs, each a pinger goroutine that starts its ponger and
// plays ten thousand round trips over two unbuffered channels, then tells the driver.

const (
	pairs           = 1_000
	pairRoundTrips  = 10_000
	pairsRoundTrips = pairs * pairRoundTrips
)

func pinger(done chan<- uint32) {
	ping := make(chan uint32)
	pong := make(chan uint32)
	go ponger(ping, pong)
	var got uint32
	for i := uint32(0); i < pairRoundTrips; i++ {
		ping <- i
		if <-pong == i {
			got++
		}
	}
	close(ping)
	done <- got
}

func w7() result {
	done := make(chan uint32)
	start := time.Now()
	for i := 0; i < pairs; i++ {
		go pinger(done)
	}
	var total uint64
	for i := 0; i < pairs; i++ {
		total += uint64(<-done)
	}
	wall := time.Since(start)
	if total != pairsRoundTrips {
		return failed("pairs: %d round trips, not %d", total, pairsRoundTrips)
	}
	return result{
		counters: map[string]float64{"wall_ms": ms(wall), "round_trips_per_s": pairsRoundTrips / wall.Seconds()},
		label:    "goroutine pairs, unbuffered channels",
	}
}

// ---------------------------------------------------------------------------------------

var workloads = map[string]func() result{
	"W1_spawn_idle_1m":            w1,
	"W2_dynsup_1m":                w2,
	"W3_restart_latency":          func() result { return w3(false, 1, 10_000) },
	"W3b_restart_one_for_all_100": func() result { return w3(true, 100, 1_000) },
	"W4_skynet_1m":                w4,
	"W5_ping_pong/workers:1":      func() result { return w5(1) },
	"W5_ping_pong/workers:2":      func() result { return w5(2) },
	"W6_fan_in":                   w6,
	"W7_pairs_throughput":         w7,
}

func main() {
	args := os.Args[1:]
	if len(args) == 3 && args[0] == "error" {
		emit(line{Workload: args[1], Error: args[2]})
		return
	}
	if len(args) == 1 && args[0] == "list" {
		names := make([]string, 0, len(workloads))
		for name := range workloads {
			names = append(names, name)
		}
		sort.Strings(names)
		fmt.Println(strings.Join(names, "\n"))
		return
	}
	if len(args) != 1 || workloads[args[0]] == nil {
		fmt.Fprintln(os.Stderr, "usage: coppice-go-peer WORKLOAD | list | error WORKLOAD REASON")
		os.Exit(2)
	}
	name := args[0]
	progress("%s (GOMAXPROCS=%d, %s)", name, runtime.GOMAXPROCS(0), runtime.Version())
	r := workloads[name]()
	if r.err != "" {
		emit(line{Workload: name, Error: r.err})
		os.Exit(1)
	}
	emit(line{Workload: name, Counters: r.counters, Label: r.label})
}
