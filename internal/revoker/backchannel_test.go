package revoker

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jwtrevoke/jwtrevoke/internal/eventually"
	"github.com/jwtrevoke/jwtrevoke/internal/runverifier"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier/verifiertest"
)

const (
	idpIssuer = "https://idp.example.test/"
	idpClient = "client-of-jwtrevoke"
	bclPath   = "/v1/providers/idp/backchannel-logout"
	// The receiver's id at idp (the aud of its SETs) and the bearer
	// credential idp pushes them with.
	idpAudience   = "https://revoker.example.test/"
	ssfCredential = "ssf-push-credential-0123456789"
)

// providerEnv is a revoker taking back-channel logout tokens from idp, and
// a service replica trusting both the own issuer and idp.
type providerEnv struct {
	*env
	idp     *verifiertest.Issuer
	service *verifier.Verifier
}

func newProviderEnv(t *testing.T, mod ...func(*Provider)) *providerEnv {
	t.Helper()
	return newScopedProviderEnv(t, nil, mod...)
}

// newScopedProviderEnv is newProviderEnv with scopes as the epoch scopes of
// the revoker and of the service replica.
func newScopedProviderEnv(t *testing.T, scopes []string, mod ...func(*Provider)) *providerEnv {
	t.Helper()
	idp := verifiertest.NewIssuer(t, verifiertest.WithIssuer(idpIssuer), verifiertest.WithAlgorithm("RS256"),
		verifiertest.WithAudience("api"))
	e := newEnv(t, func(c *Config) {
		pr := idpProvider(t, idp, idp.JWKSURL())
		for _, m := range mod {
			m(&pr)
		}
		c.Providers = []Provider{pr}
		c.EpochScopes = scopes
	})
	p := &providerEnv{env: e, idp: idp}
	p.service = runverifier.Ready(t, verifier.Config{
		Issuer: e.iss.Issuer(), Audiences: []string{e.iss.Audience()}, Algorithms: []string{e.iss.Algorithm()},
		Keys: e.serviceKeys(t), JetStream: e.js, MaxTokenLifetime: time.Hour, Logger: slog.New(slog.DiscardHandler),
		Providers: []verifier.Provider{{Name: "idp", Issuer: idpIssuer, Keys: jwksOf(t, idp.JWKSURL()),
			Audiences: []string{"api"}, Algorithms: []string{"RS256"}}},
		EpochScopes: scopes,
	})
	return p
}

func jwksOf(t *testing.T, u string) verifier.KeySource {
	t.Helper()
	k, err := verifier.NewJWKS(verifier.JWKSConfig{URL: u, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// idpProvider is the revoker's Provider "idp": idp's keys at jwksURL, its
// logout tokens to idpClient and its SETs to idpAudience, pushed with
// ssfCredential.
func idpProvider(t *testing.T, idp *verifiertest.Issuer, jwksURL string) Provider {
	t.Helper()
	keys := jwksOf(t, jwksURL)
	lc, err := verifier.NewLogoutChecker(verifier.LogoutConfig{Issuer: idp.Issuer(), ClientID: idpClient,
		Keys: keys, Algorithms: []string{"RS256"}})
	if err != nil {
		t.Fatal(err)
	}
	sc, err := verifier.NewSETChecker(verifier.SETConfig{Issuer: idp.Issuer(), Audience: idpAudience,
		Keys: keys, Algorithms: []string{"RS256"}})
	if err != nil {
		t.Fatal(err)
	}
	return Provider{Name: "idp", Issuer: idp.Issuer(), Keys: keys, Logout: lc, Events: sc, EventsCredentials: []string{ssfCredential}}
}

// logout posts a logout token as a provider does.
func (e *env) logout(t *testing.T, path, token string) answer {
	t.Helper()
	return e.do(t, http.MethodPost, path, "application/x-www-form-urlencoded",
		[]byte(url.Values{"logout_token": {token}}.Encode()), nil)
}

// refusedFor waits until the service refuses raw with want.
func (p *providerEnv) refusedFor(t *testing.T, what, raw string, want error) {
	t.Helper()
	eventually.True(t, 10*time.Second, what, func() bool {
		_, err := p.service.Verify(context.Background(), raw)
		return errors.Is(err, want)
	})
}

// TestBackchannelLogout: a provider's logout token naming a session ends
// that session of that provider on a service replica, and only of that
// provider; one naming only a subject logs the subject out of that provider
// up to the token's iat. The answer is 200 with Cache-Control: no-store,
// and the provider's retry of the identical token gets 200 again.
func TestBackchannelLogout(t *testing.T) {
	p := newProviderEnv(t)
	ctx := context.Background()
	theirs := p.idp.Token(t, verifiertest.TokenOptions{Subject: "alice", SessionID: "s-1"})
	ownSameSession := p.iss.Token(t, verifiertest.TokenOptions{Subject: "alice", SessionID: "s-1"})
	for _, raw := range []string{theirs, ownSameSession} {
		if _, err := p.service.Verify(ctx, raw); err != nil {
			t.Fatalf("before the logout: %v", err)
		}
	}

	lt := p.idp.LogoutToken(t, verifiertest.LogoutOptions{ClientID: idpClient, SessionID: "s-1"})
	a := p.logout(t, bclPath, lt)
	if a.status != http.StatusOK || a.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("logout: %d %q, Cache-Control %q; want 200, no-store", a.status, a.body, a.header.Get("Cache-Control"))
	}
	p.refusedFor(t, "the provider's session refused", theirs, verifier.ErrSessionRevoked)
	if _, err := p.service.Verify(ctx, ownSameSession); err != nil {
		t.Errorf("the own issuer's token with the same sid: %v, want accepted", err)
	}
	ev, _ := p.lastIssuerEvent(t, idpIssuer, events.KindSession, "s-1")
	if ev.Issuer != idpIssuer || ev.Reason != reasonBackchannel || ev.Initiator != "provider:idp" {
		t.Errorf("event %+v: want scoped to %s, reason %s, initiator provider:idp", ev, idpIssuer, reasonBackchannel)
	}

	// The provider's retry of the identical token, as Hydra sends it
	// after a non-2xx answer or a timeout: 200 again, nothing new held.
	keys := p.dbsize(t)
	if a := p.logout(t, bclPath, lt); a.status != http.StatusOK {
		t.Errorf("retry of the same logout token: %d %s, want 200", a.status, a.body)
	}
	if n := p.dbsize(t); n != keys {
		t.Errorf("Redis keys %d after the retry, %d before", n, keys)
	}

	// A subject logout: tokens of alice at idp issued up to the logout
	// token's iat are refused; a later login's token is not, nor bob's.
	iat := time.Now().Add(-20 * time.Second)
	before := p.idp.Token(t, verifiertest.TokenOptions{Subject: "alice", IssuedAt: iat.Add(-time.Second)})
	after := p.idp.Token(t, verifiertest.TokenOptions{Subject: "alice", IssuedAt: iat.Add(time.Second)})
	bob := p.idp.Token(t, verifiertest.TokenOptions{Subject: "bob", IssuedAt: iat.Add(-time.Second)})
	ownAlice := p.iss.Token(t, verifiertest.TokenOptions{Subject: "alice", IssuedAt: iat.Add(-time.Second)})
	if a := p.logout(t, bclPath, p.idp.LogoutToken(t, verifiertest.LogoutOptions{ClientID: idpClient, Subject: "alice", IssuedAt: iat})); a.status != http.StatusOK {
		t.Fatalf("subject logout: %d %s", a.status, a.body)
	}
	p.refusedFor(t, "alice's earlier token at idp refused", before, verifier.ErrSubjectRevoked)
	for name, raw := range map[string]string{"a token issued after the logout": after, "bob's": bob, "alice's at the own issuer": ownAlice} {
		if _, err := p.service.Verify(ctx, raw); err != nil {
			t.Errorf("%s: %v, want accepted", name, err)
		}
	}
	if got := p.signals(t, "accepted"); got != 3 {
		t.Errorf("accepted signals %v, want 3", got)
	}
}

// TestBackchannelLogoutBySubject: for a provider whose access tokens carry
// no session id (Auth0, Zitadel), a logout token naming sub and sid logs
// the subject out of that provider; without the setting only the session
// would be revoked, which none of its tokens names.
func TestBackchannelLogoutBySubject(t *testing.T) {
	p := newProviderEnv(t, func(pr *Provider) { pr.LogoutBySubject = true })
	noSid := p.idp.Token(t, verifiertest.TokenOptions{Subject: "alice", IssuedAt: time.Now().Add(-time.Minute), Extra: map[string]any{"sid": nil}})
	if _, err := p.service.Verify(context.Background(), noSid); err != nil {
		t.Fatalf("before: %v", err)
	}
	lt := p.idp.LogoutToken(t, verifiertest.LogoutOptions{ClientID: idpClient, Subject: "alice", SessionID: "s-1"})
	if a := p.logout(t, bclPath, lt); a.status != http.StatusOK {
		t.Fatalf("logout: %d %s", a.status, a.body)
	}
	p.refusedFor(t, "alice's token without sid refused", noSid, verifier.ErrSubjectRevoked)
	// A logout token with only a sid still revokes the session.
	withSid := p.idp.Token(t, verifiertest.TokenOptions{Subject: "bob", SessionID: "s-2"})
	if a := p.logout(t, bclPath, p.idp.LogoutToken(t, verifiertest.LogoutOptions{ClientID: idpClient, SessionID: "s-2"})); a.status != http.StatusOK {
		t.Fatalf("sid-only logout: %d %s", a.status, a.body)
	}
	p.refusedFor(t, "bob's session refused", withSid, verifier.ErrSessionRevoked)
}

// TestBackchannelRefused: every invalid request is answered with a JSON
// error and records nothing; a replayed jti naming another logout is
// refused and counted as a replay.
func TestBackchannelRefused(t *testing.T) {
	p := newProviderEnv(t)
	first := p.idp.LogoutToken(t, verifiertest.LogoutOptions{ClientID: idpClient, SessionID: "s-1", JTI: "jti-1"})
	if a := p.logout(t, bclPath, first); a.status != http.StatusOK {
		t.Fatalf("first logout: %d %s", a.status, a.body)
	}
	keys, seq := p.dbsize(t), p.lastSeq(t)
	form := func(v url.Values) []byte { return []byte(v.Encode()) }
	lo := func(o verifiertest.LogoutOptions) []byte {
		o.ClientID = idpClient
		if o.SessionID == "" && o.Subject == "" {
			o.SessionID = "s-2"
		}
		return form(url.Values{"logout_token": {p.idp.LogoutToken(t, o)}})
	}
	stranger := verifiertest.NewIssuer(t, verifiertest.WithIssuer(idpIssuer), verifiertest.WithAlgorithm("RS256"))
	cases := []struct {
		name, path, ctype string
		body              []byte
		status            int
		text              string
	}{
		{"the same jti for another session", bclPath, "", lo(verifiertest.LogoutOptions{JTI: "jti-1"}), 400, "jti was accepted before"},
		{"an unknown provider", "/v1/providers/nobody/backchannel-logout", "", lo(verifiertest.LogoutOptions{}), 404, "no provider"},
		{"JSON instead of a form", bclPath, "application/json", []byte(`{"logout_token":"x"}`), 415, ""},
		{"no logout_token", bclPath, "", form(url.Values{"token": {"x"}}), 400, "logout_token"},
		{"logout_token twice", bclPath, "", form(url.Values{"logout_token": {"a", "b"}}), 400, "more than once"},
		{"an oversized body", bclPath, "", form(url.Values{"logout_token": {strings.Repeat("a", 20<<10)}}), 413, ""},
		{"not a JWT", bclPath, "", form(url.Values{"logout_token": {"not-a-jwt"}}), 400, "malformed"},
		{"signed by a stranger", bclPath, "", form(url.Values{"logout_token": {stranger.LogoutToken(t, verifiertest.LogoutOptions{ClientID: idpClient, SessionID: "s-2"})}}), 400, "unknown"},
		{"addressed to another client", bclPath, "", form(url.Values{"logout_token": {p.idp.LogoutToken(t, verifiertest.LogoutOptions{ClientID: "other", SessionID: "s-2"})}}), 400, "wrong aud"},
		{"an ID token (nonce)", bclPath, "", lo(verifiertest.LogoutOptions{Extra: map[string]any{"nonce": "n"}}), 400, "nonce"},
		{"no events", bclPath, "", lo(verifiertest.LogoutOptions{Extra: map[string]any{"events": nil}}), 400, "events"},
		{"too old", bclPath, "", lo(verifiertest.LogoutOptions{IssuedAt: time.Now().Add(-time.Hour)}), 400, "iat older"},
		{"no jti", bclPath, "", lo(verifiertest.LogoutOptions{Extra: map[string]any{"jti": nil}}), 400, "jti"},
		{"an access token", bclPath, "", form(url.Values{"logout_token": {p.idp.Token(t, verifiertest.TokenOptions{})}}), 400, "refused"},
	}
	for _, tt := range cases {
		ctype := tt.ctype
		if ctype == "" {
			ctype = "application/x-www-form-urlencoded"
		}
		a := p.do(t, http.MethodPost, tt.path, ctype, tt.body, nil)
		if a.status != tt.status {
			t.Errorf("%s: status %d (%s), want %d", tt.name, a.status, a.body, tt.status)
			continue
		}
		if _, desc := a.errorBody(t); !strings.Contains(desc, tt.text) {
			t.Errorf("%s: error_description %q does not say %q", tt.name, desc, tt.text)
		}
	}
	if n, s := p.dbsize(t), p.lastSeq(t); n != keys || s != seq {
		t.Errorf("after the refused requests: %d Redis keys, stream seq %d; before %d, %d", n, s, keys, seq)
	}
	if got := p.signals(t, "replay"); got != 1 {
		t.Errorf("replay signals %v, want 1", got)
	}
}

// TestBackchannelKeysUnavailable: when the provider's JWKS cannot be
// fetched, a logout token is answered 503 (the provider retries) and
// nothing is recorded; the revoker's own endpoints stay ready.
func TestBackchannelKeysUnavailable(t *testing.T) {
	idp := verifiertest.NewIssuer(t, verifiertest.WithIssuer(idpIssuer), verifiertest.WithAlgorithm("RS256"))
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	e := newEnv(t, func(c *Config) {
		c.Providers = []Provider{idpProvider(t, idp, down.URL+"/jwks")}
	})
	keys := e.dbsize(t)
	a := e.logout(t, bclPath, idp.LogoutToken(t, verifiertest.LogoutOptions{ClientID: idpClient, SessionID: "s"}))
	if a.status != http.StatusServiceUnavailable {
		t.Fatalf("status %d (%s), want 503", a.status, a.body)
	}
	if _, desc := a.errorBody(t); !strings.Contains(desc, "nothing was recorded") {
		t.Errorf("error_description %q", desc)
	}
	if n := e.dbsize(t); n != keys {
		t.Errorf("Redis keys %d, want %d", n, keys)
	}
}

// signals reads jwtrevoke_revoker_provider_signals_total of provider idp's
// back-channel logouts with outcome off /metrics.
func (e *env) signals(t *testing.T, outcome string) float64 {
	t.Helper()
	return e.signalsOf(t, "backchannel_logout", outcome)
}

// signalsOf reads jwtrevoke_revoker_provider_signals_total of provider idp
// with signal and outcome off /metrics.
func (e *env) signalsOf(t *testing.T, signal, outcome string) float64 {
	t.Helper()
	a := e.do(t, http.MethodGet, "/metrics", "", nil, nil)
	var sum float64
	for _, line := range strings.Split(string(a.body), "\n") {
		name, val, ok := strings.Cut(line, " ")
		if ok && strings.HasPrefix(name, "jwtrevoke_revoker_provider_signals_total{") &&
			strings.Contains(name, `outcome="`+outcome+`"`) && strings.Contains(name, `provider="idp"`) &&
			strings.Contains(name, `signal="`+signal+`"`) {
			f, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
			if err != nil {
				t.Fatalf("metric line %q: %v", line, err)
			}
			sum += f
		}
	}
	return sum
}
