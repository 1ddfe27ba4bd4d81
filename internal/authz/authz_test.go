package authz_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/jwtrevoke/jwtrevoke/internal/authz"
	"github.com/jwtrevoke/jwtrevoke/internal/eventually"
	"github.com/jwtrevoke/jwtrevoke/internal/httpx"
	"github.com/jwtrevoke/jwtrevoke/internal/runverifier"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier/verifiertest"
)

const maxLifetime = time.Hour

// env is an authorizer over a ready verifier fed by an embedded NATS
// server, served over HTTP and gRPC as verifierd serves it.
type env struct {
	nats *verifiertest.Server
	iss  *verifiertest.Issuer
	a    *authz.Authorizer
	http *httptest.Server
	grpc authv3.AuthorizationClient
	// grpcAddr is where the gRPC server listens.
	grpcAddr string
}

func newEnv(t testing.TB, cfg authz.Config) *env {
	t.Helper()
	e := &env{nats: verifiertest.RunJetStream(t), iss: verifiertest.NewIssuer(t)}
	e.nats.EnsureStream(t, events.StreamOptions{MaxTokenLifetime: maxLifetime})
	_, js := e.nats.Connect(t)
	if cfg.Verifier == nil {
		keys, err := verifier.NewJWKS(verifier.JWKSConfig{URL: e.iss.JWKSURL(), Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Verifier = runverifier.Ready(t, verifier.Config{
			Issuer: e.iss.Issuer(), Audiences: []string{e.iss.Audience()}, Algorithms: []string{e.iss.Algorithm(), verifier.RS256},
			Keys: keys, JetStream: js, MaxTokenLifetime: maxLifetime, Logger: slog.New(slog.DiscardHandler),
		})
	}
	cfg.Logger = slog.New(slog.DiscardHandler)
	var err error
	if e.a, err = authz.New(cfg); err != nil {
		t.Fatal(err)
	}
	e.http = httptest.NewServer(e.a.Handler(httpx.NewMux()))
	t.Cleanup(e.http.Close)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.grpcAddr = ln.Addr().String()
	gs := grpc.NewServer(authz.ServerOptions()...)
	e.a.Register(gs)
	go func() { _ = gs.Serve(ln) }()
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	e.grpc = authv3.NewAuthorizationClient(conn)
	return e
}

// answer is what a proxy gets from the authorizer, over either API.
type answer struct {
	status int
	header http.Header // over gRPC: the OK response's headers, or the denial's
	remove []string    // gRPC: headers_to_remove
	body   string
}

// check asks over HTTP: method and path as a proxy sends them, header
// the forwarded client header.
func (e *env) check(t *testing.T, method, path string, header http.Header) answer {
	t.Helper()
	req, err := http.NewRequest(method, e.http.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header.Clone()
	resp, err := e.http.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// checkGRPC asks over gRPC as Envoy does: the header as a map of
// lower-case names.
func (e *env) checkGRPC(t *testing.T, header http.Header) answer {
	t.Helper()
	m := map[string]string{}
	for k, vs := range header {
		m[strings.ToLower(k)] = strings.Join(vs, ",")
	}
	m[":method"], m[":path"] = "GET", "/orders/7"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := e.grpc.Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "GET", Path: "/orders/7", Headers: m,
		}},
	}})
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	a := answer{header: http.Header{}}
	switch r := resp.HttpResponse.(type) {
	case *authv3.CheckResponse_OkResponse:
		if codes.Code(resp.GetStatus().GetCode()) != codes.OK {
			t.Fatalf("OK response with status %v", resp.GetStatus())
		}
		a.status = http.StatusOK
		for _, h := range r.OkResponse.GetHeaders() {
			a.header.Set(h.GetHeader().GetKey(), h.GetHeader().GetValue())
		}
		a.remove = r.OkResponse.GetHeadersToRemove()
	case *authv3.CheckResponse_DeniedResponse:
		if codes.Code(resp.GetStatus().GetCode()) == codes.OK {
			t.Fatalf("denied response with status OK")
		}
		a.status = int(r.DeniedResponse.GetStatus().GetCode())
		for _, h := range r.DeniedResponse.GetHeaders() {
			a.header.Set(h.GetHeader().GetKey(), h.GetHeader().GetValue())
		}
		a.body = r.DeniedResponse.GetBody()
	default:
		t.Fatalf("Check answered %T", resp.HttpResponse)
	}
	return a
}

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

// both asks over HTTP and gRPC and fails the test unless both give the
// same status and, for a 401, the same reason in WWW-Authenticate.
func (e *env) both(t *testing.T, header http.Header) answer {
	t.Helper()
	h, g := e.check(t, http.MethodGet, authz.CheckPath, header), e.checkGRPC(t, header)
	if h.status != g.status || h.header.Get("WWW-Authenticate") != g.header.Get("WWW-Authenticate") ||
		h.header.Get("Retry-After") != g.header.Get("Retry-After") {
		t.Fatalf("HTTP answered %d %q %q, gRPC %d %q %q", h.status, h.header.Get("WWW-Authenticate"), h.header.Get("Retry-After"),
			g.status, g.header.Get("WWW-Authenticate"), g.header.Get("Retry-After"))
	}
	if h.status != http.StatusOK && strings.TrimSpace(h.body) != g.body {
		t.Fatalf("HTTP body %q, gRPC body %q", h.body, g.body)
	}
	return h
}

// TestHostileTokensBothAPIs: the verifier's table of hostile tokens,
// through forward-auth and ext_authz: each refused with 401 and its reason
// in WWW-Authenticate (RFC 6750), the valid ones let through.
func TestHostileTokensBothAPIs(t *testing.T) {
	e := newEnv(t, authz.Config{})
	for _, tt := range e.iss.HostileTokens(t, verifiertest.HostileLimits{MaxTokenLifetime: maxLifetime,
		Leeway: verifier.DefaultLeeway, MaxTokenSize: verifier.DefaultMaxTokenSize}) {
		t.Run(tt.Name, func(t *testing.T) {
			a := e.both(t, bearer(tt.Token))
			if tt.Reason == "" {
				if a.status != http.StatusOK {
					t.Fatalf("%d %s, want 200", a.status, a.body)
				}
				return
			}
			want := `Bearer realm="jwtrevoke", error="invalid_token", error_description="` + tt.Reason + `"`
			if a.status != http.StatusUnauthorized || a.header.Get("WWW-Authenticate") != want {
				t.Fatalf("%d, WWW-Authenticate %q; want 401, %q", a.status, a.header.Get("WWW-Authenticate"), want)
			}
			if a.header.Get("X-Auth-Subject") != "" {
				t.Fatal("a refused check carries an identity header")
			}
		})
	}
}

// TestIdentityHeaders: a token let through gives its identity as headers
// for the upstream: sub, sid, jti, iss and the whole claims set as
// base64url JSON; a claim the token lacks is sent empty over HTTP and
// removed over gRPC, so a client's own header of that name cannot pass.
func TestIdentityHeaders(t *testing.T) {
	e := newEnv(t, authz.Config{})
	tok := e.iss.Token(t, verifiertest.TokenOptions{Subject: "alice", SessionID: "s-1", JTI: "j-1",
		Extra: map[string]any{"tenant": "acme"}})
	for api, a := range map[string]answer{"HTTP": e.check(t, http.MethodGet, authz.CheckPath, bearer(tok)), "gRPC": e.checkGRPC(t, bearer(tok))} {
		if a.status != http.StatusOK {
			t.Fatalf("%s: %d %s", api, a.status, a.body)
		}
		for name, want := range map[string]string{"X-Auth-Subject": "alice", "X-Auth-Session": "s-1",
			"X-Auth-Token-Id": "j-1", "X-Auth-Issuer": e.iss.Issuer()} {
			if got := a.header.Get(name); got != want {
				t.Errorf("%s: %s = %q, want %q", api, name, got, want)
			}
		}
		raw, err := base64.RawURLEncoding.DecodeString(a.header.Get("X-Auth-Claims"))
		var claims map[string]any
		if err == nil {
			err = json.Unmarshal(raw, &claims)
		}
		if err != nil || claims["tenant"] != "acme" || claims["sub"] != "alice" {
			t.Errorf("%s: X-Auth-Claims %q decodes to %v (%v)", api, a.header.Get("X-Auth-Claims"), claims, err)
		}
	}

	noSession := e.iss.Token(t, verifiertest.TokenOptions{Extra: map[string]any{"sid": nil}})
	h := e.check(t, http.MethodGet, authz.CheckPath, bearer(noSession))
	if v, set := h.header["X-Auth-Session"]; h.status != http.StatusOK || !set || len(v) != 1 || v[0] != "" {
		t.Errorf("HTTP without sid: %d, X-Auth-Session %q; want present and empty, so that a proxy copying it replaces the client's", h.status, v)
	}
	g := e.checkGRPC(t, bearer(noSession))
	if g.status != http.StatusOK || g.header.Get("X-Auth-Session") != "" || len(g.remove) != 1 || g.remove[0] != "X-Auth-Session" {
		t.Errorf("gRPC without sid: %d, headers %v, headers_to_remove %v; want X-Auth-Session removed", g.status, g.header, g.remove)
	}
}

// TestRevokedRefusedBothAPIs: a revocation on the stream refuses the token
// through both APIs, with its reason.
func TestRevokedRefusedBothAPIs(t *testing.T) {
	e := newEnv(t, authz.Config{})
	tok := e.iss.Token(t, verifiertest.TokenOptions{SessionID: "s-gone"})
	if a := e.both(t, bearer(tok)); a.status != http.StatusOK {
		t.Fatalf("before the revocation: %d", a.status)
	}
	e.nats.Revoke(t, events.NewSession("rev-1", "s-gone", time.Now()))
	eventually.True(t, 5*time.Second, "the revoked session refused", func() bool {
		return e.check(t, http.MethodGet, authz.CheckPath, bearer(tok)).status == http.StatusUnauthorized
	})
	a := e.both(t, bearer(tok))
	if !strings.Contains(a.header.Get("WWW-Authenticate"), `error_description="revoked_session"`) {
		t.Errorf("WWW-Authenticate %q, want revoked_session", a.header.Get("WWW-Authenticate"))
	}
}

// TestOnlyThreeStatuses: whatever the proxy forwards — any method, any path
// below /v1/check (uncleaned), no token, a malformed, repeated or oversized
// header — the answer is 200 or 401, never the 400, 404, 301 or 431 a proxy
// would turn into a 500; other paths are not the check.
func TestOnlyThreeStatuses(t *testing.T) {
	e := newEnv(t, authz.Config{Cookie: "at"})
	tok := e.iss.Token(t, verifiertest.TokenOptions{})
	for _, method := range []string{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"} {
		for _, path := range []string{"/v1/check", "/v1/check/", "/v1/check/orders/7?x=1", "/v1/check/a/../../b", "/v1/check//x"} {
			if a := e.check(t, method, path, bearer(tok)); a.status != http.StatusOK {
				t.Errorf("%s %s: %d, want 200", method, path, a.status)
			}
		}
	}
	challenge := `Bearer realm="jwtrevoke"`
	malformed := challenge + `, error="invalid_request", error_description="malformed authorization header"`
	for _, tt := range []struct {
		name   string
		header http.Header
		want   string // WWW-Authenticate
	}{
		{"no token", http.Header{}, challenge},
		{"basic credentials", http.Header{"Authorization": {"Basic YTpi"}}, malformed},
		{"bearer without token", http.Header{"Authorization": {"Bearer "}}, malformed},
		{"two tokens", http.Header{"Authorization": {"Bearer a b"}}, malformed},
		{"two Authorization headers", http.Header{"Authorization": {"Bearer " + tok, "Bearer " + tok}}, malformed},
		{"garbage token", bearer("garbage"), challenge + `, error="invalid_token", error_description="malformed"`},
	} {
		a := e.both(t, tt.header)
		if a.status != http.StatusUnauthorized || a.header.Get("WWW-Authenticate") != tt.want {
			t.Errorf("%s: %d, WWW-Authenticate %q; want 401, %q", tt.name, a.status, a.header.Get("WWW-Authenticate"), tt.want)
		}
	}
	big := bearer(tok)
	big.Set("X-Padding", strings.Repeat("p", httpx.MaxHeaderBytes))
	if a := e.check(t, http.MethodGet, authz.CheckPath, big); a.status != http.StatusUnauthorized {
		t.Errorf("oversized header: %d %s, want 401", a.status, a.body)
	}
	cookie := http.Header{"Cookie": {"at=" + tok}}
	if a := e.both(t, cookie); a.status != http.StatusOK {
		t.Errorf("token in the cookie: %d, want 200", a.status)
	}
	if a := e.check(t, http.MethodGet, "/v1/checkpoint", bearer(tok)); a.status != http.StatusNotFound {
		t.Errorf("/v1/checkpoint: %d, want 404 (not the check)", a.status)
	}
}

// TestCannotDecide: a verifier that has not replayed the stream cannot
// decide: 503 with Retry-After over HTTP, a denial with 503 and
// UNAVAILABLE over gRPC; never a 200.
func TestCannotDecide(t *testing.T) {
	iss := verifiertest.NewIssuer(t)
	keys, err := verifier.NewJWKS(verifier.JWKSConfig{URL: iss.JWKSURL(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	nats := verifiertest.RunJetStream(t)
	_, js := nats.Connect(t)
	v, err := verifier.New(verifier.Config{Issuer: iss.Issuer(), Audiences: []string{iss.Audience()},
		Algorithms: []string{iss.Algorithm()}, Keys: keys, JetStream: js, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close) // never run: never ready
	e := newEnv(t, authz.Config{Verifier: v, RetryAfter: 2})
	a := e.both(t, bearer(iss.Token(t, verifiertest.TokenOptions{})))
	if a.status != http.StatusServiceUnavailable || a.header.Get("Retry-After") != "2" || !strings.Contains(a.body, `"not_ready"`) {
		t.Fatalf("%d, Retry-After %q, body %s; want 503, 2, not_ready", a.status, a.header.Get("Retry-After"), a.body)
	}
	g, err := e.grpc.Check(context.Background(), &authv3.CheckRequest{})
	if err != nil || codes.Code(g.GetStatus().GetCode()) != codes.Unauthenticated {
		t.Errorf("a check without a request: %v, %v; want a denial (no token)", g.GetStatus(), err)
	}
}

// TestConfig: identity header names that a proxy or HTTP owns, invalid or
// repeated names, and a realm that cannot be quoted are refused.
func TestConfig(t *testing.T) {
	iss := verifiertest.NewIssuer(t)
	keys, err := verifier.StaticKeys(verifier.Key{ID: iss.KeyID(), Public: iss.PublicKey()})
	if err != nil {
		t.Fatal(err)
	}
	checker, err := verifier.NewChecker(keys, verifier.CheckerConfig{Issuer: iss.Issuer(), Audiences: []string{iss.Audience()}, Algorithms: []string{iss.Algorithm()}})
	if err != nil {
		t.Fatal(err)
	}
	good := authz.DefaultHeaders()
	for _, tt := range []struct {
		name string
		cfg  authz.Config
	}{
		{"no verifier", authz.Config{}},
		{"Authorization as the subject header", authz.Config{Verifier: checkerVerifier{checker}, Headers: authz.Headers{Subject: "authorization"}}},
		{"X-Forwarded-For as the issuer header", authz.Config{Verifier: checkerVerifier{checker}, Headers: authz.Headers{Issuer: "X-Forwarded-For"}}},
		{"a name with a space", authz.Config{Verifier: checkerVerifier{checker}, Headers: authz.Headers{Subject: "X Auth"}}},
		{"one name twice", authz.Config{Verifier: checkerVerifier{checker}, Headers: authz.Headers{Subject: "X-Id", TokenID: "x-id"}}},
		{"a realm with a quote", authz.Config{Verifier: checkerVerifier{checker}, Realm: `a"b`, Headers: good}},
	} {
		if _, err := authz.New(tt.cfg); err == nil {
			t.Errorf("%s: accepted", tt.name)
		}
	}
}

// checkerVerifier lets a stateless Checker stand in where no stream is
// needed (configuration tests).
type checkerVerifier struct{ c *verifier.Checker }

func (cv checkerVerifier) Verify(ctx context.Context, raw string) (*verifier.Claims, error) {
	return cv.c.Check(ctx, raw)
}

// TestUnixSocket: verifierd's HTTP listener on a Unix socket, as a sidecar
// runs it, answers the check; a socket left by an earlier run is replaced.
func TestUnixSocket(t *testing.T) {
	e := newEnv(t, authz.Config{})
	path := filepath.Join(t.TempDir(), "verifierd.sock")
	for run := range 2 {
		srv, err := httpx.ListenBare("unix:"+path, e.a.Handler(httpx.NewMux()), nil)
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- srv.Serve(ctx) }()
		client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		}}}
		req, _ := http.NewRequest(http.MethodGet, "http://verifierd/v1/check", nil)
		req.Header = bearer(e.iss.Token(t, verifiertest.TokenOptions{}))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("run %d: %d, want 200", run, resp.StatusCode)
		}
		client.CloseIdleConnections()
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("run %d: Serve: %v", run, err)
		}
	}
}
