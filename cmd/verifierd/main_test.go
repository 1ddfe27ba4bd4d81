package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/jwtrevoke/jwtrevoke/internal/eventually"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier/verifiertest"
)

// TestParse: the required settings are named when missing, a header set to
// "none" is left out, and the environment fills what the command line
// does not give.
func TestParse(t *testing.T) {
	var out bytes.Buffer
	if code := run(nil, func(string) string { return "" }, &out); code != 1 ||
		!strings.Contains(out.String(), "missing required settings: -issuer, -audience, -jwks-url") {
		t.Errorf("no settings: exit %d, %q", code, out.String())
	}
	env := map[string]string{"JWTREVOKE_ISSUER": "https://auth.example.com", "JWTREVOKE_AUDIENCE": "api",
		"JWTREVOKE_JWKS_URL": "https://auth.example.com/jwks", "JWTREVOKE_HEADER_CLAIMS": "none"}
	o, err := parse([]string{"-header-subject", "X-User", "-listen", "unix:/run/v.sock"}, func(k string) string { return env[k] }, &out)
	if err != nil {
		t.Fatal(err)
	}
	if o.headers.Subject != "X-User" || o.headers.Claims != "" || o.headers.Session != "X-Auth-Session" || o.listen != "unix:/run/v.sock" ||
		o.verifier.Issuer != "https://auth.example.com" {
		t.Errorf("parsed %+v", o)
	}
	if code := run([]string{"-realm", `a"b`}, func(k string) string { return env[k] }, &out); code != 1 {
		t.Errorf("a realm that cannot be quoted: exit %d, want 1", code)
	}
}

// TestServe: verifierd as configured by flags, on a Unix socket and a gRPC
// port, with a real NATS and issuer: not ready (503, gRPC health
// NOT_SERVING) until the stream exists and is replayed, then a token
// passes over both APIs, and a revocation on the stream refuses it.
func TestServe(t *testing.T) {
	nats := verifiertest.RunJetStream(t)
	iss := verifiertest.NewIssuer(t)
	sock := filepath.Join(t.TempDir(), "v.sock")
	env := map[string]string{"JWTREVOKE_ISSUER": iss.Issuer(), "JWTREVOKE_AUDIENCE": iss.Audience(),
		"JWTREVOKE_ALGORITHMS": iss.Algorithm(), "JWTREVOKE_JWKS_URL": iss.JWKSURL(), "JWTREVOKE_NATS_URL": nats.URL()}
	o, err := parse([]string{"-listen", "unix:" + sock, "-grpc-listen", "127.0.0.1:0"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, o, slog.New(slog.DiscardHandler), func(_, g string) { addrs <- g })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	var grpcAddr string
	select {
	case grpcAddr = <-addrs:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("not listening within 10s")
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	get := func(path, tok string) int {
		req, _ := http.NewRequest(http.MethodGet, "http://verifierd"+path, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	serving := func() healthpb.HealthCheckResponse_ServingStatus {
		r, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: authv3.Authorization_ServiceDesc.ServiceName})
		if err != nil {
			return healthpb.HealthCheckResponse_UNKNOWN
		}
		return r.GetStatus()
	}
	tok := iss.Token(t, verifiertest.TokenOptions{SessionID: "s-serve"})
	if st := get("/v1/check", tok); st != http.StatusServiceUnavailable {
		t.Errorf("before the stream exists: %d, want 503", st)
	}
	nats.EnsureStream(t, events.StreamOptions{MaxTokenLifetime: time.Hour})
	eventually.True(t, 20*time.Second, "ready", func() bool { return get("/readyz", "") == http.StatusOK })
	eventually.True(t, 5*time.Second, "gRPC health SERVING", func() bool { return serving() == healthpb.HealthCheckResponse_SERVING })
	if st := get("/v1/check/orders", tok); st != http.StatusOK {
		t.Errorf("a valid token: %d, want 200", st)
	}
	check := func() *authv3.CheckResponse {
		r, err := authv3.NewAuthorizationClient(conn).Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{Headers: map[string]string{"authorization": "Bearer " + tok}}}}})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := check(); r.GetOkResponse() == nil {
		t.Errorf("gRPC Check of a valid token: %v", r.GetStatus())
	}
	nats.Revoke(t, events.NewSession("rev-serve", "s-serve", time.Now()))
	eventually.True(t, 5*time.Second, "the revoked session refused", func() bool { return get("/v1/check", tok) == http.StatusUnauthorized })
	if r := check(); r.GetDeniedResponse().GetStatus().GetCode() != 401 {
		t.Errorf("gRPC Check after the revocation: %v", r)
	}
}
