package issuer_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jwtrevoke/jwtrevoke/internal/eventually"
	"github.com/jwtrevoke/jwtrevoke/internal/issuer"
	"github.com/jwtrevoke/jwtrevoke/internal/revoker"
	"github.com/jwtrevoke/jwtrevoke/internal/runverifier"
	"github.com/jwtrevoke/jwtrevoke/internal/store"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier"
)

// fractional matches a NumericDate with a six-digit fraction.
var fractional = regexp.MustCompile(`^\d{10}\.\d{6}$`)

// TestLoginTokenVerifies: login answers a token response whose access token
// verifies with a pkg/verifier fed from the issuer's JWKS, for every
// supported algorithm, with at+jwt, kid and fractional iat/exp.
func TestLoginTokenVerifies(t *testing.T) {
	for _, alg := range []string{"EdDSA", "ES256", "RS256"} {
		t.Run(alg, func(t *testing.T) {
			key := testKey(t, alg)
			e := newEnv(t, func(c *issuer.Config) { c.Keys = []issuer.SigningKey{key} })
			ctx := testContext(t)
			tr := e.login(t, "alice")
			if tr.TokenType != "Bearer" || tr.ExpiresIn != 300 || tr.SessionID == "" ||
				!strings.HasPrefix(tr.RefreshToken, tr.SessionID+".") {
				t.Fatalf("token response %+v", tr)
			}

			v := runverifier.Ready(t, verifier.Config{
				Issuer:     testIssuer,
				Audiences:  []string{testAudience},
				Algorithms: []string{alg},
				Keys:       e.jwks(t),
				JetStream:  e.js,
				Logger:     slog.New(slog.DiscardHandler),
			})
			c, err := v.Verify(ctx, tr.AccessToken)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if c.Subject != "alice" || c.SessionID != tr.SessionID || c.KeyID != key.ID || len(c.ID) < 22 {
				t.Fatalf("claims %+v", c)
			}
			if c.IssuedAt.Nanosecond()%1000 != 0 || c.ExpiresAt.Sub(c.IssuedAt) != 5*time.Minute {
				t.Fatalf("iat %v exp %v", c.IssuedAt, c.ExpiresAt)
			}
			h := segment(t, tr.AccessToken, 0)
			if string(h["typ"]) != `"at+jwt"` || string(h["kid"]) != `"`+key.ID+`"` || string(h["alg"]) != `"`+alg+`"` {
				t.Fatalf("header %s %s %s", h["typ"], h["kid"], h["alg"])
			}
			cl := segment(t, tr.AccessToken, 1)
			for _, name := range []string{"iat", "exp"} {
				if !fractional.Match(cl[name]) {
					t.Fatalf("%s = %s, want seconds with a six-digit fraction", name, cl[name])
				}
			}
		})
	}
}

// TestLoginRefused: wrong password and unknown user both get 401
// invalid_grant and change nothing; an unknown user costs a bcrypt
// comparison as a known one does (no timing shortcut).
func TestLoginRefused(t *testing.T) {
	const cost = 8 // slow enough to tell a comparison from none
	e := newEnv(t, func(c *issuer.Config) {
		c.Users = map[string][]byte{"alice": hashPassword(t, cost)}
	})
	before := e.dbsize(t)
	tests := []struct {
		name, user, password string
		wantStatus           int
		wantCode             string
	}{
		{name: "wrong password", user: "alice", password: "wrong", wantStatus: 401, wantCode: "invalid_grant"},
		{name: "unknown user", user: "mallory", password: testPassword, wantStatus: 401, wantCode: "invalid_grant"},
		{name: "password over bcrypt's 72 bytes", user: "alice", password: strings.Repeat("x", 100), wantStatus: 401, wantCode: "invalid_grant"},
		{name: "empty password", user: "alice", password: "", wantStatus: 400, wantCode: "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.postJSON(t, "/v1/login", map[string]string{"username": tt.user, "password": tt.password}, nil)
			if r.status != tt.wantStatus || r.errorCode(t) != tt.wantCode {
				t.Fatalf("got %d %s", r.status, r.body)
			}
		})
	}
	if after := e.dbsize(t); after != before {
		t.Fatalf("DBSIZE %d -> %d", before, after)
	}

	// Timing: the fastest of a few attempts each way. A shortcut for
	// unknown users would be three orders of magnitude faster.
	// Samples are interleaved and the fastest of each kept, to resist a
	// busy machine; the bound is loose for the same reason.
	attempt := func(user string) time.Duration {
		start := time.Now()
		r := e.postJSON(t, "/v1/login", map[string]string{"username": user, "password": "wrong"}, nil)
		if r.status != 401 {
			t.Fatalf("status %d", r.status)
		}
		return time.Since(start)
	}
	known, unknown := time.Hour, time.Hour
	for range 5 {
		known = min(known, attempt("alice"))
		unknown = min(unknown, attempt("nobody"))
	}
	if unknown < known/10 {
		t.Fatalf("unknown user answered in %s, known user with a wrong password in %s: a timing shortcut", unknown, known)
	}
	t.Logf("wrong password %s, unknown user %s", known, unknown)
}

// TestSessions: POST /v1/sessions needs a service credential; extra claims
// land in the token and in refreshed tokens; registered claims cannot be
// given.
func TestSessions(t *testing.T) {
	e := newEnv(t, nil)
	body := map[string]any{"sub": "user-42", "claims": map[string]any{"role": "admin", "tenant": 7}}

	for _, tt := range []struct {
		name   string
		header map[string]string
	}{
		{name: "no credential", header: nil},
		{name: "wrong credential", header: bearer("not-the-service-credential")},
		{name: "wrong scheme", header: map[string]string{"Authorization": "Basic " + testCredential}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := e.dbsize(t)
			r := e.postJSON(t, "/v1/sessions", body, tt.header)
			if r.status != 401 || r.errorCode(t) != "invalid_client" {
				t.Fatalf("got %d %s", r.status, r.body)
			}
			if e.dbsize(t) != before {
				t.Fatal("state changed")
			}
		})
	}

	r := e.postJSON(t, "/v1/sessions", body, bearer(testCredential))
	if r.status != http.StatusCreated {
		t.Fatalf("got %d %s", r.status, r.body)
	}
	tr := r.token(t)
	check := func(tok string) {
		t.Helper()
		cl := segment(t, tok, 1)
		if string(cl["sub"]) != `"user-42"` || string(cl["role"]) != `"admin"` || string(cl["tenant"]) != "7" ||
			string(cl["iss"]) != `"`+testIssuer+`"` || string(cl["sid"]) != `"`+tr.SessionID+`"` {
			t.Fatalf("claims %v", cl)
		}
	}
	check(tr.AccessToken)
	rr := e.refresh(t, tr.RefreshToken)
	if rr.status != 200 {
		t.Fatalf("refresh: %d %s", rr.status, rr.body)
	}
	check(rr.token(t).AccessToken)

	for _, name := range []string{"sub", "iss", "exp", "iat", "aud", "jti", "sid", "nbf"} {
		t.Run("reserved "+name, func(t *testing.T) {
			before := e.dbsize(t)
			r := e.postJSON(t, "/v1/sessions", map[string]any{"sub": "user-42", "claims": map[string]any{name: "x"}}, bearer(testCredential))
			if r.status != 400 || r.errorCode(t) != "invalid_request" {
				t.Fatalf("got %d %s", r.status, r.body)
			}
			if e.dbsize(t) != before {
				t.Fatal("state changed")
			}
		})
	}
}

// TestRefreshRotation: a refresh gives a new pair; the token just rotated,
// retried within the grace window, gives the same successor; after the
// window it is reuse: invalid_grant, session flagged revoked, the revoker
// asked to revoke the session, the reuse counted.
func TestRefreshRotation(t *testing.T) {
	e := newEnv(t, nil)
	first := e.login(t, "alice")

	r := e.refresh(t, first.RefreshToken)
	if r.status != 200 {
		t.Fatalf("refresh: %d %s", r.status, r.body)
	}
	second := r.token(t)
	if second.RefreshToken == first.RefreshToken || second.AccessToken == first.AccessToken ||
		second.SessionID != first.SessionID || second.TokenType != "Bearer" || second.ExpiresIn != 300 {
		t.Fatalf("refresh response %+v", second)
	}
	if got := r.header.Get("Cache-Control"); got != "no-store" {
		t.Fatalf("Cache-Control %q", got)
	}

	retry := e.refresh(t, first.RefreshToken)
	if retry.status != 200 || retry.token(t).RefreshToken != second.RefreshToken {
		t.Fatalf("retry within grace: %d %s", retry.status, retry.body)
	}
	if s := e.session(t, first.SessionID); s.Generation != 2 || s.Revoked {
		t.Fatalf("session %+v", s)
	}

	e.clock.Advance(issuer.DefaultGrace + time.Second)
	late := e.refresh(t, first.RefreshToken)
	if late.status != 400 || late.errorCode(t) != "invalid_grant" {
		t.Fatalf("reuse after grace: %d %s", late.status, late.body)
	}
	if s := e.session(t, first.SessionID); !s.Revoked {
		t.Fatal("session not flagged revoked after reuse")
	}
	reqs := e.rev.requests()
	if len(reqs) != 1 || reqs[0].Req.Type != "session" || reqs[0].Req.SID != first.SessionID ||
		reqs[0].Req.Reason != "refresh_reuse" || reqs[0].IdempotencyKey != "refresh_reuse."+first.SessionID ||
		reqs[0].Authorization != "Bearer "+revokerCred {
		t.Fatalf("revoker got %+v", reqs)
	}
	// The legitimate successor dies with the session.
	if r := e.refresh(t, second.RefreshToken); r.status != 400 || r.errorCode(t) != "invalid_grant" {
		t.Fatalf("successor after reuse: %d %s", r.status, r.body)
	}
	m := e.do(t, http.MethodGet, "/metrics", "", "", nil)
	if !regexp.MustCompile(`(?m)^jwtrevoke_issuer_refresh_reuse_total(\{[^}]*\})? 1$`).Match(m.body) {
		t.Fatalf("reuse not counted in /metrics:\n%s", m.body)
	}
}

// TestRefreshRace: 100 concurrent refreshes of one token all succeed with
// the same successor; the generation advances by exactly one.
func TestRefreshRace(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.login(t, "alice")
	const n = 100
	got := make([]string, n)
	status := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			r := e.refresh(t, tr.RefreshToken)
			status[i] = r.status
			if r.status == 200 {
				got[i] = r.token(t).RefreshToken
			}
		})
	}
	close(start)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-testContext(t).Done():
		t.Fatal("refreshes did not finish")
	}
	for i := range n {
		if status[i] != 200 || got[i] != got[0] {
			t.Fatalf("refresh %d: status %d token equal=%v", i, status[i], got[i] == got[0])
		}
	}
	if s := e.session(t, tr.SessionID); s.Generation != 2 {
		t.Fatalf("generation %d, want 2", s.Generation)
	}
	if len(e.rev.requests()) != 0 {
		t.Fatal("a race was taken for reuse")
	}
}

// TestLogout: logout revokes the session through the revoker and in Redis,
// is idempotent, clears the cookie; refresh is refused after it.
func TestLogout(t *testing.T) {
	e := newEnv(t, func(c *issuer.Config) { c.SetCookie = true })
	tr := e.login(t, "alice")
	for i := range 2 {
		r := e.do(t, http.MethodPost, "/v1/logout", "", "", bearer(tr.AccessToken))
		if r.status != http.StatusNoContent {
			t.Fatalf("logout %d: %d %s", i, r.status, r.body)
		}
		if c := r.header.Get("Set-Cookie"); !strings.Contains(c, issuer.DefaultCookieName+"=;") || !strings.Contains(c, "Max-Age=0") {
			t.Fatalf("cookie not cleared: %q", c)
		}
	}
	reqs := e.rev.requests()
	if len(reqs) != 2 || reqs[0].Req.Type != "session" || reqs[0].Req.SID != tr.SessionID || reqs[0].IdempotencyKey == "" ||
		reqs[1].IdempotencyKey != reqs[0].IdempotencyKey {
		t.Fatalf("revoker got %+v", reqs)
	}
	if r := e.refresh(t, tr.RefreshToken); r.status != 400 || r.errorCode(t) != "invalid_grant" {
		t.Fatalf("refresh after logout: %d %s", r.status, r.body)
	}

	// The cookie alone authenticates a logout when cookies are on.
	tr2 := e.login(t, "bob")
	r := e.do(t, http.MethodPost, "/v1/logout", "", "", map[string]string{"Cookie": issuer.DefaultCookieName + "=" + tr2.AccessToken})
	if r.status != http.StatusNoContent || !e.session(t, tr2.SessionID).Revoked {
		t.Fatalf("cookie logout: %d %s", r.status, r.body)
	}
}

// TestLoginSetsCookie: with SetCookie, login sets an HttpOnly, Secure,
// SameSite=Strict cookie holding the access token.
func TestLoginSetsCookie(t *testing.T) {
	e := newEnv(t, func(c *issuer.Config) { c.SetCookie = true })
	r := e.postJSON(t, "/v1/login", map[string]string{"username": "alice", "password": testPassword}, nil)
	tr := r.token(t)
	c := r.header.Get("Set-Cookie")
	for _, want := range []string{issuer.DefaultCookieName + "=" + tr.AccessToken, "HttpOnly", "Secure", "SameSite=Strict", "Max-Age=300"} {
		if !strings.Contains(c, want) {
			t.Fatalf("Set-Cookie %q lacks %q", c, want)
		}
	}
}

// TestLogoutRevokerDown: the revoker being unavailable gives a retryable
// 503; a retry after it is back succeeds with the same idempotency key.
func TestLogoutRevokerDown(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.login(t, "alice")
	e.rev.down.Store(true)
	r := e.do(t, http.MethodPost, "/v1/logout", "", "", bearer(tr.AccessToken))
	if r.status != 503 || r.header.Get("Retry-After") == "" || r.errorCode(t) != "temporarily_unavailable" {
		t.Fatalf("got %d %v %s", r.status, r.header, r.body)
	}
	// The answer says the logout is recorded and will be delivered.
	var ans revoker.RecordedAnswer
	if err := json.Unmarshal(r.body, &ans); err != nil || !ans.Recorded || !strings.Contains(ans.Description, "recorded") {
		t.Fatalf("503 body %s: want recorded:true and a description saying so", r.body)
	}
	// Refresh is already refused: the session is flagged in Redis first.
	if r := e.refresh(t, tr.RefreshToken); r.status != 400 {
		t.Fatalf("refresh after failed logout: %d", r.status)
	}
	// Recorded with its outbox entry in one step, so any revoker's drainer
	// delivers it though nobody retries; Redis look-ups refuse it already.
	ctx := testContext(t)
	if err := e.store.Check(ctx, store.Query{SID: tr.SessionID}); !errors.Is(err, verifier.ErrSessionRevoked) {
		t.Fatalf("store.Check after the recorded logout = %v, want ErrSessionRevoked", err)
	}
	entries, err := e.store.ClaimOutbox(ctx, time.Now().Add(time.Minute), time.Millisecond, 10)
	if err != nil || len(entries) != 1 || entries[0].Event.Event().ID != ans.ID ||
		entries[0].Event.Event().SID != tr.SessionID || entries[0].Event.Event().Reason != "logout" {
		t.Fatalf("outbox = %+v, %v; want the session's event %s", entries, err, ans.ID)
	}
	// logout/all needs a token that is not revoked: tr's session is
	// flagged in Redis now, so another session's token.
	other := e.login(t, "alice")
	r = e.do(t, http.MethodPost, "/v1/logout/all", "", "", bearer(other.AccessToken))
	if r.status != 503 {
		t.Fatalf("logout/all: %d %s", r.status, r.body)
	}
	e.rev.down.Store(false)
	if r := e.do(t, http.MethodPost, "/v1/logout", "", "", bearer(tr.AccessToken)); r.status != 204 {
		t.Fatalf("retry: %d %s", r.status, r.body)
	}
}

// TestLogoutAll: /v1/logout/all asks the revoker to revoke the subject;
// once the epoch is in Redis every session of the subject is refused
// refresh; a login right after works and its token is issued after the
// epoch, even when the revoker's clock runs ahead of the issuer's.
func TestLogoutAll(t *testing.T) {
	e := newEnv(t, nil)
	ctx := testContext(t)
	a, b := e.login(t, "alice"), e.login(t, "alice")
	other := e.login(t, "bob")

	r := e.do(t, http.MethodPost, "/v1/logout/all", "", "", map[string]string{
		"Authorization": "Bearer " + a.AccessToken, "Idempotency-Key": "click-1"})
	if r.status != 204 {
		t.Fatalf("logout/all: %d %s", r.status, r.body)
	}
	r = e.do(t, http.MethodPost, "/v1/logout/all", "", "", map[string]string{
		"Authorization": "Bearer " + a.AccessToken, "Idempotency-Key": "click-1"})
	if r.status != 204 {
		t.Fatalf("logout/all retry: %d %s", r.status, r.body)
	}
	reqs := e.rev.requests()
	if len(reqs) != 2 || reqs[0].Req.Type != "subject" || reqs[0].Req.Sub != "alice" ||
		reqs[0].IdempotencyKey == "" || reqs[1].IdempotencyKey != reqs[0].IdempotencyKey {
		t.Fatalf("revoker got %+v", reqs)
	}
	// Without an Idempotency-Key every call is a new logout-all.
	e.do(t, http.MethodPost, "/v1/logout/all", "", "", bearer(a.AccessToken))
	if reqs := e.rev.requests(); len(reqs) != 3 || reqs[2].IdempotencyKey == reqs[0].IdempotencyKey {
		t.Fatalf("revoker got %+v", reqs)
	}

	// What the revoker does: record the epoch in Redis, by its clock.
	epoch, err := recordLogoutAll(ctx, e.store, "alice", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range []issuer.TokenResponse{a, b} {
		if r := e.refresh(t, tr.RefreshToken); r.status != 400 || r.errorCode(t) != "invalid_grant" {
			t.Fatalf("refresh after logout-all: %d %s", r.status, r.body)
		}
	}
	if r := e.refresh(t, other.RefreshToken); r.status != 200 {
		t.Fatalf("another subject's refresh: %d %s", r.status, r.body)
	}

	v := e.inspector(t)
	fresh := e.login(t, "alice")
	c, err := v.Check(ctx, fresh.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if !c.IssuedAt.After(epoch) {
		t.Fatalf("iat %v not after epoch %v", c.IssuedAt, epoch)
	}
	if r := e.refresh(t, fresh.RefreshToken); r.status != 200 {
		t.Fatalf("refresh of the new session: %d %s", r.status, r.body)
	}

	// The revoker's clock 2 s ahead: the epoch lies in the issuer's future.
	ahead, err := recordLogoutAll(ctx, e.store, "alice", time.Now().Add(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	fresh = e.login(t, "alice")
	c, err = v.Check(ctx, fresh.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if !c.IssuedAt.After(ahead) || c.IssuedAt.Sub(ahead) > time.Millisecond {
		t.Fatalf("iat %v, epoch %v: want just after", c.IssuedAt, ahead)
	}
	r = e.refresh(t, fresh.RefreshToken)
	if r.status != 200 {
		t.Fatalf("refresh after skewed epoch: %d %s", r.status, r.body)
	}
	if c, err = v.Check(ctx, r.token(t).AccessToken); err != nil || !c.IssuedAt.After(ahead) {
		t.Fatalf("refreshed iat %v, epoch %v, err %v", c, ahead, err)
	}
}

// inspector returns a verifier trusting the issuer's keys, for reading
// tokens in tests (Inspect needs no stream state).
func (e *env) inspector(tb testing.TB) *verifier.Checker {
	tb.Helper()
	var keys []verifier.Key
	for _, k := range e.cfg.Keys {
		keys = append(keys, verifier.Key{ID: k.ID, Public: k.Private.Public()})
	}
	static, err := verifier.StaticKeys(keys...)
	if err != nil {
		tb.Fatal(err)
	}
	v, err := verifier.NewChecker(static, verifier.CheckerConfig{
		Issuer: testIssuer, Audiences: []string{testAudience}, Algorithms: []string{"EdDSA", "ES256", "RS256"},
		Leeway: time.Minute,
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(v.Close)
	return v
}

// TestRevokeRFC7009: revoking a refresh token revokes its session; an
// access token, its jti; unknown or foreign tokens get 200 and nothing.
func TestRevokeRFC7009(t *testing.T) {
	e := newEnv(t, nil)
	revoke := func(tok, hint string) reply {
		form := url.Values{"token": {tok}}
		if hint != "" {
			form.Set("token_type_hint", hint)
		}
		return e.postForm(t, "/oauth2/revoke", form, nil)
	}

	rt := e.login(t, "alice")
	if r := revoke(rt.RefreshToken, "refresh_token"); r.status != 200 {
		t.Fatalf("revoke refresh token: %d %s", r.status, r.body)
	}
	if !e.session(t, rt.SessionID).Revoked {
		t.Fatal("session not revoked")
	}
	if r := e.refresh(t, rt.RefreshToken); r.status != 400 {
		t.Fatalf("refresh after revoke: %d", r.status)
	}
	reqs := e.rev.requests()
	if len(reqs) != 1 || reqs[0].Req.Type != "session" || reqs[0].Req.SID != rt.SessionID {
		t.Fatalf("revoker got %+v", reqs)
	}

	at := e.login(t, "bob")
	if r := revoke(at.AccessToken, "access_token"); r.status != 200 {
		t.Fatalf("revoke access token: %d %s", r.status, r.body)
	}
	c, err := e.inspector(t).Check(testContext(t), at.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	reqs = e.rev.requests()
	if len(reqs) != 2 || reqs[1].Req.Type != "token" || reqs[1].Req.JTI != c.ID || reqs[1].Req.Exp == nil ||
		*reqs[1].Req.Exp < float64(c.ExpiresAt.UnixMicro())/1e6 {
		t.Fatalf("revoker got %+v", reqs[1:])
	}
	if e.session(t, at.SessionID).Revoked {
		t.Fatal("revoking an access token revoked its session")
	}

	forged, _ := issuer.GenerateKey("EdDSA")
	other, err := issuer.New(func() issuer.Config { c := e.cfg; c.Keys = []issuer.SigningKey{forged}; return c }())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(other.Close)
	foreign := httptestToken(t, other) // (creates a session in the shared store)
	before := e.dbsize(t)
	for _, tt := range []struct{ name, token, hint string }{
		{name: "garbage", token: "not-a-token"},
		{name: "unknown refresh token", token: strings.Repeat("A", 22) + "." + strings.Repeat("B", 43), hint: "refresh_token"},
		{name: "wrong secret for a real session", token: at.SessionID + "." + strings.Repeat("B", 43)},
		{name: "JWS of another key", token: foreign, hint: "access_token"},
		{name: "hint unknown", token: "x.y.z", hint: "id_token"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if r := revoke(tt.token, tt.hint); r.status != 200 {
				t.Fatalf("got %d %s", r.status, r.body)
			}
		})
	}
	if len(e.rev.requests()) != 2 || e.dbsize(t) != before || e.session(t, at.SessionID).Revoked {
		t.Fatal("an unknown token changed state")
	}
}

// httptestToken mints an access token with another issuer instance.
func httptestToken(tb testing.TB, s *issuer.Server) string {
	tb.Helper()
	body := strings.NewReader(`{"username":"alice","password":"` + testPassword + `"}`)
	req, _ := http.NewRequestWithContext(testContext(tb), http.MethodPost, "/v1/login", body)
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	var tr issuer.TokenResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &tr); err != nil || tr.AccessToken == "" {
		tb.Fatalf("login with the other issuer: %d %s", rec.Code, rec.Body)
	}
	return tr.AccessToken
}

// TestBadInput: every endpoint answers bad input with a 4xx JSON error and
// leaves Redis and the revoker untouched.
func TestBadInput(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.login(t, "alice")
	big := strings.Repeat("a", issuer.DefaultMaxBody+1)
	jsonCT := "application/json"
	form := "application/x-www-form-urlencoded"
	tests := []struct {
		name, method, path, ctype, body string
		header                          map[string]string
		wantStatus                      int
		wantCode                        string
	}{
		{name: "login not json", method: "POST", path: "/v1/login", ctype: jsonCT, body: `{"username":`, wantStatus: 400, wantCode: "invalid_request"},
		{name: "login wrong content type", method: "POST", path: "/v1/login", ctype: "text/plain", body: `{}`, wantStatus: 415, wantCode: "invalid_request"},
		{name: "login unknown field", method: "POST", path: "/v1/login", ctype: jsonCT, body: `{"username":"a","password":"b","admin":true}`, wantStatus: 400, wantCode: "invalid_request"},
		{name: "login two objects", method: "POST", path: "/v1/login", ctype: jsonCT, body: `{"username":"a","password":"b"}{}`, wantStatus: 400, wantCode: "invalid_request"},
		{name: "login wrong types", method: "POST", path: "/v1/login", ctype: jsonCT, body: `{"username":1,"password":[]}`, wantStatus: 400, wantCode: "invalid_request"},
		{name: "login body too large", method: "POST", path: "/v1/login", ctype: jsonCT, body: `{"username":"` + big + `"}`, wantStatus: 413, wantCode: "invalid_request"},
		{name: "login GET", method: "GET", path: "/v1/login", wantStatus: 405, wantCode: "invalid_request"},
		{name: "sessions no credential", method: "POST", path: "/v1/sessions", ctype: jsonCT, body: `{"sub":"x"}`, wantStatus: 401, wantCode: "invalid_client"},
		{name: "sessions empty sub", method: "POST", path: "/v1/sessions", ctype: jsonCT, body: `{"sub":""}`, header: bearer(testCredential), wantStatus: 400, wantCode: "invalid_request"},
		{name: "sessions sub too long", method: "POST", path: "/v1/sessions", ctype: jsonCT, body: `{"sub":"` + strings.Repeat("s", 257) + `"}`, header: bearer(testCredential), wantStatus: 400, wantCode: "invalid_request"},
		{name: "sessions sub control char", method: "POST", path: "/v1/sessions", ctype: jsonCT, body: `{"sub":"a\u0000b"}`, header: bearer(testCredential), wantStatus: 400, wantCode: "invalid_request"},
		{name: "sessions claims not object", method: "POST", path: "/v1/sessions", ctype: jsonCT, body: `{"sub":"a","claims":[1]}`, header: bearer(testCredential), wantStatus: 400, wantCode: "invalid_request"},
		{name: "sessions claims too large", method: "POST", path: "/v1/sessions", ctype: jsonCT, body: `{"sub":"a","claims":{"x":"` + strings.Repeat("y", 5000) + `"}}`, header: bearer(testCredential), wantStatus: 400, wantCode: "invalid_request"},
		{name: "sessions empty claim name", method: "POST", path: "/v1/sessions", ctype: jsonCT, body: `{"sub":"a","claims":{"":1}}`, header: bearer(testCredential), wantStatus: 400, wantCode: "invalid_request"},
		{name: "token json body", method: "POST", path: "/oauth2/token", ctype: jsonCT, body: `{"grant_type":"refresh_token"}`, wantStatus: 415, wantCode: "invalid_request"},
		{name: "token no grant_type", method: "POST", path: "/oauth2/token", ctype: form, body: "refresh_token=x", wantStatus: 400, wantCode: "invalid_request"},
		{name: "token password grant", method: "POST", path: "/oauth2/token", ctype: form, body: "grant_type=password&username=a&password=b", wantStatus: 400, wantCode: "unsupported_grant_type"},
		{name: "token no refresh_token", method: "POST", path: "/oauth2/token", ctype: form, body: "grant_type=refresh_token", wantStatus: 400, wantCode: "invalid_request"},
		{name: "token duplicate parameter", method: "POST", path: "/oauth2/token", ctype: form, body: "grant_type=refresh_token&refresh_token=a&refresh_token=b", wantStatus: 400, wantCode: "invalid_request"},
		{name: "token malformed refresh token", method: "POST", path: "/oauth2/token", ctype: form, body: "grant_type=refresh_token&refresh_token=" + url.QueryEscape("{x}.y"), wantStatus: 400, wantCode: "invalid_grant"},
		{name: "token huge refresh token", method: "POST", path: "/oauth2/token", ctype: form, body: "grant_type=refresh_token&refresh_token=" + strings.Repeat("A", 10000), wantStatus: 400, wantCode: "invalid_grant"},
		{name: "token unknown session", method: "POST", path: "/oauth2/token", ctype: form, body: "grant_type=refresh_token&refresh_token=" + strings.Repeat("A", 22) + "." + strings.Repeat("B", 43), wantStatus: 400, wantCode: "invalid_grant"},
		{name: "token wrong secret", method: "POST", path: "/oauth2/token", ctype: form, body: "grant_type=refresh_token&refresh_token=" + tr.SessionID + "." + strings.Repeat("B", 43), wantStatus: 400, wantCode: "invalid_grant"},
		{name: "token access token as refresh", method: "POST", path: "/oauth2/token", ctype: form, body: "grant_type=refresh_token&refresh_token=" + tr.AccessToken, wantStatus: 400, wantCode: "invalid_grant"},
		{name: "token bad form encoding", method: "POST", path: "/oauth2/token", ctype: form, body: "grant_type=%zz", wantStatus: 400, wantCode: "invalid_request"},
		{name: "token body too large", method: "POST", path: "/oauth2/token", ctype: form, body: "grant_type=refresh_token&refresh_token=" + big, wantStatus: 413, wantCode: "invalid_request"},
		{name: "revoke no token", method: "POST", path: "/oauth2/revoke", ctype: form, body: "token_type_hint=refresh_token", wantStatus: 400, wantCode: "invalid_request"},
		{name: "revoke json", method: "POST", path: "/oauth2/revoke", ctype: jsonCT, body: `{"token":"x"}`, wantStatus: 415, wantCode: "invalid_request"},
		{name: "logout no token", method: "POST", path: "/v1/logout", wantStatus: 401, wantCode: "invalid_token"},
		{name: "logout garbage token", method: "POST", path: "/v1/logout", header: bearer("a.b.c"), wantStatus: 401, wantCode: "invalid_token"},
		{name: "logout refresh token as bearer", method: "POST", path: "/v1/logout", header: bearer(tr.RefreshToken), wantStatus: 401, wantCode: "invalid_token"},
		{name: "logout basic auth", method: "POST", path: "/v1/logout", header: map[string]string{"Authorization": "Basic YTpi"}, wantStatus: 400, wantCode: "invalid_request"},
		{name: "logout tampered token", method: "POST", path: "/v1/logout", header: bearer(tamper(tr.AccessToken)), wantStatus: 401, wantCode: "invalid_token"},
		{name: "logout all no token", method: "POST", path: "/v1/logout/all", wantStatus: 401, wantCode: "invalid_token"},
		{name: "logout all huge idempotency key", method: "POST", path: "/v1/logout/all", header: map[string]string{"Authorization": "Bearer " + tr.AccessToken, "Idempotency-Key": strings.Repeat("k", 300)}, wantStatus: 400, wantCode: "invalid_request"},
		{name: "jwks POST", method: "POST", path: "/.well-known/jwks.json", wantStatus: 405, wantCode: "invalid_request"},
		{name: "unknown path", method: "GET", path: "/v1/nothing", wantStatus: 404, wantCode: "not_found"},
	}
	before := e.dbsize(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(t, tt.method, tt.path, tt.ctype, tt.body, tt.header)
			if r.status != tt.wantStatus || r.errorCode(t) != tt.wantCode {
				t.Fatalf("got %d %s, want %d %s", r.status, r.body, tt.wantStatus, tt.wantCode)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("Content-Type %q", ct)
			}
		})
	}
	if after := e.dbsize(t); after != before {
		t.Fatalf("DBSIZE %d -> %d", before, after)
	}
	if s := e.session(t, tr.SessionID); s.Generation != 1 || s.Revoked {
		t.Fatalf("session changed: %+v", s)
	}
	if n := len(e.rev.requests()); n != 0 {
		t.Fatalf("revoker got %d requests", n)
	}
	// Still serviceable.
	if r := e.refresh(t, tr.RefreshToken); r.status != 200 {
		t.Fatalf("refresh: %d %s", r.status, r.body)
	}
}

// tamper flips a character of the claims segment.
func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	b := []byte(parts[1])
	if b[5] == 'A' {
		b[5] = 'B'
	} else {
		b[5] = 'A'
	}
	return parts[0] + "." + string(b) + "." + parts[2]
}

// TestDisabledEndpoints: without Users there is no login; without service
// credentials no /v1/sessions.
func TestDisabledEndpoints(t *testing.T) {
	e := newEnv(t, func(c *issuer.Config) { c.Users, c.ServiceCredentials = nil, nil })
	for _, path := range []string{"/v1/login", "/v1/sessions"} {
		r := e.postJSON(t, path, map[string]string{"sub": "a"}, bearer(testCredential))
		if r.status != 404 || r.errorCode(t) != "not_found" {
			t.Fatalf("%s: %d %s", path, r.status, r.body)
		}
	}
}

// TestHealthAndJWKS: /healthz, /readyz, /metrics and the JWKS, which
// publishes every configured key while the named one signs.
func TestHealthAndJWKS(t *testing.T) {
	k1, k2, k3 := testKey(t, "EdDSA"), testKey(t, "ES256"), testKey(t, "RS256")
	e := newEnv(t, func(c *issuer.Config) {
		c.Keys = []issuer.SigningKey{k1, k2, k3}
		c.SigningKeyID = k2.ID
	})
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/.well-known/jwks.json"} {
		if r := e.do(t, http.MethodGet, path, "", "", nil); r.status != 200 {
			t.Fatalf("%s: %d %s", path, r.status, r.body)
		}
	}
	r := e.do(t, http.MethodGet, "/.well-known/jwks.json", "", "", nil)
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
			D   string `json:"d"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(r.body, &set); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		if k.D != "" {
			t.Fatal("private key material published")
		}
		kids = append(kids, k.Kid)
	}
	if !slices.Equal(kids, []string{k1.ID, k2.ID, k3.ID}) {
		t.Fatalf("kids %v", kids)
	}
	tr := e.login(t, "alice")
	if h := segment(t, tr.AccessToken, 0); string(h["kid"]) != fmt.Sprintf("%q", k2.ID) || string(h["alg"]) != `"ES256"` {
		t.Fatalf("header %v", h)
	}
}

// TestNewInvalidConfig: New refuses incomplete or unsafe configurations.
func TestNewInvalidConfig(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name    string
		mod     func(*issuer.Config)
		wantErr error
	}{
		{name: "no issuer", mod: func(c *issuer.Config) { c.Issuer = "" }, wantErr: issuer.ErrInvalidConfig},
		{name: "no audience", mod: func(c *issuer.Config) { c.Audiences = nil }, wantErr: issuer.ErrInvalidConfig},
		{name: "no keys", mod: func(c *issuer.Config) { c.Keys = nil }, wantErr: issuer.ErrInvalidConfig},
		{name: "short secret", mod: func(c *issuer.Config) { c.RefreshSecret = []byte("short") }, wantErr: issuer.ErrInvalidConfig},
		{name: "no store", mod: func(c *issuer.Config) { c.Store = nil }, wantErr: issuer.ErrInvalidConfig},
		{name: "no revoker", mod: func(c *issuer.Config) { c.Revoker = nil }, wantErr: issuer.ErrInvalidConfig},
		{name: "access ttl too long", mod: func(c *issuer.Config) { c.AccessTTL = 2 * time.Hour }, wantErr: issuer.ErrInvalidConfig},
		{name: "grace too long", mod: func(c *issuer.Config) { c.RefreshGrace = time.Hour }, wantErr: issuer.ErrInvalidConfig},
		{name: "unknown signing kid", mod: func(c *issuer.Config) { c.SigningKeyID = "nope" }, wantErr: issuer.ErrInvalidConfig},
		{name: "nil private key", mod: func(c *issuer.Config) { c.Keys = []issuer.SigningKey{{ID: "k"}} }, wantErr: issuer.ErrInvalidKey},
		{name: "duplicate kid", mod: func(c *issuer.Config) { c.Keys = []issuer.SigningKey{c.Keys[0], c.Keys[0]} }, wantErr: issuer.ErrInvalidConfig},
		{name: "short service credential", mod: func(c *issuer.Config) { c.ServiceCredentials = []string{"short"} }, wantErr: issuer.ErrInvalidConfig},
		{name: "subject as an epoch scope", mod: func(c *issuer.Config) { c.EpochScopes = []string{"sub"} }, wantErr: issuer.ErrInvalidConfig},
		{name: "user hash not bcrypt", mod: func(c *issuer.Config) { c.Users = map[string][]byte{"a": []byte("plain")} }, wantErr: issuer.ErrInvalidConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := e.cfg
			tt.mod(&c)
			s, err := issuer.New(c)
			if s != nil {
				s.Close()
			}
			isErr(t, err, tt.wantErr)
		})
	}
}

// TestRedisDown: with Redis unreachable, login, session creation, refresh
// and logout answer a retryable 503 (never 500) and /readyz fails; they
// work again once it is back.
func TestRedisDown(t *testing.T) {
	e := newEnv(t, nil)
	tr := e.login(t, "alice")
	e.redis.Stop()
	for _, tt := range []struct {
		name string
		send func() reply
	}{
		{name: "login", send: func() reply {
			return e.postJSON(t, "/v1/login", map[string]string{"username": "alice", "password": testPassword}, nil)
		}},
		{name: "sessions", send: func() reply {
			return e.postJSON(t, "/v1/sessions", map[string]string{"sub": "x"}, bearer(testCredential))
		}},
		{name: "refresh", send: func() reply { return e.refresh(t, tr.RefreshToken) }},
		{name: "logout", send: func() reply { return e.do(t, http.MethodPost, "/v1/logout", "", "", bearer(tr.AccessToken)) }},
		{name: "revoke refresh token", send: func() reply {
			return e.postForm(t, "/oauth2/revoke", url.Values{"token": {tr.RefreshToken}}, nil)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.send()
			if r.status != 503 || r.header.Get("Retry-After") == "" || r.errorCode(t) != "temporarily_unavailable" {
				t.Fatalf("got %d %s", r.status, r.body)
			}
		})
	}
	if r := e.do(t, http.MethodGet, "/readyz", "", "", nil); r.status != 503 {
		t.Fatalf("readyz: %d", r.status)
	}
	if r := e.do(t, http.MethodGet, "/healthz", "", "", nil); r.status != 200 {
		t.Fatalf("healthz: %d", r.status)
	}
	e.redis.Restart(t) // no persistence: the old session is gone
	eventually.True(t, 10*time.Second, "/readyz 200", func() bool { return e.do(t, http.MethodGet, "/readyz", "", "", nil).status == 200 })
	e.login(t, "alice")
}
