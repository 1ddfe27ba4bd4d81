package revoker

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jwtrevoke/jwtrevoke/internal/httpx"
)

// Console cookies. Both are Secure, HttpOnly and SameSite=Strict, scoped
// to /console: browsers keep Secure cookies over https and on http://localhost.
const (
	consoleCookie      = "jwtrevoke_console"
	consoleLoginCookie = "jwtrevoke_console_login"
	consolePath        = "/console"
	// loginFormLifetime bounds how long a login form may be left open.
	loginFormLifetime = 10 * time.Minute
)

// Bounds of failed console logins: more than maxLoginFailures within
// loginFailureWindow and further attempts are refused until the window
// passes, whoever makes them (the credential is shared by the operators).
const (
	maxLoginFailures   = 10
	loginFailureWindow = time.Minute
)

// consoleSessions signs and checks the console's session cookies and CSRF
// tokens. The signing key is derived from the console credentials, so every
// revoker replica with the same credentials accepts the same cookies
// without shared state, and rotating the credential ends every session.
// The first credential signs; every one verifies (rotation).
type consoleSessions struct {
	creds    *httpx.Credentials
	keys     [][]byte // signing keys, one per credential
	lifetime time.Duration

	mu       sync.Mutex
	failures []time.Time // failed logins within loginFailureWindow
}

// newConsoleSessions checks the credentials as service credentials are
// checked (httpx.NewCredentials).
func newConsoleSessions(credentials []string, lifetime time.Duration) (*consoleSessions, error) {
	creds, err := httpx.NewCredentials(credentials...)
	if err != nil {
		return nil, fmt.Errorf("console credentials: %w", err)
	}
	cs := &consoleSessions{creds: creds, lifetime: lifetime}
	for _, c := range credentials {
		m := hmac.New(sha256.New, []byte(c))
		m.Write([]byte("jwtrevoke console session key v1"))
		cs.keys = append(cs.keys, m.Sum(nil))
	}
	return cs, nil
}

// errTooManyLogins refuses a login while failures exceed the bound.
var errTooManyLogins = errors.New("too many failed logins; try again in a minute")

// login checks presented, counting failures; it returns errTooManyLogins
// without looking at presented while the bound is exceeded.
func (cs *consoleSessions) login(presented string, now time.Time) (bool, error) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	kept := cs.failures[:0]
	for _, t := range cs.failures {
		if now.Sub(t) < loginFailureWindow {
			kept = append(kept, t)
		}
	}
	cs.failures = kept
	if len(cs.failures) >= maxLoginFailures {
		return false, errTooManyLogins
	}
	if !cs.creds.Match(presented) {
		cs.failures = append(cs.failures, now)
		return false, nil
	}
	return true, nil
}

// mac is the signature of msg under key, base64url.
func mac(key []byte, msg string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// signed is "msg.mac" under the signing key.
func (cs *consoleSessions) signed(msg string) string { return msg + "." + mac(cs.keys[0], msg) }

// verify returns the msg of "msg.mac" if one of the keys signed it.
func (cs *consoleSessions) verify(v string) (string, bool) {
	// The message never holds a "." (a version, a time, hex), so the
	// cut is unambiguous.
	msg, sig, ok := strings.Cut(v, ".")
	return msg, ok && cs.signedByAny(msg, sig)
}

// signedByAny reports, in constant time over the keys, whether sig is
// the mac of msg under one of them.
func (cs *consoleSessions) signedByAny(msg, sig string) bool {
	good := 0
	for _, k := range cs.keys {
		good |= subtle.ConstantTimeCompare([]byte(sig), []byte(mac(k, msg)))
	}
	return good == 1
}

// consoleSession is a logged-in operator's session: its random id (which
// its CSRF token is bound to) and when it ends.
type consoleSession struct {
	id      string
	expires time.Time
}

// start returns a new session's cookie value and the session.
func (cs *consoleSessions) start(now time.Time) (string, consoleSession) {
	s := consoleSession{id: randomHex(16), expires: now.Add(cs.lifetime)}
	return cs.signed("s1-" + strconv.FormatInt(s.expires.Unix(), 10) + "-" + s.id), s
}

// session returns the request's live session, if it has one.
func (cs *consoleSessions) session(r *http.Request, now time.Time) (consoleSession, bool) {
	c, err := r.Cookie(consoleCookie)
	if err != nil {
		return consoleSession{}, false
	}
	msg, ok := cs.verify(c.Value)
	if !ok {
		return consoleSession{}, false
	}
	parts := strings.Split(msg, "-")
	if len(parts) != 3 || parts[0] != "s1" {
		return consoleSession{}, false
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || !now.Before(time.Unix(exp, 0)) {
		return consoleSession{}, false
	}
	return consoleSession{id: parts[2], expires: time.Unix(exp, 0)}, true
}

// csrf is the CSRF token of a session's forms (or, for the login form, of
// the login nonce): a signature bound to it, so a token of one session is
// worth nothing in another.
func (cs *consoleSessions) csrf(purpose, id string) string {
	return mac(cs.keys[0], "csrf-"+purpose+"-"+id)
}

// checkCSRF reports whether token is the CSRF token of purpose and id
// under any key, in constant time.
func (cs *consoleSessions) checkCSRF(purpose, id, token string) bool {
	return id != "" && cs.signedByAny("csrf-"+purpose+"-"+id, token)
}

// loginNonce returns the login form's nonce from its cookie, or makes a
// new one and sets the cookie.
func (cs *consoleSessions) loginNonce(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(consoleLoginCookie); err == nil {
		if n, ok := cs.verify(c.Value); ok && len(n) == 32 {
			return n
		}
	}
	n := randomHex(16)
	setCookie(w, consoleLoginCookie, cs.signed(n), loginFormLifetime)
	return n
}

// setCookie sets a console cookie; maxAge < 0 deletes it.
func setCookie(w http.ResponseWriter, name, value string, maxAge time.Duration) {
	c := &http.Cookie{Name: name, Value: value, Path: consolePath, Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode}
	if maxAge < 0 {
		c.MaxAge, c.Value = -1, ""
	} else {
		c.MaxAge = int(maxAge / time.Second)
	}
	http.SetCookie(w, c)
}

// sameOrigin reports whether a state-changing request comes from the
// console's own pages: the browser's Sec-Fetch-Site, when it sends one,
// and Origin, when present, must name this host. This backs up the CSRF
// token; it is not a substitute for it.
func sameOrigin(r *http.Request) bool {
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" && s != "none" {
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	_, host, ok := strings.Cut(o, "://")
	return ok && strings.EqualFold(host, r.Host)
}
