package example_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jwtrevoke/jwtrevoke/internal/example"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier/verifiertest"
)

func TestMe(t *testing.T) {
	ns := verifiertest.RunJetStream(t)
	ns.EnsureStream(t, events.StreamOptions{MaxTokenLifetime: time.Hour})
	_, js := ns.Connect(t)
	iss := verifiertest.NewIssuer(t)
	keys, err := verifier.NewJWKS(verifier.JWKSConfig{URL: iss.JWKSURL()})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := example.New(example.Config{
		Verifier: verifier.Config{
			Issuer: iss.Issuer(), Audiences: []string{iss.Audience()}, Algorithms: []string{iss.Algorithm()},
			Keys: keys, JetStream: js,
		},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; srv.Close() })
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)

	waitCtx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if err := srv.Verifier().WaitReady(waitCtx); err != nil {
		t.Fatal(err)
	}
	get := func(path, token string) (*http.Response, map[string]any) {
		req, _ := http.NewRequest("GET", hs.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hs.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp, body
	}
	tok := iss.Token(t, verifiertest.TokenOptions{Subject: "alice", SessionID: "s1", Extra: map[string]any{"role": "admin"}})
	resp, body := get("/v1/me", tok)
	if resp.StatusCode != 200 || body["sub"] != "alice" || body["sid"] != "s1" {
		t.Fatalf("GET /v1/me = %d %v", resp.StatusCode, body)
	}
	if claims, _ := body["claims"].(map[string]any); claims["role"] != "admin" {
		t.Fatalf("private claims missing: %v", body)
	}
	resp, body = get("/v1/me", "")
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" || body["error"] == nil {
		t.Fatalf("no token: %d %v %q", resp.StatusCode, body, resp.Header.Get("WWW-Authenticate"))
	}
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		if resp, _ := get(p, ""); resp.StatusCode != 200 {
			t.Fatalf("GET %s = %d", p, resp.StatusCode)
		}
	}
	if resp, body := get("/nope", ""); resp.StatusCode != 404 || body["error"] != "not_found" {
		t.Fatalf("GET /nope = %d %v", resp.StatusCode, body)
	}
}
