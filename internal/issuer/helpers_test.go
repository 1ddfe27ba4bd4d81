package issuer_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"golang.org/x/crypto/bcrypt"

	"github.com/jwtrevoke/jwtrevoke/internal/eventually"
	"github.com/jwtrevoke/jwtrevoke/internal/issuer"
	"github.com/jwtrevoke/jwtrevoke/internal/redistest"
	"github.com/jwtrevoke/jwtrevoke/internal/revoker"
	"github.com/jwtrevoke/jwtrevoke/internal/store"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier/verifiertest"
)

const (
	testIssuer     = "https://issuer.test"
	testAudience   = "api"
	testCredential = "test-service-credential-0123"
	revokerCred    = "test-revoker-credential-0123"
	testPassword   = "correct horse"
)

// testContext is bounded so no test can hang.
func testContext(tb testing.TB) context.Context {
	tb.Helper()
	ctx, cancel := context.WithTimeout(tb.Context(), 30*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

// clock is a settable clock: real time plus an offset.
type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// revocation is one request the fake revoker received.
type revocation struct {
	Req            revoker.Request
	IdempotencyKey string
	Authorization  string
}

// fakeRevoker records the revocation requests it gets and answers 201, or
// 503 while down is set. (The real revoker is tested by its own package;
// the end-to-end test joins them.)
type fakeRevoker struct {
	srv  *httptest.Server
	down atomic.Bool
	// mu guards got.
	mu  sync.Mutex
	got []revocation
}

func newFakeRevoker(tb testing.TB) *fakeRevoker {
	tb.Helper()
	f := &fakeRevoker{}
	var seq atomic.Uint64
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/revocations" {
			http.Error(w, `{"error":"not_found"}`, http.StatusNotFound)
			return
		}
		if f.down.Load() {
			http.Error(w, `{"error":"temporarily_unavailable"}`, http.StatusServiceUnavailable)
			return
		}
		var req revoker.Request
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.got = append(f.got, revocation{Req: req, IdempotencyKey: r.Header.Get("Idempotency-Key"), Authorization: r.Header.Get("Authorization")})
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(revoker.Result{ID: "ev-1", Seq: seq.Add(1)})
	}))
	tb.Cleanup(f.srv.Close)
	return f
}

func (f *fakeRevoker) requests() []revocation {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]revocation(nil), f.got...)
}

// env is one issuer wired to a real redis-server and a fake revoker, served
// by httptest, with an embedded JetStream for the services' verifiers.
type env struct {
	cfg   issuer.Config
	srv   *issuer.Server
	http  *httptest.Server
	redis *redistest.Server
	rdb   redis.UniversalClient
	store *store.Store
	rev   *fakeRevoker
	nats  *verifiertest.Server
	js    jetstream.JetStream
	clock *clock
}

// hashPassword returns a bcrypt hash of testPassword at cost.
func hashPassword(tb testing.TB, cost int) []byte {
	tb.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(testPassword), cost)
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

// newEnv starts everything; mod may change the Config before New.
func newEnv(tb testing.TB, mod func(*issuer.Config)) *env {
	tb.Helper()
	e := &env{clock: &clock{}}
	e.redis = redistest.Run(tb)
	// Few retries, so that tests with Redis down answer quickly.
	rdb := redis.NewClient(&redis.Options{Addr: e.redis.Addr(), MaxRetries: 1, DialerRetries: 1, DialerRetryTimeout: 10 * time.Millisecond})
	tb.Cleanup(func() { _ = rdb.Close() })
	e.rdb = rdb
	st, err := store.New(store.Config{Client: e.rdb})
	if err != nil {
		tb.Fatal(err)
	}
	e.store = st
	e.nats = verifiertest.RunJetStream(tb)
	e.nats.EnsureStream(tb, events.StreamOptions{MaxTokenLifetime: time.Hour, Leeway: time.Minute})
	_, e.js = e.nats.Connect(tb)
	e.rev = newFakeRevoker(tb)
	key, err := issuer.GenerateKey("EdDSA")
	if err != nil {
		tb.Fatal(err)
	}
	e.cfg = issuer.Config{
		Issuer:             testIssuer,
		Audiences:          []string{testAudience},
		Keys:               []issuer.SigningKey{key},
		RefreshSecret:      []byte("0123456789abcdef0123456789abcdef"),
		Store:              st,
		Revoker:            revoker.NewClient(e.rev.srv.URL, revokerCred, nil),
		ServiceCredentials: []string{testCredential},
		Users:              map[string][]byte{"alice": hashPassword(tb, bcrypt.MinCost), "bob": hashPassword(tb, bcrypt.MinCost)},
		Now:                e.clock.Now,
		Logger:             slog.New(slog.DiscardHandler),
	}
	if mod != nil {
		mod(&e.cfg)
	}
	e.srv, err = issuer.New(e.cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.srv.Run(ctx) }()
	e.http = httptest.NewServer(e.srv.Handler())
	tb.Cleanup(func() {
		e.http.Close()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				tb.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			tb.Errorf("Run did not return")
		}
		e.srv.Close()
	})
	eventually.True(tb, 20*time.Second, "issuer ready", func() bool { return e.srv.Ready(context.Background()) == nil })
	return e
}

// reply is an HTTP answer read in full.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// errorCode returns the "error" of a JSON error body, failing if the body
// is not one.
func (r reply) errorCode(tb testing.TB) string {
	tb.Helper()
	var e struct {
		Error       string  `json:"error"`
		Description *string `json:"error_description"`
	}
	if err := json.Unmarshal(r.body, &e); err != nil || e.Error == "" || e.Description == nil {
		tb.Fatalf("status %d: body %q is not a JSON error", r.status, r.body)
	}
	return e.Error
}

func (r reply) token(tb testing.TB) issuer.TokenResponse {
	tb.Helper()
	var t issuer.TokenResponse
	if err := json.Unmarshal(r.body, &t); err != nil {
		tb.Fatalf("token response %q: %v", r.body, err)
	}
	return t
}

// do sends a request to the issuer.
func (e *env) do(tb testing.TB, method, path, contentType, body string, header map[string]string) reply {
	tb.Helper()
	req, err := http.NewRequestWithContext(testContext(tb), method, e.http.URL+path, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := e.http.Client().Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

func (e *env) postJSON(tb testing.TB, path string, v any, header map[string]string) reply {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return e.do(tb, http.MethodPost, path, "application/json", string(b), header)
}

func (e *env) postForm(tb testing.TB, path string, form url.Values, header map[string]string) reply {
	tb.Helper()
	return e.do(tb, http.MethodPost, path, "application/x-www-form-urlencoded", form.Encode(), header)
}

// login logs user in and fails unless it gets a token response.
func (e *env) login(tb testing.TB, user string) issuer.TokenResponse {
	tb.Helper()
	r := e.postJSON(tb, "/v1/login", map[string]string{"username": user, "password": testPassword}, nil)
	if r.status != http.StatusOK {
		tb.Fatalf("login %s: %d %s", user, r.status, r.body)
	}
	return r.token(tb)
}

func (e *env) refresh(tb testing.TB, rt string) reply {
	tb.Helper()
	return e.postForm(tb, "/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, nil)
}

func bearer(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

func (e *env) dbsize(tb testing.TB) int64 {
	tb.Helper()
	n, err := e.rdb.DBSize(testContext(tb)).Result()
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// session reads a session from the store.
func (e *env) session(tb testing.TB, sid string) store.Session {
	tb.Helper()
	s, err := e.store.GetSession(testContext(tb), sid)
	if err != nil {
		tb.Fatalf("session %s: %v", sid, err)
	}
	return s
}

// segment decodes one segment (0 header, 1 claims) of a compact JWS.
func segment(tb testing.TB, tok string, i int) map[string]json.RawMessage {
	tb.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		tb.Fatalf("token has %d segments", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		tb.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		tb.Fatal(err)
	}
	return m
}

// isErr fails unless err wraps want.
func isErr(tb testing.TB, err, want error) {
	tb.Helper()
	if !errors.Is(err, want) {
		tb.Fatalf("err = %v, want %v", err, want)
	}
}

// testKey returns a signing key for alg: generated for EdDSA and ES256,
// read from testdata for RS256 (generating 2048-bit RSA keys takes seconds
// under the race detector).
func testKey(tb testing.TB, alg string) issuer.SigningKey {
	tb.Helper()
	if alg != "RS256" {
		k, err := issuer.GenerateKey(alg)
		if err != nil {
			tb.Fatal(err)
		}
		return k
	}
	keys, err := issuer.LoadKeys("testdata")
	if err != nil || len(keys) != 1 {
		tb.Fatalf("testdata keys: %d, %v", len(keys), err)
	}
	return keys[0]
}

// recordLogoutAll records a logout-all of sub at now in Redis as the revoker
// does (the next epoch after the recorded one) and returns its epoch.
func recordLogoutAll(ctx context.Context, st *store.Store, sub string, now time.Time) (time.Time, error) {
	cur, err := st.SubjectEpoch(ctx, "", sub)
	if err != nil {
		return time.Time{}, err
	}
	epoch := store.NextEpoch(cur, now)
	x, err := events.NewEncoded(events.NewSubject(revoker.NewEventID(), sub, epoch, epoch))
	if err != nil {
		return time.Time{}, err
	}
	_, err = st.Record(ctx, x, 0, nil)
	return epoch, err
}

// revoke does what the revoker does with ev: records it in Redis, then
// publishes it on the stream.
func (e *env) revoke(tb testing.TB, ev events.Event) {
	tb.Helper()
	if _, err := e.store.Record(testContext(tb), verifiertest.Encoded(tb, ev), time.Minute, nil); err != nil {
		tb.Fatal(err)
	}
	e.nats.Revoke(tb, ev)
}

// jwks is a key source of the issuer's own JWKS endpoint, as a service
// trusting it would have.
func (e *env) jwks(tb testing.TB) verifier.KeySource {
	tb.Helper()
	k, err := verifier.NewJWKS(verifier.JWKSConfig{URL: e.http.URL + "/.well-known/jwks.json"})
	if err != nil {
		tb.Fatal(err)
	}
	return k
}
