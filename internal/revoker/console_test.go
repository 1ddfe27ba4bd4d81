package revoker

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jwtrevoke/jwtrevoke/internal/eventually"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
)

// testConsoleCredential is the console credential of the console tests.
const testConsoleCredential = "test-console-credential-0123456789"

func withConsole(c *Config) { c.ConsoleCredentials = []string{testConsoleCredential} }

// consoleClient is a browser without a browser: it keeps the console's
// cookies (Secure ones too: the test server is plain HTTP on loopback, as
// a browser allows for localhost) and does not follow redirects.
type consoleClient struct {
	e       *env
	cookies map[string]*http.Cookie
	origin  string // the Origin header sent with a POST ("" for none)
}

func newConsoleClient(e *env) *consoleClient {
	return &consoleClient{e: e, cookies: map[string]*http.Cookie{}, origin: e.http.URL}
}

type consoleAnswer struct {
	status int
	header http.Header
	body   string
}

func (c *consoleClient) do(t *testing.T, method, path string, form url.Values) consoleAnswer {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(testCtx(t), method, c.e.http.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if c.origin != "" {
			req.Header.Set("Origin", c.origin)
		}
	}
	for _, ck := range c.cookies {
		req.AddCookie(ck)
	}
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, ck := range resp.Cookies() {
		if ck.MaxAge < 0 {
			delete(c.cookies, ck.Name)
			continue
		}
		c.cookies[ck.Name] = ck
	}
	return consoleAnswer{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf is the CSRF token in a page's form.
func csrf(t *testing.T, page consoleAnswer) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(page.body)
	if m == nil {
		t.Fatalf("no CSRF token in the page (%d):\n%s", page.status, page.body)
	}
	return m[1]
}

// login logs c in and returns the console page's CSRF token.
func (c *consoleClient) login(t *testing.T) string {
	t.Helper()
	form := c.do(t, http.MethodGet, "/console/login", nil)
	a := c.do(t, http.MethodPost, "/console/login", url.Values{"csrf": {csrf(t, form)}, "credential": {testConsoleCredential}})
	if a.status != http.StatusSeeOther || a.header.Get("Location") != "/console" {
		t.Fatalf("login: %d %s, want 303 to /console", a.status, a.header.Get("Location"))
	}
	page := c.do(t, http.MethodGet, "/console", nil)
	if page.status != http.StatusOK {
		t.Fatalf("GET /console after login: %d", page.status)
	}
	return csrf(t, page)
}

// TestConsoleLogin: the console needs its own credential; the session
// cookie is Secure, HttpOnly and SameSite=Strict; every page carries the
// strict CSP; a wrong credential, a missing CSRF token and a cookie that
// was tampered with or signed under another credential get nowhere;
// logging out ends the session in that browser.
func TestConsoleLogin(t *testing.T) {
	e := newEnv(t, withConsole)
	c := newConsoleClient(e)

	a := c.do(t, http.MethodGet, "/console", nil)
	if a.status != http.StatusSeeOther || a.header.Get("Location") != "/console/login" {
		t.Fatalf("GET /console without a session: %d to %q, want 303 to the login page", a.status, a.header.Get("Location"))
	}
	if a := c.do(t, http.MethodGet, "/console/events", nil); a.status != http.StatusUnauthorized || !strings.Contains(a.body, `"error"`) {
		t.Fatalf("GET /console/events without a session: %d %s, want a JSON 401", a.status, a.body)
	}
	form := c.do(t, http.MethodGet, "/console/login", nil)
	if form.status != http.StatusOK {
		t.Fatalf("login page: %d", form.status)
	}
	for _, p := range []string{"script-src 'self'", "style-src 'self'", "default-src 'none'", "frame-ancestors 'none'", "form-action 'self'"} {
		if !strings.Contains(form.header.Get("Content-Security-Policy"), p) {
			t.Errorf("CSP %q lacks %q", form.header.Get("Content-Security-Policy"), p)
		}
	}
	if strings.Contains(form.header.Get("Content-Security-Policy"), "unsafe-inline") {
		t.Errorf("CSP allows inline code: %q", form.header.Get("Content-Security-Policy"))
	}
	token := csrf(t, form)

	post := func(v url.Values) consoleAnswer { return c.do(t, http.MethodPost, "/console/login", v) }
	if a := post(url.Values{"csrf": {token}, "credential": {"not-the-credential-at-all"}}); a.status != http.StatusUnauthorized ||
		!strings.Contains(a.body, "Wrong console credential") || c.cookies[consoleCookie] != nil {
		t.Fatalf("wrong credential: %d, session cookie %v", a.status, c.cookies[consoleCookie])
	}
	if a := post(url.Values{"credential": {testConsoleCredential}}); a.status != http.StatusForbidden || c.cookies[consoleCookie] != nil {
		t.Fatalf("login without CSRF token: %d, want 403 and no session", a.status)
	}
	c.origin = "https://evil.example"
	if a := post(url.Values{"csrf": {token}, "credential": {testConsoleCredential}}); a.status != http.StatusForbidden || c.cookies[consoleCookie] != nil {
		t.Fatalf("login from another origin: %d, want 403 and no session", a.status)
	}
	c.origin = e.http.URL

	c.login(t)
	ck := c.cookies[consoleCookie]
	if ck == nil || !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/console" {
		t.Fatalf("session cookie %+v: want Secure, HttpOnly, SameSite=Strict, Path=/console", ck)
	}
	if _, gone := c.cookies[consoleLoginCookie]; gone {
		t.Errorf("the login form's cookie outlives the login")
	}

	// A tampered cookie, and one signed under another credential.
	other, err := newConsoleSessions([]string{"another-console-credential-000"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	forged, _ := other.start(time.Now())
	good := ck.Value
	for name, v := range map[string]string{"tampered": good[:len(good)-2] + "AA", "other credential": forged, "empty": ""} {
		c.cookies[consoleCookie] = &http.Cookie{Name: consoleCookie, Value: v}
		if a := c.do(t, http.MethodGet, "/console", nil); a.status != http.StatusSeeOther {
			t.Errorf("%s cookie: GET /console %d, want 303 to the login page", name, a.status)
		}
	}
	c.cookies[consoleCookie] = ck

	page := c.do(t, http.MethodGet, "/console", nil)
	a = c.do(t, http.MethodPost, "/console/logout", url.Values{"csrf": {csrf(t, page)}})
	if a.status != http.StatusSeeOther || c.cookies[consoleCookie] != nil {
		t.Fatalf("logout: %d, session cookie %v", a.status, c.cookies[consoleCookie])
	}
	if a := c.do(t, http.MethodGet, "/console", nil); a.status != http.StatusSeeOther {
		t.Fatalf("GET /console after logout: %d, want 303", a.status)
	}
}

// TestConsoleLoginLimit: after ten wrong credentials within a minute,
// logins are refused (429), the right credential included.
func TestConsoleLoginLimit(t *testing.T) {
	e := newEnv(t, withConsole)
	c := newConsoleClient(e)
	token := csrf(t, c.do(t, http.MethodGet, "/console/login", nil))
	for i := range maxLoginFailures {
		if a := c.do(t, http.MethodPost, "/console/login", url.Values{"csrf": {token}, "credential": {"wrong-credential-number-" + string(rune('a'+i))}}); a.status != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d, want 401", i+1, a.status)
		}
	}
	a := c.do(t, http.MethodPost, "/console/login", url.Values{"csrf": {token}, "credential": {testConsoleCredential}})
	if a.status != http.StatusTooManyRequests || a.header.Get("Retry-After") == "" || c.cookies[consoleCookie] != nil {
		t.Fatalf("login after %d failures: %d, Retry-After %q; want 429 and no session", maxLoginFailures, a.status, a.header.Get("Retry-After"))
	}
}

// TestConsoleOff: without console credentials there is no console.
func TestConsoleOff(t *testing.T) {
	e := newEnv(t, nil)
	for _, p := range []string{"/console", "/console/login", "/console/events"} {
		if a := e.do(t, http.MethodGet, p, "", nil, nil); a.status != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, a.status)
		}
	}
}

// TestConsoleRevoke: the form revokes through the same path as the API
// (the event is in the stream, initiator "console"), only with the
// session's CSRF token from the console's own origin; a refused form
// publishes nothing. Values from clients are shown escaped.
func TestConsoleRevoke(t *testing.T) {
	e := newEnv(t, withConsole)
	c := newConsoleClient(e)
	token := c.login(t)
	revoke := func(v url.Values) consoleAnswer { return c.do(t, http.MethodPost, "/console/revoke", v) }
	form := func(tok string) url.Values {
		return url.Values{"csrf": {tok}, "type": {"session"}, "value": {"s-console"}, "reason": {`<img src=x onerror="alert(1)">`}}
	}

	// Another session's token, none, and another origin: refused.
	other := newConsoleClient(e)
	otherToken := other.login(t)
	if a := revoke(form(otherToken)); a.status != http.StatusForbidden {
		t.Fatalf("another session's CSRF token: %d, want 403", a.status)
	}
	if a := revoke(form("")); a.status != http.StatusForbidden {
		t.Fatalf("no CSRF token: %d, want 403", a.status)
	}
	c.origin = "https://evil.example"
	if a := revoke(form(token)); a.status != http.StatusForbidden {
		t.Fatalf("another origin: %d, want 403", a.status)
	}
	c.origin = e.http.URL
	if n := e.msgs(t); n != 0 {
		t.Fatalf("refused forms published %d events", n)
	}

	a := revoke(form(token))
	if a.status != http.StatusOK || !strings.Contains(a.body, "Revoked") {
		t.Fatalf("revoke: %d\n%s", a.status, a.body)
	}
	ev, seq := e.lastEvent(t, "session", "s-console")
	if ev.Initiator != "console" || ev.Reason != `<img src=x onerror="alert(1)">` || seq == 0 {
		t.Fatalf("published %+v at %d", ev, seq)
	}
	// The reason is in the recent revocations (once the console read
	// it), as text.
	eventually.True(t, 5*time.Second, "the revocation in the console's recent list", func() bool {
		p := c.do(t, http.MethodGet, "/console", nil)
		if strings.Contains(p.body, "<img src=x") {
			t.Fatalf("the reason reached the page as markup:\n%s", p.body)
		}
		return strings.Contains(p.body, `&lt;img src=x onerror=&#34;alert(1)&#34;&gt;`)
	})

	// Bad input: the page says what is wrong, nothing is published.
	before := e.msgs(t)
	bad := url.Values{"csrf": {token}, "type": {"session"}, "value": {""}}
	if a := revoke(bad); a.status != http.StatusBadRequest || !strings.Contains(a.body, "Not revoked") || !strings.Contains(a.body, "sid") {
		t.Fatalf("empty value: %d\n%s", a.status, a.body)
	}
	bad.Set("type", "everything")
	bad.Set("value", "x")
	if a := revoke(bad); a.status != http.StatusBadRequest {
		t.Fatalf("unknown type: %d", a.status)
	}
	if n := e.msgs(t); n != before {
		t.Fatalf("bad forms published %d events", n-before)
	}
}

// TestConsoleEvents: the live view sends the sections rendered, and
// follows a new replica.
func TestConsoleEvents(t *testing.T) {
	e := newEnv(t, withConsole)
	c := newConsoleClient(e)
	c.login(t)
	v := e.service(t)

	ctx, cancel := context.WithTimeout(testCtx(t), 15*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.http.URL+"/console/events", nil)
	req.AddCookie(c.cookies[consoleCookie])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "data: ") && strings.Contains(line, v.ReplicaID()) {
			return
		}
	}
	t.Fatalf("no live view named replica %s: %v", v.ReplicaID(), sc.Err())
}

// FuzzConsole: whatever the session cookie and the revoke form hold, the
// console answers without a 5xx; only the cookie it issued opens it; and
// only a well-formed form with that session's CSRF token revokes (at most
// one event published, and nothing otherwise).
func FuzzConsole(f *testing.F) {
	e := newEnv(f, withConsole)
	ctx := testCtx(f)
	cs := e.srv.console.sessions
	good, sess := cs.start(time.Now())
	token := cs.csrf("session", sess.id)
	other, _ := newConsoleSessions([]string{"another-console-credential-000"}, time.Hour)
	forged, _ := other.start(time.Now())
	valid := url.Values{"csrf": {token}, "type": {"session"}, "value": {"s-fuzz"}, "reason": {"<b>x</b>"}}
	for _, c := range []struct{ cookie, body string }{
		{good, valid.Encode()},
		{good, url.Values{"csrf": {token}, "type": {"token"}, "value": {"a.b.c"}}.Encode()},
		{good, url.Values{"csrf": {token}, "type": {"issuer"}, "value": {"https://elsewhere.example"}}.Encode()},
		{good, url.Values{"csrf": {token}, "type": {"subject"}, "value": {strings.Repeat("x", 5000)}}.Encode()},
		{good, valid.Encode() + "&csrf=" + token},
		{good, "csrf=" + token + "&type=%zz"},
		{good, "type=session&value=s"},
		{good, ""},
		{forged, valid.Encode()},
		{good[:len(good)-1], valid.Encode()},
		{"", valid.Encode()},
		{"s1-99999999999-x.AAAA", valid.Encode()},
		{"..", "\x00\xff"},
	} {
		f.Add(c.cookie, []byte(c.body))
	}
	h := e.srv.Handler()
	f.Fuzz(func(t *testing.T, cookie string, body []byte) {
		before := e.msgs(t)
		req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/console/revoke", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Cookie", consoleCookie+"="+cookie)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		status := rec.Code
		if status >= 500 {
			t.Fatalf("status %d for cookie %q, body %q: %s", status, cookie, body, rec.Body)
		}
		published := e.msgs(t) - before
		// The cookies issued are signed with a key derived from the
		// credential, so a seed's cookie (made in the fuzzing process)
		// is as good in a worker: ask the sessions whose it is.
		s, live := cs.session(req, time.Now())
		form, err := url.ParseQuery(string(body))
		wellFormed := err == nil && len(form["csrf"]) == 1 && live && cs.checkCSRF("session", s.id, form.Get("csrf"))
		switch {
		case status == http.StatusOK:
			// At most one event: a revocation the stream already
			// covers (the same session again) publishes none.
			if !wellFormed || published > 1 {
				t.Fatalf("revoked (%d published) for cookie %q, body %q", published, cookie, body)
			}
		case published != 0:
			t.Fatalf("status %d but %d published for cookie %q, body %q", status, published, cookie, body)
		case !live && status != http.StatusSeeOther && status != http.StatusBadRequest && status != http.StatusRequestEntityTooLarge:
			t.Fatalf("status %d without the session (cookie %q), want 303 to the login page (or 400 for an unreadable form)", status, cookie)
		}
	})
}

// TestConsoleWhileNATSDown: with NATS gone the console still answers at
// once, and soon marks the stream's figures unavailable and says that no
// announcement reaches it.
func TestConsoleWhileNATSDown(t *testing.T) {
	e := newEnv(t, withConsole)
	c := newConsoleClient(e)
	c.login(t)
	e.nats.Shutdown()
	eventually.True(t, 10*time.Second, "the console saying the stream's figures are unavailable", func() bool {
		start := time.Now()
		p := c.do(t, http.MethodGet, "/console", nil)
		if took := time.Since(start); p.status != http.StatusOK || took > 2*time.Second {
			t.Fatalf("GET /console with NATS down: %d in %s, want 200 within 2s", p.status, took)
		}
		return strings.Contains(p.body, "figures are unavailable") && strings.Contains(p.body, "not connected to NATS")
	})
}

// TestRecentBatch: a batch message's events become one recent row each,
// at the message's sequence, confirmed by a replica that announced it;
// the ordered consumer's redelivery of that message adds nothing.
func TestRecentBatch(t *testing.T) {
	var f recentFeed
	now := time.Now()
	evs := []events.Event{events.NewSession("b.1", "s-1", now), events.NewSession("b.2", "s-2", now), events.NewSession("b.3", "s-3", now)}
	f.add(7, evs, nil, now)
	f.add(7, evs[:1], nil, now) // redelivered
	f.applied(events.Announcement{ID: "r-1", Deciding: true, AppliedSeq: 7, Started: now.Add(-time.Hour)}, now.Add(3*time.Millisecond))
	head, rows := f.view()
	if head != 7 || len(rows) != 3 {
		t.Fatalf("head %d, %d rows, want 7 and 3", head, len(rows))
	}
	for i, r := range rows {
		if want := evs[2-i].ID; r.Seq != 7 || r.Event.ID != want || r.Confirmed["r-1"] != 3*time.Millisecond {
			t.Errorf("row %d: seq %d, event %s, confirmed %v; want 7, %s, r-1 in 3ms", i, r.Seq, r.Event.ID, r.Confirmed, want)
		}
	}
}
