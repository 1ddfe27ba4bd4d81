package hydra

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
)

// ui is the login, consent and logout app Hydra redirects the browser to. It
// accepts every challenge through Hydra's admin API: the login with the
// subject given as login_hint (or the remembered one), the consent with every
// requested scope and the login session id as access token claim "sid", the
// logout as asked.
type ui struct {
	url string
	h   *Hydra

	mu       sync.Mutex
	consents map[string]consentSeen // by consent_challenge
}

type consentSeen struct {
	Subject        string
	LoginSessionID string
}

func startUI(t testing.TB, h *Hydra) *ui {
	u := &ui{h: h, consents: map[string]consentSeen{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", u.login)
	mux.HandleFunc("GET /consent", u.consent)
	mux.HandleFunc("GET /logout", u.logout)
	mux.HandleFunc("GET /callback", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "callback") })
	mux.HandleFunc("GET /logged-out", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "logged out") })
	mux.HandleFunc("GET /error", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "hydra error: "+r.URL.RawQuery, http.StatusBadGateway)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	u.url = srv.URL
	return u
}

func (u *ui) login(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ch := r.URL.Query().Get("login_challenge")
	var req struct {
		Skip        bool   `json:"skip"`
		Subject     string `json:"subject"`
		OIDCContext struct {
			LoginHint string `json:"login_hint"`
		} `json:"oidc_context"`
	}
	if err := u.h.getJSON(ctx, u.h.adminURL+"/admin/oauth2/auth/requests/login?login_challenge="+url.QueryEscape(ch), &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	subject := req.OIDCContext.LoginHint
	if req.Skip {
		subject = req.Subject // Hydra insists on the remembered subject
	}
	if subject == "" {
		http.Error(w, "login: no login_hint to take the subject from", http.StatusBadRequest)
		return
	}
	u.accept(ctx, w, "/admin/oauth2/auth/requests/login/accept?login_challenge="+url.QueryEscape(ch), map[string]any{
		"subject":  subject,
		"remember": true, // a login session that id_token_hint logout can find
	})
}

func (u *ui) consent(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ch := r.URL.Query().Get("consent_challenge")
	var req struct {
		Subject        string   `json:"subject"`
		LoginSessionID string   `json:"login_session_id"`
		Scope          []string `json:"requested_scope"`
		Audience       []string `json:"requested_access_token_audience"`
	}
	if err := u.h.getJSON(ctx, u.h.adminURL+"/admin/oauth2/auth/requests/consent?consent_challenge="+url.QueryEscape(ch), &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	if req.LoginSessionID == "" {
		http.Error(w, "consent: request has no login_session_id", http.StatusBadGateway)
		return
	}
	u.mu.Lock()
	u.consents[ch] = consentSeen{Subject: req.Subject, LoginSessionID: req.LoginSessionID}
	u.mu.Unlock()
	u.accept(ctx, w, "/admin/oauth2/auth/requests/consent/accept?consent_challenge="+url.QueryEscape(ch), map[string]any{
		"grant_scope":                 req.Scope,
		"grant_access_token_audience": req.Audience,
		"remember":                    false,
		"session": map[string]any{
			"access_token": map[string]any{"sid": req.LoginSessionID},
			"id_token":     map[string]any{},
		},
	})
}

func (u *ui) logout(w http.ResponseWriter, r *http.Request) {
	ch := r.URL.Query().Get("logout_challenge")
	u.accept(r.Context(), w, "/admin/oauth2/auth/requests/logout/accept?logout_challenge="+url.QueryEscape(ch), nil)
}

// accept PUTs body to an admin accept endpoint and redirects the browser to
// the redirect_to Hydra answers with.
func (u *ui) accept(ctx context.Context, w http.ResponseWriter, path string, body any) {
	var out struct {
		RedirectTo string `json:"redirect_to"`
	}
	if err := u.h.adminJSON(ctx, http.MethodPut, path, body, &out); err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	if out.RedirectTo == "" {
		http.Error(w, path+": no redirect_to", http.StatusBadGateway)
		return
	}
	w.Header().Set("Location", out.RedirectTo)
	w.WriteHeader(http.StatusFound)
}

func (u *ui) consentFor(challenge string) (consentSeen, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	c, ok := u.consents[challenge]
	return c, ok
}
