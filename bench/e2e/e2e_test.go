package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/jwtrevoke/jwtrevoke/internal/revoker"
)

// waitFor polls cond until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, cond func() bool) bool {
	t.Helper()
	return waitUntil(t.Context(), timeout, cond)
}

func TestParseApplied(t *testing.T) {
	// The line cmd/example -log-applied writes, produced the same way.
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).LogAttrs(context.Background(), slog.LevelInfo, appliedMsg,
		slog.String("id", "rev.abc"), slog.Int64("applied_unix_ns", 1_700_000_000_123_456_789))
	for _, tc := range []struct {
		name    string
		line    string
		wantID  string
		wantNs  int64
		wantErr error
	}{
		{name: "slog line", line: strings.TrimSpace(buf.String()), wantID: "rev.abc", wantNs: 1_700_000_000_123_456_789},
		{name: "other message", line: `{"msg":"example service listening","addr":"127.0.0.1:1"}`, wantErr: errNotApplied},
		{name: "no instant", line: `{"msg":"revocation applied","id":"x"}`, wantErr: errNotApplied},
		{name: "no id", line: `{"msg":"revocation applied","applied_unix_ns":5}`, wantErr: errNotApplied},
		{name: "not json", line: `example: bad flag`, wantErr: errNotApplied},
		{name: "broken json", line: `{"msg":`, wantErr: errNotApplied},
		{name: "empty", line: ``, wantErr: errNotApplied},
		{name: "escaped id", line: `{"msg":"revocation applied","id":"a\u0041","applied_unix_ns":5}`, wantErr: errNotApplied},
		{name: "instant not a number", line: `{"msg":"revocation applied","id":"x","applied_unix_ns":5x}`, wantErr: errNotApplied},
		{name: "cut short", line: `{"msg":"revocation applied","id":"x","applied_unix_ns":5`, wantErr: errNotApplied},
		{name: "another message with the fields", line: `{"msg":"not ready","id":"x","applied_unix_ns":5}`, wantErr: errNotApplied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, at, err := parseApplied([]byte(tc.line))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if err == nil && (id != tc.wantID || at.UnixNano() != tc.wantNs) {
				t.Fatalf("got %q %d, want %q %d", id, at.UnixNano(), tc.wantID, tc.wantNs)
			}
		})
	}
}

func TestQuantile(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	for _, tc := range []struct {
		name   string
		sorted []time.Duration
		q      float64
		want   time.Duration
	}{
		{name: "empty", sorted: nil, q: .5, want: 0},
		{name: "one", sorted: []time.Duration{7}, q: .99, want: 7},
		{name: "p50 of 100", sorted: hundred, q: .5, want: 50 * time.Millisecond},
		{name: "p99 of 100", sorted: hundred, q: .99, want: 99 * time.Millisecond},
		{name: "max", sorted: hundred, q: 1, want: 100 * time.Millisecond},
		{name: "p0", sorted: hundred, q: 0, want: time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := quantile(tc.sorted, tc.q); got != tc.want {
				t.Fatalf("quantile(%g) = %v, want %v", tc.q, got, tc.want)
			}
		})
	}
}

// sampleResults are two rates: the first with a failed call and one replica
// that never reported an event.
func sampleResults() []rateResult {
	t0 := time.Unix(1_700_000_000, 0)
	return []rateResult{{
		Target: 10,
		Calls: []call{
			{Start: t0, Took: 2 * time.Millisecond, ID: "a"},
			{Start: t0.Add(100 * time.Millisecond), Took: 4 * time.Millisecond, ID: "b"},
			{Start: t0.Add(200 * time.Millisecond), Took: 30 * time.Millisecond, Err: errors.New("bench: revoke: 503, busy")},
		},
		Elapsed: 230 * time.Millisecond,
		Applied: [][]time.Duration{{3 * time.Millisecond, 5 * time.Millisecond}, {-1, 4 * time.Millisecond}, nil},
	}, {
		Target:  1000,
		Calls:   []call{{Start: t0.Add(time.Second), Took: time.Millisecond, ID: "c"}},
		Elapsed: time.Millisecond,
		Applied: [][]time.Duration{{2 * time.Millisecond, 2500 * time.Microsecond}},
	}}
}

func TestSummarize(t *testing.T) {
	s := sampleResults()[0].summarize()
	want := summary{
		Target: 10, Sent: 3, Acked: 2, Failed: 1, Missing: 1, PropSamples: 3, CallsSmp: 2,
		Prop:      quantiles{P50: 4 * time.Millisecond, P99: 5 * time.Millisecond, Max: 5 * time.Millisecond},
		Call:      quantiles{P50: 2 * time.Millisecond, P99: 4 * time.Millisecond, Max: 4 * time.Millisecond},
		Sustained: 2 / 0.23,
	}
	if s != want {
		t.Fatalf("summary\n got %+v\nwant %+v", s, want)
	}
	var tab bytes.Buffer
	if err := writeTable(&tab, []summary{s}); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(tab.String()), "\n"); len(lines) != 3 || !strings.Contains(lines[2], "| 10 ") {
		t.Fatalf("table:\n%s", tab.String())
	}
}

// sampleWait is a wait phase of three calls: one complete, one that timed
// out with a replica pending, one failed.
func sampleWait() *waitResult {
	t0 := time.Unix(1_700_000_100, 0)
	return &waitResult{
		rateResult: rateResult{
			Target: 100,
			Calls: []call{
				{Start: t0, Took: 6 * time.Millisecond, ID: "w1"},
				{Start: t0.Add(10 * time.Millisecond), Took: 2010 * time.Millisecond, ID: "w2"},
				{Start: t0.Add(20 * time.Millisecond), Took: time.Millisecond, Err: errors.New("bench: revoke: 503")},
			},
			Elapsed: 2020 * time.Millisecond,
			Applied: [][]time.Duration{{3 * time.Millisecond, 5 * time.Millisecond}, {4 * time.Millisecond, -1}, nil},
		},
		Answers: []revoker.Result{
			{ID: "w1", Seq: 7, Enforcement: &revoker.Enforcement{Complete: true, Replicas: 2, Confirmed: 2, TookMs: 1}},
			{ID: "w2", Seq: 8, Enforcement: &revoker.Enforcement{Replicas: 2, Confirmed: 1, Pending: []string{"r-2"}, TookMs: 2000}},
			{},
		},
	}
}

func TestWriteCSV(t *testing.T) {
	var buf bytes.Buffer
	if err := writeCSV(&buf, sampleResults(), sampleWait(), 2); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatalf("not CSV: %v\n%s", err, buf.String())
	}
	want := [][]string{
		{"target_rate", "call", "start_ms", "call_ms", "error", "replica0_ms", "replica1_ms",
			"phase", "enforcement_took_ms", "enforcement_complete", "enforcement_confirmed", "enforcement_replicas"},
		{"10", "0", "0.000", "2.00", "", "3.00", "5.00", "rate", "", "", "", ""},
		{"10", "1", "100.000", "4.00", "", "", "4.00", "rate", "", "", "", ""},
		{"10", "2", "200.000", "30.00", "bench: revoke: 503; busy", "", "", "rate", "", "", "", ""},
		{"1000", "0", "0.000", "1.00", "", "2.00", "2.50", "rate", "", "", "", ""},
		{"100", "0", "0.000", "6.00", "", "3.00", "5.00", "wait", "1", "true", "2", "2"},
		{"100", "1", "10.000", "2010.00", "", "4.00", "", "wait", "2000", "false", "1", "2"},
		{"100", "2", "20.000", "1.00", "bench: revoke: 503", "", "", "wait", "", "", "", ""},
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d:\n%s", len(rows), len(want), buf.String())
	}
	for i := range want {
		if strings.Join(rows[i], "|") != strings.Join(want[i], "|") {
			t.Errorf("row %d = %q, want %q", i, rows[i], want[i])
		}
	}
}

func TestWriteCDF(t *testing.T) {
	for _, tc := range []struct {
		name      string
		results   []rateResult
		polylines int
	}{
		{name: "two rates", results: sampleResults(), polylines: 4},
		{name: "nothing", results: nil, polylines: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := writeCDF(&buf, tc.results, `a <title> & "more"`); err != nil {
				t.Fatal(err)
			}
			dec := xml.NewDecoder(&buf)
			polylines := 0
			for {
				tok, err := dec.Token()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("not well-formed XML: %v", err)
				}
				if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "polyline" {
					polylines++
				}
			}
			if polylines != tc.polylines {
				t.Fatalf("%d polylines, want %d", polylines, tc.polylines)
			}
		})
	}
}

func TestWriteOutputs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "docs")
	if err := writeOutputs(dir, sampleResults(), nil, 2); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"propagation.svg", "propagation.csv"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Fatalf("%s: %v", f, err)
		}
	}
}

func TestDrive(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for _, tc := range []struct {
		name     string
		rate     float64
		n        int
		maxDur   time.Duration
		workers  int
		callTime time.Duration
		fail     bool
		// The duration bound admits a call due exactly at it when the
		// scheduler is quick, hence a range.
		wantMin, wantMax int
	}{
		{name: "all sent", rate: 200, n: 20, maxDur: 5 * time.Second, workers: 4, wantMin: 20, wantMax: 20},
		{name: "bounded by duration", rate: 20, n: 1000, maxDur: 200 * time.Millisecond, workers: 4, wantMin: 3, wantMax: 5},
		{name: "failures recorded", rate: 1000, n: 10, maxDur: time.Second, workers: 2, fail: true, wantMin: 10, wantMax: 10},
		{name: "one worker, slow calls", rate: 1000, n: 5, maxDur: 5 * time.Second, workers: 1, callTime: 10 * time.Millisecond, wantMin: 5, wantMax: 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var inFlight, most atomic.Int32
			start := time.Now()
			r := drive(ctx, tc.rate, tc.n, tc.maxDur, tc.workers, func(ctx context.Context, i int) (string, error) {
				n := inFlight.Add(1)
				defer inFlight.Add(-1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				if tc.callTime > 0 {
					// The simulated call's own duration, cut short if the
					// driver gives up; not a wait for a condition.
					timer := time.NewTimer(tc.callTime)
					defer timer.Stop()
					select {
					case <-timer.C:
					case <-ctx.Done():
						return "", ctx.Err()
					}
				}
				if tc.fail {
					return "", errors.New("bench: revoke: refused")
				}
				return "id-" + string(rune('a'+i%26)), nil
			})
			if len(r.Calls) < tc.wantMin || len(r.Calls) > tc.wantMax {
				t.Fatalf("%d calls, want %d..%d", len(r.Calls), tc.wantMin, tc.wantMax)
			}
			if int(most.Load()) > tc.workers {
				t.Fatalf("%d calls in flight, more than %d workers", most.Load(), tc.workers)
			}
			for i, c := range r.Calls {
				due := start.Add(time.Duration(float64(i) / tc.rate * float64(time.Second)))
				if c.Start.Before(due.Add(-time.Millisecond)) {
					t.Fatalf("call %d started %v before it was due", i, due.Sub(c.Start))
				}
				if (c.Err != nil) != tc.fail {
					t.Fatalf("call %d: err %v", i, c.Err)
				}
			}
			if tc.callTime > 0 && r.Elapsed < time.Duration(tc.n)*tc.callTime {
				t.Fatalf("elapsed %v with one worker and %d calls of %v", r.Elapsed, tc.n, tc.callTime)
			}
			if s := r.summarize(); s.Sent != len(r.Calls) || (s.Acked == 0) != tc.fail {
				t.Fatalf("summary %+v", s)
			}
		})
	}
}

func TestDriveStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	var calls atomic.Int32
	done := make(chan rateResult, 1)
	go func() {
		done <- drive(ctx, 100, 1_000_000, time.Hour, 2, func(context.Context, int) (string, error) {
			calls.Add(1)
			return "x", nil
		})
	}()
	if !waitFor(t, 5*time.Second, func() bool { return calls.Load() >= 3 }) {
		t.Fatal("no calls made")
	}
	cancel()
	select {
	case r := <-done:
		if len(r.Calls) >= 1_000_000 {
			t.Fatalf("sent everything: %d", len(r.Calls))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("drive did not stop on cancel")
	}
}

func TestHTTPRevoker(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var mu sync.Mutex // guards bodies and queries
	var bodies, queries []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies, queries = append(bodies, string(b)), append(queries, r.URL.RawQuery)
		mu.Unlock()
		waited := r.URL.Query().Get("wait") == "enforced"
		switch {
		case r.Header.Get("Authorization") != "Bearer cred":
			w.WriteHeader(http.StatusUnauthorized)
		case strings.Contains(string(b), `"p-1"`):
			http.Error(w, `{"error":"temporarily_unavailable"}`, http.StatusServiceUnavailable)
		case waited && !strings.Contains(string(b), `"p-4"`):
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, `{"id":"rev.2","seq":2,"enforcement":{"complete":true,"replicas":8,"confirmed":8,"failing_closed":[],"pending":[],"took_ms":3}}`)
		default: // p-4 with wait: an answer that does not say how far enforcement got
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, `{"id":"rev.1","seq":1}`)
		}
	}))
	defer srv.Close()
	enforced := revoker.Wait{Enforced: true}
	for _, tc := range []struct {
		name      string
		cred      string
		i         int
		wait      revoker.Wait
		wantID    string
		wantQuery string
		wantTook  int64 // in the kept answer; 0: none kept
		wantErr   bool
	}{
		{name: "acknowledged", cred: "cred", i: 0, wantID: "rev.1"},
		{name: "unavailable", cred: "cred", i: 1, wantErr: true},
		{name: "wrong credential", cred: "nope", i: 2, wantErr: true},
		{name: "enforced", cred: "cred", i: 3, wait: enforced, wantID: "rev.2", wantQuery: "wait=enforced", wantTook: 3},
		{name: "enforced, answer without enforcement", cred: "cred", i: 4, wait: enforced, wantQuery: "wait=enforced", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			answers := make([]revoker.Result, 5)
			id, err := httpRevoker(srv.Client(), srv.URL, tc.cred, "p", tc.wait, answers)(ctx, tc.i)
			if (err != nil) != tc.wantErr || id != tc.wantID {
				t.Fatalf("got %q, %v", id, err)
			}
			mu.Lock()
			query := queries[len(queries)-1]
			mu.Unlock()
			if query != tc.wantQuery {
				t.Fatalf("query %q, want %q", query, tc.wantQuery)
			}
			for j, a := range answers {
				if kept := j == tc.i && tc.wantTook > 0; kept != (a.Enforcement != nil) || (kept && (a.Enforcement.TookMs != tc.wantTook || a.ID != id)) {
					t.Fatalf("answers[%d] = %+v", j, a)
				}
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(bodies[0], `"type":"token"`) || !strings.Contains(bodies[0], `"jti":"p-0"`) || !strings.Contains(bodies[0], `"exp":`) {
		t.Fatalf("body %s", bodies[0])
	}
}

func TestNATSConfigParses(t *testing.T) {
	dir := t.TempDir()
	nodes := []natsNode{
		{Name: "n1", ClientPort: 14222, RoutePort: 16222, StoreDir: filepath.Join(dir, "n1")},
		{Name: "n2", ClientPort: 14223, RoutePort: 16223, StoreDir: filepath.Join(dir, "n2")},
		{Name: "n3", ClientPort: 14224, RoutePort: 16224, StoreDir: filepath.Join(dir, "n3")},
	}
	for i := range nodes {
		path := filepath.Join(dir, nodes[i].Name+".conf")
		if err := os.WriteFile(path, []byte(natsConfig(nodes, i)), 0o600); err != nil {
			t.Fatal(err)
		}
		o, err := server.ProcessConfigFile(path)
		if err != nil {
			t.Fatalf("node %d: nats-server rejects the config: %v\n%s", i, err, natsConfig(nodes, i))
		}
		if o.ServerName != nodes[i].Name || o.Host != "127.0.0.1" || o.Port != nodes[i].ClientPort ||
			!o.JetStream || o.StoreDir != nodes[i].StoreDir || o.Cluster.Port != nodes[i].RoutePort ||
			o.Cluster.Host != "127.0.0.1" || o.Cluster.Name != "bench" {
			t.Fatalf("node %d: options %+v", i, o)
		}
		if len(o.Routes) != 2 {
			t.Fatalf("node %d: %d routes, want 2", i, len(o.Routes))
		}
		for _, r := range o.Routes {
			if r.Hostname() != "127.0.0.1" || r.Port() == strconv.Itoa(nodes[i].RoutePort) {
				t.Fatalf("node %d: route %v", i, r)
			}
		}
	}
	if got := clientURLs(nodes); got != "nats://127.0.0.1:14222,nats://127.0.0.1:14223,nats://127.0.0.1:14224" {
		t.Fatalf("clientURLs = %s", got)
	}
}

func TestRSS(t *testing.T) {
	for _, tc := range []struct {
		name    string
		status  string
		want    int64
		wantErr bool
	}{
		{name: "kB", status: "Name:\tx\nVmRSS:\t   2048 kB\nThreads: 1\n", want: 2048 << 10},
		{name: "missing", status: "Name:\tx\n", wantErr: true},
		{name: "odd unit", status: "VmRSS: 5 MB\n", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseVmRSS(tc.status)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("got %d, %v", got, err)
			}
		})
	}
	if rss, err := rssBytes(os.Getpid()); err != nil || rss <= 0 {
		t.Fatalf("own RSS: %d, %v", rss, err)
	}
}

func TestProcsStartStop(t *testing.T) {
	var p procs
	t.Cleanup(p.Close)
	var mu sync.Mutex // guards lines
	var lines []string
	c, err := p.start("sh", "/bin/sh", []string{"-c", `echo "hello $JWTREVOKE_X $JWTREVOKE_Y"; exec sleep 60`},
		[]string{"JWTREVOKE_Y=set"}, func(b []byte) {
			mu.Lock()
			lines = append(lines, string(b))
			mu.Unlock()
		})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("JWTREVOKE_X", "inherited") // set after start: must not matter either way
	if !waitFor(t, 5*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(lines) == 1 }) {
		t.Fatalf("no output; tail %q", c.Tail())
	}
	mu.Lock()
	if lines[0] != "hello  set" {
		t.Errorf("line %q", lines[0])
	}
	mu.Unlock()
	stopped := time.Now()
	p.Close()
	if !c.Exited() || time.Since(stopped) > 4*time.Second {
		t.Fatalf("exited %v after %v", c.Exited(), time.Since(stopped))
	}
}

func TestWaitReady(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if hits.Add(1) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	var p procs
	t.Cleanup(p.Close)
	c, err := p.start("sleep", "/bin/sh", []string{"-c", "exec sleep 60"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := waitReady(t.Context(), srv.Client(), srv.URL, c, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	never := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer never.Close()
	if _, err := waitReady(t.Context(), never.Client(), never.URL, c, 100*time.Millisecond); !errors.Is(err, errNotReady) {
		t.Fatalf("err %v, want errNotReady", err)
	}
	c.Stop(time.Second)
	if _, err := waitReady(t.Context(), never.Client(), never.URL, c, 5*time.Second); err == nil || errors.Is(err, errNotReady) {
		t.Fatalf("err %v, want exited", err)
	}
}

func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		rates   int
		wantErr bool
	}{
		{name: "defaults", args: nil, rates: 3},
		{name: "two rates", args: []string{"-rates", "5, 50"}, rates: 2},
		{name: "bad rate", args: []string{"-rates", "10,x"}, wantErr: true},
		{name: "zero rate", args: []string{"-rates", "0"}, wantErr: true},
		{name: "zero replicas", args: []string{"-replicas", "0"}, wantErr: true},
		{name: "NaN rate", args: []string{"-rates", "NaN"}, wantErr: true},
		{name: "phases skipped", args: []string{"-wait-rate", "0", "-batch-total", "0", "-batch-size", "0"}, rates: 3},
		{name: "negative wait rate", args: []string{"-wait-rate", "-1"}, wantErr: true},
		{name: "NaN wait rate", args: []string{"-wait-rate", "NaN"}, wantErr: true},
		{name: "batch larger than the revoker takes", args: []string{"-batch-size", "1001"}, wantErr: true},
		{name: "no batch in flight", args: []string{"-batch-concurrency", "0"}, wantErr: true},
		{name: "negative batch total", args: []string{"-batch-total", "-1"}, wantErr: true},
		{name: "extra argument", args: []string{"extra"}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseFlags(tc.args, io.Discard)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v", err)
			}
			if err == nil && len(c.rates) != tc.rates {
				t.Fatalf("rates %v", c.rates)
			}
		})
	}
}

func TestMetricValue(t *testing.T) {
	text := "# HELP jwtrevoke_verifier_revocations_held Live revocations\n" +
		"# TYPE jwtrevoke_verifier_revocations_held gauge\n" +
		"jwtrevoke_verifier_revocations_held{otel_scope_name=\"x\"} 106100\n" +
		"jwtrevoke_verifier_replay_duration_seconds 2.25\n"
	for _, tc := range []struct {
		name, prefix string
		want         float64
		wantOK       bool
	}{
		{name: "labels", prefix: "jwtrevoke_verifier_revocations_held", want: 106100, wantOK: true},
		{name: "unit suffix", prefix: "jwtrevoke_verifier_replay_duration", want: 2.25, wantOK: true},
		{name: "absent", prefix: "jwtrevoke_nothing", wantOK: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, ok := metricValue(text, tc.prefix)
			if v != tc.want || ok != tc.wantOK {
				t.Fatalf("got %g %v", v, ok)
			}
		})
	}
}

func TestWaitSummarize(t *testing.T) {
	s := sampleWait().summarize()
	want := waitSummary{
		Target: 100, Sustained: 2 / 2.02, Sent: 3, Acked: 2, Complete: 1,
		ReplicasMin: 2, ReplicasMax: 2, ConfirmedMin: 1,
		Took:       quantiles{P50: time.Millisecond, P99: 2 * time.Second, Max: 2 * time.Second},
		RoundTrip:  quantiles{P50: 6 * time.Millisecond, P99: 2010 * time.Millisecond, Max: 2010 * time.Millisecond},
		Prop:       quantiles{P50: 4 * time.Millisecond, P99: 5 * time.Millisecond, Max: 5 * time.Millisecond},
		AllApplied: quantiles{P50: 5 * time.Millisecond, P99: 5 * time.Millisecond, Max: 5 * time.Millisecond},
		Missing:    1,
	}
	if s != want {
		t.Fatalf("summary\n got %+v\nwant %+v", s, want)
	}
	var tab bytes.Buffer
	if err := writeWaitTable(&tab, s, summary{Prop: quantiles{P99: 5890 * time.Microsecond}}, true); err != nil {
		t.Fatal(err)
	}
	head, row := tableRow(t, tab.String())
	for col, want := range map[string]string{"target/s": "100", "complete": "1", "round trip p99 ms": "2010.00", "took p99 ms": "2000.00", "plain prop p99 ms": "5.89"} {
		if row[col] != want {
			t.Errorf("%s = %q, want %q", col, row[col], want)
		}
	}
	if len(head) != 17 {
		t.Errorf("%d columns: %q", len(head), head)
	}
	tab.Reset()
	if err := writeWaitTable(&tab, s, summary{}, false); err != nil {
		t.Fatal(err)
	}
	if _, row := tableRow(t, tab.String()); row["plain prop p99 ms"] != "-" {
		t.Fatalf("table without a plain phase:\n%s", tab.String())
	}
}

func TestPlainAt(t *testing.T) {
	rows := []summary{{Target: 10}, {Target: 100, Acked: 7}}
	if r, ok := plainAt(rows, 100); !ok || r.Acked != 7 {
		t.Fatalf("plainAt(100) = %+v, %v", r, ok)
	}
	if _, ok := plainAt(rows, 1000); ok {
		t.Fatal("plainAt(1000) found a phase the run did not have")
	}
}

func TestWaitVerdict(t *testing.T) {
	plain := summary{Target: 100, Prop: quantiles{P99: 5 * time.Millisecond}}
	for _, tc := range []struct {
		name    string
		s       waitSummary
		plainOK bool
		want    string // the line's end
	}{
		{name: "at the bound", plainOK: true, want: ": met",
			s: waitSummary{Target: 100, Acked: 10, Complete: 10, RoundTrip: quantiles{P99: 10 * time.Millisecond}}},
		{name: "just above", plainOK: true, want: ": not met",
			s: waitSummary{Target: 100, Acked: 10, Complete: 10, RoundTrip: quantiles{P99: 10*time.Millisecond + time.Microsecond}}},
		{name: "fast but one incomplete", plainOK: true, want: "9 of 10 complete: not met",
			s: waitSummary{Target: 100, Acked: 10, Complete: 9, RoundTrip: quantiles{P99: time.Millisecond}}},
		{name: "nothing acknowledged", plainOK: true, want: ": not met", s: waitSummary{Target: 100}},
		{name: "no plain phase", plainOK: false, want: "to compare with (add it to -rates)",
			s: waitSummary{Target: 100, Acked: 10, Complete: 10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := waitVerdict(tc.s, plain, tc.plainOK)
			if !strings.HasPrefix(got, "verdict: ") || !strings.HasSuffix(got, tc.want) {
				t.Fatalf("got %q, want it to end in %q", got, tc.want)
			}
		})
	}
}

// tableRow reads a Markdown table of one row (header, rule, row) and
// returns the header's cells and the row's cells by column name.
func tableRow(t *testing.T, table string) ([]string, map[string]string) {
	t.Helper()
	cells := func(line string) []string {
		f := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|")
		for i := range f {
			f[i] = strings.TrimSpace(f[i])
		}
		return f
	}
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(lines), table)
	}
	head, vals := cells(lines[0]), cells(lines[2])
	if len(head) != len(vals) {
		t.Fatalf("%d columns, %d values:\n%s", len(head), len(vals), table)
	}
	row := map[string]string{}
	for i, h := range head {
		row[h] = vals[i]
	}
	return head, row
}

// appliedLine is the line cmd/example -log-applied writes for event id.
func appliedLine(id string, at time.Time) []byte {
	return []byte(`{"time":"x","level":"INFO","msg":"revocation applied","id":"` + id + `","applied_unix_ns":` + strconv.FormatInt(at.UnixNano(), 10) + `}`)
}

func TestCollectorAllApplied(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	c := newCollector(2)
	c.line(0)(appliedLine("a", t0.Add(3*time.Millisecond)))
	if _, all := c.allApplied("a"); all {
		t.Fatal("applied everywhere with one replica of two reporting")
	}
	c.line(1)(appliedLine("a", t0.Add(7*time.Millisecond)))
	c.line(1)(appliedLine("a", t0.Add(9*time.Millisecond))) // applied again: the first counts
	at, all := c.allApplied("a")
	if !all || !at.Equal(t0.Add(7*time.Millisecond)) {
		t.Fatalf("allApplied = %v, %v; want the later replica's first report", at, all)
	}
	if _, all := c.allApplied("b"); all {
		t.Fatal("an event nobody reported counts as applied")
	}
}

// batchServer answers POST /v1/revocations/batch as the revoker does: jti
// ending in -5 is recorded but not acknowledged, one ending in -6 refused,
// the others acknowledged with increasing sequences. It counts the
// batches in flight at once and every jti it got.
type batchServer struct {
	seq            atomic.Uint64
	inFlight, most atomic.Int32
	mu             sync.Mutex // guards jtis
	jtis           map[string]int
}

func (b *batchServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := b.inFlight.Add(1)
	defer b.inFlight.Add(-1)
	for m := b.most.Load(); n > m && !b.most.CompareAndSwap(m, n); m = b.most.Load() {
	}
	var body struct {
		Revocations []revoker.Request `json:"revocations"`
	}
	if r.URL.Path != "/v1/revocations/batch" || r.Header.Get("Authorization") != "Bearer cred" {
		http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
		return
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || len(body.Revocations) > revoker.MaxBatch {
		http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
		return
	}
	var ans revoker.BatchAnswer
	for _, q := range body.Revocations {
		b.mu.Lock()
		b.jtis[q.JTI]++
		b.mu.Unlock()
		switch {
		case q.Type != "token" || q.Exp == nil:
			ans.Results = append(ans.Results, revoker.BatchItem{Status: http.StatusBadRequest, Error: "invalid_request"})
		case strings.HasSuffix(q.JTI, "-5"):
			ans.Results = append(ans.Results, revoker.BatchItem{Status: http.StatusServiceUnavailable, ID: "rev." + q.JTI, Recorded: true})
		case strings.HasSuffix(q.JTI, "-6"):
			ans.Results = append(ans.Results, revoker.BatchItem{Status: http.StatusBadRequest, Error: "invalid_request"})
		default:
			ans.Results = append(ans.Results, revoker.BatchItem{Status: http.StatusCreated, ID: "rev." + q.JTI, Seq: b.seq.Add(1)})
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(ans)
}

func TestRunBatches(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	bs := &batchServer{jtis: map[string]int{}}
	srv := httptest.NewServer(bs)
	defer srv.Close()
	r := runBatches(ctx, srv.Client(), srv.URL, "cred", "j", 25, 10, 2, 5*time.Second)
	if len(r.Calls) != 3 {
		t.Fatalf("%d batches for 25 revocations of 10 each, want 3", len(r.Calls))
	}
	if got := bs.most.Load(); got > 2 {
		t.Fatalf("%d batches in flight, more than 2", got)
	}
	bs.mu.Lock()
	for i := range 25 {
		if n := bs.jtis["j-"+strconv.Itoa(i)]; n != 1 {
			t.Errorf("jti j-%d sent %d times", i, n)
		}
	}
	if len(bs.jtis) != 25 {
		t.Errorf("%d jtis sent, want 25", len(bs.jtis))
	}
	bs.mu.Unlock()
	ids, last := r.acked()
	// j-5 recorded, j-6 refused.
	if len(ids) != 23 || last != "rev.j-"+strconv.Itoa(lastAcked(r)) {
		t.Fatalf("%d acked, last %q", len(ids), last)
	}
	r.Applied = 40 * time.Millisecond
	s := r.summarize()
	if s.Batches != 3 || s.FailedBatches != 0 || s.Sent != 25 || s.Acked != 23 || s.Recorded != 1 || s.Refused != 1 || s.Elapsed != r.Elapsed ||
		s.Elapsed <= 0 || s.PerSecond != 23/r.Elapsed.Seconds() || s.Call.Max > s.Elapsed {
		t.Fatalf("summary %+v", s)
	}
	var tab bytes.Buffer
	if err := writeBatchTable(&tab, s); err != nil {
		t.Fatal(err)
	}
	_, row := tableRow(t, tab.String())
	for col, want := range map[string]string{"batch size": "10", "concurrency": "2", "acked": "23", "recorded": "1", "refused": "1", "all applied ms": "40.00"} {
		if row[col] != want {
			t.Errorf("%s = %q, want %q", col, row[col], want)
		}
	}
}

// lastAcked is the jti number of r's acknowledged item with the highest
// sequence, found the slow way.
func lastAcked(r batchResult) int {
	var seq uint64
	n := -1
	for _, c := range r.Calls {
		for _, it := range c.Items {
			if it.Status == http.StatusCreated && it.Seq > seq {
				seq = it.Seq
				n, _ = strconv.Atoi(strings.TrimPrefix(it.ID, "rev.j-"))
			}
		}
	}
	return n
}

func TestRunBatchesFailed(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	srv := httptest.NewServer(&batchServer{jtis: map[string]int{}})
	defer srv.Close()
	r := runBatches(ctx, srv.Client(), srv.URL, "wrong", "j", 5, 5, 4, 5*time.Second)
	if len(r.Calls) != 1 || r.Calls[0].Err == nil || !strings.Contains(r.Calls[0].Err.Error(), "401") {
		t.Fatalf("calls %+v", r.Calls)
	}
	r.Applied = -1
	s := r.summarize()
	if s.FailedBatches != 1 || s.Acked != 0 || s.PerSecond != 0 {
		t.Fatalf("summary %+v", s)
	}
	var tab bytes.Buffer
	if err := writeBatchTable(&tab, s); err != nil {
		t.Fatal(err)
	}
	if _, row := tableRow(t, tab.String()); row["all applied ms"] != "never" || row["after last answer ms"] != "-" {
		t.Fatalf("table without an applied time:\n%s", tab.String())
	}
	if v := batchVerdict(s); !strings.HasSuffix(v, ": not met") {
		t.Fatalf("verdict %q", v)
	}
}

func TestBatchVerdict(t *testing.T) {
	for _, tc := range []struct {
		perSecond float64
		want      string
	}{
		{perSecond: 10_000, want: ": met"},
		{perSecond: 9_999.5, want: ": not met"},
		{perSecond: 23_456, want: ": met"},
	} {
		got := batchVerdict(batchSummary{Acked: 20000, Elapsed: 2 * time.Second, PerSecond: tc.perSecond})
		if !strings.HasPrefix(got, "verdict: ") || !strings.HasSuffix(got, tc.want) {
			t.Errorf("%g/s: %q, want it to end in %q", tc.perSecond, got, tc.want)
		}
	}
}
