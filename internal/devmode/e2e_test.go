package devmode_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jwtrevoke/jwtrevoke/internal/devmode"
	"github.com/jwtrevoke/jwtrevoke/internal/eventually"
	"github.com/jwtrevoke/jwtrevoke/internal/redistest"
)

// startSystem runs dev mode on free ports with n example replicas.
func startSystem(t *testing.T, redisAddr string, n int) *devmode.System {
	t.Helper()
	addrs := make([]string, n)
	for i := range addrs {
		addrs[i] = "127.0.0.1:0"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sys, err := devmode.Start(ctx, devmode.Config{
		IssuerAddr: "127.0.0.1:0", RevokerAddr: "127.0.0.1:0", ExampleAddrs: addrs,
		RedisAddr: redisAddr, DataDir: t.TempDir(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatalf("devmode.Start: %v", err)
	}
	t.Cleanup(func() {
		sys.Close()
		if err := sys.Err(); err != nil {
			t.Errorf("a service stopped with an error: %v", err)
		}
	})
	return sys
}

type client struct {
	t   *testing.T
	sys *devmode.System
	hc  *http.Client
}

type tokens struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	SessionID    string `json:"session_id"`
	Error        string `json:"error"`
}

func (c *client) do(method, u, contentType, body, bearer string) (int, http.Header, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func (c *client) login(user string) tokens {
	c.t.Helper()
	status, _, body := c.do("POST", c.sys.IssuerURL+"/v1/login", "application/json", `{"username":"`+user+`","password":"demo"}`, "")
	var tk tokens
	if err := json.Unmarshal(body, &tk); err != nil || status != 200 || tk.AccessToken == "" || tk.RefreshToken == "" || tk.TokenType != "Bearer" {
		c.t.Fatalf("login %s: %d %s", user, status, body)
	}
	return tk
}

func (c *client) refresh(rt string) (int, tokens) {
	c.t.Helper()
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}.Encode()
	status, _, body := c.do("POST", c.sys.IssuerURL+"/oauth2/token", "application/x-www-form-urlencoded", form, "")
	var tk tokens
	_ = json.Unmarshal(body, &tk)
	return status, tk
}

// me calls GET /v1/me on replica i.
func (c *client) me(i int, at string) (int, string) {
	c.t.Helper()
	status, h, _ := c.do("GET", c.sys.ExampleURLs[i]+"/v1/me", "", "", at)
	return status, h.Get("WWW-Authenticate")
}

// everywhere waits until every replica answers want for at.
func (c *client) everywhere(at string, want int, why string) {
	c.t.Helper()
	for i := range c.sys.ExampleURLs {
		var authn string
		eventually.True(c.t, 5*time.Second, fmt.Sprintf("replica %d answering %d (%s)", i, want, why), func() bool {
			var status int
			status, authn = c.me(i, at)
			return status == want
		})
		if want == 401 && why != "" && !strings.Contains(authn, why) {
			c.t.Fatalf("replica %d: 401 with %q, want reason %s", i, authn, why)
		}
	}
}

// TestLogoutEndToEnd walks the whole story over HTTP through the issuer,
// the revoker, JetStream, a real redis-server and three example replicas.
func TestLogoutEndToEnd(t *testing.T) {
	rs := redistest.Run(t)
	sys := startSystem(t, rs.Addr(), 3)
	c := &client{t: t, sys: sys, hc: &http.Client{Timeout: 10 * time.Second}}

	a := c.login("alice")
	c.everywhere(a.AccessToken, 200, "")

	// Logout: that session's access token is refused on every replica.
	if status, _, body := c.do("POST", sys.IssuerURL+"/v1/logout", "", "", a.AccessToken); status != 204 {
		t.Fatalf("logout: %d %s", status, body)
	}
	c.everywhere(a.AccessToken, 401, "revoked_session")
	if status, tk := c.refresh(a.RefreshToken); status != 400 || tk.Error != "invalid_grant" {
		t.Fatalf("refresh after logout: %d %+v, want 400 invalid_grant", status, tk)
	}

	// Other sessions of alice are untouched.
	b, d := c.login("alice"), c.login("alice")
	c.everywhere(b.AccessToken, 200, "")
	status, b2 := c.refresh(b.RefreshToken)
	if status != 200 || b2.AccessToken == "" || b2.SessionID != b.SessionID {
		t.Fatalf("refresh of a live session: %d %+v", status, b2)
	}
	c.everywhere(b2.AccessToken, 200, "")

	// Log out everywhere: every session's access and refresh tokens die.
	if status, _, body := c.do("POST", sys.IssuerURL+"/v1/logout/all", "", "", b2.AccessToken); status != 204 {
		t.Fatalf("logout/all: %d %s", status, body)
	}
	for _, at := range []string{b.AccessToken, b2.AccessToken, d.AccessToken} {
		c.everywhere(at, 401, "revoked_subject")
	}
	for _, rt := range []string{b2.RefreshToken, d.RefreshToken} {
		if status, tk := c.refresh(rt); status != 400 || tk.Error != "invalid_grant" {
			t.Fatalf("refresh after logout/all: %d %+v", status, tk)
		}
	}

	// Logging in again right after works, in the same second too.
	again := c.login("alice")
	c.everywhere(again.AccessToken, 200, "")
	// bob was never logged out.
	c.everywhere(c.login("bob").AccessToken, 200, "")
}

// TestLogoutWaitEnforced: a logout with ?wait=enforced answers once every
// replica of the system (three example services and verifierd) enforces
// it: each refuses the token the moment the answer arrives, with no
// waiting on the caller's side. The same for logout everywhere and RFC
// 7009 revocation.
func TestLogoutWaitEnforced(t *testing.T) {
	sys := startSystem(t, "", 3)
	c := &client{t: t, sys: sys, hc: &http.Client{Timeout: 10 * time.Second}}
	refusedNow := func(at, why string) {
		t.Helper()
		for i := range sys.ExampleURLs {
			if status, authn := c.me(i, at); status != 401 || !strings.Contains(authn, why) {
				t.Errorf("replica %d right after the answer: %d %q, want 401 %s", i, status, authn, why)
			}
		}
		status, h, _ := c.do("GET", sys.AuthorizerURL+"/v1/check", "", "", at)
		if status != 401 || !strings.Contains(h.Get("WWW-Authenticate"), why) {
			t.Errorf("verifierd right after the answer: %d %q", status, h.Get("WWW-Authenticate"))
		}
	}
	enforced := func(what string, status int, body []byte) {
		t.Helper()
		var b struct {
			Enforcement struct {
				Complete  bool
				Replicas  int
				Confirmed int
				TookMs    int64 `json:"took_ms"`
			}
		}
		if err := json.Unmarshal(body, &b); err != nil || status != 200 {
			t.Fatalf("%s: %d %s", what, status, body)
		}
		// Three example services and verifierd.
		if e := b.Enforcement; !e.Complete || e.Replicas != 4 || e.Confirmed != 4 {
			t.Fatalf("%s: enforcement %+v, want complete", what, e)
		}
		t.Logf("%s: enforced on %d replicas in %d ms", what, b.Enforcement.Replicas, b.Enforcement.TookMs)
	}
	eventually.True(t, 10*time.Second, "four replicas announced", func() bool {
		_, _, body := c.do("GET", sys.RevokerURL+"/v1/replicas", "", "", devmode.ServiceCredential)
		var r struct{ Replicas []struct{ Deciding bool } }
		return json.Unmarshal(body, &r) == nil && len(r.Replicas) == 4 && r.Replicas[3].Deciding
	})

	a := c.login("alice")
	status, _, body := c.do("POST", sys.IssuerURL+"/v1/logout?wait=enforced", "", "", a.AccessToken)
	enforced("logout", status, body)
	refusedNow(a.AccessToken, "revoked_session")

	b := c.login("alice")
	status, _, body = c.do("POST", sys.IssuerURL+"/v1/logout/all?wait=enforced&timeout=5s", "", "", b.AccessToken)
	enforced("logout/all", status, body)
	refusedNow(b.AccessToken, "revoked_subject")

	d := c.login("bob")
	status, _, body = c.do("POST", sys.IssuerURL+"/oauth2/revoke?wait=enforced", "application/x-www-form-urlencoded",
		url.Values{"token": {d.AccessToken}}.Encode(), "")
	enforced("oauth2/revoke", status, body)
	refusedNow(d.AccessToken, "revoked_token")

	if status, _, body := c.do("POST", sys.IssuerURL+"/v1/logout?wait=soon", "", "", c.login("bob").AccessToken); status != 400 {
		t.Errorf("a bad wait: %d %s, want 400", status, body)
	}
}

// TestDevModeDefaults runs dev mode as `make run` does (in-process Redis)
// and checks the quick start's first steps.
func TestDevModeDefaults(t *testing.T) {
	sys := startSystem(t, "", 1)
	c := &client{t: t, sys: sys, hc: &http.Client{Timeout: 10 * time.Second}}
	// The precomputed demo hashes are of the documented password.
	c.login("bob")
	if status, _, _ := c.do("POST", sys.IssuerURL+"/v1/login", "application/json", `{"username":"alice","password":"wrong"}`, ""); status != 401 {
		t.Fatalf("wrong password: %d, want 401", status)
	}
	a := c.login("alice")
	c.everywhere(a.AccessToken, 200, "")
	if status, _, _ := c.do("POST", sys.IssuerURL+"/v1/logout", "", "", a.AccessToken); status != 204 {
		t.Fatalf("logout: %d", status)
	}
	c.everywhere(a.AccessToken, 401, "revoked_session")
	status, _, body := c.do("POST", sys.RevokerURL+"/v1/revocations", "application/json", `{"type":"subject","sub":"bob"}`, devmode.ServiceCredential)
	if status != 201 || !strings.Contains(string(body), `"seq"`) {
		t.Fatalf("revoker: %d %s", status, body)
	}
}
