// The go case of tests/apps/run-apps.sh: a Go program (the Go runtime's own threads, its
// signal-based preemption, its netpoller, its garbage collector) with goroutines, a child
// process and an HTTP server.
//
//	go-app DIR
//
// 64 MiB of heap ([]uint64) holding a pattern, and a map of 20,000 keys; 4 worker goroutines,
// each chaining SHA-256 digests (every round computed twice: the two must agree); a
// time.Ticker (5 ms) counting ticks, and a chain of time.AfterFunc (20 ms each) feeding a
// channel that a goroutine drains; a child (cat, through os/exec pipes) that a goroutine sends
// a numbered line to every 20 ms, checking each comes back; an HTTP server on 127.0.0.1 (a free
// port, written to DIR/port), keep-alive with no timeouts: "GET /mark" checks the heap and the
// map, records every counter and answers "request N on connection C" (200), or 500 and the
// reasons; "GET /ping" answers "pong".
//
// Prints "READY <pid of cat>" once all runs.
// SIGTERM: checks two marks were taken, that the workers, the ticker, the AfterFunc chain and
// the round trips with cat went on after the second with no wrong result, the heap and the map
// are intact, then runs the garbage collector with 256 MiB more allocated and 1 GiB churned;
// prints PASS or "FAIL: " and the reasons. APPS_CORRUPT=heap|workers|timers|child breaks that
// state when the second mark is taken (the test's check that each check can fail).
package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const heapWords = 64 << 20 / 8

var (
	heap     []uint64
	table    map[string]int
	stopAll  atomic.Bool
	ticks    atomic.Int64
	chained  atomic.Int64
	trips    atomic.Int64
	tripErrs atomic.Int64
	rounds   [4]atomic.Int64
	badHash  atomic.Int64
	corrupt  = os.Getenv("APPS_CORRUPT")
)

func pattern(i int) uint64 { return uint64(i)*0x9E3779B97F4A7C15 ^ 0x5a17 }

// heapAndTable: "" if the heap and the map hold what was put there
func heapAndTable() string {
	for i := range heap {
		if heap[i] != pattern(i) {
			return fmt.Sprintf("heap word %d differs", i)
		}
	}
	if len(table) != 20000 {
		return fmt.Sprintf("the map has %d keys", len(table))
	}
	for i := 0; i < 20000; i++ {
		if table[fmt.Sprintf("key-%d", i)] != i*i {
			return fmt.Sprintf("map key-%d differs", i)
		}
	}
	return ""
}

// worker n: a SHA-256 chain; each round checks the previous digest is the one it kept
func worker(n int) {
	var prev [32]byte
	var buf [40]byte
	for r := int64(0); !stopAll.Load(); r++ {
		copy(buf[:32], prev[:])
		binary.LittleEndian.PutUint64(buf[32:], uint64(r))
		d := sha256.Sum256(buf[:])
		again := sha256.Sum256(buf[:])
		if d != again {
			badHash.Add(1)
		}
		prev = d
		rounds[n].Store(r + 1)
		if r%64 == 0 {
			runtime.Gosched()
		}
	}
}

// catLoop: a numbered line to cat every 20 ms, each must come back
func catLoop(in io.Writer, out *bufio.Reader) {
	for i := 1; !stopAll.Load(); i++ {
		line := fmt.Sprintf("line %d\n", i)
		if _, err := io.WriteString(in, line); err != nil {
			tripErrs.Add(1)
			return
		}
		got, err := out.ReadString('\n')
		if err != nil || got != line {
			tripErrs.Add(1)
			return
		}
		trips.Add(1)
		time.Sleep(20 * time.Millisecond)
	}
}

type mark struct{ ticks, chained, trips, workers int64 }

func counters() mark {
	m := mark{ticks.Load(), chained.Load(), trips.Load(), 0}
	for i := range rounds {
		if i == 0 || rounds[i].Load() < m.workers {
			m.workers = rounds[i].Load()
		}
	}
	return m
}

type connKey struct{}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: go-app DIR")
		os.Exit(2)
	}
	dir := os.Args[1]
	heap = make([]uint64, heapWords)
	for i := range heap {
		heap[i] = pattern(i)
	}
	table = make(map[string]int)
	for i := 0; i < 20000; i++ {
		table[fmt.Sprintf("key-%d", i)] = i * i
	}
	for i := range rounds {
		go worker(i)
	}
	ticker := time.NewTicker(5 * time.Millisecond)
	go func() {
		for range ticker.C {
			ticks.Add(1)
		}
	}()
	feed := make(chan int, 16)
	var chain func()
	chain = func() {
		if corrupt == "timers" && len(marksTaken()) >= 2 {
			return
		}
		feed <- 1
		time.AfterFunc(20*time.Millisecond, chain)
	}
	time.AfterFunc(20*time.Millisecond, chain)
	go func() {
		for range feed {
			chained.Add(1)
		}
	}()
	cat := exec.Command("cat")
	catIn, err1 := cat.StdinPipe()
	catOut, err2 := cat.StdoutPipe()
	if err1 != nil || err2 != nil || cat.Start() != nil {
		fmt.Println("FAIL: cannot start cat")
		os.Exit(1)
	}
	go catLoop(catIn, bufio.NewReader(catOut))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("FAIL: listen:", err)
		os.Exit(1)
	}
	var connections atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/ping", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "pong") })
	mux.HandleFunc("/mark", func(w http.ResponseWriter, r *http.Request) {
		c := r.Context().Value(connKey{}).(*connState)
		c.requests++
		takeMark()
		if len(marksTaken()) == 2 {
			breakState(cat)
		}
		if bad := heapAndTable(); bad != "" {
			w.WriteHeader(500)
			io.WriteString(w, bad+"\n")
			return
		}
		fmt.Fprintf(w, "request %d on connection %d\n", c.requests, c.number)
	})
	srv := &http.Server{Handler: mux, ConnContext: func(ctx context.Context, c net.Conn) context.Context {
		return context.WithValue(ctx, connKey{}, &connState{number: connections.Add(1)})
	}}
	go srv.Serve(ln)
	port := ln.Addr().(*net.TCPAddr).Port
	if err := os.WriteFile(filepath.Join(dir, "port"), []byte(fmt.Sprint(port)), 0o644); err != nil {
		fmt.Println("FAIL: port file:", err)
		os.Exit(1)
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	fmt.Printf("READY %d\n", cat.Process.Pid)

	<-term
	verdict := finalChecks()
	stopAll.Store(true)
	ticker.Stop()
	catIn.Close()
	cat.Wait()
	if verdict == "" {
		fmt.Println("PASS")
	} else {
		fmt.Println("FAIL: " + verdict)
	}
}

type connState struct {
	number   int64
	requests int
}

var (
	marksMu sync.Mutex
	marks   []mark
)

func takeMark() {
	marksMu.Lock()
	defer marksMu.Unlock()
	marks = append(marks, counters())
}

func marksTaken() []mark {
	marksMu.Lock()
	defer marksMu.Unlock()
	return append([]mark(nil), marks...)
}

// breakState: APPS_CORRUPT's state broken at the second mark
func breakState(cat *exec.Cmd) {
	switch corrupt {
	case "heap":
		heap[12345] ^= 1
	case "workers":
		stopAll.Store(true)
	case "child":
		cat.Process.Kill()
	}
}

func finalChecks() string {
	var bad []string
	ms := marksTaken()
	if len(ms) < 2 {
		return fmt.Sprintf("%d marks taken, expected 2", len(ms))
	}
	time.Sleep(300 * time.Millisecond) // everything has had time to go on
	m, now := ms[1], counters()
	if now.workers <= m.workers {
		bad = append(bad, fmt.Sprintf("the workers did not go on (%d rounds at the mark, %d now)", m.workers, now.workers))
	}
	if now.ticks <= m.ticks {
		bad = append(bad, fmt.Sprintf("the ticker did not go on (%d, %d)", m.ticks, now.ticks))
	}
	if now.chained <= m.chained {
		bad = append(bad, fmt.Sprintf("the AfterFunc chain did not go on (%d, %d)", m.chained, now.chained))
	}
	if now.trips <= m.trips || tripErrs.Load() != 0 {
		bad = append(bad, fmt.Sprintf("the round trips with cat: %d at the mark, %d now, %d errors", m.trips, now.trips, tripErrs.Load()))
	}
	if badHash.Load() != 0 {
		bad = append(bad, fmt.Sprintf("%d hash rounds computed wrong", badHash.Load()))
	}
	if s := heapAndTable(); s != "" {
		bad = append(bad, s)
	}
	// the collector after the restore: 256 MiB more kept, 1 GiB churned
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	keep := make([][]byte, 0, 256)
	for i := 0; i < 256; i++ {
		b := make([]byte, 1<<20)
		b[i] = byte(i)
		keep = append(keep, b)
	}
	for i := 0; i < 1024; i++ {
		b := make([]byte, 1<<20)
		b[0] = byte(i)
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	for i, b := range keep {
		if b[i] != byte(i) {
			bad = append(bad, "memory kept across the collection changed")
			break
		}
	}
	if after.NumGC <= before.NumGC {
		bad = append(bad, "no garbage collection ran")
	}
	return strings.Join(bad, "; ")
}
