package example_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jwtrevoke/jwtrevoke/internal/example"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier/verifiertest"
)

// TestReadyzReasonWithoutKeys: while the JWKS cannot be fetched, /readyz
// says so in a few words, without the URL or the dial error.
func TestReadyzReasonWithoutKeys(t *testing.T) {
	ns := verifiertest.RunJetStream(t)
	ns.EnsureStream(t, events.StreamOptions{MaxTokenLifetime: time.Hour})
	_, js := ns.Connect(t)
	down := httptest.NewServer(http.NotFoundHandler())
	jwksURL := down.URL + "/.well-known/jwks.json"
	down.Close() // nothing listens there any more
	keys, err := verifier.NewJWKS(verifier.JWKSConfig{URL: jwksURL})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := example.New(example.Config{
		Verifier: verifier.Config{
			Issuer: "https://issuer.test", Audiences: []string{"api"}, Algorithms: []string{verifier.EdDSA},
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

	resp, err := hs.Client().Get(hs.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var body map[string]string
	if err := json.Unmarshal(raw, &body); err != nil || resp.StatusCode != http.StatusServiceUnavailable ||
		body["reason"] != "keys not fetched yet" {
		t.Fatalf("/readyz = %d %s, want 503 reason \"keys not fetched yet\"", resp.StatusCode, raw)
	}
	if host := strings.TrimPrefix(down.URL, "http://"); strings.Contains(string(raw), host) || strings.Contains(string(raw), "refused") {
		t.Fatalf("/readyz shows internals: %s", raw)
	}
}
