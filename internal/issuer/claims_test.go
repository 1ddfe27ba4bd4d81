package issuer_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/jwtrevoke/jwtrevoke/internal/issuer"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier"
)

// TestSessionsFoldedReservedNames: an extra claim whose name equals a
// claim the issuer sets under Unicode case folding ("ſub" with U+017F long
// s, "SUB", "Jti", ...) is refused like the exact name: JSON readers built
// on encoding/json match names that way, and would take it for sub or sid.
// Names that only resemble one are accepted.
func TestSessionsFoldedReservedNames(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name       string
		claims     map[string]any
		wantStatus int
	}{
		{name: "the reported smuggling", claims: map[string]any{"ſub": "admin", "ſid": "decoy"}, wantStatus: 400},
		{name: "long s sub", claims: map[string]any{"ſub": "admin"}, wantStatus: 400},
		{name: "long s sid", claims: map[string]any{"ſid": "decoy"}, wantStatus: 400},
		{name: "long s iss", claims: map[string]any{"iſs": "https://evil.example"}, wantStatus: 400},
		{name: "upper case sub", claims: map[string]any{"SUB": "admin"}, wantStatus: 400},
		{name: "mixed case sid", claims: map[string]any{"sId": "decoy"}, wantStatus: 400},
		{name: "upper case jti", claims: map[string]any{"JTI": "x"}, wantStatus: 400},
		{name: "title case exp", claims: map[string]any{"Exp": 9999999999}, wantStatus: 400},
		{name: "upper case iat", claims: map[string]any{"IAT": 1}, wantStatus: 400},
		{name: "upper case nbf", claims: map[string]any{"NBF": 1}, wantStatus: 400},
		{name: "upper case aud", claims: map[string]any{"AUD": "other"}, wantStatus: 400},
		{name: "upper case cnf", claims: map[string]any{"CNF": map[string]any{}}, wantStatus: 400},
		{name: "mixed case client_id", claims: map[string]any{"Client_ID": "c"}, wantStatus: 400},
		{name: "resembling but distinct", claims: map[string]any{"subject": "x", "sub_": "y", "sids": "z", "ıat": 1}, wantStatus: 201},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.dbsize(t)
			r := e.postJSON(t, "/v1/sessions", map[string]any{"sub": "user-42", "claims": tt.claims}, bearer(testCredential))
			if r.status != tt.wantStatus {
				t.Fatalf("got %d %s, want %d", r.status, r.body, tt.wantStatus)
			}
			if tt.wantStatus != 201 {
				if r.errorCode(t) != "invalid_request" || e.dbsize(t) != before {
					t.Fatalf("got %s, dbsize %d -> %d", r.body, before, e.dbsize(t))
				}
				return
			}
			c, err := e.inspector(t).Check(testContext(t), r.token(t).AccessToken)
			if err != nil || c.Subject != "user-42" {
				t.Fatalf("Inspect = %+v, %v", c, err)
			}
		})
	}
}

// TestSubjectsRevocable: the issuer never mints a token for a sub that no
// revocation could name (events.ValidValue), on /v1/sessions and
// /v1/login (400 before any password check), nor accepts such a user in
// its configuration; the sid and jti it generates always pass the rule.
func TestSubjectsRevocable(t *testing.T) {
	e := newEnv(t, nil)
	bad := []struct {
		name, sub string
	}{
		{name: "empty", sub: ""},
		{name: "nul", sub: "a\x00b"},
		{name: "newline", sub: "alice\n"},
		{name: "del", sub: "a\x7f"},
		{name: "c1 control", sub: "a\u0085b"},
		{name: "too long", sub: strings.Repeat("s", events.MaxValueLen+1)},
	}
	for _, tt := range bad {
		t.Run("sessions/"+tt.name, func(t *testing.T) {
			r := e.postJSON(t, "/v1/sessions", map[string]any{"sub": tt.sub}, bearer(testCredential))
			if r.status != 400 || r.errorCode(t) != "invalid_request" {
				t.Fatalf("got %d %s", r.status, r.body)
			}
		})
		t.Run("login/"+tt.name, func(t *testing.T) {
			r := e.postJSON(t, "/v1/login", map[string]string{"username": tt.sub, "password": testPassword}, nil)
			if r.status != 400 || r.errorCode(t) != "invalid_request" {
				t.Fatalf("got %d %s", r.status, r.body)
			}
		})
		if tt.sub == "" {
			continue
		}
		t.Run("config/"+tt.name, func(t *testing.T) {
			c := e.cfg
			c.Users = map[string][]byte{tt.sub: hashPassword(t, bcrypt.MinCost)}
			s, err := issuer.New(c)
			if s != nil {
				s.Close()
			}
			isErr(t, err, issuer.ErrInvalidConfig)
		})
	}

	v := e.inspector(t)
	for range 20 {
		for _, tr := range []issuer.TokenResponse{e.login(t, "alice"), e.refresh(t, e.login(t, "bob").RefreshToken).token(t)} {
			c, err := v.Check(testContext(t), tr.AccessToken)
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range []struct {
				kind  events.Kind
				value string
			}{{events.KindSession, c.SessionID}, {events.KindToken, c.ID}, {events.KindSubject, c.Subject}, {events.KindKey, c.KeyID}} {
				if err := events.ValidValue(id.kind, id.value); err != nil {
					t.Fatalf("%s of a minted token: %v", id.kind, err)
				}
			}
		}
	}
}

// TestClaimsBudget: MaxExtraClaimBytes is measured on the claims as they
// are encoded in the token (json.Marshal writes "<" as six bytes), and no
// session is created whose access token would exceed the verifiers'
// default MaxTokenSize with any configured key (a refresh may be signed by
// another one); every session created refreshes.
func TestClaimsBudget(t *testing.T) {
	ed, rsa := testKey(t, "EdDSA"), testKey(t, "RS256")
	tests := []struct {
		name       string
		keys       []issuer.SigningKey
		extraAud   string // a second audience, making every token longer
		sub        string
		claims     map[string]any
		wantStatus int
	}{
		{name: "small", keys: []issuer.SigningKey{ed}, sub: "u", claims: map[string]any{"note": "<b>"}, wantStatus: 201},
		{name: "escapes within the budget", keys: []issuer.SigningKey{ed}, sub: "u", claims: map[string]any{"note": strings.Repeat("<", 600)}, wantStatus: 201},
		{name: "escapes beyond the budget", keys: []issuer.SigningKey{ed}, sub: "u", claims: map[string]any{"note": strings.Repeat("<", 1000)}, wantStatus: 400},
		{name: "escaped names beyond the budget", keys: []issuer.SigningKey{ed}, sub: "u", claims: manyEscapedNames(120), wantStatus: 400},
		{name: "raw text at the budget", keys: []issuer.SigningKey{ed}, sub: "u", claims: map[string]any{"n": strings.Repeat("x", issuer.MaxExtraClaimBytes-len(`{"n":""}`))}, wantStatus: 201},
		{name: "raw text over the budget", keys: []issuer.SigningKey{ed}, sub: "u", claims: map[string]any{"n": strings.Repeat("x", issuer.MaxExtraClaimBytes-len(`{"n":""}`)+1)}, wantStatus: 400},
		{name: "escaped sub and full claims, EdDSA only", keys: []issuer.SigningKey{ed}, sub: strings.Repeat("<", 256),
			claims: map[string]any{"n": strings.Repeat("x", issuer.MaxExtraClaimBytes-len(`{"n":""}`))}, wantStatus: 201},
		{name: "escaped sub, full claims and a long audience, EdDSA only", keys: []issuer.SigningKey{ed}, extraAud: strings.Repeat("a", 100), sub: strings.Repeat("<", 256),
			claims: map[string]any{"n": strings.Repeat("x", issuer.MaxExtraClaimBytes-len(`{"n":""}`))}, wantStatus: 201},
		{name: "escaped sub, full claims and a long audience, an RSA key configured too", keys: []issuer.SigningKey{ed, rsa}, extraAud: strings.Repeat("a", 100), sub: strings.Repeat("<", 256),
			claims: map[string]any{"n": strings.Repeat("x", issuer.MaxExtraClaimBytes-len(`{"n":""}`))}, wantStatus: 400},
		{name: "escaped sub, full claims and a longer audience", keys: []issuer.SigningKey{ed}, extraAud: strings.Repeat("a", 400), sub: strings.Repeat("<", 256),
			claims: map[string]any{"n": strings.Repeat("x", issuer.MaxExtraClaimBytes-len(`{"n":""}`))}, wantStatus: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(c *issuer.Config) {
				c.Keys = tt.keys
				if tt.extraAud != "" {
					c.Audiences = append(c.Audiences, tt.extraAud)
				}
			})
			before := e.dbsize(t)
			// Sent without HTML escaping: the request carries a literal "<".
			var body strings.Builder
			enc := json.NewEncoder(&body)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(map[string]any{"sub": tt.sub, "claims": tt.claims}); err != nil {
				t.Fatal(err)
			}
			r := e.do(t, http.MethodPost, "/v1/sessions", "application/json", body.String(), bearer(testCredential))
			if r.status != tt.wantStatus {
				t.Fatalf("got %d %s, want %d", r.status, r.body, tt.wantStatus)
			}
			if r.status != 201 {
				if r.errorCode(t) != "invalid_request" || e.dbsize(t) != before {
					t.Fatalf("got %s, dbsize %d -> %d", r.body, before, e.dbsize(t))
				}
				if strings.Contains(string(r.body), "<") {
					t.Fatalf("error %s quotes the request", r.body)
				}
				return
			}
			tr := r.token(t)
			t.Logf("access token of %d bytes", len(tr.AccessToken))
			for _, tok := range []string{tr.AccessToken, refreshOK(t, e, tr.RefreshToken)} {
				if len(tok) > verifier.DefaultMaxTokenSize {
					t.Fatalf("token of %d bytes, over %d", len(tok), verifier.DefaultMaxTokenSize)
				}
				if _, err := e.inspector(t).Check(testContext(t), tok); err != nil {
					t.Fatalf("Inspect: %v", err)
				}
			}
		})
	}
}

func refreshOK(tb testing.TB, e *env, rt string) string {
	tb.Helper()
	r := e.refresh(tb, rt)
	if r.status != http.StatusOK {
		tb.Fatalf("refresh: %d %s", r.status, r.body)
	}
	return r.token(tb).AccessToken
}

// manyEscapedNames returns n claims whose names are short on the wire of
// the request but long encoded ("<" is six bytes once encoded).
func manyEscapedNames(n int) map[string]any {
	m := make(map[string]any, n)
	for i := range n {
		b, _ := json.Marshal(i)
		m["<<<<<"+string(b)] = 1
	}
	return m
}

// TestRevokeAccessWithinLeeway: /oauth2/revoke revokes an access token for
// as long as verifiers still accept it, that is until exp plus the leeway
// (Config.Leeway, the token checker's), not only until exp.
func TestRevokeAccessWithinLeeway(t *testing.T) {
	e := newEnv(t, nil)
	ttl, leeway := issuer.DefaultAccessTTL, issuer.DefaultLeeway
	tests := []struct {
		name        string
		after       time.Duration // since the token was minted
		wantRevoked bool
	}{
		{name: "fresh", after: 0, wantRevoked: true},
		{name: "just before exp", after: ttl - time.Second, wantRevoked: true},
		{name: "just after exp", after: ttl + time.Second, wantRevoked: true},
		{name: "half the leeway after exp", after: ttl + leeway/2, wantRevoked: true},
		{name: "past exp plus leeway", after: ttl + leeway + time.Second, wantRevoked: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := e.login(t, "bob")
			before := len(e.rev.requests())
			e.clock.Advance(tt.after)
			defer e.clock.Advance(-tt.after)
			r := e.postForm(t, "/oauth2/revoke", url.Values{"token": {tr.AccessToken}}, nil)
			if r.status != http.StatusOK {
				t.Fatalf("revoke: %d %s", r.status, r.body)
			}
			reqs := e.rev.requests()[before:]
			if revoked := len(reqs) == 1 && reqs[0].Req.Type == "token"; revoked != tt.wantRevoked || len(reqs) > 1 {
				t.Fatalf("revoker got %+v, want revoked %v", reqs, tt.wantRevoked)
			}
		})
	}
}
