package revoker

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/jwtrevoke/jwtrevoke/internal/chaos"
	"github.com/jwtrevoke/jwtrevoke/internal/eventually"
	"github.com/jwtrevoke/jwtrevoke/internal/redistest"
	"github.com/jwtrevoke/jwtrevoke/internal/runverifier"
	"github.com/jwtrevoke/jwtrevoke/internal/store"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier/verifiertest"
)

// testCredential is the service credential of every test server.
const testCredential = "test-service-credential-0123456789"

// testCtx bounds a test.
func testCtx(tb testing.TB) context.Context {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

// env is one test's NATS, Redis, token issuer and running revoker.
type env struct {
	nats   *verifiertest.Server
	nc     *nats.Conn
	js     jetstream.JetStream
	redis  *redistest.Server
	rdb    redis.UniversalClient
	store  *store.Store
	iss    *verifiertest.Issuer
	cfg    Config // the revoker's, for more replicas (runServer)
	srv    *Server
	http   *httptest.Server
	client *Client
}

// newEnv starts everything, applies edit to the revoker's Config, runs the
// revoker until the test ends and waits until it is ready.
func newEnv(tb testing.TB, edit func(*Config)) *env {
	tb.Helper()
	e := &env{nats: verifiertest.RunJetStream(tb)}
	e.nc, e.js = e.nats.Connect(tb)
	return e.start(tb, edit)
}

// newClusterEnv is newEnv on an embedded NATS cluster of three, the stream
// replicated three times (R3, as in production); e.nats is nil.
func newClusterEnv(tb testing.TB, edit func(*Config)) *env {
	tb.Helper()
	e := &env{}
	e.nc, e.js = chaos.StartCluster(tb, 3).Connect(tb)
	return e.start(tb, func(c *Config) {
		c.Replicas = 3
		if edit != nil {
			edit(c)
		}
	})
}

// start starts Redis and the token issuer and runs the revoker on e's
// NATS connection (see newEnv).
func (e *env) start(tb testing.TB, edit func(*Config)) *env {
	tb.Helper()
	e.redis, e.iss = redistest.Run(tb), verifiertest.NewIssuer(tb)
	// Fail fast while Redis is stopped: no command retries, one dial.
	e.rdb = redis.NewClient(&redis.Options{Addr: e.redis.Addr(), MaxRetries: -1, DialerRetries: 1})
	tb.Cleanup(func() { _ = e.rdb.Close() })
	var err error
	e.store, err = store.New(store.Config{Client: e.rdb, Retention: time.Hour})
	if err != nil {
		tb.Fatalf("store.New: %v", err)
	}
	cfg := Config{
		JetStream:        e.js,
		Store:            e.store,
		Credentials:      []string{testCredential},
		MaxTokenLifetime: time.Hour,
		Issuer:           e.iss.Issuer(),
		Audiences:        []string{e.iss.Audience()},
		Algorithms:       []string{e.iss.Algorithm()},
		JWKSURL:          e.iss.JWKSURL(),
		Timeout:          2 * time.Second,
		Logger:           slog.New(slog.DiscardHandler),
	}
	if edit != nil {
		edit(&cfg)
	}
	e.cfg = cfg
	e.srv = runServer(tb, cfg)
	e.http = httptest.NewServer(e.srv.Handler())
	tb.Cleanup(e.http.Close)
	e.client = NewClient(e.http.URL, testCredential, e.http.Client())
	e.waitReady(tb)
	return e
}

// runServer builds a revoker from cfg and runs it until the test ends.
func runServer(tb testing.TB, cfg Config) *Server {
	tb.Helper()
	srv, err := New(cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				tb.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			tb.Errorf("Run did not return within 10s of its context ending")
		}
		srv.Close()
	})
	return srv
}

// service returns a running, ready verifier that trusts e.iss and follows
// the revocation stream, as a service replica does.
func (e *env) service(tb testing.TB) *verifier.Verifier {
	tb.Helper()
	return runverifier.Ready(tb, verifier.Config{
		Issuer: e.iss.Issuer(), Audiences: []string{e.iss.Audience()}, Algorithms: []string{e.iss.Algorithm()},
		Keys: e.serviceKeys(tb), JetStream: e.js, MaxTokenLifetime: time.Hour, Logger: slog.New(slog.DiscardHandler),
	})
}

// announcing runs a verifier of service (version 1.0.0) that announces
// itself every interval, until the test ends or stop is called.
func (e *env) announcing(tb testing.TB, service string, interval time.Duration) (v *verifier.Verifier, stop func()) {
	tb.Helper()
	v, err := verifier.New(verifier.Config{
		Issuer: e.iss.Issuer(), Audiences: []string{e.iss.Audience()}, Algorithms: []string{e.iss.Algorithm()},
		Keys: e.serviceKeys(tb), JetStream: e.js, MaxTokenLifetime: time.Hour, Logger: slog.New(slog.DiscardHandler),
		Service: service, ServiceVersion: "1.0.0", AnnounceInterval: interval,
	})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = v.Run(ctx); close(done) }()
	tb.Cleanup(func() { cancel(); <-done; v.Close() })
	return v, func() { cancel(); <-done }
}

// serviceKeys is the JWKS of e.iss as a key source.
func (e *env) serviceKeys(tb testing.TB) verifier.KeySource {
	tb.Helper()
	k, err := verifier.NewJWKS(verifier.JWKSConfig{URL: e.iss.JWKSURL()})
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// waitReady waits until the revoker reports ready.
func (e *env) waitReady(tb testing.TB) {
	tb.Helper()
	eventually.True(tb, 15*time.Second, "the revoker to be ready", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return e.srv.Ready(ctx) == nil
	})
}

// msgs is the stream's message count.
func (e *env) msgs(tb testing.TB) uint64 { return e.streamState(tb).Msgs }

// lastSeq is the stream's last sequence: it grows by one per message stored.
func (e *env) lastSeq(tb testing.TB) uint64 { return e.streamState(tb).LastSeq }

func (e *env) streamState(tb testing.TB) jetstream.StreamState {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := e.js.Stream(ctx, events.DefaultStreamName)
	if err != nil {
		tb.Fatalf("stream: %v", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		tb.Fatalf("stream info: %v", err)
	}
	return info.State
}

// dbsize is the number of Redis keys.
func (e *env) dbsize(tb testing.TB) int64 {
	tb.Helper()
	n, err := e.rdb.DBSize(context.Background()).Result()
	if err != nil {
		tb.Fatalf("DBSIZE: %v", err)
	}
	return n
}

// lastEvent returns the stream's last event for a kind and value.
func (e *env) lastEvent(tb testing.TB, kind events.Kind, value string) (events.Event, uint64) {
	tb.Helper()
	return e.lastIssuerEvent(tb, "", kind, value)
}

// lastIssuerEvent is lastEvent of a revocation scoped to issuer iss.
func (e *env) lastIssuerEvent(tb testing.TB, iss string, kind events.Kind, value string) (events.Event, uint64) {
	tb.Helper()
	subj, err := events.IssuerSubject(iss, kind, value)
	if err != nil {
		tb.Fatalf("subject: %v", err)
	}
	return e.lastOn(tb, subj)
}

// lastOn returns the last event on the stream subject subj and its
// sequence.
func (e *env) lastOn(tb testing.TB, subj string) (events.Event, uint64) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := e.js.Stream(ctx, events.DefaultStreamName)
	if err != nil {
		tb.Fatalf("stream: %v", err)
	}
	m, err := s.GetLastMsgForSubject(ctx, subj)
	if err != nil {
		tb.Fatalf("last message on %s: %v", subj, err)
	}
	ev, err := events.Decode(m.Data)
	if err != nil {
		tb.Fatalf("decode: %v", err)
	}
	return ev, m.Sequence
}

// answer is an HTTP answer with its body read.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// errorBody decodes the JSON error body, failing the test if it is not one.
func (a answer) errorBody(tb testing.TB) (code, desc string) {
	tb.Helper()
	var b struct {
		Error       *string `json:"error"`
		Description *string `json:"error_description"`
	}
	if err := json.Unmarshal(a.body, &b); err != nil || b.Error == nil || b.Description == nil {
		tb.Fatalf("status %d: body %q is not {\"error\",\"error_description\"}", a.status, a.body)
	}
	return *b.Error, *b.Description
}

// do sends a request to the revoker. Header values given as "" are not set.
func (e *env) do(tb testing.TB, method, path, contentType string, body []byte, header map[string]string) answer {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, e.http.URL+path, bytes.NewReader(body))
	if err != nil {
		tb.Fatalf("request: %v", err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	resp, err := e.http.Client().Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("read answer: %v", err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: data}
}

// revokeJSON posts body to /v1/revocations with the credential and, if not
// empty, an Idempotency-Key.
func (e *env) revokeJSON(tb testing.TB, body string, key string) answer {
	tb.Helper()
	return e.do(tb, http.MethodPost, "/v1/revocations", "application/json", []byte(body),
		map[string]string{"Authorization": "Bearer " + testCredential, "Idempotency-Key": key})
}

// introspect posts token to /oauth2/introspect with the credential.
func (e *env) introspect(tb testing.TB, token string) answer {
	tb.Helper()
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	return e.do(tb, http.MethodPost, "/oauth2/introspect", "application/x-www-form-urlencoded",
		[]byte(form.Encode()), map[string]string{"Authorization": "Bearer " + testCredential})
}

// introspection decodes a 200 introspection answer.
func (a answer) introspection(tb testing.TB) map[string]any {
	tb.Helper()
	if a.status != http.StatusOK {
		tb.Fatalf("introspection status %d: %s", a.status, a.body)
	}
	var m map[string]any
	if err := json.Unmarshal(a.body, &m); err != nil {
		tb.Fatalf("introspection body %q: %v", a.body, err)
	}
	return m
}

// result decodes a 201 revocation answer.
func (a answer) result(tb testing.TB) Result {
	tb.Helper()
	if a.status != http.StatusCreated {
		tb.Fatalf("revocation status %d, want 201: %s", a.status, a.body)
	}
	var r Result
	dec := json.NewDecoder(strings.NewReader(string(a.body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil || r.ID == "" || r.Seq == 0 {
		tb.Fatalf("revocation body %q is not {\"id\",\"seq\"} (%v)", a.body, err)
	}
	return r
}

// republished reads jwtrevoke_revoker_outbox_republished_total off /metrics
// (0 before the first).
func (e *env) republished(tb testing.TB) float64 {
	tb.Helper()
	a := e.do(tb, http.MethodGet, "/metrics", "", nil, nil)
	for _, line := range strings.Split(string(a.body), "\n") {
		name, val, ok := strings.Cut(line, " ")
		if ok && strings.HasPrefix(name, "jwtrevoke_revoker_outbox_republished_total") {
			f, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
			if err != nil {
				tb.Fatalf("metric line %q: %v", line, err)
			}
			return f
		}
	}
	return 0
}
