package chaos

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/jwtrevoke/jwtrevoke/internal/eventually"
	"github.com/jwtrevoke/jwtrevoke/internal/redistest"
	"github.com/jwtrevoke/jwtrevoke/internal/revoker"
	"github.com/jwtrevoke/jwtrevoke/internal/store"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier/verifiertest"
)

// long runs the scenarios with more operations and longer faults.
var long = flag.Bool("chaos.long", false, "run the failure scenarios with more operations and longer faults")

const (
	credential = "chaos-service-credential-0123456789"
	// maxStaleness is every replica's MaxStaleness; bound is the P the
	// checker holds them to: MaxStaleness plus a probe round trip.
	maxStaleness = 2 * time.Second
	bound        = maxStaleness + 500*time.Millisecond
	replicas     = 3
	poolSize     = 40
	subjects     = 8
)

// sizes are a run's durations and rates.
type sizes struct {
	phase      time.Duration // workload before and after a fault
	revokeTick time.Duration // between two revocations
	verifyTick time.Duration // between two requests of one replica
	repeat     int           // how many times a fault is injected
}

func runSizes() sizes {
	if *long {
		return sizes{phase: 5 * time.Second, revokeTick: 10 * time.Millisecond, verifyTick: time.Millisecond, repeat: 3}
	}
	return sizes{phase: time.Second, revokeTick: 40 * time.Millisecond, verifyTick: 3 * time.Millisecond, repeat: 1}
}

func init() {
	// go-redis logs every refused dial; the Redis faults cause thousands.
	redis.SetLogger(quietRedis{})
}

// quietRedis drops go-redis' internal log lines.
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

// env is one scenario's servers, replicas and workload.
type env struct {
	tb      testing.TB
	sz      sizes
	rec     *Recorder
	cluster *Cluster
	js      jetstream.JetStream // the revoker's, also used by the test
	redis   *redistest.Server
	iss     *verifiertest.Issuer
	rv      atomic.Pointer[testRevoker] // the workload revokes through it
	reps    []*replica
	proxies []*Proxy // in front of each node, for replica 0 when proxied

	// mu guards pool.
	mu   sync.Mutex
	pool []token

	acked    chan struct{} // one value per acknowledged revocation, dropped when full
	stopWork context.CancelFunc
	workers  sync.WaitGroup
}

// token is one pooled access token and its identifiers.
type token struct {
	raw, jti, sid, sub string
	iat                time.Duration
	exp                time.Time
}

// envOptions shape an env.
type envOptions struct {
	// proxied: replica 0 reaches NATS through one Proxy per node.
	proxied bool
}

// newEnv starts a 3-node cluster, redis-server, the revoker and the
// replicas, all ready, with the workload not yet started.
func newEnv(tb testing.TB, o envOptions) *env {
	tb.Helper()
	e := &env{tb: tb, sz: runSizes(), rec: NewRecorder(), acked: make(chan struct{}, 1<<16)}
	e.cluster = StartCluster(tb, 3)
	_, e.js = e.cluster.Connect(tb)
	e.redis = redistest.Run(tb)
	e.iss = verifiertest.NewIssuer(tb)
	opts := events.StreamOptions{Replicas: 3, MaxTokenLifetime: time.Hour, Leeway: verifier.DefaultLeeway}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := events.EnsureStream(ctx, e.js, opts); err != nil {
		tb.Fatalf("EnsureStream: %v", err)
	}

	e.rv.Store(e.startRevoker(tb, nil))

	for i := range poolSize {
		e.pool = append(e.pool, e.mint(i%subjects))
	}
	for i := range replicas {
		r := &replica{env: e, name: fmt.Sprintf("r%d", i), urls: e.cluster.URLs()}
		if i == 0 && o.proxied {
			r.urls = nil
			for _, nd := range e.cluster.Nodes() {
				p := NewProxy(tb, nd.URL()[len("nats://"):])
				e.proxies = append(e.proxies, p)
				r.urls = append(r.urls, p.URL())
			}
		}
		e.reps = append(e.reps, r)
		r.start(tb)
		tb.Cleanup(r.stop)
	}
	for _, r := range e.reps {
		r.waitDeciding(tb, 30*time.Second)
	}
	return e
}

// mint makes a fresh token of subject user-s.
func (e *env) mint(s int) token {
	wall := time.Now()
	t := token{jti: rand.Text(), sid: rand.Text(), sub: fmt.Sprintf("user-%d", s), exp: wall.Add(verifiertest.DefaultTTL)}
	t.raw = e.iss.Token(e.tb, verifiertest.TokenOptions{Subject: t.sub, SessionID: t.sid, JTI: t.jti, IssuedAt: wall})
	t.iat = e.rec.Since(wall)
	return t
}

// pick returns a random pooled token and its index.
func (e *env) pick() (token, int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	i := mrand.IntN(len(e.pool))
	return e.pool[i], i
}

// start runs the workload until stop: one revoking client, one requester
// per replica.
func (e *env) start() {
	ctx, cancel := context.WithCancel(context.Background())
	e.stopWork = cancel
	e.workers.Add(1 + len(e.reps))
	go func() {
		defer e.workers.Done()
		e.revokeLoop(ctx)
	}()
	for _, r := range e.reps {
		go func() {
			defer e.workers.Done()
			r.requestLoop(ctx)
		}()
	}
}

// stop ends the workload and waits for it.
func (e *env) stop() {
	e.stopWork()
	e.workers.Wait()
}

// revokeLoop revokes a random pooled token's jti, session or subject every
// tick, retrying each with the same Idempotency-Key until acknowledged, and
// replaces the token by a fresh one.
func (e *env) revokeLoop(ctx context.Context) {
	tick := time.NewTicker(e.sz.revokeTick)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		t, i := e.pick()
		var req revoker.Request
		rv := Revocation{}
		switch n := mrand.IntN(10); {
		case n < 5:
			exp := float64(t.exp.UnixMicro()) / 1e6
			req, rv.Kind, rv.Value = revoker.Request{Type: "token", JTI: t.jti, Exp: &exp}, KindToken, t.jti
		case n < 8:
			req, rv.Kind, rv.Value = revoker.Request{Type: "session", SID: t.sid}, KindSession, t.sid
		default:
			req, rv.Kind, rv.Value = revoker.Request{Type: "subject", Sub: t.sub}, KindSubject, t.sub
		}
		key := rand.Text()
		rv.Start = e.rec.Now()
		for {
			rv.Attempts++
			res, err := e.rv.Load().client.Revoke(ctx, req, key)
			rv.End = e.rec.Now()
			if err == nil {
				rv.ID, rv.Acked = res.ID, true
				break
			}
			var apiErr *revoker.APIError
			if errors.As(err, &apiErr) {
				e.tb.Errorf("revoke %+v: %v", req, err)
				break
			}
			if ctx.Err() != nil {
				break
			}
			// The client's retry, same key, after a short pause.
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
		e.rec.Revocation(rv)
		if rv.Acked {
			select {
			case e.acked <- struct{}{}:
			default:
			}
		}
		fresh := e.mint(mrand.IntN(subjects))
		e.mu.Lock()
		e.pool[i] = fresh
		e.mu.Unlock()
	}
}

// hold lets the workload run for d: a fault's timed phase, not a wait for
// a condition.
func hold(d time.Duration) { <-time.After(d) }

// finish closes the revoker's gate (no revocation is left in flight,
// published but never acknowledged), stops the workload, waits until every
// running replica applied every acknowledged revocation (property 4 is
// checked either way), reads the stream, checks the history and reports it.
func (e *env) finish(tb testing.TB, scenario, injected string) {
	tb.Helper()
	e.rv.Load().gate.close()
	e.stop()
	// Property 4 is checked whether or not this converges in time.
	eventually.Until(20*time.Second, e.converged)
	e.rec.SetStream(e.streamEvents(tb))
	h := e.rec.History()
	vs, st := Check(h, bound)
	tb.Logf("MATRIX | %s | %s | %d revocations acked (%d asked, %d retried), %d requests (%d accepted, %d revoked, %d unavailable, %d failed) | %d violations | P=%v, lag max %v p99 %v | longest 503 run %v",
		scenario, injected, st.Revocations, st.Attempts, st.Retried, st.Requests, st.Accepted, st.Revoked, st.Unavailable, st.Failed,
		len(vs), bound, st.MaxLag.Round(time.Millisecond), st.P99Lag.Round(time.Millisecond), st.MaxUnavailable.Round(time.Millisecond))
	if st.Revocations == 0 || st.Accepted == 0 || st.Revoked == 0 {
		tb.Errorf("workload too thin to prove anything: %+v", st)
	}
	if st.Failed > 0 {
		tb.Errorf("%d requests failed for a reason other than revocation or unavailability", st.Failed)
	}
	for i, v := range vs {
		if i == 20 {
			tb.Errorf("... and %d more", len(vs)-20)
			break
		}
		tb.Errorf("violation: %s", v)
	}
}

// converged reports whether every running replica applied every
// acknowledged revocation (or an event superseding it, as [Check] judges).
func (e *env) converged() bool {
	h := e.rec.History()
	h.Stream = nil
	vs, _ := Check(h, bound)
	return !slices.ContainsFunc(vs, func(v Violation) bool { return v.Property == NothingLost && v.Replica != "" })
}

// streamEvents reads every event the stream holds, as one consistent
// snapshot. A revocation whose client gave up may still be published by
// the revoker (it finishes what it wrote to Redis): that append removes
// the subject's previous message, so a read racing it could miss both the
// old message (deleted behind the read) and the new one (past the last
// sequence read). Only appends remove messages here (the stream denies
// delete and purge, and MaxAge is far away), so a read during which the
// last sequence did not move is a snapshot.
func (e *env) streamEvents(tb testing.TB) []Stored {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := e.stream(tb)
	for attempt := 1; ; attempt++ {
		last := lastSeq(tb, s)
		evs, err := readStream(ctx, s, last)
		if err != nil {
			if attempt == 3 {
				tb.Fatalf("read the stream: %v", err)
			}
			continue
		}
		if lastSeq(tb, s) == last {
			return evs
		}
	}
}

// stream returns the revocation stream, waiting for it to answer (after a
// fault it may take a while).
func (e *env) stream(tb testing.TB) jetstream.Stream {
	tb.Helper()
	var s jetstream.Stream
	eventually.True(tb, 20*time.Second, "the stream to answer", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var err error
		s, err = e.js.Stream(ctx, events.DefaultStreamName)
		return err == nil
	})
	return s
}

// lastSeq is the last sequence stream s assigned, as its leader says.
func lastSeq(tb testing.TB, s jetstream.Stream) uint64 {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := s.Info(ctx)
	if err != nil {
		tb.Fatalf("stream info: %v", err)
	}
	return info.State.LastSeq
}

// readStream reads every event stream s holds up to sequence last with an
// ordered consumer of its own; ctx bounds the wait.
func readStream(ctx context.Context, s jetstream.Stream, last uint64) ([]Stored, error) {
	evs := []Stored{}
	if last == 0 {
		return evs, nil
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, fmt.Errorf("ordered consumer: %w", err)
	}
	it, err := cons.Messages()
	if err != nil {
		return nil, fmt.Errorf("messages: %w", err)
	}
	defer it.Stop()
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return nil, fmt.Errorf("next: %w", err)
		}
		md, err := m.Metadata()
		if err != nil {
			return nil, fmt.Errorf("metadata: %w", err)
		}
		seq := md.Sequence.Stream
		msgEvs, err := events.MsgEvents(m.Subject(), m.Data())
		if err != nil {
			return nil, fmt.Errorf("decode msg %d: %w", seq, err)
		}
		if seq <= last {
			for _, ev := range msgEvs {
				evs = append(evs, stored(ev))
			}
		}
		// Not "nothing pending": the consumer may live on a follower
		// that has not stored everything up to last yet. A message at
		// or past last always comes: only an append removes one here.
		if seq >= last {
			return evs, nil
		}
	}
}

// stored names ev for the history.
func stored(ev events.Event) Stored {
	return Stored{ID: ev.ID, Kind: Kind(ev.Kind), Value: ev.Value()}
}

// replica is one service replica: a verifier with its own NATS connection,
// restarted as new incarnations.
type replica struct {
	env  *env
	name string
	urls []string

	// mu guards n and cur; requests hold it for reading while they use cur.
	mu  sync.RWMutex
	n   int
	cur *incarnation
}

// incarnation is one run of a replica's verifier.
type incarnation struct {
	name   string
	v      *verifier.Verifier
	nc     *nats.Conn
	cancel context.CancelFunc
	done   sync.WaitGroup
}

// start begins a new incarnation.
func (r *replica) start(tb testing.TB) {
	tb.Helper()
	r.startWith(tb, nil, verifier.Health.Deciding)
}

// replicaLogger is the log of a replica's verifier: discarded, unless
// JWTREVOKE_CHAOS_LOG names a level (debug, info, warn) — then to stderr,
// each line with the incarnation's name, for looking into a scenario.
func replicaLogger(name string) *slog.Logger {
	var level slog.Level
	v := os.Getenv("JWTREVOKE_CHAOS_LOG")
	if v == "" || level.UnmarshalText([]byte(v)) != nil {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("replica", name)
}

// startWith begins a new incarnation like start, with cfg applied to the
// verifier's configuration and a Deciding sample recorded whenever
// deciding(Health) holds.
func (r *replica) startWith(tb testing.TB, cfg func(*verifier.Config), deciding func(verifier.Health) bool) {
	tb.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n++
	in := &incarnation{name: fmt.Sprintf("%s#%d", r.name, r.n)}
	nc, js, err := Dial(r.urls)
	if err != nil {
		tb.Fatalf("%v", err)
	}
	rec, iss := r.env.rec, r.env.iss
	in.nc = nc
	keys, err := verifier.StaticKeys(verifier.Key{ID: iss.KeyID(), Algorithm: iss.Algorithm(), Public: iss.PublicKey()})
	if err != nil {
		tb.Fatalf("%v", err)
	}
	c := verifier.Config{
		Issuer: iss.Issuer(), Audiences: []string{iss.Audience()}, Algorithms: []string{iss.Algorithm()},
		Keys:             keys,
		JetStream:        js,
		MaxTokenLifetime: time.Hour,
		MaxStaleness:     maxStaleness,
		Logger:           replicaLogger(in.name),
		OnApplied: func(ev events.Event, applied time.Time) {
			rec.Applied(in.name, stored(ev), rec.Since(applied))
		},
	}
	if cfg != nil {
		cfg(&c)
	}
	in.v, err = verifier.New(c)
	if err != nil {
		nc.Close()
		tb.Fatalf("verifier.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	in.cancel = cancel
	rec.Started(in.name)
	in.done.Add(2)
	go func() {
		defer in.done.Done()
		if err := in.v.Run(ctx); err != nil {
			tb.Errorf("%s Run: %v", in.name, err)
		}
	}()
	go func() {
		defer in.done.Done()
		if in.v.WaitReady(ctx) != nil {
			return
		}
		rec.Ready(in.name, rec.Now())
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			if deciding(in.v.Health()) {
				rec.Deciding(in.name, rec.Now())
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	r.cur = in
	tb.Cleanup(r.stop)
}

// stop ends the current incarnation, if any.
func (r *replica) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	in := r.cur
	if in == nil {
		return
	}
	r.cur = nil
	in.cancel()
	in.done.Wait()
	r.env.rec.Stopped(in.name)
	in.v.Close()
	in.nc.Close()
}

// deciding reports whether the current incarnation would accept a valid
// token.
func (r *replica) deciding() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.cur != nil && r.cur.v.Health().Deciding()
}

// waitDeciding waits until the replica is deciding.
func (r *replica) waitDeciding(tb testing.TB, timeout time.Duration) {
	tb.Helper()
	eventually.True(tb, timeout, r.name+" to be deciding", r.deciding)
}

// requestLoop verifies a random pooled token every tick and records the
// outcome.
func (r *replica) requestLoop(ctx context.Context) {
	e := r.env
	tick := time.NewTicker(e.sz.verifyTick)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		t, _ := e.pick()
		r.mu.RLock()
		in := r.cur
		if in == nil {
			r.mu.RUnlock()
			continue
		}
		q := Request{Replica: in.name, JTI: t.jti, SID: t.sid, Sub: t.sub, IssuedAt: t.iat, Start: e.rec.Now()}
		_, err := in.v.Verify(ctx, t.raw)
		q.End = e.rec.Now()
		r.mu.RUnlock()
		switch {
		case err == nil:
			q.Outcome = Accepted
		case errors.Is(err, verifier.ErrTokenRevoked), errors.Is(err, verifier.ErrSessionRevoked), errors.Is(err, verifier.ErrSubjectRevoked):
			q.Outcome = Revoked
		case errors.Is(err, verifier.ErrUnavailable):
			q.Outcome = Unavailable
		default:
			q.Outcome, q.Reason = Failed, verifier.Reason(err)
		}
		e.rec.Request(q)
	}
}

// gate is an http.RoundTripper in front of the test's revoker that can be
// closed: then it refuses new requests without sending them, and wait
// returns once the requests already sent have answered. Closing it before
// the workload stops means no revocation is left in flight, published but
// never acknowledged (such an event may replace an acknowledged one of the
// same value in the stream, which the checker would report as lost). It is
// safe for concurrent use.
type gate struct {
	next http.RoundTripper

	// mu guards closed; inFlight counts requests sent and not answered.
	mu       sync.Mutex
	closed   bool
	inFlight sync.WaitGroup
}

// errGateClosed is what a closed gate answers.
var errGateClosed = errors.New("chaos: revoker client closed for the end of the run")

// RoundTrip implements http.RoundTripper.
func (g *gate) RoundTrip(req *http.Request) (*http.Response, error) {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil, errGateClosed
	}
	g.inFlight.Add(1)
	g.mu.Unlock()
	defer g.inFlight.Done()
	resp, err := g.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	// The body is read by the caller; the revoker's answers are small, so
	// reading it here keeps "answered" well defined.
	body, rerr := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if rerr != nil {
		return nil, rerr
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// close refuses every later request and waits for the ones in flight.
func (g *gate) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.inFlight.Wait()
}

// testRevoker is a revoker started by a scenario with its own NATS
// connection and Redis client.
type testRevoker struct {
	client *revoker.Client
	store  *store.Store
	gate   *gate

	nc      *nats.Conn
	hs      *httptest.Server
	stopRun func() error // stops Run, returns its error
	srv     *revoker.Server
	once    sync.Once
}

// startRevoker starts a revoker connected to NATS through urls and to the
// env's redis-server, serving HTTP on a loopback port, and waits until it is
// ready. Everything stops at tb's Cleanup.
func (e *env) startRevoker(tb testing.TB, urls []string) *testRevoker {
	tb.Helper()
	if len(urls) == 0 {
		urls = e.cluster.URLs()
	}
	nc, js, err := Dial(urls)
	if err != nil {
		tb.Fatalf("%v", err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: e.redis.Addr(), MaxRetries: -1, DialerRetries: 1})
	tb.Cleanup(func() { _ = rdb.Close() })
	st, err := store.New(store.Config{Client: rdb, Retention: time.Hour})
	if err != nil {
		tb.Fatalf("store.New: %v", err)
	}
	srv, err := revoker.New(revoker.Config{
		JetStream: js, Store: st, Credentials: []string{credential},
		Replicas: 3, MaxTokenLifetime: time.Hour,
		Issuer: e.iss.Issuer(), Audiences: []string{e.iss.Audience()}, Algorithms: []string{e.iss.Algorithm()},
		Keys:    []verifier.Key{{ID: e.iss.KeyID(), Algorithm: e.iss.Algorithm(), Public: e.iss.PublicKey()}},
		Timeout: 2 * time.Second,
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		nc.Close()
		tb.Fatalf("revoker.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	rv := &testRevoker{store: st, nc: nc, srv: srv, stopRun: func() error { cancel(); return <-done }}
	rv.hs = httptest.NewServer(srv.Handler())
	rv.gate = &gate{next: rv.hs.Client().Transport}
	rv.client = revoker.NewClient(rv.hs.URL, credential, &http.Client{Transport: rv.gate, Timeout: 3 * time.Second})
	tb.Cleanup(func() {
		rv.once.Do(func() {
			rv.hs.Close()
			if err := rv.stopRun(); err != nil {
				tb.Errorf("revoker Run: %v", err)
			}
			srv.Close()
			nc.Close()
		})
	})
	eventually.True(tb, 30*time.Second, "the scenario's revoker to be ready", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return srv.Ready(ctx) == nil
	})
	return rv
}

// crash stops the revoker the way a killed process stops: its connections
// to NATS and to its clients are cut at once, whatever request is between
// its Redis write and its publish, or between its publish and its answer.
func (rv *testRevoker) crash() {
	rv.once.Do(func() {
		rv.nc.Close()
		rv.hs.CloseClientConnections()
		rv.hs.Close()
		_ = rv.stopRun() // a crashed revoker's Run error is of no interest
		rv.srv.Close()
	})
}

// streamLeader waits until the stream has a leader other than not and
// returns it.
func (e *env) streamLeader(tb testing.TB, not string) string {
	tb.Helper()
	var leader string
	eventually.True(tb, 30*time.Second, "a stream leader other than "+not, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		l, err := StreamLeader(ctx, e.js, events.DefaultStreamName)
		if err != nil || l == "" || l == not {
			return false
		}
		leader = l
		return true
	})
	return leader
}

// drainAcks forgets the acknowledgements counted so far.
func drainAcks(e *env) {
	for {
		select {
		case <-e.acked:
		default:
			return
		}
	}
}

// waitAcks waits until n more revocations were acknowledged.
func (e *env) waitAcks(tb testing.TB, n int, timeout time.Duration) {
	tb.Helper()
	t := time.NewTimer(timeout)
	defer t.Stop()
	for range n {
		select {
		case <-e.acked:
		case <-t.C:
			tb.Fatalf("chaos: fewer than %d revocations acknowledged within %s", n, timeout)
		}
	}
}

// restart stops the current incarnation and starts a new one.
func (r *replica) restart(tb testing.TB) {
	tb.Helper()
	r.stop()
	r.start(tb)
}
