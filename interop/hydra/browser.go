package hydra

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Browser is a user agent with its own cookie jar: Hydra's login session and
// CSRF cookies live here, so a Logout must use the Browser of its Login.
type Browser struct {
	h *Hydra
	c *http.Client
}

// Tokens is what a Login got from the token endpoint, and the login session.
type Tokens struct {
	AccessToken  string
	IDToken      string
	RefreshToken string
	ExpiresIn    int
	Scope        string
	Subject      string
	// SessionID is the consent request's login_session_id: the "sid" of the
	// ID token, the access token and the back-channel logout token.
	SessionID string
	// Browser is the user agent that logged in, for Logout or a second login
	// in the same session.
	Browser *Browser
}

// NewBrowser returns a user agent with an empty cookie jar.
func (h *Hydra) NewBrowser(t testing.TB) *Browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &Browser{h: h, c: &http.Client{
		Jar:     jar,
		Timeout: 30 * time.Second,
		// Redirects are followed by navigate, which needs to see each hop.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// Login runs the authorization code flow for subject in a new Browser.
func (h *Hydra) Login(t testing.TB, c Client, subject string) Tokens {
	t.Helper()
	return h.NewBrowser(t).Login(t, c, subject)
}

// Logout runs RP-initiated logout in the Browser that logged in.
func (h *Hydra) Logout(t testing.TB, c Client, tok Tokens) {
	t.Helper()
	if tok.Browser == nil {
		t.Fatal("logout: tokens carry no Browser (not from Login?)")
	}
	tok.Browser.Logout(t, c, tok)
}

// Login runs the authorization code flow (scopes openid and offline) with the
// UI accepting login (remember=true) and consent, and redeems the code.
func (b *Browser) Login(t testing.TB, c Client, subject string) Tokens {
	t.Helper()
	ctx := context.Background()
	state, nonce := randomHex(t, 16), randomHex(t, 16)
	q := url.Values{
		"client_id":     {c.ID},
		"response_type": {"code"},
		"scope":         {"openid offline"},
		"redirect_uri":  {c.RedirectURI},
		"state":         {state},
		"nonce":         {nonce},
		"login_hint":    {subject},
	}
	if len(c.Audience) > 0 {
		q.Set("audience", strings.Join(c.Audience, " "))
	}
	final, hops, err := b.navigate(ctx, b.h.publicURL+"/oauth2/auth?"+q.Encode(), c.RedirectURI)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	fq := final.Query()
	if e := fq.Get("error"); e != "" {
		t.Fatalf("login: redirected with error %s: %s (%s)", e, fq.Get("error_description"), fq.Get("error_hint"))
	}
	if fq.Get("state") != state {
		t.Fatalf("login: state %q came back as %q", state, fq.Get("state"))
	}
	code := fq.Get("code")
	if code == "" {
		t.Fatalf("login: no code in %s", final)
	}

	var seen consentSeen
	var found bool
	for _, hop := range hops {
		if ch := hop.Query().Get("consent_challenge"); ch != "" && strings.HasPrefix(hop.String(), b.h.ui.url) {
			seen, found = b.h.ui.consentFor(ch)
		}
	}
	if !found {
		t.Fatalf("login: the flow never reached the consent UI: %v", hops)
	}

	tok, err := b.h.token(ctx, c, url.Values{
		"grant_type":   {"authorization_code"},
		"code":         {code},
		"redirect_uri": {c.RedirectURI},
	})
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	tok.Subject, tok.SessionID, tok.Browser = seen.Subject, seen.LoginSessionID, b
	return tok
}

// Logout is RP-initiated logout as a browser does it: GET
// /oauth2/sessions/logout with id_token_hint and post_logout_redirect_uri,
// through the logout UI (which accepts), back to Hydra (which is when it
// sends the back-channel logout tokens) and on to the post-logout redirect.
// It returns when the browser reaches that redirect; Hydra delivers the
// back-channel logout tokens asynchronously.
func (b *Browser) Logout(t testing.TB, c Client, tok Tokens) {
	t.Helper()
	state := randomHex(t, 16)
	q := url.Values{
		"id_token_hint":            {tok.IDToken},
		"post_logout_redirect_uri": {c.PostLogoutRedirectURI},
		"state":                    {state},
	}
	final, hops, err := b.navigate(context.Background(), b.h.publicURL+"/oauth2/sessions/logout?"+q.Encode(), c.PostLogoutRedirectURI)
	if err != nil {
		t.Fatalf("logout: %v", err)
	}
	if final.Query().Get("state") != state {
		t.Fatalf("logout: ended at %s without our state", final)
	}
	var sawUI bool
	for _, hop := range hops {
		if strings.HasPrefix(hop.String(), b.h.ui.url+"/logout?") {
			sawUI = true
		}
	}
	if !sawUI {
		// Hydra skips the UI (and the back-channel) when it finds no session.
		t.Fatalf("logout: Hydra went to the post-logout redirect without the logout UI (no login session for sid %s?): %v", tok.SessionID, hops)
	}
}

// Refresh redeems a refresh token; a refusal by Hydra is an error, not a
// test failure, so that tests can expect one. Subject, SessionID and Browser
// are not set in the result.
func (h *Hydra) Refresh(c Client, refreshToken string) (Tokens, error) {
	return h.token(context.Background(), c, url.Values{
		"grant_type":    {"refresh_token"},
		"refresh_token": {refreshToken},
	})
}

// navigate GETs start and follows redirects until one points at stop (which
// is not fetched) and returns that URL and every URL visited before it.
func (b *Browser) navigate(ctx context.Context, start, stop string) (*url.URL, []*url.URL, error) {
	next, err := url.Parse(start)
	if err != nil {
		return nil, nil, err
	}
	var hops []*url.URL
	for range 20 {
		if strings.HasPrefix(next.String(), stop) {
			return next, hops, nil
		}
		hops = append(hops, next)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, next.String(), nil)
		if err != nil {
			return nil, hops, err
		}
		res, err := b.c.Do(req)
		if err != nil {
			return nil, hops, err
		}
		body, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
		res.Body.Close()
		if res.StatusCode < 300 || res.StatusCode > 399 {
			return nil, hops, fmt.Errorf("GET %s: %s, not a redirect towards %s: %s", next, res.Status, stop, strings.TrimSpace(string(body)))
		}
		loc, err := res.Location()
		if err != nil {
			return nil, hops, fmt.Errorf("GET %s: %s without Location: %w", next, res.Status, err)
		}
		next = loc
	}
	return nil, hops, fmt.Errorf("more than 20 redirects from %s", start)
}

// token posts a grant to the token endpoint with client_secret_basic.
func (h *Hydra) token(ctx context.Context, c Client, form url.Values) (Tokens, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.TokenURL(), strings.NewReader(form.Encode()))
	if err != nil {
		return Tokens{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	// RFC 6749 2.3.1: form-encode the credentials before Basic.
	req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	res, err := h.http.Do(req)
	if err != nil {
		return Tokens{}, err
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode != http.StatusOK {
		return Tokens{}, fmt.Errorf("token endpoint (%s): %s: %s", form.Get("grant_type"), res.Status, strings.TrimSpace(string(raw)))
	}
	var out struct {
		AccessToken  string `json:"access_token"`
		IDToken      string `json:"id_token"`
		RefreshToken string `json:"refresh_token"`
		ExpiresIn    int    `json:"expires_in"`
		Scope        string `json:"scope"`
		TokenType    string `json:"token_type"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return Tokens{}, fmt.Errorf("token endpoint: decoding %q: %w", raw, err)
	}
	if out.AccessToken == "" || !strings.EqualFold(out.TokenType, "bearer") {
		return Tokens{}, fmt.Errorf("token endpoint: no bearer access token in %q", raw)
	}
	return Tokens{
		AccessToken:  out.AccessToken,
		IDToken:      out.IDToken,
		RefreshToken: out.RefreshToken,
		ExpiresIn:    out.ExpiresIn,
		Scope:        out.Scope,
	}, nil
}
