package interop_test

import (
	"encoding/base64"
	"encoding/json"
	"mime"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jwtrevoke/jwtrevoke/interop/hydra"
)

const backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"

// TestHydraLoginGivesJWTWithSid logs in and checks the access token against
// Hydra's JWKS: RS256, iss, sub, top-level sid equal to the login session id,
// jti, exp. It logs header and claims to document what Hydra puts there.
func TestHydraLoginGivesJWTWithSid(t *testing.T) {
	h := hydra.Start(t)
	c := h.RegisterClient(t, "")
	tok := h.Login(t, c, "alice")
	t.Logf("login session id %s, scope %q, expires_in %d", tok.SessionID, tok.Scope, tok.ExpiresIn)
	if tok.SessionID == "" || tok.RefreshToken == "" || tok.IDToken == "" {
		t.Fatalf("missing session id, refresh or ID token: %+v", tok)
	}

	keyfunc := h.Keyfunc(t)
	at := verify(t, "access token", tok.AccessToken, keyfunc,
		jwt.WithIssuer(h.Issuer()), jwt.WithSubject("alice"), jwt.WithExpirationRequired(), jwt.WithIssuedAt())
	claims := at.Claims.(jwt.MapClaims)
	if at.Method.Alg() != "RS256" {
		t.Errorf("access token alg %s, want RS256", at.Method.Alg())
	}
	if kid, _ := at.Header["kid"].(string); kid == "" {
		t.Error("access token header has no kid")
	}
	if sid, _ := claims["sid"].(string); sid != tok.SessionID {
		t.Errorf("access token sid %q (top level), want the login session id %q", claims["sid"], tok.SessionID)
	}
	if jti, _ := claims["jti"].(string); jti == "" {
		t.Error("access token has no jti")
	}
	if exp, err := claims.GetExpirationTime(); err != nil || !exp.After(time.Now()) {
		t.Errorf("access token exp %v (%v), want in the future", exp, err)
	}
	if cid, _ := claims["client_id"].(string); cid != c.ID {
		t.Errorf("access token client_id %q, want %q", claims["client_id"], c.ID)
	}

	id := verify(t, "ID token", tok.IDToken, keyfunc,
		jwt.WithIssuer(h.Issuer()), jwt.WithSubject("alice"), jwt.WithAudience(c.ID), jwt.WithExpirationRequired())
	if sid, _ := id.Claims.(jwt.MapClaims)["sid"].(string); sid != tok.SessionID {
		t.Errorf("ID token sid %q, want %q", sid, tok.SessionID)
	}
	t.Logf("access token kid %v, ID token kid %v (same key set: %v)", at.Header["kid"], id.Header["kid"], at.Header["kid"] == id.Header["kid"])

	// A refresh keeps the session: the new access token carries the same sid.
	ref, err := h.Refresh(c, tok.RefreshToken)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	rat := verify(t, "refreshed access token", ref.AccessToken, keyfunc, jwt.WithIssuer(h.Issuer()), jwt.WithSubject("alice"))
	if sid, _ := rat.Claims.(jwt.MapClaims)["sid"].(string); sid != tok.SessionID {
		t.Errorf("refreshed access token sid %q, want %q", sid, tok.SessionID)
	}
}

// delivery is one POST to the back-channel logout endpoint.
type delivery struct {
	at          time.Time
	contentType string
	token       string
	status      int
}

// backchannel records every delivery and answers 500 to the first, 200 to
// the rest.
type backchannel struct {
	srv *httptest.Server
	got chan delivery // every delivery, in order

	mu sync.Mutex
	n  int
}

func newBackchannel(t *testing.T) *backchannel {
	b := &backchannel{got: make(chan delivery, 64)}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d := delivery{at: time.Now(), contentType: r.Header.Get("Content-Type"), status: http.StatusOK}
		if r.Method != http.MethodPost {
			t.Errorf("back-channel: %s %s, want POST", r.Method, r.URL)
		}
		if err := r.ParseForm(); err != nil {
			t.Errorf("back-channel: parsing the form: %v", err)
		}
		d.token = r.PostForm.Get("logout_token")
		b.mu.Lock()
		b.n++
		if b.n == 1 {
			d.status = http.StatusInternalServerError
		}
		b.mu.Unlock()
		w.WriteHeader(d.status)
		b.got <- d
	}))
	t.Cleanup(b.srv.Close)
	return b
}

// next waits for the next delivery until the deadline.
func (b *backchannel) next(t *testing.T, deadline time.Time) (delivery, bool) {
	t.Helper()
	select {
	case d := <-b.got:
		return d, true
	case <-time.After(time.Until(deadline)):
		return delivery{}, false
	}
}

// TestHydraBackchannelLogoutToken logs in and out through a browser and
// records what Hydra POSTs to the client's backchannel_logout_uri, including
// whether and how it retries after a 500.
func TestHydraBackchannelLogoutToken(t *testing.T) {
	h := hydra.Start(t)
	bc := newBackchannel(t)
	c := h.RegisterClient(t, bc.srv.URL+"/backchannel-logout")
	tok := h.Login(t, c, "alice")
	keyfunc := h.Keyfunc(t)

	start := time.Now()
	h.Logout(t, c, tok)
	t.Logf("browser logout flow took %s", time.Since(start).Round(time.Millisecond))

	// Hydra's client retries with backoff from 1s; give it ample time.
	deadline := start.Add(30 * time.Second)
	first, ok := bc.next(t, deadline)
	if !ok {
		t.Fatalf("no back-channel logout delivery within %s", time.Until(deadline)+time.Since(start))
	}
	t.Logf("first delivery %s after the start of Logout, Content-Type %q, answered %d",
		first.at.Sub(start).Round(time.Millisecond), first.contentType, first.status)
	if mt, _, _ := mime.ParseMediaType(first.contentType); mt != "application/x-www-form-urlencoded" {
		t.Errorf("Content-Type %q, want application/x-www-form-urlencoded", first.contentType)
	}
	if first.token == "" {
		t.Fatal("first delivery has no logout_token")
	}

	lt := verify(t, "logout token", first.token, keyfunc, jwt.WithIssuer(h.Issuer()), jwt.WithAudience(c.ID), jwt.WithIssuedAt())
	claims := lt.Claims.(jwt.MapClaims)
	if lt.Method.Alg() != "RS256" {
		t.Errorf("logout token alg %s, want RS256", lt.Method.Alg())
	}
	if sid, _ := claims["sid"].(string); sid != tok.SessionID {
		t.Errorf("logout token sid %q, want %q", claims["sid"], tok.SessionID)
	}
	if jti, _ := claims["jti"].(string); jti == "" {
		t.Error("logout token has no jti")
	}
	if ev, _ := claims["events"].(map[string]any); ev == nil || ev[backchannelEvent] == nil {
		t.Errorf("logout token events %v, want the key %s", claims["events"], backchannelEvent)
	}
	if _, ok := claims["nonce"]; ok {
		t.Error("logout token has a nonce (OpenID Back-Channel Logout 1.0 2.4 forbids it)")
	}
	_, hasSub := claims["sub"]
	_, hasExp := claims["exp"]
	t.Logf("logout token: sub present %v, exp present %v, typ header %v", hasSub, hasExp, lt.Header["typ"])

	second, ok := bc.next(t, deadline)
	if !ok {
		t.Fatalf("Hydra did not retry the delivery answered 500 within %s", deadline.Sub(start))
	}
	t.Logf("retry %s after the first delivery (%s after the start of Logout), answered %d, identical token: %v",
		second.at.Sub(first.at).Round(time.Millisecond), second.at.Sub(start).Round(time.Millisecond),
		second.status, second.token == first.token)
	if second.token != first.token {
		t.Errorf("retry carried a different logout token")
		verify(t, "retried logout token", second.token, keyfunc, jwt.WithIssuer(h.Issuer()), jwt.WithAudience(c.ID))
	}

	// Negative observation: a 200 should end the deliveries. Two seconds is
	// twice Hydra's first backoff step; nothing is expected in it.
	if extra, ok := bc.next(t, time.Now().Add(2*time.Second)); ok {
		t.Errorf("a further delivery after the 200, %s after the first", extra.at.Sub(first.at))
	}

	// What logout does to the tokens Hydra itself keeps: logged, not asserted.
	if _, err := h.Refresh(c, tok.RefreshToken); err != nil {
		t.Logf("refresh after logout: refused: %v", err)
	} else {
		t.Logf("refresh after logout: STILL WORKS (Hydra's logout does not revoke the refresh token)")
	}
}

// TestHydraAdminRevokeSessionSendsBackchannel ends the login session through
// the admin API (no browser) and checks that the same logout token arrives.
func TestHydraAdminRevokeSessionSendsBackchannel(t *testing.T) {
	h := hydra.Start(t)
	bc := newBackchannel(t)
	c := h.RegisterClient(t, bc.srv.URL+"/backchannel-logout")
	tok := h.Login(t, c, "bob")

	start := time.Now()
	h.RevokeLoginSession(t, tok.SessionID)
	d, ok := bc.next(t, start.Add(30*time.Second))
	if !ok {
		t.Fatal("no back-channel logout delivery after DELETE /admin/oauth2/auth/sessions/login?sid=")
	}
	t.Logf("delivery %s after the admin call", d.at.Sub(start).Round(time.Millisecond))
	lt := verify(t, "logout token", d.token, h.Keyfunc(t), jwt.WithIssuer(h.Issuer()), jwt.WithAudience(c.ID))
	if sid, _ := lt.Claims.(jwt.MapClaims)["sid"].(string); sid != tok.SessionID {
		t.Errorf("logout token sid %q, want %q", sid, tok.SessionID)
	}
}

// verify checks raw's signature against Hydra's JWKS (RS256 only) with the
// given options, and logs its header and claims exactly as Hydra wrote them.
func verify(t *testing.T, what, raw string, keyfunc jwt.Keyfunc, opts ...jwt.ParserOption) *jwt.Token {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("%s is not a JWS compact serialization: %d parts", what, len(parts))
	}
	t.Logf("%s header: %s", what, decodeSegment(t, parts[0]))
	t.Logf("%s claims: %s", what, decodeSegment(t, parts[1]))
	opts = append(opts, jwt.WithValidMethods([]string{"RS256"}), jwt.WithLeeway(5*time.Second))
	tok, err := jwt.Parse(raw, keyfunc, opts...)
	if err != nil {
		t.Fatalf("%s does not verify: %v", what, err)
	}
	return tok
}

func decodeSegment(t *testing.T, seg string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatalf("decoding JWT segment: %v", err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("JWT segment is not JSON: %v", err)
	}
	return string(b)
}
