// Command e2e is jwtrevoke's propagation benchmark (`make bench-e2e`). It
// starts, as separate OS processes on 127.0.0.1, a 3-node NATS cluster with
// JetStream (the revocation stream with 3 replicas), a redis-server, the
// revoker and several replicas of the example service (cmd/example
// -log-applied); it drives revocations through the revoker's HTTP API at
// several rates and measures, for every revocation and every replica, the
// time from the revoke call's start to the instant the replica reports it
// applied the event (its own log line, same machine clock). Then it drives
// revocations with ?wait=enforced at one rate (the wait beside the
// propagation), sends batches through POST /v1/revocations/batch
// (acknowledged revocations per second), and measures the cold start of a
// new replica with many live revocations in the stream. It prints tables
// and writes docs/propagation.{svg,csv}.
//
// Run from the module root: go run ./bench/e2e -h. Linux only (/proc,
// Pdeathsig). Every child process is stopped when it ends, on error or
// signal too; if the benchmark itself is killed, the kernel kills them.
package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jwtrevoke/jwtrevoke/internal/revoker"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
)

const (
	benchIssuer     = "https://issuer.bench.invalid"
	benchCredential = "bench-service-credential"
)

// config is the benchmark's parsed flags.
type config struct {
	rates       []float64
	duration    time.Duration
	maxPerRate  int
	replicas    int
	workers     int
	coldEvents  int
	outDir      string
	settle      time.Duration
	startupWait time.Duration

	// waitRate is the rate of the ?wait=enforced phase (0: skipped).
	waitRate float64
	// batchTotal revocations go in batches of batchSize, batchConcurrency
	// batches in flight (batchTotal 0: skipped).
	batchTotal, batchSize, batchConcurrency int
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "bench-e2e:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := bench(ctx, cfg, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "bench-e2e:", err)
		return 1
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	var rates string
	fs := flag.NewFlagSet("bench-e2e", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&rates, "rates", "10,100,1000", "revocation rates to drive, per second, comma-separated")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "how long each rate is driven (at most)")
	fs.IntVar(&c.maxPerRate, "max-per-rate", 5000, "at most this many revocations per rate")
	fs.IntVar(&c.replicas, "replicas", 8, "example-service replicas")
	fs.IntVar(&c.workers, "workers", 64, "most revoke calls in flight at once")
	fs.IntVar(&c.coldEvents, "cold-events", 100000, "live revocations in the stream for the cold-start measurement (0: skip)")
	fs.Float64Var(&c.waitRate, "wait-rate", 100, "rate of the phase that revokes with ?wait=enforced, per second, as long as a rate (0: skip)")
	fs.IntVar(&c.batchTotal, "batch-total", 20000, "revocations sent through POST /v1/revocations/batch for the throughput phase (0: skip)")
	fs.IntVar(&c.batchSize, "batch-size", revoker.MaxBatch, "revocations per batch")
	fs.IntVar(&c.batchConcurrency, "batch-concurrency", 4, "most batches in flight at once")
	fs.StringVar(&c.outDir, "out", "docs", "directory for propagation.svg and propagation.csv")
	fs.DurationVar(&c.settle, "settle", 30*time.Second, "after each rate, how long to wait for every replica to report every event")
	fs.DurationVar(&c.startupWait, "startup-timeout", 90*time.Second, "bound on starting the cluster and each service")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if c.rates, err = parseRates(rates); err != nil {
		return c, err
	}
	if c.replicas < 1 || c.workers < 1 || c.maxPerRate < 1 || c.duration <= 0 || c.coldEvents < 0 {
		return c, errors.New("-replicas, -workers, -max-per-rate and -duration must be positive; -cold-events not negative")
	}
	if !(c.waitRate >= 0 && c.waitRate <= 1e6) { // NaN fails this too
		return c, fmt.Errorf("-wait-rate: %g is not a rate in [0, 1e6]", c.waitRate)
	}
	if c.batchTotal < 0 || (c.batchTotal > 0 && (c.batchSize < 1 || c.batchSize > revoker.MaxBatch || c.batchConcurrency < 1)) {
		return c, fmt.Errorf("-batch-total must not be negative; -batch-size in [1, %d]; -batch-concurrency positive", revoker.MaxBatch)
	}
	return c, nil
}

// parseRates reads "10,100,1000".
func parseRates(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		r, err := strconv.ParseFloat(f, 64)
		if err != nil || !(r > 0 && r <= 1e6) { // NaN fails this too
			return nil, fmt.Errorf("-rates: %q is not a rate in (0, 1e6]", f)
		}
		out = append(out, r)
	}
	return out, nil
}

// collector gathers the applied instants every replica reports. Safe for
// concurrent use.
type collector struct {
	// mu guards applied: per replica, event id → applied instant.
	mu      sync.Mutex
	applied []map[string]time.Time
	// warn, when set, gets every other log line of a replica at level
	// WARN or ERROR (a feed that detached, a probe that failed): what
	// explains an outlier.
	warn func(replica int, line []byte)
}

func newCollector(replicas int) *collector {
	c := &collector{applied: make([]map[string]time.Time, replicas)}
	for i := range c.applied {
		c.applied[i] = map[string]time.Time{}
	}
	return c
}

// line returns the onLine function of replica i.
func (c *collector) line(i int) func([]byte) {
	return func(b []byte) {
		id, at, err := parseApplied(b)
		if err != nil {
			if c.warn != nil && (bytes.Contains(b, []byte(`"level":"WARN"`)) || bytes.Contains(b, []byte(`"level":"ERROR"`))) {
				c.warn(i, b)
			}
			return
		}
		c.mu.Lock()
		if _, seen := c.applied[i][id]; !seen { // the first application counts
			c.applied[i][id] = at
		}
		c.mu.Unlock()
	}
}

// missing counts the (id, replica) pairs not yet reported.
func (c *collector) missing(ids []string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, m := range c.applied {
		for _, id := range ids {
			if _, ok := m[id]; !ok {
				n++
			}
		}
	}
	return n
}

// allApplied reports the instant the last replica applied event id, and
// whether every replica has.
func (c *collector) allApplied(id string) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var last time.Time
	for _, m := range c.applied {
		at, ok := m[id]
		if !ok {
			return time.Time{}, false
		}
		last = later(last, at)
	}
	return last, true
}

// fill sets r.Applied from what was collected.
func (c *collector) fill(r *rateResult) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r.Applied = make([][]time.Duration, len(r.Calls))
	for i, call := range r.Calls {
		if call.Err != nil {
			continue
		}
		per := make([]time.Duration, len(c.applied))
		for j, m := range c.applied {
			per[j] = -1
			if at, ok := m[call.ID]; ok {
				per[j] = at.Sub(call.Start)
			}
		}
		r.Applied[i] = per
	}
}

// system is everything started for one benchmark run.
type system struct {
	procs      procs
	binDir     string
	natsURLs   string
	redisAddr  string
	revokerURL string
	jwksURL    string
	replicas   []*child
	replicaURL []string
	hc         *http.Client
}

func bench(ctx context.Context, cfg config, stdout, stderr io.Writer) (err error) {
	tmp, err := os.MkdirTemp("", "jwtrevoke-bench-e2e-")
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	defer os.RemoveAll(tmp)
	logf := func(format string, args ...any) {
		fmt.Fprintf(stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
	}

	sys := &system{binDir: filepath.Join(tmp, "bin"), hc: &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: cfg.workers, MaxConnsPerHost: cfg.workers},
	}}
	defer sys.procs.Close()

	logf("building nats-server, revoker, example")
	if err := buildBinaries(ctx, sys.binDir); err != nil {
		return err
	}
	jwks, closeJWKS, err := serveJWKS()
	if err != nil {
		return err
	}
	defer closeJWKS()
	sys.jwksURL = jwks

	logf("starting a 3-node NATS cluster, redis-server, the revoker")
	if err := sys.startNATS(tmp); err != nil {
		return err
	}
	if err := sys.startRedis(tmp); err != nil {
		return err
	}
	if err := sys.startRevoker(ctx, cfg.startupWait); err != nil {
		return err
	}
	logf("starting %d example replicas", cfg.replicas)
	col := newCollector(cfg.replicas)
	col.warn = func(i int, line []byte) { logf("replica %d: %s", i, bytes.TrimSpace(line)) }
	startAll := time.Now()
	for i := range cfg.replicas {
		if err := sys.startReplica(i, col.line(i)); err != nil {
			return err
		}
	}
	for i, c := range sys.replicas {
		if _, err := waitReady(ctx, sys.hc, sys.replicaURL[i]+"/readyz", c, cfg.startupWait); err != nil {
			return err
		}
	}
	logf("all %d replicas ready in %s (started together, empty stream)", cfg.replicas, time.Since(startAll).Round(time.Millisecond))
	emptyRSS, err := rssBytes(sys.replicas[0].cmd.Process.Pid)
	if err != nil {
		return err
	}

	var results []rateResult
	for _, rate := range cfg.rates {
		logf("driving %d revocations at %g/s", cfg.calls(rate), rate)
		r := sys.phase(ctx, cfg, col, rate, revoker.Wait{}, nil)
		results = append(results, r)
		s := r.summarize()
		logf("%g/s: %d acked of %d, sustained %.1f/s, propagation p50 %sms p99 %sms max %sms, missing %d",
			rate, s.Acked, s.Sent, s.Sustained, ms(s.Prop.P50), ms(s.Prop.P99), ms(s.Prop.Max), s.Missing)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	var wait *waitResult
	if cfg.waitRate > 0 {
		logf("driving %d revocations with ?wait=enforced at %g/s", cfg.calls(cfg.waitRate), cfg.waitRate)
		answers := make([]revoker.Result, cfg.calls(cfg.waitRate))
		wait = &waitResult{rateResult: sys.phase(ctx, cfg, col, cfg.waitRate, revoker.Wait{Enforced: true}, answers), Answers: answers}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}

	var rows []summary
	for _, r := range results {
		rows = append(rows, r.summarize())
	}
	fmt.Fprintf(stdout, "\nPropagation: revoke call start → replica applied (%d replicas, stream R3)\n\n", cfg.replicas)
	if err := writeTable(stdout, rows); err != nil {
		return err
	}
	sumApplied := 0
	for _, r := range results {
		sumApplied += len(r.Calls)
	}
	if wait != nil {
		ws := wait.summarize()
		plain, ok := plainAt(rows, cfg.waitRate)
		fmt.Fprintf(stdout, "\nWait: POST /v1/revocations?wait=enforced (revoker's default timeout %s), %d replicas; took = the answer's enforcement.took_ms\n\n",
			revoker.DefaultWaitTimeout, cfg.replicas)
		if err := writeWaitTable(stdout, ws, plain, ok); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "\n"+waitVerdict(ws, plain, ok))
		sumApplied += len(wait.Calls)
	}
	if err := writeOutputs(cfg.outDir, results, wait, cfg.replicas); err != nil {
		return err
	}
	logf("wrote %s and %s", filepath.Join(cfg.outDir, "propagation.svg"), filepath.Join(cfg.outDir, "propagation.csv"))

	// Memory of a running replica with what the rates left in the stream.
	var warmRSS int64
	if rss, err := rssBytes(sys.replicas[0].cmd.Process.Pid); err == nil {
		warmRSS = rss
		fmt.Fprintf(stdout, "\nA running replica holding ~%d revocations: RSS %.1f MiB\n", sumApplied, mib(rss))
	}

	if cfg.batchTotal > 0 {
		if err := sys.batchPhase(ctx, cfg, col, stdout, logf); err != nil {
			return err
		}
	}
	if cfg.coldEvents == 0 {
		return nil
	}
	return sys.coldStart(ctx, cfg, emptyRSS, warmRSS, stdout, logf)
}

// calls is how many revocations a phase at rate makes.
func (cfg config) calls(rate float64) int {
	return min(cfg.maxPerRate, max(1, int(rate*cfg.duration.Seconds())))
}

// phase drives cfg.calls(rate) token revocations at rate with wait's
// query, keeping the answers in answers when it is not nil (one element
// per call), then waits at most cfg.settle for every replica to report
// every acknowledged one, and returns the calls with their propagation.
func (sys *system) phase(ctx context.Context, cfg config, col *collector, rate float64, wait revoker.Wait, answers []revoker.Result) rateResult {
	kind := "bench"
	if wait.Enforced {
		kind = "wait"
	}
	prefix := fmt.Sprintf("%s-%g-%s", kind, rate, strconv.FormatInt(time.Now().UnixNano(), 36))
	r := drive(ctx, rate, cfg.calls(rate), cfg.duration, cfg.workers, httpRevoker(sys.hc, sys.revokerURL, benchCredential, prefix, wait, answers))
	var ids []string
	for _, c := range r.Calls {
		if c.Err == nil {
			ids = append(ids, c.ID)
		}
	}
	waitUntil(ctx, cfg.settle, func() bool { return col.missing(ids) == 0 })
	col.fill(&r)
	return r
}

// batchPhase sends cfg.batchTotal revocations through POST
// /v1/revocations/batch, waits at most cfg.settle for every replica to
// apply the last one acknowledged, and prints the batch table and verdict.
func (sys *system) batchPhase(ctx context.Context, cfg config, col *collector, stdout io.Writer, logf func(string, ...any)) error {
	logf("sending %d revocations in batches of %d, %d at once", cfg.batchTotal, cfg.batchSize, cfg.batchConcurrency)
	// The client's own timeout would cut a batch short: each batch has
	// its own bound instead.
	hc := &http.Client{Transport: sys.hc.Transport}
	prefix := "batch-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	r := runBatches(ctx, hc, sys.revokerURL, benchCredential, prefix, cfg.batchTotal, cfg.batchSize, cfg.batchConcurrency, time.Minute)
	ids, last := r.acked()
	r.Applied = -1
	if last != "" {
		var at time.Time
		if waitUntil(ctx, cfg.settle, func() bool {
			var all bool
			at, all = col.allApplied(last)
			return all
		}) {
			r.Applied = at.Sub(r.firstStart())
		}
	}
	r.Missing = col.missing(ids)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	for _, c := range r.Calls {
		if c.Err != nil {
			logf("batch: %v", c.Err)
			break
		}
	}
	s := r.summarize()
	fmt.Fprintf(stdout, "\nBatch throughput: POST /v1/revocations/batch, token revocations, %d replicas, stream R3; acked/s = acked ÷ first send → last answer; all applied = first send → every replica applied the last sequence\n\n", cfg.replicas)
	if err := writeBatchTable(stdout, s); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "\n"+batchVerdict(s))
	return nil
}

// writeOutputs writes propagation.svg (the plain rates) and
// propagation.csv (those and the wait phase, which may be nil) into dir.
func writeOutputs(dir string, results []rateResult, wait *waitResult, replicas int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	var svg, csv bytes.Buffer
	if err := writeCDF(&svg, results, fmt.Sprintf("jwtrevoke propagation, %d replicas, loopback, one machine", replicas)); err != nil {
		return err
	}
	if err := writeCSV(&csv, results, wait, replicas); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "propagation.svg"), svg.Bytes(), 0o644); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "propagation.csv"), csv.Bytes(), 0o644); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}

// coldStart stops the running replicas (two cores: their replay would
// compete), publishes cfg.coldEvents live token revocations straight to
// JetStream, starts one new replica and measures the time until /readyz
// answers 200 and its RSS, beside emptyRSS and baseRSS (a replica on the
// empty stream, and one warm after the rates).
func (sys *system) coldStart(ctx context.Context, cfg config, emptyRSS, baseRSS int64, stdout io.Writer, logf func(string, ...any)) error {
	for _, c := range sys.replicas {
		c.Stop(5 * time.Second)
	}
	logf("publishing %d token revocations to JetStream (async)", cfg.coldEvents)
	pubStart := time.Now()
	total, err := publishBulk(ctx, sys.natsURLs, cfg.coldEvents, cfg.startupWait+time.Duration(cfg.coldEvents)*time.Millisecond)
	if err != nil {
		return err
	}
	pubTook := time.Since(pubStart)
	logf("published in %s; the stream holds %d messages", pubTook.Round(time.Millisecond), total)

	i := len(sys.replicas)
	start := time.Now()
	if err := sys.startReplica(i, nil); err != nil {
		return err
	}
	c := sys.replicas[i]
	readyAt, err := waitReady(ctx, sys.hc, sys.replicaURL[i]+"/readyz", c, cfg.startupWait+2*time.Minute)
	if err != nil {
		return err
	}
	ready := readyAt.Sub(start)
	rssReady, err := rssBytes(c.cmd.Process.Pid)
	if err != nil {
		return err
	}
	// Again once the replay's garbage had a chance to be collected.
	waitUntil(ctx, 3*time.Second, func() bool { return false })
	rssLater, err := rssBytes(c.cmd.Process.Pid)
	if err != nil {
		return err
	}
	metrics, err := getText(ctx, sys.hc, sys.replicaURL[i]+"/metrics")
	if err != nil {
		return err
	}
	held, _ := metricValue(metrics, "jwtrevoke_verifier_revocations_held")
	replay, _ := metricValue(metrics, "jwtrevoke_verifier_replay_duration")
	fmt.Fprintf(stdout, "\nCold start: a new replica, %d messages in the stream (%d published by the benchmark in %s)\n\n",
		total, cfg.coldEvents, pubTook.Round(time.Millisecond))
	fmt.Fprintln(stdout, "| stream messages | revocations held | start → /readyz 200 | replay (verifier metric) | RSS at ready | RSS 3 s later | RSS, empty stream | RSS, warm replica after the rates |")
	fmt.Fprintln(stdout, "|---|---|---|---|---|---|---|---|")
	fmt.Fprintf(stdout, "| %d | %.0f | %s | %.3f s | %.1f MiB | %.1f MiB | %.1f MiB | %.1f MiB |\n", total, held, ready.Round(time.Millisecond),
		replay, mib(rssReady), mib(rssLater), mib(emptyRSS), mib(baseRSS))
	return nil
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// getText GETs url and returns the body of a 200 answer.
func getText(ctx context.Context, hc *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", fmt.Errorf("bench: %w", err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("bench: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("bench: GET %s: %d: %v", url, resp.StatusCode, err)
	}
	return string(b), nil
}

// metricValue returns the value of the first sample in a Prometheus text
// exposition whose metric name starts with prefix.
func metricValue(text, prefix string) (float64, bool) {
	for line := range strings.Lines(text) {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			return v, true
		}
	}
	return 0, false
}

// publishBulk publishes n valid token revocations (distinct jtis, expiring
// in 50 minutes) with async JetStream publishes, waits for every ack, and
// returns the number of messages in the stream. Bounded by timeout.
func publishBulk(ctx context.Context, urls string, n int, timeout time.Duration) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	nc, err := nats.Connect(urls, nats.Name("jwtrevoke-bench-e2e"))
	if err != nil {
		return 0, fmt.Errorf("bench: nats: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return 0, fmt.Errorf("bench: jetstream: %w", err)
	}
	now := time.Now()
	exp := now.Add(50 * time.Minute)
	prefix := "cold-" + strconv.FormatInt(now.UnixNano(), 36)
	for i := range n {
		id := fmt.Sprintf("%s-%07d", prefix, i)
		x, err := events.NewEncoded(events.NewToken(id, "jti-"+id, exp, now))
		if err != nil {
			return 0, err
		}
		m, err := events.NewMsg(ctx, x)
		if err != nil {
			return 0, err
		}
		if _, err := js.PublishMsgAsync(m); err != nil {
			return 0, fmt.Errorf("bench: publish %d: %w", i, err)
		}
		if ctx.Err() != nil {
			return 0, fmt.Errorf("bench: publishing: %w", ctx.Err())
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return 0, fmt.Errorf("bench: waiting for publish acks: %w", ctx.Err())
	}
	s, err := js.Stream(ctx, events.DefaultStreamName)
	if err != nil {
		return 0, fmt.Errorf("bench: stream: %w", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("bench: stream info: %w", err)
	}
	return info.State.Msgs, nil
}

// serveJWKS serves a static JWKS of a fresh Ed25519 key on 127.0.0.1 (no
// token is ever signed: the services only need a key set to become ready).
func serveJWKS() (url string, closeFn func(), err error) {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", nil, fmt.Errorf("bench: key: %w", err)
	}
	body, err := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": "bench-1",
		"x": base64.RawURLEncoding.EncodeToString(pub),
	}}})
	if err != nil {
		return "", nil, fmt.Errorf("bench: jwks: %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("bench: jwks: %w", err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})}
	done := make(chan struct{})
	go func() { // ends when closeFn closes the server
		defer close(done)
		_ = srv.Serve(l)
	}()
	return "http://" + l.Addr().String() + "/.well-known/jwks.json", func() { srv.Close(); <-done }, nil
}

func (sys *system) startNATS(tmp string) error {
	nodes := make([]natsNode, 3)
	for i := range nodes {
		cp, err := freePort()
		if err != nil {
			return err
		}
		rp, err := freePort()
		if err != nil {
			return err
		}
		nodes[i] = natsNode{Name: fmt.Sprintf("n%d", i+1), ClientPort: cp, RoutePort: rp,
			StoreDir: filepath.Join(tmp, "nats", fmt.Sprintf("n%d", i+1))}
	}
	for i, n := range nodes {
		conf := filepath.Join(tmp, n.Name+".conf")
		if err := os.WriteFile(conf, []byte(natsConfig(nodes, i)), 0o600); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		if _, err := sys.procs.start("nats-"+n.Name, filepath.Join(sys.binDir, "nats-server"), []string{"-c", conf}, nil, nil); err != nil {
			return err
		}
	}
	sys.natsURLs = clientURLs(nodes)
	return nil
}

func (sys *system) startRedis(tmp string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	dir := filepath.Join(tmp, "redis")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	_, err = sys.procs.start("redis", "redis-server", []string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "no", "--daemonize", "no",
	}, nil, nil)
	if err != nil {
		return fmt.Errorf("%w (is redis-server installed? make deps)", err)
	}
	sys.redisAddr = "127.0.0.1:" + strconv.Itoa(port)
	return nil
}

func (sys *system) startRevoker(ctx context.Context, wait time.Duration) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	c, err := sys.procs.start("revoker", filepath.Join(sys.binDir, "revoker"), []string{
		"-listen", addr, "-nats-url", sys.natsURLs, "-redis-addrs", sys.redisAddr,
		"-issuer", benchIssuer, "-audience", "api", "-jwks-url", sys.jwksURL,
		"-log-level", "warn",
	}, []string{"JWTREVOKE_SERVICE_CREDENTIALS=" + benchCredential, "JWTREVOKE_STREAM_REPLICAS=3"}, nil)
	if err != nil {
		return err
	}
	sys.revokerURL = "http://" + addr
	_, err = waitReady(ctx, sys.hc, sys.revokerURL+"/readyz", c, wait)
	return err
}

// startReplica starts example replica i; onLine (nil for none) gets its
// log lines, and it logs applied events only when onLine is set.
func (sys *system) startReplica(i int, onLine func([]byte)) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	args := []string{"-listen", addr, "-nats-url", sys.natsURLs, "-issuer", benchIssuer,
		"-audience", "api", "-jwks-url", sys.jwksURL}
	if onLine != nil {
		args = append(args, "-log-applied")
	}
	c, err := sys.procs.start(fmt.Sprintf("example-%d", i), filepath.Join(sys.binDir, "example"), args, nil, onLine)
	if err != nil {
		return err
	}
	sys.replicas = append(sys.replicas, c)
	sys.replicaURL = append(sys.replicaURL, "http://"+addr)
	return nil
}

// waitUntil polls cond every 10 ms until it holds, timeout passes or ctx
// ends; it reports whether cond held.
func waitUntil(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if cond() {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
}
