package keyset

import (
	"bytes"
	"context"
	"crypto/elliptic"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jwtrevoke/jwtrevoke/internal/eventually"
)

// jwksServer is a real HTTP server publishing a key set the test can change.
type jwksServer struct {
	*httptest.Server
	requests atomic.Int64

	mu          sync.Mutex // guards body, status, contentType and hold
	body        []byte
	status      int
	contentType string
	hold        chan struct{} // when non-nil, requests wait until it is closed
}

// newJWKSServer starts a server publishing keys; it is closed at Cleanup.
func newJWKSServer(tb testing.TB, keys ...Key) *jwksServer {
	tb.Helper()
	s := &jwksServer{status: http.StatusOK, contentType: "application/json"}
	if len(keys) > 0 {
		s.body = jwksOf(tb, keys...)
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	tb.Cleanup(s.Close)
	return s
}

func (s *jwksServer) serve(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	s.mu.Lock()
	body, status, ct, hold := s.body, s.status, s.contentType, s.hold
	s.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// set changes what the server answers from now on.
func (s *jwksServer) set(status int, contentType string, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.contentType, s.body = status, contentType, body
}

func (s *jwksServer) publish(tb testing.TB, keys ...Key) {
	tb.Helper()
	s.set(http.StatusOK, "application/json", jwksOf(tb, keys...))
}

// holdRequests makes requests wait until the returned release is called.
// Release is also registered at Cleanup (before the server closes).
func (s *jwksServer) holdRequests(tb testing.TB) (release func()) {
	tb.Helper()
	ch := make(chan struct{})
	s.mu.Lock()
	s.hold = ch
	s.mu.Unlock()
	release = sync.OnceFunc(func() {
		s.mu.Lock()
		s.hold = nil
		s.mu.Unlock()
		close(ch)
	})
	tb.Cleanup(release)
	return release
}

// newTestRemote returns a Remote for url with a fake clock.
func newTestRemote(tb testing.TB, url string, clock *fakeClock) *Remote {
	tb.Helper()
	r, err := NewRemote(RemoteConfig{URL: url, Now: clock.Now})
	if err != nil {
		tb.Fatalf("NewRemote: %v", err)
	}
	return r
}

func testContext(tb testing.TB) context.Context {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

func TestRemoteFetchAndRotation(t *testing.T) {
	ctx := testContext(t)
	k1 := Key{ID: "k1", Public: newEd25519Key(t)}
	k2 := Key{ID: "k2", Public: newECKey(t, elliptic.P256())}
	srv := newJWKSServer(t, k1)
	clock := newFakeClock()
	r := newTestRemote(t, srv.URL, clock)

	// The first lookup fetches.
	if got, err := r.Key(ctx, "k1"); err != nil || got.ID != "k1" {
		t.Fatalf("Key(k1) = %v, %v", got, err)
	}
	if n := srv.requests.Load(); n != 1 {
		t.Fatalf("requests after first lookup = %d, want 1", n)
	}
	// A cached key costs nothing.
	if _, err := r.Key(ctx, "k1"); err != nil {
		t.Fatal(err)
	}
	if n := srv.requests.Load(); n != 1 {
		t.Fatalf("requests after cached lookup = %d, want 1", n)
	}
	st := r.Status()
	if st.Keys != 1 || st.LastError != nil || !st.LastFetch.Equal(clock.Now()) {
		t.Fatalf("Status = %+v", st)
	}

	// Rotation: the server starts publishing k2. Within MinRefreshInterval
	// of the last fetch the unknown kid does not fetch.
	srv.publish(t, k1, k2)
	if _, err := r.Key(ctx, "k2"); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("Key(k2) within rate limit: err = %v, want ErrUnknownKey", err)
	}
	if n := srv.requests.Load(); n != 1 {
		t.Fatalf("requests within rate limit = %d, want 1", n)
	}
	clock.Advance(DefaultMinRefreshInterval)
	if got, err := r.Key(ctx, "k2"); err != nil || got.ID != "k2" || got.Algorithm != AlgES256 {
		t.Fatalf("Key(k2) after rotation = %+v, %v", got, err)
	}
	if n := srv.requests.Load(); n != 2 {
		t.Fatalf("requests after rotation = %d, want 2", n)
	}

	// A key removed from the set stops verifying after the next fetch.
	srv.publish(t, k2)
	if err := r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Key(ctx, "k1"); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("Key(k1) after removal: err = %v, want ErrUnknownKey", err)
	}

	// An empty kid never fetches.
	before := srv.requests.Load()
	clock.Advance(time.Hour)
	if _, err := r.Key(ctx, ""); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("Key(\"\") err = %v, want ErrUnknownKey", err)
	}
	if n := srv.requests.Load(); n != before {
		t.Fatalf("empty kid fetched: requests %d -> %d", before, n)
	}
}

func TestRemoteConcurrentUnknownKidSharesOneFetch(t *testing.T) {
	ctx := testContext(t)
	k1 := Key{ID: "k1", Public: newEd25519Key(t)}
	k2 := Key{ID: "k2", Public: newEd25519Key(t)}
	srv := newJWKSServer(t, k1)
	clock := newFakeClock()
	r := newTestRemote(t, srv.URL, clock)
	if err := r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}

	srv.publish(t, k1, k2)
	clock.Advance(time.Hour)
	release := srv.holdRequests(t)

	const callers = 100
	var (
		wg   sync.WaitGroup
		errs = make(chan error, callers)
	)
	for range callers {
		wg.Go(func() {
			k, err := r.Key(ctx, "k2")
			if err == nil && k.ID != "k2" {
				err = fmt.Errorf("got kid %q", k.ID)
			}
			errs <- err
		})
	}
	// The shared fetch reaches the server and is held there while callers
	// pile up behind it.
	eventually.True(t, 10*time.Second, "2 requests", func() bool { return srv.requests.Load() == 2 })
	release()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Key(k2): %v", err)
		}
	}
	if n := srv.requests.Load(); n != 2 {
		t.Fatalf("requests = %d, want 2 (initial + one shared fetch)", n)
	}
}

func TestRemoteFloodOfRandomKidsIsRateLimited(t *testing.T) {
	ctx := testContext(t)
	srv := newJWKSServer(t, Key{ID: "k1", Public: newEd25519Key(t)})
	clock := newFakeClock()
	r := newTestRemote(t, srv.URL, clock)
	if err := r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}

	flood := func(round int) {
		var wg sync.WaitGroup
		for g := range 20 {
			wg.Go(func() {
				for i := range 50 {
					kid := fmt.Sprintf("random-%d-%d-%d", round, g, i)
					if _, err := r.Key(ctx, kid); !errors.Is(err, ErrUnknownKey) {
						t.Errorf("Key(%s) err = %v, want ErrUnknownKey", kid, err)
						return
					}
				}
			})
		}
		wg.Wait()
	}

	flood(0) // within MinRefreshInterval of the initial fetch: no fetch at all
	if n := srv.requests.Load(); n != 1 {
		t.Fatalf("requests after flood in the same interval = %d, want 1", n)
	}
	for round := 1; round <= 3; round++ {
		clock.Advance(DefaultMinRefreshInterval)
		flood(round)
		if n, want := srv.requests.Load(), int64(1+round); n != want {
			t.Fatalf("requests after flood round %d = %d, want %d (one per interval)", round, n, want)
		}
	}
}

func TestRemoteFailedFetchKeepsKeys(t *testing.T) {
	good := Key{ID: "good", Public: newEd25519Key(t)}
	priv := setOf(t, with(jwkMaps(t, good)[0], "d", "AAAA"))
	tests := []struct {
		name        string
		status      int
		contentType string
		body        []byte
	}{
		{name: "status 500", status: http.StatusInternalServerError, contentType: "application/json", body: jwksOf(t, good)},
		{name: "status 404", status: http.StatusNotFound, contentType: "application/json", body: []byte(`{}`)},
		{name: "garbage", status: http.StatusOK, contentType: "application/json", body: []byte("not json")},
		{name: "html", status: http.StatusOK, contentType: "text/html", body: jwksOf(t, good)},
		{name: "no content type", status: http.StatusOK, contentType: "", body: jwksOf(t, good)},
		{name: "huge body", status: http.StatusOK, contentType: "application/json", body: append(jwksOf(t, good), bytes.Repeat([]byte(" "), DefaultMaxBodyBytes)...)},
		{name: "empty set", status: http.StatusOK, contentType: "application/json", body: []byte(`{"keys":[]}`)},
		{name: "private key", status: http.StatusOK, contentType: "application/json", body: priv},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testContext(t)
			srv := newJWKSServer(t, good)
			clock := newFakeClock()
			r := newTestRemote(t, srv.URL, clock)
			if err := r.Refresh(ctx); err != nil {
				t.Fatal(err)
			}

			srv.set(tt.status, tt.contentType, tt.body)
			clock.Advance(time.Minute)
			if err := r.Refresh(ctx); err == nil {
				t.Fatal("Refresh succeeded against a bad answer")
			}
			st := r.Status()
			if st.LastError == nil || st.Keys != 1 {
				t.Fatalf("Status after failure = %+v, want LastError set and 1 key", st)
			}
			if k, err := r.Key(ctx, "good"); err != nil || k.ID != "good" {
				t.Fatalf("Key(good) after failed fetch = %v, %v", k, err)
			}
			// An unknown kid after a failed fetch is still just unknown.
			clock.Advance(time.Minute)
			if _, err := r.Key(ctx, "other"); !errors.Is(err, ErrUnknownKey) {
				t.Fatalf("Key(other) err = %v, want ErrUnknownKey", err)
			}

			srv.publish(t, good)
			if err := r.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
			if st := r.Status(); st.LastError != nil {
				t.Fatalf("LastError after recovery = %v", st.LastError)
			}
		})
	}
}

func TestRemoteNeverFetched(t *testing.T) {
	ctx := testContext(t)
	srv := newJWKSServer(t)
	srv.set(http.StatusServiceUnavailable, "text/plain", []byte("down"))
	clock := newFakeClock()
	r := newTestRemote(t, srv.URL, clock)

	// A token without kid is bad whatever the state of the set: no fetch.
	if _, err := r.Key(ctx, ""); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("Key(\"\") err = %v, want ErrUnknownKey", err)
	}
	if n := srv.requests.Load(); n != 0 {
		t.Fatalf("empty kid fetched: %d requests", n)
	}

	_, err := r.Key(ctx, "k1")
	if !errors.Is(err, ErrKeysUnavailable) || errors.Is(err, ErrUnknownKey) {
		t.Fatalf("err = %v, want ErrKeysUnavailable only", err)
	}
	if !strings.Contains(err.Error(), "status 503") {
		t.Fatalf("err = %v, want the cause (status 503) wrapped", err)
	}
	// Within the rate limit: still unavailable, no new request.
	if _, err := r.Key(ctx, "k2"); !errors.Is(err, ErrKeysUnavailable) {
		t.Fatalf("second err = %v, want ErrKeysUnavailable", err)
	}
	if n := srv.requests.Load(); n != 1 {
		t.Fatalf("requests = %d, want 1", n)
	}

	// Unreachable server.
	srv.Close()
	clock.Advance(time.Minute)
	if _, err := r.Key(ctx, "k1"); !errors.Is(err, ErrKeysUnavailable) {
		t.Fatalf("unreachable: err = %v, want ErrKeysUnavailable", err)
	}
}

func TestRemoteContextCancelledWhileWaiting(t *testing.T) {
	srv := newJWKSServer(t, Key{ID: "k1", Public: newEd25519Key(t)})
	srv.holdRequests(t)
	r := newTestRemote(t, srv.URL, newFakeClock())

	ctx, cancel := context.WithCancel(testContext(t))
	done := make(chan error, 1)
	go func() {
		_, err := r.Key(ctx, "k1")
		done <- err
	}()
	eventually.True(t, 10*time.Second, "1 request", func() bool { return srv.requests.Load() == 1 })
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Key did not return after its context was cancelled")
	}

	// Refresh honours its context the same way.
	short, cancelShort := context.WithTimeout(testContext(t), 20*time.Millisecond)
	defer cancelShort()
	if err := r.Refresh(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Refresh err = %v, want context.DeadlineExceeded", err)
	}
}

func TestRemoteRedirects(t *testing.T) {
	ctx := testContext(t)
	key := Key{ID: "k1", Public: newEd25519Key(t)}
	other := newJWKSServer(t, key)

	mux := http.NewServeMux()
	mux.Handle("/other", http.RedirectHandler(other.URL, http.StatusFound))
	mux.Handle("/old", http.RedirectHandler("/jwks", http.StatusMovedPermanently))
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(jwksOf(t, key))
	})
	origin := httptest.NewServer(mux)
	t.Cleanup(origin.Close)

	r := newTestRemote(t, origin.URL+"/other", newFakeClock())
	if err := r.Refresh(ctx); !errors.Is(err, errRedirectRefused) {
		t.Fatalf("Refresh err = %v, want redirect refused", err)
	}
	if n := other.requests.Load(); n != 0 {
		t.Fatalf("other origin got %d requests", n)
	}

	r = newTestRemote(t, origin.URL+"/old", newFakeClock())
	if err := r.Refresh(ctx); err != nil {
		t.Fatalf("same-origin redirect: %v", err)
	}
}

func TestRemoteRun(t *testing.T) {
	srv := newJWKSServer(t, Key{ID: "k1", Public: newEd25519Key(t)})
	r, err := NewRemote(RemoteConfig{URL: srv.URL, RefreshInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(testContext(t))
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()

	eventually.True(t, 10*time.Second, "3 requests", func() bool { return srv.requests.Load() >= 3 })
	if st := r.Status(); st.Keys != 1 || st.LastFetch.IsZero() {
		t.Fatalf("Status = %+v", st)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run returned %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

func TestNewRemoteConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     RemoteConfig
		wantErr error
	}{
		{name: "https", cfg: RemoteConfig{URL: "https://issuer.example/.well-known/jwks.json"}},
		{name: "http loopback v4", cfg: RemoteConfig{URL: "http://127.0.0.1:8081/jwks"}},
		{name: "http loopback v6", cfg: RemoteConfig{URL: "http://[::1]:8081/jwks"}},
		{name: "http localhost", cfg: RemoteConfig{URL: "http://localhost:8081/jwks"}},
		{name: "http remote insecure allowed", cfg: RemoteConfig{URL: "http://issuer.internal/jwks", InsecureAllowHTTP: true}},
		{name: "custom client", cfg: RemoteConfig{URL: "https://issuer.example/jwks", Client: &http.Client{}}},

		{name: "http remote", cfg: RemoteConfig{URL: "http://issuer.example/jwks"}, wantErr: ErrInvalidConfig},
		{name: "http host resembling loopback", cfg: RemoteConfig{URL: "http://127.0.0.1.evil.example/jwks"}, wantErr: ErrInvalidConfig},
		{name: "empty", cfg: RemoteConfig{}, wantErr: ErrInvalidConfig},
		{name: "relative", cfg: RemoteConfig{URL: "/jwks"}, wantErr: ErrInvalidConfig},
		{name: "ftp", cfg: RemoteConfig{URL: "ftp://issuer.example/jwks"}, wantErr: ErrInvalidConfig},
		{name: "user info", cfg: RemoteConfig{URL: "https://user:pw@issuer.example/jwks"}, wantErr: ErrInvalidConfig},
		{name: "bad url", cfg: RemoteConfig{URL: "https://issuer.example/%zz"}, wantErr: ErrInvalidConfig},
		{name: "negative interval", cfg: RemoteConfig{URL: "https://issuer.example/jwks", RefreshInterval: -1}, wantErr: ErrInvalidConfig},
		{name: "negative body limit", cfg: RemoteConfig{URL: "https://issuer.example/jwks", MaxBodyBytes: -1}, wantErr: ErrInvalidConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewRemote(tt.cfg)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("NewRemote error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if r.client == tt.cfg.Client || r.client.CheckRedirect == nil {
				t.Fatal("client was not copied with a redirect check")
			}
			if tt.cfg.Client != nil && tt.cfg.Client.CheckRedirect != nil {
				t.Fatal("caller's client was modified")
			}
		})
	}
}

func TestRemoteErrorDoesNotEchoLongKid(t *testing.T) {
	ctx := testContext(t)
	srv := newJWKSServer(t, Key{ID: "k1", Public: newEd25519Key(t)})
	r := newTestRemote(t, srv.URL, newFakeClock())
	_, err := r.Key(ctx, strings.Repeat("<script>", 1000))
	if !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("err = %v, want ErrUnknownKey", err)
	}
	if n := len(err.Error()); n > 120 {
		t.Fatalf("error of %d bytes echoes the kid: %.200q", n, err)
	}
}

// TestReady: a static source is ready at once; a remote one only after its
// first successful fetch, whatever failed before.
func TestReady(t *testing.T) {
	ready := func(s Source) bool {
		select {
		case <-s.Ready():
			return true
		default:
			return false
		}
	}
	k := Key{ID: "k1", Public: newEd25519Key(t)}
	st, err := NewStatic(k)
	if err != nil || !ready(st) {
		t.Fatalf("static: %v, ready %t; want ready at once", err, st != nil && ready(st))
	}
	ctx := testContext(t)
	srv := newJWKSServer(t)
	srv.set(http.StatusServiceUnavailable, "text/plain", []byte("down"))
	clock := newFakeClock()
	r := newTestRemote(t, srv.URL, clock)
	if err := r.Refresh(ctx); err == nil || ready(r) {
		t.Fatalf("after a failed fetch: err %v, ready %t; want an error and not ready", err, ready(r))
	}
	srv.publish(t, k)
	clock.Advance(time.Minute)
	if err := r.Refresh(ctx); err != nil || !ready(r) {
		t.Fatalf("after a good fetch: err %v, ready %t; want ready", err, ready(r))
	}
	srv.set(http.StatusServiceUnavailable, "text/plain", []byte("down"))
	clock.Advance(time.Minute)
	_ = r.Refresh(ctx)
	if !ready(r) {
		t.Fatal("a failed fetch after a good one made the source not ready: it keeps its keys")
	}
}
