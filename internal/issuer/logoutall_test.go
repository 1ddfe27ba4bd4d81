package issuer_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jwtrevoke/jwtrevoke/internal/issuer"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
)

// TestLogoutAllRefusesRevoked: /v1/logout/all needs a token that is not
// revoked, whether the revocation was published or is only recorded in
// Redis (recorded, not yet published); a stolen,
// revoked token must not keep logging its victim out. It answers 401
// invalid_token with the reason, and asks the revoker nothing. /v1/logout
// of one session still accepts a revoked token (logging out twice works).
func TestLogoutAllRefusesRevoked(t *testing.T) {
	e := newEnv(t, nil)
	ctx := testContext(t)
	v := e.inspector(t)
	now := func() time.Time { return time.Now().UTC() }

	tests := []struct {
		name string
		sub  string
		// revoke revokes tr's token somehow.
		revoke     func(t *testing.T, tr issuer.TokenResponse)
		wantReason string // "" for 204
	}{
		{name: "not revoked", sub: "alice", revoke: func(*testing.T, issuer.TokenResponse) {}},
		{name: "subject revoked", sub: "bob", wantReason: "revoked_subject", revoke: func(t *testing.T, tr issuer.TokenResponse) {
			e.revoke(t, events.NewSubject("t.sub.bob", "bob", now(), now()))
		}},
		{name: "session revoked", sub: "carol", wantReason: "revoked_session", revoke: func(t *testing.T, tr issuer.TokenResponse) {
			e.revoke(t, events.NewSession("t.sid."+tr.SessionID, tr.SessionID, now()))
		}},
		{name: "token revoked", sub: "dave", wantReason: "revoked_token", revoke: func(t *testing.T, tr issuer.TokenResponse) {
			c, err := v.Check(ctx, tr.AccessToken)
			if err != nil {
				t.Fatal(err)
			}
			e.revoke(t, events.NewToken("t.jti."+c.ID, c.ID, c.ExpiresAt, now()))
		}},
		{name: "subject epoch recorded in Redis only", sub: "erin", wantReason: "revoked_subject", revoke: func(t *testing.T, tr issuer.TokenResponse) {
			if _, err := recordLogoutAll(ctx, e.store, "erin", time.Now()); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "session logged out (Redis, revoker not publishing)", sub: "frank", wantReason: "revoked_session", revoke: func(t *testing.T, tr issuer.TokenResponse) {
			if r := e.do(t, http.MethodPost, "/v1/logout", "", "", bearer(tr.AccessToken)); r.status != http.StatusNoContent {
				t.Fatalf("logout: %d %s", r.status, r.body)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.postJSON(t, "/v1/sessions", map[string]any{"sub": tt.sub}, bearer(testCredential))
			if r.status != http.StatusCreated {
				t.Fatalf("session: %d %s", r.status, r.body)
			}
			tr := r.token(t)
			tt.revoke(t, tr)
			before := len(e.rev.requests())
			logoutAll := func() reply { return e.do(t, http.MethodPost, "/v1/logout/all", "", "", bearer(tr.AccessToken)) }
			if tt.wantReason == "" {
				if r := logoutAll(); r.status != http.StatusNoContent {
					t.Fatalf("logout/all: %d %s", r.status, r.body)
				}
				return
			}
			// The issuer reads the records: refused at once.
			last := logoutAll()
			if last.status != http.StatusUnauthorized || last.errorCode(t) != "invalid_token" || !strings.Contains(string(last.body), tt.wantReason) {
				t.Fatalf("logout/all with a revoked token: %d %s, want 401 %s", last.status, last.body, tt.wantReason)
			}
			if r := logoutAll(); r.status != http.StatusUnauthorized || len(e.rev.requests()) != before {
				t.Fatalf("logout/all again: %d %s; the revoker was asked", r.status, r.body)
			}
			// Logging one session out stays possible with such a token.
			if r := e.do(t, http.MethodPost, "/v1/logout", "", "", bearer(tr.AccessToken)); r.status != http.StatusNoContent {
				t.Fatalf("logout with a revoked token: %d %s", r.status, r.body)
			}
		})
	}
}

// TestLogoutAllUndecided: while Redis cannot answer, the issuer cannot
// tell whether the token is revoked: 503, not 204, and the revoker is not
// asked.
func TestLogoutAllUndecided(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.login(t, "alice")
	e.redis.Stop()
	r := e.do(t, http.MethodPost, "/v1/logout/all", "", "", bearer(tr.AccessToken))
	if r.status != http.StatusServiceUnavailable || r.errorCode(t) != "temporarily_unavailable" || len(e.rev.requests()) != 0 {
		t.Fatalf("got %d %s; revoker asked %d times", r.status, r.body, len(e.rev.requests()))
	}
}
