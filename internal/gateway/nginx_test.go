package gateway_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jwtrevoke/jwtrevoke/internal/devmode"
	"github.com/jwtrevoke/jwtrevoke/internal/eventually"
	"github.com/jwtrevoke/jwtrevoke/internal/gateway"
)

// identityHeaders are the headers verifierd sets and nginx passes upstream.
var identityHeaders = []string{"X-Auth-Subject", "X-Auth-Session", "X-Auth-Token-Id", "X-Auth-Issuer", "X-Auth-Claims"}

// echo is the upstream: it answers 200 with the identity headers it got,
// as JSON, and counts its requests.
type echo struct {
	*httptest.Server
	mu   sync.Mutex
	seen int
}

func newEcho(t *testing.T) *echo {
	e := &echo{}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.seen++
		e.mu.Unlock()
		got := map[string][]string{}
		for _, h := range identityHeaders {
			if v, ok := r.Header[h]; ok {
				got[h] = v
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(got)
	}))
	t.Cleanup(e.Close)
	return e
}

func (e *echo) requests() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.seen
}

// system is dev mode (issuer, revoker, verifierd on a Unix socket, the
// stream) with nginx in front of verifierd and the echo upstream.
type system struct {
	sys   *devmode.System
	nginx *gateway.Nginx
	app   *echo
}

func start(t *testing.T) *system {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "verifierd.sock")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sys, err := devmode.Start(ctx, devmode.Config{
		IssuerAddr: "127.0.0.1:0", RevokerAddr: "127.0.0.1:0", ExampleAddrs: []string{"127.0.0.1:0"},
		AuthorizerAddr: "unix:" + sock, MaxStaleness: 2 * time.Second, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sys.Close)
	app := newEcho(t)
	return &system{sys: sys, app: app, nginx: gateway.RunNginx(t, "unix:"+sock, strings.TrimPrefix(app.URL, "http://"))}
}

// login logs user in at the issuer and returns the access token.
func (s *system) login(t *testing.T, user string) string {
	t.Helper()
	resp, err := http.Post(s.sys.IssuerURL+"/v1/login", "application/json",
		strings.NewReader(`{"username":"`+user+`","password":"`+devmode.DemoPassword+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d, %v", resp.StatusCode, err)
	}
	return tr.AccessToken
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func get(t *testing.T, n *gateway.Nginx, path string, header http.Header) reply {
	t.Helper()
	resp := n.Do(t, http.MethodGet, path, header)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, b}
}

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

// TestNginxInFront: a real nginx with docs/gateways.md's configuration in
// front of verifierd and a service. A logged-in user's request reaches the
// service with the identity headers, and headers of those names sent by
// the client never do; after logout the same token gets 401 through nginx
// within a second, with the reason in WWW-Authenticate and a JSON body.
func TestNginxInFront(t *testing.T) {
	s := start(t)
	tok := s.login(t, "alice")

	// The client's own identity headers are overwritten or removed.
	h := bearer(tok)
	h.Set("X-Auth-Subject", "mallory")
	h.Set("X-Auth-Claims", "eyJyb2xlIjoiYWRtaW4ifQ")
	r := get(t, s.nginx, "/orders/7?x=1", h)
	if r.status != http.StatusOK {
		t.Fatalf("through nginx: %d %s", r.status, r.body)
	}
	var got map[string][]string
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatalf("upstream answer %s: %v", r.body, err)
	}
	if sub := got["X-Auth-Subject"]; len(sub) != 1 || sub[0] != "alice" {
		t.Errorf("upstream saw X-Auth-Subject %q, want only alice", sub)
	}
	for _, name := range identityHeaders {
		if len(got[name]) != 1 || got[name][0] == "" {
			t.Errorf("upstream saw %s = %q, want one value", name, got[name])
		}
	}
	claims, err := base64.RawURLEncoding.DecodeString(got["X-Auth-Claims"][0])
	if err != nil || !bytes.Contains(claims, []byte(`"sub":"alice"`)) {
		t.Errorf("X-Auth-Claims upstream decodes to %s (%v), want alice's claims", claims, err)
	}

	// No token: 401, and the client's identity header reaches nobody.
	before := s.app.requests()
	r = get(t, s.nginx, "/orders/7", http.Header{"X-Auth-Subject": {"alice"}})
	if r.status != http.StatusUnauthorized || r.header.Get("WWW-Authenticate") != `Bearer realm="jwtrevoke"` {
		t.Errorf("no token: %d, WWW-Authenticate %q", r.status, r.header.Get("WWW-Authenticate"))
	}
	if s.app.requests() != before {
		t.Error("a request without a token reached the upstream")
	}

	// Logout → 401 through nginx, timed from the logout's answer.
	req, _ := http.NewRequest(http.MethodPost, s.sys.IssuerURL+"/v1/logout", nil)
	req.Header = bearer(tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("logout: %v, %v", resp, err)
	}
	resp.Body.Close()
	loggedOut := time.Now()
	eventually.True(t, time.Second, "the logged-out token refused through nginx within 1 s", func() bool {
		return get(t, s.nginx, "/orders/7", bearer(tok)).status == http.StatusUnauthorized
	})
	t.Logf("logout → 401 through nginx: %s", time.Since(loggedOut).Round(100*time.Microsecond))
	r = get(t, s.nginx, "/orders/7", bearer(tok))
	if want := `Bearer realm="jwtrevoke", error="invalid_token", error_description="revoked_session"`; r.header.Get("WWW-Authenticate") != want {
		t.Errorf("WWW-Authenticate %q, want %q", r.header.Get("WWW-Authenticate"), want)
	}
	var body struct{ Error string }
	if err := json.Unmarshal(r.body, &body); err != nil || body.Error != "unauthorized" || r.header.Get("Content-Type") != "application/json" {
		t.Errorf("401 body %q (%s), want JSON", r.body, r.header.Get("Content-Type"))
	}
	if r := get(t, s.nginx, "/", bearer("garbage")); r.status != http.StatusUnauthorized {
		t.Errorf("a garbage token: %d, want 401", r.status)
	}
}

// TestNginxWhenUndecided: when verifierd cannot decide (its stream gone
// past MaxStaleness) the client gets 503 with verifierd's Retry-After
// through nginx, not nginx's bare 500; when verifierd is unreachable,
// 503 with Retry-After 1. Nothing reaches the upstream either way.
func TestNginxWhenUndecided(t *testing.T) {
	s := start(t)
	tok := s.login(t, "bob")
	if r := get(t, s.nginx, "/", bearer(tok)); r.status != http.StatusOK {
		t.Fatalf("before: %d %s", r.status, r.body)
	}
	s.sys.NATS.Shutdown()
	eventually.True(t, 10*time.Second, "503 through nginx once verifierd is stale", func() bool {
		return get(t, s.nginx, "/", bearer(tok)).status == http.StatusServiceUnavailable
	})
	before := s.app.requests()
	r := get(t, s.nginx, "/", bearer(tok))
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") != "1" || !bytes.Contains(r.body, []byte("temporarily_unavailable")) {
		t.Errorf("stale: %d, Retry-After %q, body %s", r.status, r.header.Get("Retry-After"), r.body)
	}

	down := gateway.RunNginx(t, "unix:"+filepath.Join(t.TempDir(), "nobody.sock"), strings.TrimPrefix(s.app.URL, "http://"))
	r = get(t, down, "/", bearer(tok))
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") != "1" {
		t.Errorf("verifierd unreachable: %d, Retry-After %q, body %s; want 503, 1", r.status, r.header.Get("Retry-After"), r.body)
	}
	if s.app.requests() != before {
		t.Error("an undecided request reached the upstream")
	}
}

// TestDocsGiveTheTestedConfig: docs/gateways.md gives
// deploy/nginx/jwtrevoke.conf, the configuration these tests run, word for
// word.
func TestDocsGiveTheTestedConfig(t *testing.T) {
	conf, err := os.ReadFile(gateway.SnippetPath())
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(filepath.Dir(gateway.SnippetPath()), "..", "..", "docs", "gateways.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(doc, []byte("```nginx\n"+string(conf)+"```")) {
		t.Error("docs/gateways.md does not give deploy/nginx/jwtrevoke.conf as it stands: copy it again")
	}
}
