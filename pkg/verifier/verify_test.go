package verifier

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jwtrevoke/jwtrevoke/internal/eventually"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier/verifiertest"
)

// TestHostileTokens: the table every API in front of a verifier is tested
// with (verifiertest.Issuer.HostileTokens): each token refused with its
// reason, in the invalid-token class, without claims; the valid ones
// accepted.
func TestHostileTokens(t *testing.T) {
	e := newEnv(t)
	v := e.verifier(t, func(c *Config) { c.Algorithms = []string{EdDSA, RS256} })
	for _, tt := range e.iss.HostileTokens(t, verifiertest.HostileLimits{MaxTokenLifetime: testMaxLifetime,
		Leeway: DefaultLeeway, MaxTokenSize: DefaultMaxTokenSize}) {
		t.Run(tt.Name, func(t *testing.T) {
			c, err := v.Verify(context.Background(), tt.Token)
			switch {
			case tt.Reason == "" && err != nil:
				t.Fatalf("Verify: %v, want success", err)
			case tt.Reason == "":
			case Reason(err) != tt.Reason:
				t.Fatalf("Verify error = %v (%s), want %s", err, Reason(err), tt.Reason)
			case !errors.Is(err, ErrInvalidToken):
				t.Fatalf("Verify error %v is not in the ErrInvalidToken class", err)
			case c != nil:
				t.Fatalf("Verify returned claims %+v with an error", c)
			}
		})
	}
}

// TestClaimNames: a provider's own names for the session and token id
// (Entra's uti, an older Keycloak's session_state) are read exactly, and a
// token without a token id passes only where that is configured — and is
// still revoked by its session.
func TestClaimNames(t *testing.T) {
	e := newEnv(t)
	provider := e.verifier(t, func(c *Config) {
		c.SessionClaim, c.TokenIDClaim, c.TokenIDOptional = "session_state", "uti", true
	})
	strict := e.verifier(t, nil)
	entra := e.iss.Token(t, verifiertest.TokenOptions{Extra: map[string]any{
		"jti": nil, "sid": nil, "uti": "uti-1", "session_state": "ss-1",
	}})
	noID := e.iss.Token(t, verifiertest.TokenOptions{Extra: map[string]any{"jti": nil, "sid": nil, "session_state": "ss-2"}})
	wrongCase := e.iss.Token(t, verifiertest.TokenOptions{Extra: map[string]any{"jti": nil, "UTI": "uti-3", "session_state": "ss-3"}})

	c, err := provider.Verify(context.Background(), entra)
	if err != nil || c.ID != "uti-1" || c.SessionID != "ss-1" {
		t.Fatalf("provider names: claims %+v, %v; want ID uti-1, SessionID ss-1", c, err)
	}
	c, err = provider.Verify(context.Background(), wrongCase)
	if err != nil || c.ID != "" || c.SessionID != "ss-3" {
		t.Fatalf("UTI is not uti: claims %+v, %v; want no ID", c, err)
	}
	if _, err := strict.Verify(context.Background(), noID); !errors.Is(err, ErrClaims) || !strings.Contains(err.Error(), "jti missing") {
		t.Fatalf("default names, no jti: %v, want ErrClaims naming jti", err)
	}
	if c, err := provider.Verify(context.Background(), noID); err != nil || c.ID != "" {
		t.Fatalf("no token id, optional: %+v, %v; want accepted with no ID", c, err)
	}

	e.srv.Revoke(t, events.NewToken(eventID("tok"), "uti-1", time.Now().Add(time.Hour), time.Now()))
	e.srv.Revoke(t, events.NewSession(eventID("ses"), "ss-2", time.Now()))
	eventually.True(t, 10*time.Second, "both revocations enforced", func() bool {
		_, err1 := provider.Verify(context.Background(), entra)
		_, err2 := provider.Verify(context.Background(), noID)
		return errors.Is(err1, ErrTokenRevoked) && errors.Is(err2, ErrSessionRevoked)
	})
}

func TestValidateAddsFailures(t *testing.T) {
	e := newEnv(t)
	errNoAdmin := errors.New("no admin role")
	v := e.verifier(t, func(c *Config) {
		c.Validate = func(c *Claims) error {
			if c.Subject != "admin" {
				return errNoAdmin
			}
			return nil
		}
	})
	_, err := v.Verify(context.Background(), e.iss.Token(t, verifiertest.TokenOptions{Subject: "alice"}))
	if !errors.Is(err, ErrClaims) || !errors.Is(err, errNoAdmin) {
		t.Fatalf("Verify = %v, want ErrClaims wrapping the rule's error", err)
	}
	if _, err := v.Verify(context.Background(), e.iss.Token(t, verifiertest.TokenOptions{Subject: "admin"})); err != nil {
		t.Fatalf("Verify admin: %v", err)
	}
}

// TestCachedTokenStillExpires shows the verified-token cache skips the
// signature, never the expiry check.
func TestCachedTokenStillExpires(t *testing.T) {
	e := newEnv(t)
	var offset atomicDuration
	v := e.verifier(t, func(c *Config) { c.Now = func() time.Time { return time.Now().Add(offset.Load()) } })
	raw := e.iss.Token(t, verifiertest.TokenOptions{TTL: time.Minute})
	if _, err := v.Verify(context.Background(), raw); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	offset.Store(time.Minute + DefaultLeeway)
	if _, err := v.Verify(context.Background(), raw); !errors.Is(err, ErrExpired) {
		t.Fatalf("Verify after expiry = %v, want ErrExpired", err)
	}
}

func TestConfigValidation(t *testing.T) {
	e := newEnv(t)
	base := e.config(t)
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no issuer", func(c *Config) { c.Issuer = "" }, "Issuer is required"},
		{"no audience", func(c *Config) { c.Audiences = nil }, "Audiences is required"},
		{"no algorithms", func(c *Config) { c.Algorithms = nil }, "Algorithms is required"},
		{"HS256", func(c *Config) { c.Algorithms = []string{"HS256"} }, "not supported"},
		{"none", func(c *Config) { c.Algorithms = []string{"none"} }, "not supported"},
		{"no key source", func(c *Config) { c.Keys = nil }, "Keys is required"},
		{"no jetstream", func(c *Config) { c.JetStream = nil }, "JetStream is required"},
		{"huge leeway", func(c *Config) { c.Leeway = time.Hour }, "Leeway"},
		{"tiny max size", func(c *Config) { c.MaxTokenSize = 10 }, "MaxTokenSize"},
		{"fallback without one", func(c *Config) { c.StalePolicy = StaleFallback }, "needs a Fallback"},
		{"negative capacity", func(c *Config) { c.Capacity = -1 }, "Capacity"},
		{"token id in sub", func(c *Config) { c.TokenIDClaim = "sub" }, `TokenIDClaim "sub"`},
		{"session in exp", func(c *Config) { c.SessionClaim = "exp" }, `SessionClaim "exp"`},
		{"one claim for both", func(c *Config) { c.SessionClaim, c.TokenIDClaim = "uti", "uti" }, "a session id is not a token id"},
		{"announcing every millisecond", func(c *Config) { c.AnnounceInterval = time.Millisecond }, "AnnounceInterval"},
		{"a service name with a newline", func(c *Config) { c.Service = "a\nb" }, "Service and ServiceVersion"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base
			cfg.Audiences = append([]string(nil), base.Audiences...)
			tt.edit(&cfg)
			v, err := New(cfg)
			if err == nil {
				v.Close()
				t.Fatalf("New accepted a bad config")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New error %q does not mention %q", err, tt.want)
			}
		})
	}
	// New copies the config: the caller's struct is not changed.
	cfg := base
	v, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	v.Close()
	if cfg.Leeway != 0 || cfg.Capacity != 0 || cfg.Now != nil {
		t.Fatalf("New wrote defaults back into the caller's config: %+v", cfg)
	}
}

// TestNewJWKSRefusesHTTPElsewhere: keys fetched in clear text from another
// host could be replaced by anyone on the path.
func TestNewJWKSRefusesHTTPElsewhere(t *testing.T) {
	if _, err := NewJWKS(JWKSConfig{URL: "http://keys.example.com/jwks.json"}); err == nil || !strings.Contains(err.Error(), "http") {
		t.Fatalf("NewJWKS(http, non-loopback) = %v, want an error about http", err)
	}
}

// TestKeysUnavailable: a JWKS that cannot be fetched is "cannot decide now"
// (503), never "bad token", and the verifier is not ready.
func TestKeysUnavailable(t *testing.T) {
	e := newEnv(t)
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	cfg := e.config(t)
	cfg.Keys = jwks(t, down.URL+"/jwks.json")
	v := start(t, cfg)
	_, err := v.Verify(context.Background(), e.iss.Token(t, verifiertest.TokenOptions{}))
	if !errors.Is(err, ErrKeysUnavailable) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Verify with no keys = %v, want ErrKeysUnavailable (unavailable class)", err)
	}
	if v.Ready() {
		t.Fatal("Ready with no keys ever fetched")
	}
}

// TestInspectIgnoresRevocation: Inspect checks the token, not its revocation.
func TestInspectIgnoresRevocation(t *testing.T) {
	e := newEnv(t)
	v := e.verifier(t, nil)
	raw := e.iss.Token(t, verifiertest.TokenOptions{SessionID: "gone"})
	e.srv.Revoke(t, events.NewSession(eventID("ses"), "gone", time.Now()))
	eventually.True(t, 5*time.Second, "revocation applied", func() bool {
		_, err := v.Verify(context.Background(), raw)
		return errors.Is(err, ErrSessionRevoked)
	})
	c, err := v.Inspect(context.Background(), raw)
	if err != nil || c.SessionID != "gone" {
		t.Fatalf("Inspect of a revoked token = %+v, %v; want its claims", c, err)
	}
	if _, err := v.Inspect(context.Background(), raw+"x"); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("Inspect of a tampered token = %v, want ErrInvalidToken", err)
	}
}
