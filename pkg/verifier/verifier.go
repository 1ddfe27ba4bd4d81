package verifier

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jwtrevoke/jwtrevoke/internal/feed"
	"github.com/jwtrevoke/jwtrevoke/internal/revocation"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
)

// Verifier checks access tokens locally: a [Checker] (keys and claims),
// then the revocation state fed by the JetStream stream. Build it with
// [New], start its background work with [Verifier.Run], and call
// [Verifier.Verify] (or use [Verifier.Middleware]) per request.
//
// A Verifier is safe for concurrent use.
type Verifier struct {
	cfg     Config
	checker *Checker
	store   *revocation.Store
	feed    *feed.Feed
	metrics *metrics
	id      string        // the replica id it announces itself with
	started time.Time     // when New built it
	applied chan struct{} // noteApplied → announce

	closeOnce sync.Once
}

// runner is a key source with background work (a JWKS refreshes itself);
// [Checker.Run] runs it.
type runner interface {
	Run(ctx context.Context) error
}

// New validates cfg and builds a Verifier. Every misconfiguration is
// reported here, at start, never at the first request. The Verifier answers
// [ErrNotReady] until [Verifier.Run] has replayed the revocation stream and
// its key source is ready.
func New(cfg Config) (*Verifier, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	v := &Verifier{cfg: cfg, id: newReplicaID(), started: time.Now().UTC(), applied: make(chan struct{}, 1)}
	if v.checker, err = NewChecker(cfg.Keys, cfg.checkerConfig()); err != nil {
		return nil, err
	}
	v.store, err = revocation.New(revocation.Config{
		Capacity:         cfg.Capacity,
		MaxTokenLifetime: cfg.MaxTokenLifetime,
		Leeway:           cfg.Leeway,
		Now:              cfg.Now,
	})
	if err != nil {
		v.checker.Close()
		return nil, fmt.Errorf("verifier: config: %w", err)
	}
	v.metrics, err = newMetrics(v)
	if err != nil {
		v.Close()
		return nil, err
	}
	v.feed, err = feed.New(feed.Config{
		JetStream:      cfg.JetStream,
		Stream:         cfg.Stream,
		Applier:        v.store,
		MinMaxAge:      cfg.MaxTokenLifetime + cfg.Leeway,
		Now:            cfg.Now,
		Logger:         cfg.Logger,
		TracerProvider: cfg.TracerProvider,
		Observer:       v.metrics,
	})
	if err != nil {
		v.Close()
		return nil, fmt.Errorf("verifier: config: %w", err)
	}
	return v, nil
}

// Run replays the revocation stream, then follows it — and runs the key
// source when it has background work (a [JWKS] keeps itself fresh) — until
// ctx ends; then it returns nil. It returns an error early only for a
// condition a restart cannot fix, such as a stream that retains events for
// less than MaxTokenLifetime + Leeway. Call it once.
func (v *Verifier) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 3) // one per goroutine below
	var wg sync.WaitGroup
	run := func(f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil {
				errc <- err
				cancel()
			}
		}()
	}
	run(v.feed.Run)
	run(v.checker.Run)
	run(v.announce)
	wg.Wait()
	close(errc)
	return <-errc
}

// WaitReady blocks until the verifier is ready (see [Verifier.Ready]) or ctx
// ends.
func (v *Verifier) WaitReady(ctx context.Context) error {
	if err := v.feed.WaitReady(ctx); err != nil {
		return err
	}
	return v.checker.waitKeys(ctx)
}

// Ready reports whether the verifier can decide: the revocation stream has
// been replayed up to the head seen at start, and its keys are available.
func (v *Verifier) Ready() bool { return v.feed.Ready() && v.checker.KeysReady() }

// Checker returns the verifier's [Checker]: the same keys and claims rules,
// without the revocation state.
func (v *Verifier) Checker() *Checker { return v.checker }

// Close releases the verifier's memory. Call it after Run has returned.
func (v *Verifier) Close() {
	v.closeOnce.Do(func() {
		if v.metrics != nil {
			v.metrics.close()
		}
		v.checker.Close()
		v.store.Close()
	})
}

// Verify checks raw, a compact JWS access token, and returns its claims.
//
// In order: everything [Checker.Check] checks (size; header; key by kid;
// signature; exp, nbf, iat, iss, aud, sub, jti and the lifetime bound;
// Config.Validate); then, only for a token that passed all that,
// readiness, the revocation state and staleness. A token seen before
// skips parsing and the signature, never the expiry and revocation checks.
// Verify makes no network call except through a KeySource that does (a JWKS
// refresh on an unknown kid, rate-limited).
//
// On any failure it returns nil and an error wrapping [ErrInvalidToken] or
// [ErrUnavailable] and one precise reason.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Claims, error) {
	c, err := v.verify(ctx, raw)
	v.metrics.count(err)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Inspect checks everything Verify checks about the token itself — size,
// header, key, signature, claims, expiry — but not the revocation state,
// readiness or staleness. It is for services that act on a token whatever
// its revocation status, such as a revoker revoking it or an issuer logging
// its session out (idempotently). It MUST NOT be used to authorise a
// request: use Verify.
func (v *Verifier) Inspect(ctx context.Context, raw string) (*Claims, error) {
	return v.checker.Check(ctx, raw)
}

func (v *Verifier) verify(ctx context.Context, raw string) (*Claims, error) {
	// One clock reading serves the expiry and the staleness checks.
	now := v.cfg.Now()
	c, err := v.checker.check(ctx, raw, now)
	if err != nil {
		return nil, err
	}
	if err := v.checkRevocation(ctx, c, now); err != nil {
		return nil, err
	}
	return c, nil
}

// checkRevocation runs after the signature and claims: forged tokens never
// drive a look-up (promise 9).
func (v *Verifier) checkRevocation(ctx context.Context, c *Claims, now time.Time) error {
	if !v.feed.Ready() {
		return fail(ErrNotReady, "")
	}
	err := v.store.Check(revocation.Token{JTI: c.ID, SID: c.SessionID, Sub: c.Subject, KID: c.KeyID, Iss: c.Issuer,
		IssuedAt: c.IssuedAt, Scopes: c.Scopes})
	if err != nil {
		return classifyRevocation(err)
	}
	if v.feed.StalenessAt(now) <= v.cfg.MaxStaleness {
		return nil
	}
	switch v.cfg.StalePolicy {
	case InsecureStaleAccept:
		return nil
	case StaleFallback:
		err := v.cfg.Fallback.Check(ctx, c)
		if err == nil {
			return nil
		}
		if r := classifyRevocation(err); !errors.Is(r, ErrUnavailable) {
			return r
		}
		return &verifyError{class: ErrUnavailable, reason: ErrStale, detail: "fallback unavailable", cause: err}
	}
	return fail(ErrStale, "")
}

// classifyRevocation turns an error from the revocation store or a
// Fallback into a Verify error.
func classifyRevocation(err error) error {
	if r := events.RevokedBy(err); r != nil {
		return wrap(r, err)
	}
	if errors.Is(err, ErrOverCapacity) {
		return wrap(ErrOverCapacity, err)
	}
	return &verifyError{class: ErrUnavailable, reason: ErrStale, cause: err}
}
