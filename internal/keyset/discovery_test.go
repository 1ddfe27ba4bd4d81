package keyset

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jwtrevoke/jwtrevoke/internal/eventually"
)

// provider is a real HTTP server with a discovery document and a JWKS.
type provider struct {
	*httptest.Server
	jwks []byte

	mu     sync.Mutex
	doc    map[string]any // nil: answer 503
	issuer string
}

func newProvider(t *testing.T, keys ...Key) *provider {
	t.Helper()
	p := &provider{jwks: jwksOf(t, keys...)}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/tenant" + DiscoveryPath:
			p.mu.Lock()
			doc := p.doc
			p.mu.Unlock()
			if doc == nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			_ = json.NewEncoder(w).Encode(doc)
		case "/tenant/keys":
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(p.jwks)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(p.Close)
	p.issuer = p.URL + "/tenant/"
	return p
}

func (p *provider) serve(doc map[string]any) {
	p.mu.Lock()
	p.doc = doc
	p.mu.Unlock()
}

func runDiscovery(t *testing.T, d *Discovery) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// TestDiscovery: the key set comes from the jwks_uri of the document below
// the configured issuer, read once the provider answers; until then Key
// says the keys are unavailable, never that a kid is unknown.
func TestDiscovery(t *testing.T) {
	k1 := Key{ID: "k1", Public: newEd25519Key(t)}
	p := newProvider(t, k1)
	d, err := NewDiscovery(DiscoveryConfig{Issuer: p.issuer})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t)
	if _, err := d.Key(ctx, "k1"); !errors.Is(err, ErrKeysUnavailable) {
		t.Fatalf("Key before Run: %v, want ErrKeysUnavailable", err)
	}
	runDiscovery(t, d) // the provider answers 503 for now
	eventually.True(t, 5*time.Second, "Key to say the provider answered 503", func() bool {
		_, err := d.Key(ctx, "k1")
		return errors.Is(err, ErrKeysUnavailable) && strings.Contains(err.Error(), "status 503")
	})
	p.serve(map[string]any{"issuer": p.issuer, "jwks_uri": p.URL + "/tenant/keys", "response_types_supported": []string{"code"}})
	select {
	case <-d.Ready():
	case <-ctx.Done():
		t.Fatal("not ready after the provider began to answer")
	}
	if got, err := d.Key(ctx, "k1"); err != nil || got.ID != "k1" {
		t.Fatalf("Key(k1) = %v, %v", got, err)
	}
	if _, err := d.Key(ctx, "k2"); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("Key(k2) = %v, want ErrUnknownKey", err)
	}
	if u := d.JWKSURL(); u != p.URL+"/tenant/keys" {
		t.Errorf("JWKSURL = %q", u)
	}
}

// TestDiscoveryRefusesOtherIssuer: a document naming another issuer (or
// the configured one in other case, or none), or without a jwks_uri, gives
// no keys, and says why.
func TestDiscoveryRefusesOtherIssuer(t *testing.T) {
	for name, doc := range map[string]func(p *provider) map[string]any{
		"another issuer": func(p *provider) map[string]any {
			return map[string]any{"issuer": p.URL + "/other/", "jwks_uri": p.URL + "/tenant/keys"}
		},
		"issuer without the trailing slash": func(p *provider) map[string]any {
			return map[string]any{"issuer": strings.TrimSuffix(p.issuer, "/"), "jwks_uri": p.URL + "/tenant/keys"}
		},
		"issuer in upper case member name": func(p *provider) map[string]any {
			return map[string]any{"ISSUER": p.issuer, "jwks_uri": p.URL + "/tenant/keys"}
		},
		"no jwks_uri": func(p *provider) map[string]any { return map[string]any{"issuer": p.issuer} },
		"jwks_uri over http to another host": func(p *provider) map[string]any {
			return map[string]any{"issuer": p.issuer, "jwks_uri": "http://keys.example.test/jwks"}
		},
	} {
		t.Run(name, func(t *testing.T) {
			p := newProvider(t, Key{ID: "k1", Public: newEd25519Key(t)})
			p.serve(doc(p))
			d, err := NewDiscovery(DiscoveryConfig{Issuer: p.issuer})
			if err != nil {
				t.Fatal(err)
			}
			runDiscovery(t, d)
			ctx := testContext(t)
			eventually.True(t, 5*time.Second, "Key to say why discovery failed", func() bool {
				_, err := d.Key(ctx, "k1")
				return errors.Is(err, ErrKeysUnavailable) && strings.Contains(err.Error(), "keyset: discovery")
			})
			select {
			case <-d.Ready():
				t.Fatal("ready")
			default:
			}
		})
	}
}

// TestDiscoveryConfig: the issuer is required and its document must be
// fetched over https unless on a loopback host.
func TestDiscoveryConfig(t *testing.T) {
	if _, err := NewDiscovery(DiscoveryConfig{}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("no issuer: %v", err)
	}
	_, err := NewDiscovery(DiscoveryConfig{Issuer: "http://idp.example.test"})
	if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "http://idp.example.test"+DiscoveryPath) {
		t.Errorf("http issuer: %v", err)
	}
	if _, err := NewDiscovery(DiscoveryConfig{Issuer: "http://idp.example.test", JWKS: RemoteConfig{InsecureAllowHTTP: true}}); err != nil {
		t.Errorf("http issuer with InsecureAllowHTTP: %v", err)
	}
}
