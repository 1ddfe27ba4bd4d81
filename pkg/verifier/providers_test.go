package verifier

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jwtrevoke/jwtrevoke/internal/eventually"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier/verifiertest"
)

// TestProviders: a verifier trusting its own issuer and an outside provider
// checks each token by the rules of the issuer its iss names — that
// issuer's keys, algorithms, audiences and claim names — and never by the
// other's.
func TestProviders(t *testing.T) {
	e := newEnv(t) // the own issuer: EdDSA
	idp := verifiertest.NewIssuer(t, verifiertest.WithIssuer("https://idp.example.test/tenant-1"),
		verifiertest.WithAlgorithm("ES256"), verifiertest.WithAudience("api-at-idp"))
	// A second provider with the own issuer's algorithm: only keys tell
	// their tokens apart.
	twin := verifiertest.NewIssuer(t, verifiertest.WithIssuer("https://twin.example.test"))
	v := e.verifier(t, func(c *Config) {
		c.Providers = []Provider{{
			Name: "idp", Issuer: idp.Issuer(), Keys: jwks(t, idp.JWKSURL()),
			Audiences: []string{"api-at-idp"}, Algorithms: []string{"ES256"}, TokenIDClaim: "uti",
		}, {
			Name: "twin", Issuer: twin.Issuer(), Keys: jwks(t, twin.JWKSURL()),
			Audiences: []string{twin.Audience()}, Algorithms: []string{twin.Algorithm()},
		}}
	})
	ctx := context.Background()

	own := e.iss.Token(t, verifiertest.TokenOptions{Subject: "alice"})
	if c, err := v.Verify(ctx, own); err != nil || c.Issuer != e.iss.Issuer() {
		t.Fatalf("own issuer's token: %+v, %v", c, err)
	}
	theirs := idp.Token(t, verifiertest.TokenOptions{Subject: "bob", SessionID: "idp-session",
		Extra: map[string]any{"jti": nil, "uti": "uti-1"}})
	c, err := v.Verify(ctx, theirs)
	if err != nil || c.Issuer != idp.Issuer() || c.ID != "uti-1" || c.SessionID != "idp-session" {
		t.Fatalf("provider's token: %+v, %v", c, err)
	}

	refused := []struct {
		name string
		raw  string
		want error
		text string
	}{
		{"provider-signed, own iss", idp.Token(t, verifiertest.TokenOptions{Extra: map[string]any{"iss": e.iss.Issuer()}}), ErrAlgorithm, ""},
		{"own-signed, provider iss", e.iss.Token(t, verifiertest.TokenOptions{Extra: map[string]any{"iss": idp.Issuer(), "uti": "x"}}), ErrAlgorithm, ""},
		{"own-signed, twin's iss", e.iss.Token(t, verifiertest.TokenOptions{Extra: map[string]any{"iss": twin.Issuer()}}), ErrUnknownKey, ""},
		{"twin-signed, own iss", twin.Token(t, verifiertest.TokenOptions{Extra: map[string]any{"iss": e.iss.Issuer()}}), ErrUnknownKey, ""},
		{"provider token for the own audience", idp.Token(t, verifiertest.TokenOptions{Extra: map[string]any{"aud": e.iss.Audience(), "uti": "x"}}), ErrClaims, "wrong aud"},
		{"provider token with jti, not uti", idp.Token(t, verifiertest.TokenOptions{}), ErrClaims, "uti missing"},
		{"an issuer nobody trusts", idp.Token(t, verifiertest.TokenOptions{Extra: map[string]any{"iss": "https://evil.example.test", "uti": "x"}}), ErrClaims, "wrong iss"},
		{"iss not a string", idp.Token(t, verifiertest.TokenOptions{Extra: map[string]any{"iss": 7, "uti": "x"}}), ErrClaims, "iss missing"},
		{"iss missing", idp.Token(t, verifiertest.TokenOptions{Extra: map[string]any{"iss": nil, "uti": "x"}}), ErrClaims, "iss missing"},
	}
	for _, tt := range refused {
		c, err := v.Verify(ctx, tt.raw)
		if c != nil || !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.text) {
			t.Errorf("%s: %+v, %v; want %v (%q)", tt.name, c, err, tt.want, tt.text)
		}
	}

	// The provider's tokens are revocable like the own issuer's, and a
	// revocation scoped to the provider leaves another issuer's token with
	// the same session id and subject alone.
	sameIDs := twin.Token(t, verifiertest.TokenOptions{Subject: "bob", SessionID: "idp-session"})
	e.srv.Revoke(t, events.NewSession(eventID("ses"), "idp-session", time.Now()).ForIssuer(idp.Issuer()))
	e.srv.Revoke(t, events.NewSubject(eventID("sub"), "bob", time.Now(), time.Now()).ForIssuer(idp.Issuer()))
	eventually.True(t, 10*time.Second, "provider session revoked", func() bool {
		_, err := v.Verify(ctx, theirs)
		return errors.Is(err, ErrSessionRevoked)
	})
	// The subject event was published after the session's: wait for it too.
	bobsOld := idp.Token(t, verifiertest.TokenOptions{Subject: "bob", IssuedAt: time.Now().Add(-time.Minute), Extra: map[string]any{"jti": nil, "uti": "uti-2"}})
	eventually.True(t, 10*time.Second, "provider's subject refused after its scoped logout", func() bool {
		_, err := v.Verify(ctx, bobsOld)
		return errors.Is(err, ErrSubjectRevoked)
	})
	if _, err := v.Verify(ctx, sameIDs); err != nil {
		t.Fatalf("another issuer's token with the same sid and sub after the provider's logout: %v", err)
	}
	if _, err := v.Verify(ctx, own); err != nil {
		t.Fatalf("own token after the provider's logout: %v", err)
	}
	if _, err := v.Verify(ctx, twin.Token(t, verifiertest.TokenOptions{})); err != nil {
		t.Fatalf("twin's own token: %v", err)
	}
}

// neverReady is a key source whose keys never arrive.
type neverReady struct{}

func (neverReady) Key(context.Context, string) (Key, error) { return Key{}, errors.New("no keys yet") }
func (neverReady) Ready() <-chan struct{}                   { return make(chan struct{}) }

// TestProviderKeysReady: a checker is ready only when every trusted
// issuer's keys are; until then a provider's token cannot be decided.
func TestProviderKeysReady(t *testing.T) {
	iss := verifiertest.NewIssuer(t)
	own, err := StaticKeys(Key{ID: iss.KeyID(), Algorithm: iss.Algorithm(), Public: iss.PublicKey()})
	if err != nil {
		t.Fatal(err)
	}
	cfg := CheckerConfig{Issuer: iss.Issuer(), Audiences: []string{iss.Audience()}, Algorithms: []string{iss.Algorithm()}}
	alone, err := NewChecker(own, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer alone.Close()
	cfg.Providers = []Provider{{Name: "late", Issuer: "https://late.example.test", Keys: neverReady{}, Audiences: []string{"a"}, Algorithms: []string{"RS256"}}}
	both, err := NewChecker(own, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer both.Close()
	if !alone.KeysReady() || both.KeysReady() {
		t.Fatalf("KeysReady: alone %v, with a provider without keys %v; want true, false", alone.KeysReady(), both.KeysReady())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := both.waitKeys(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waitKeys: %v, want the context's deadline", err)
	}
	if _, err := both.Check(context.Background(), iss.Token(t, verifiertest.TokenOptions{})); err != nil {
		t.Fatalf("own token while a provider's keys are missing: %v", err)
	}
}

func TestProviderConfig(t *testing.T) {
	iss := verifiertest.NewIssuer(t)
	keys, err := StaticKeys(Key{ID: iss.KeyID(), Algorithm: iss.Algorithm(), Public: iss.PublicKey()})
	if err != nil {
		t.Fatal(err)
	}
	good := Provider{Name: "idp", Issuer: "https://idp.example.test", Keys: keys, Audiences: []string{"api"}, Algorithms: []string{"RS256"}}
	tests := []struct {
		name string
		edit func(*[]Provider)
		want string
	}{
		{"no name", func(p *[]Provider) { (*p)[0].Name = "" }, "Providers[0]: Name is required"},
		{"no keys", func(p *[]Provider) { (*p)[0].Keys = nil }, "Providers[0] (idp): Keys is required"},
		{"no issuer", func(p *[]Provider) { (*p)[0].Issuer = "" }, "Providers[0] (idp): Issuer is required"},
		{"no audience", func(p *[]Provider) { (*p)[0].Audiences = nil }, "Providers[0] (idp): Audiences is required"},
		{"HS256", func(p *[]Provider) { (*p)[0].Algorithms = []string{"HS256"} }, `Providers[0] (idp): algorithm "HS256" not supported`},
		{"own issuer again", func(p *[]Provider) { (*p)[0].Issuer = "https://own.example.test" }, "already Issuer's"},
		{"one issuer twice", func(p *[]Provider) { q := (*p)[0]; q.Name = "idp2"; *p = append(*p, q) }, "Providers[1] (idp2): Issuer \"https://idp.example.test\" is already Providers[0]'s"},
		{"one name twice", func(p *[]Provider) { q := (*p)[0]; q.Issuer = "https://b.example.test"; *p = append(*p, q) }, "Providers[1] (idp): Name is used twice"},
		{"token id in exp", func(p *[]Provider) { (*p)[0].TokenIDClaim = "exp" }, `Providers[0] (idp): TokenIDClaim "exp"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := []Provider{good}
			tt.edit(&ps)
			k, err := NewChecker(keys, CheckerConfig{Issuer: "https://own.example.test", Audiences: []string{"api"}, Algorithms: []string{"EdDSA"}, Providers: ps})
			if err == nil {
				k.Close()
				t.Fatal("NewChecker accepted a bad provider")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not say %q", err, tt.want)
			}
		})
	}
}
