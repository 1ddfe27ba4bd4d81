package revoker

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/jwtrevoke/jwtrevoke/internal/httpx"
	"github.com/jwtrevoke/jwtrevoke/internal/providers"
	"github.com/jwtrevoke/jwtrevoke/internal/store"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier"
)

// Provider is an outside identity provider whose logout signals the revoker
// takes (docs/providers.md): its back-channel logout tokens at
// POST /v1/providers/{Name}/backchannel-logout and its Security Event
// Tokens at POST /v1/providers/{Name}/events.
type Provider struct {
	// Name is the {name} of its endpoints, its metrics label and the
	// initiator of its revocations ("provider:" + Name); see
	// providers.ValidName. Required, unique.
	Name string
	// Issuer is its issuer identifier, exactly as its tokens' iss: an
	// issuer revocation ({"type":"issuer"}) must name this revoker's
	// issuer or a provider's. Required.
	Issuer string
	// Keys verifies its signatures; the checkers below use it. Required
	// with either of them.
	// [Server.Run] runs it when it has background work (a JWKS, a
	// Discovery).
	Keys verifier.KeySource
	// Logout checks its back-channel logout tokens; nil: the endpoint
	// answers 404 for this provider.
	Logout *verifier.LogoutChecker
	// LogoutBySubject makes a logout token that names a sub log that
	// subject out of the provider even when it names a session too. For
	// providers whose access tokens carry no session id (Auth0, Zitadel,
	// Dex): a session revocation would match none of their tokens.
	// Default false: a sid revokes that session only.
	LogoutBySubject bool
	// Events checks the SETs of its Shared Signals stream; nil: neither
	// pushed nor polled. They are taken pushed (RFC 8935) when
	// EventsCredentials lists the bearer credentials the transmitter
	// pushes with (else the push endpoint answers 404 for this provider),
	// and polled with Poll.
	Events            *verifier.SETChecker
	EventsCredentials []string
	// Poll, when set, makes the revoker poll the stream for SETs
	// (RFC 8936) besides taking them pushed; it needs Events.
	Poll *Poll

	events *httpx.Credentials // from EventsCredentials
}

// Outcomes of a provider's signal, the "outcome" attribute of
// jwtrevoke.revoker.provider.signals.
const (
	signalAccepted    = "accepted"    // recorded (or a retry of a recorded one): 200
	signalRefused     = "refused"     // invalid: 400, nothing recorded
	signalReplay      = "replay"      // a jti accepted before for another logout: 400
	signalUnavailable = "unavailable" // keys or Redis unavailable: 503, nothing recorded
)

// reasonBackchannel is the reason of every revocation a back-channel logout
// token causes.
const reasonBackchannel = "backchannel_logout"

// handleBackchannel takes an OpenID Connect Back-Channel Logout 1.0 request:
// a form with logout_token. It answers 200 with Cache-Control: no-store
// once the logout is recorded (the outbox delivers it if the publish
// fails), 400 with a JSON error for an invalid token, 503 only when nothing
// could be recorded. The provider retries a failed delivery with the
// identical token, so a retry of a recorded logout gets 200 again.
func (s *Server) handleBackchannel(w http.ResponseWriter, r *http.Request) {
	p, ok := s.providers[r.PathValue("name")]
	if !ok || p.Logout == nil {
		httpx.Fail(w, s.cfg.Logger, httpx.Errorf(http.StatusNotFound, "not_found", "no provider of that name takes back-channel logout here"))
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), s.cfg.Timeout)
	defer cancel()
	res, reason, err := s.backchannel(ctx, w, r, p)
	outcome := signalAccepted
	if err != nil {
		var he *httpx.Error
		switch {
		case errors.As(err, &he) && he.Status == http.StatusServiceUnavailable:
			outcome = signalUnavailable
		case reason == signalReplay:
			outcome = signalReplay
		default:
			outcome = signalRefused
		}
	}
	s.metrics.signal(ctx, p.Name, "backchannel_logout", outcome, reason)
	if err != nil {
		if outcome != signalRefused {
			s.cfg.Logger.Warn("revoker: back-channel logout not taken", "provider", p.Name, "outcome", outcome, "err", err)
		} else {
			s.cfg.Logger.Info("revoker: back-channel logout refused", "provider", p.Name, "reason", reason, "err", err)
		}
		httpx.Fail(w, s.cfg.Logger, err)
		return
	}
	s.cfg.Logger.Info("revoker: back-channel logout", "provider", p.Name, "id", res.ID, "seq", res.Seq)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// backchannel checks the logout token of r and records its logout under the
// token's jti. reason is the verifier's reason code of a refusal, or
// signalReplay.
func (s *Server) backchannel(ctx context.Context, w http.ResponseWriter, r *http.Request, p *Provider) (Result, string, error) {
	form, err := httpx.ParseForm(w, r, s.cfg.MaxBody)
	if err != nil {
		return Result{}, "malformed", err
	}
	raw := form.Get("logout_token")
	if raw == "" {
		return Result{}, "malformed", httpx.BadRequest(`"logout_token" is required`)
	}
	lt, err := p.Logout.Check(ctx, raw)
	if errors.Is(err, verifier.ErrUnavailable) {
		return Result{}, verifier.Reason(err), notRecorded("the provider's keys (JWKS)")
	}
	if err != nil {
		return Result{}, verifier.Reason(err), httpx.BadRequest("the logout token is refused: %s", err)
	}
	now := s.cfg.Now()
	sp := spec{iss: lt.Issuer, reason: reasonBackchannel, initiator: "provider:" + p.Name}
	if lt.SessionID != "" && (!p.LogoutBySubject || lt.Subject == "") {
		// The session ends every token of it; sub, if also given, is
		// the session's user, not a logout of all their sessions (§2.4).
		sp.kind, sp.value = events.KindSession, lt.SessionID
	} else {
		// The subject's tokens issued up to the logout instant, which
		// is the token's iat (never later than now): a login after the
		// logout but before a delayed delivery keeps its tokens.
		sp.kind, sp.value, sp.epoch = events.KindSubject, lt.Subject, lt.IssuedAt
	}
	// The jti is remembered in the same step as the record: a jti marked
	// before the record succeeded would turn the provider's retry of the
	// identical token into a lost logout.
	idem := &store.Idempotency{Caller: "provider:" + p.Name, Key: "logout_token:" + lt.ID, TTL: p.Logout.ReplayWindow()}
	res, err := s.record(ctx, sp, idem, now)
	var rec *RecordedError
	switch {
	case errors.Is(err, errHeldOther):
		return Result{}, signalReplay, httpx.BadRequest("the logout token is refused: its jti was accepted before, for another logout")
	case errors.As(err, &rec):
		return Result{ID: rec.ID}, "", nil // recorded: the outbox publishes it
	case err != nil:
		return Result{}, "", err
	}
	return res, "", nil
}

// providersByName validates ps and indexes them by name.
func providersByName(ps []Provider) (map[string]*Provider, error) {
	m := make(map[string]*Provider, len(ps))
	var errs []error
	for i := range ps {
		p := &ps[i]
		switch {
		case providers.ValidName(p.Name) != nil:
			errs = append(errs, fmt.Errorf("revoker: config: Providers[%d]: %w", i, providers.ValidName(p.Name)))
		case m[p.Name] != nil:
			errs = append(errs, fmt.Errorf("revoker: config: Providers[%d]: Name %q is used twice", i, p.Name))
		case p.Issuer == "":
			errs = append(errs, fmt.Errorf("revoker: config: Providers[%d] (%s): Issuer is required", i, p.Name))
		case p.Keys == nil && (p.Logout != nil || p.Events != nil):
			errs = append(errs, fmt.Errorf("revoker: config: Providers[%d] (%s): Keys is required", i, p.Name))
		case p.Poll != nil && p.Events == nil:
			errs = append(errs, fmt.Errorf("revoker: config: Providers[%d] (%s): Poll needs Events, the checker of its SETs", i, p.Name))
		case p.Poll != nil:
			pc := *p.Poll // the caller's value is not written to
			if err := checkPoll(&pc); err != nil {
				errs = append(errs, fmt.Errorf("revoker: config: Providers[%d] (%s): %w", i, p.Name, err))
			}
			p.Poll = &pc
		}
		if p.Events != nil && len(p.EventsCredentials) > 0 {
			var err error
			if p.events, err = httpx.NewCredentials(p.EventsCredentials...); err != nil {
				errs = append(errs, fmt.Errorf("revoker: config: Providers[%d] (%s): EventsCredentials: %w", i, p.Name, err))
			}
		}
		m[p.Name] = p
	}
	return m, errors.Join(errs...)
}

// runProviders runs every provider's key source that has background work
// until ctx ends.
func (s *Server) runProviders(ctx context.Context, cancel context.CancelFunc) <-chan error {
	errc := make(chan error, 1)
	go func() {
		done := make(chan error, len(s.providers))
		n := 0
		for _, p := range s.providers {
			r, ok := p.Keys.(interface{ Run(context.Context) error })
			if !ok {
				continue
			}
			n++
			go func() {
				err := r.Run(ctx)
				if err != nil {
					err = fmt.Errorf("provider %s: %w", p.Name, err)
					cancel()
				}
				done <- err
			}()
		}
		var first error
		for range n {
			if err := <-done; err != nil && first == nil {
				first = err
			}
		}
		errc <- first
	}()
	return errc
}
