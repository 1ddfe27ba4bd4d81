// Package authz is jwtrevoke's local authorizer (cmd/verifierd): the
// embedded verifier answering a proxy's question "may this request pass?"
// for services in any language. Over HTTP it is forward-auth for nginx
// auth_request, Traefik forwardAuth, Envoy's HTTP ext_authz and the Gateway
// API ExternalAuth filter; over gRPC it is Envoy's ext_authz
// (envoy.service.auth.v3.Authorization/Check; see [Authorizer.Check]).
//
// Both answer from one decision ([Authorizer.Decide]): the token is read
// from the forwarded Authorization header, or a configured cookie, and
// verified as a Go service verifies it (signature, claims, the revocation
// state fed by the stream; no network call). A request let through gets
// the identity as headers the proxy copies upstream; one refused gets the
// answer [verifier.Refuse] gives, with one difference: over HTTP the only
// statuses are 200, 401 and 503, since nginx's auth_request turns any other
// into a bare 500 — a malformed Authorization header is a 401 here.
package authz

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/jwtrevoke/jwtrevoke/internal/httpx"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier"
)

// CheckPath is the forward-auth endpoint; any method, and any path below
// it (Envoy appends the original path to its path_prefix).
const CheckPath = "/v1/check"

// Verifier is what the authorizer asks: a *verifier.Verifier.
type Verifier interface {
	Verify(ctx context.Context, raw string) (*verifier.Claims, error)
}

// Headers names the identity headers of a request let through. An empty
// name leaves that header out.
type Headers struct {
	// Subject carries sub; default X-Auth-Subject.
	Subject string
	// Session carries the session id (sid, or the provider's session
	// claim); default X-Auth-Session. Absent when the token has none.
	Session string
	// TokenID carries the token id (jti, or the provider's); default
	// X-Auth-Token-Id.
	TokenID string
	// Issuer carries iss; default X-Auth-Issuer.
	Issuer string
	// Claims carries the token's whole claims set, its JSON in base64url
	// without padding (the token's own payload segment); default
	// X-Auth-Claims.
	Claims string
}

// DefaultHeaders are the identity headers' default names.
func DefaultHeaders() Headers {
	return Headers{Subject: "X-Auth-Subject", Session: "X-Auth-Session", TokenID: "X-Auth-Token-Id",
		Issuer: "X-Auth-Issuer", Claims: "X-Auth-Claims"}
}

// Names returns the names in use, canonical, in a fixed order.
func (h Headers) Names() []string {
	var out []string
	for _, n := range []string{h.Subject, h.Session, h.TokenID, h.Issuer, h.Claims} {
		if n != "" {
			out = append(out, http.CanonicalHeaderKey(n))
		}
	}
	return out
}

// Config configures an [Authorizer].
type Config struct {
	// Verifier decides. Required.
	Verifier Verifier
	// Cookie, if set, names a cookie the token may come in when the
	// request has no Authorization header.
	Cookie string
	// Realm is the WWW-Authenticate realm; default "jwtrevoke".
	Realm string
	// Headers names the identity headers; the zero value means
	// DefaultHeaders.
	Headers Headers
	// RetryAfter is the Retry-After of a 503, in seconds; default 1.
	RetryAfter int
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// Authorizer answers forward-auth and ext_authz checks. Safe for
// concurrent use.
type Authorizer struct {
	cfg        Config
	names      []string // every identity header name, canonical
	retryAfter string
}

// New validates cfg and returns an Authorizer.
func New(cfg Config) (*Authorizer, error) {
	if cfg.Verifier == nil {
		return nil, errors.New("authz: config: Verifier is required")
	}
	if cfg.Realm == "" {
		cfg.Realm = "jwtrevoke"
	}
	if strings.ContainsAny(cfg.Realm, "\"\\") || !httpguts.ValidHeaderFieldValue(cfg.Realm) {
		return nil, fmt.Errorf("authz: config: realm %q cannot be sent in WWW-Authenticate", cfg.Realm)
	}
	if cfg.Headers == (Headers{}) {
		cfg.Headers = DefaultHeaders()
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = 1
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	names := cfg.Headers.Names()
	if len(names) == 0 {
		return nil, errors.New("authz: config: every identity header is disabled: name at least one")
	}
	seen := map[string]bool{}
	for _, n := range names {
		switch {
		case !httpguts.ValidHeaderFieldName(n):
			return nil, fmt.Errorf("authz: config: %q is not a header name", n)
		case seen[n]:
			return nil, fmt.Errorf("authz: config: header %s is named twice", n)
		case reserved[n]:
			return nil, fmt.Errorf("authz: config: header %s cannot carry the identity (the proxy or HTTP owns it)", n)
		}
		seen[n] = true
	}
	return &Authorizer{cfg: cfg, names: names, retryAfter: strconv.Itoa(cfg.RetryAfter)}, nil
}

// reserved are headers an identity header must not be: HTTP's own, the
// credential, and what proxies set.
var reserved = map[string]bool{
	"Authorization": true, "Cookie": true, "Set-Cookie": true, "Host": true, "Content-Length": true,
	"Content-Type": true, "Connection": true, "Transfer-Encoding": true, "Te": true, "Upgrade": true,
	"Keep-Alive": true, "Proxy-Authorization": true, "Proxy-Authenticate": true, "Www-Authenticate": true,
	"Retry-After": true, "Trailer": true, "Forwarded": true, "X-Forwarded-For": true,
	"X-Forwarded-Host": true, "X-Forwarded-Proto": true, "X-Forwarded-Uri": true, "X-Forwarded-Method": true,
	"X-Original-Uri": true, "X-Original-Method": true,
}

// IdentityHeaders returns the names of every identity header the
// authorizer may set, canonical: what a proxy must strip from the client's
// request.
func (a *Authorizer) IdentityHeaders() []string { return append([]string(nil), a.names...) }

// Decision is the answer to one check.
type Decision struct {
	// Allowed: the request may pass, with Identity upstream.
	Allowed bool
	// Identity holds a value for every identity header name
	// ([Authorizer.IdentityHeaders]); "" means the header must be
	// removed (the token has no such claim). Only when Allowed.
	Identity map[string]string
	// Refusal is the answer otherwise: Status 401 or 503.
	Refusal verifier.Refusal
	// RetryAfter is the Retry-After value of a 503, in seconds.
	RetryAfter string
}

// Decide verifies the token of a request with header h (the forwarded
// client request's header).
func (a *Authorizer) Decide(ctx context.Context, h http.Header) Decision {
	raw, err := httpx.BearerToken(&http.Request{Header: h}, a.cfg.Cookie)
	var c *verifier.Claims
	if err == nil {
		c, err = a.cfg.Verifier.Verify(ctx, raw)
	}
	if err != nil {
		ref := verifier.Refuse(a.cfg.Realm, err)
		if ref.Status == http.StatusBadRequest {
			// nginx's auth_request makes a 400 a bare 500: a credential
			// that cannot be read is refused like a bad one.
			ref.Status = http.StatusUnauthorized
		}
		return Decision{Refusal: ref, RetryAfter: a.retryAfter}
	}
	_, payload, _ := strings.Cut(raw, ".")
	payload, _, _ = strings.Cut(payload, ".")
	hs := a.cfg.Headers
	id := make(map[string]string, len(a.names))
	for _, kv := range [...][2]string{
		{hs.Subject, c.Subject}, {hs.Session, c.SessionID}, {hs.TokenID, c.ID}, {hs.Issuer, c.Issuer}, {hs.Claims, payload},
	} {
		if kv[0] != "" {
			id[http.CanonicalHeaderKey(kv[0])] = kv[1]
		}
	}
	return Decision{Allowed: true, Identity: id}
}

// ServeHTTP answers a forward-auth check: 200 with every identity header,
// 401 with WWW-Authenticate, or 503 with Retry-After; a JSON body
// {"error","error_description"} with the last two. Only the request's
// header is read; the original method and URI a proxy forwards
// (X-Original-Method, X-Original-URI, X-Forwarded-*) do not change the
// decision: every request needs a valid token.
func (a *Authorizer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d := a.decideRequest(r)
	if d.Allowed {
		// Every identity header, empty when the token has no such claim:
		// a proxy that copies them upstream (Traefik's
		// authResponseHeaders, Envoy's allowed_upstream_headers) then
		// replaces a client's header of that name instead of passing it.
		for n, v := range d.Identity {
			w.Header()[n] = []string{v}
		}
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		return
	}
	if d.Refusal.Challenge != "" {
		w.Header().Set("WWW-Authenticate", d.Refusal.Challenge)
	} else {
		w.Header().Set("Retry-After", d.RetryAfter)
	}
	httpx.WriteError(w, d.Refusal.Status, d.Refusal.Error, d.Refusal.Description)
}

// decideRequest is Decide for a forward-auth request, refusing one whose
// header is over httpx.MaxHeaderBytes (a 401: the token is not read).
func (a *Authorizer) decideRequest(r *http.Request) Decision {
	if httpx.HeaderSize(r) > httpx.MaxHeaderBytes {
		d := fmt.Sprintf("request header larger than %d bytes", httpx.MaxHeaderBytes)
		return Decision{Refusal: verifier.Refusal{Status: http.StatusUnauthorized, Error: "invalid_request", Description: d,
			Challenge: `Bearer realm="` + a.cfg.Realm + `", error="invalid_request", error_description="` + d + `"`}}
	}
	return a.Decide(r.Context(), r.Header)
}

// Handler serves [CheckPath] (any method, any path below it) with the
// authorizer and everything else with other, behind httpx.LimitHeader.
// Serve it with httpx.ListenBare, so that an oversized header on the check
// path gets its 401, not a 431.
func (a *Authorizer) Handler(other http.Handler) http.Handler {
	rest := httpx.LimitHeader(other)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// By the raw path, uncleaned: the proxy appends the client's
		// path, which may hold anything; ServeMux would redirect it.
		if p := r.URL.Path; p == CheckPath || strings.HasPrefix(p, CheckPath+"/") {
			a.ServeHTTP(w, r)
			return
		}
		rest.ServeHTTP(w, r)
	})
}
