package revoker

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jwtrevoke/jwtrevoke/internal/eventually"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier/verifiertest"
)

// TestBadBodySaysWhatIsWrong: a refused revocation body is described in
// the client's terms, never with Go's type names.
func TestBadBodySaysWhatIsWrong(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name string
		body string
		want string
	}{
		{name: "array", body: `[{"type":"session","sid":"s"}]`, want: "body must be a JSON object"},
		{name: "wrong type", body: `{"type":"session","sid":1}`, want: `field "sid" must be a string`},
		{name: "unknown field", body: `{"type":"session","sid":"s","x":1}`, want: `unknown field "x"`},
		{name: "syntax", body: `{"type":}`, want: "body is not valid JSON at offset 9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := e.revokeJSON(t, tt.body, "")
			code, desc := a.errorBody(t)
			if a.status != http.StatusBadRequest || code != "invalid_request" || desc != tt.want {
				t.Fatalf("%s: %d %s %q, want 400 invalid_request %q", tt.body, a.status, code, desc, tt.want)
			}
			if strings.Contains(desc, "Go ") || strings.Contains(desc, "unmarshal") {
				t.Fatalf("description shows Go internals: %q", desc)
			}
		})
	}
}

// lockedBuffer is a bytes.Buffer safe for a logger and a test at once.
type lockedBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestReadyzShowsNoInternals: /readyz answers without credentials, so with
// Redis down it names the reason, not the address or the dial error; the
// detail is logged once for the change, not once per probe.
func TestReadyzShowsNoInternals(t *testing.T) {
	var logs lockedBuffer
	e := newEnv(t, func(c *Config) { c.Logger = slog.New(slog.NewJSONHandler(&logs, nil)) })
	e.redis.Stop()
	for range 3 {
		a := e.do(t, http.MethodGet, "/readyz", "", nil, nil)
		var body map[string]string
		if err := json.Unmarshal(a.body, &body); err != nil || a.status != http.StatusServiceUnavailable ||
			body["reason"] != "redis unreachable" {
			t.Fatalf("/readyz with Redis down: %d %s, want 503 reason \"redis unreachable\"", a.status, a.body)
		}
		if strings.Contains(string(a.body), e.redis.Addr()) || strings.Contains(string(a.body), "dial") {
			t.Fatalf("/readyz shows internals: %s", a.body)
		}
	}
	if n := strings.Count(logs.String(), `"msg":"not ready"`); n != 1 {
		t.Fatalf("%d \"not ready\" log lines for one change, want 1:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), e.redis.Addr()) {
		t.Fatalf("the log lacks the detail (Redis address):\n%s", logs.String())
	}
	e.redis.Restart(t)
	eventually.True(t, 10*time.Second, "/readyz 200 after Redis restarted", func() bool {
		return e.do(t, http.MethodGet, "/readyz", "", nil, nil).status == http.StatusOK
	})
	if n := strings.Count(logs.String(), `"msg":"ready"`); n != 1 {
		t.Fatalf("%d \"ready\" log lines, want 1:\n%s", n, logs.String())
	}
}

// TestIntrospectBasicAuth: introspection clients authenticate with HTTP
// Basic (RFC 7662 §2.1), the service credential as password; the
// revocation endpoint still takes Bearer only.
func TestIntrospectBasicAuth(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.iss.Token(t, verifiertest.TokenOptions{Subject: "alice", SessionID: "s-basic"})
	basic := func(user, password string) string {
		r, _ := http.NewRequest(http.MethodPost, "/", nil)
		r.SetBasicAuth(user, password)
		return r.Header.Get("Authorization")
	}
	form := []byte(url.Values{"token": {tok}}.Encode())
	tests := []struct {
		name       string
		path       string
		authz      string
		wantStatus int
	}{
		{name: "introspect basic", path: "/oauth2/introspect", authz: basic("api-gateway", testCredential), wantStatus: http.StatusOK},
		{name: "introspect bearer", path: "/oauth2/introspect", authz: "Bearer " + testCredential, wantStatus: http.StatusOK},
		{name: "introspect basic wrong", path: "/oauth2/introspect", authz: basic("api-gateway", testCredential+"x"), wantStatus: http.StatusUnauthorized},
		{name: "introspect basic no client id", path: "/oauth2/introspect", authz: basic("", testCredential), wantStatus: http.StatusUnauthorized},
		{name: "revocations basic", path: "/v1/revocations", authz: basic("api-gateway", testCredential), wantStatus: http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := e.do(t, http.MethodPost, tt.path, "application/x-www-form-urlencoded", form, map[string]string{"Authorization": tt.authz})
			if a.status != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", a.status, tt.wantStatus, a.body)
			}
			if a.status == http.StatusOK && a.introspection(t)["active"] != true {
				t.Fatalf("introspection of a live token: %s", a.body)
			}
			if a.status == http.StatusUnauthorized {
				if code, _ := a.errorBody(t); code != "invalid_client" {
					t.Fatalf("error %q, want invalid_client", code)
				}
			}
		})
	}
}
