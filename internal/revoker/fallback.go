package revoker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jwtrevoke/jwtrevoke/internal/store"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier"
)

// fallbackTimeout bounds one look-up: it runs on the request path, so a
// hanging Redis must not hang the request.
const fallbackTimeout = 2 * time.Second

// ErrFallbackUnavailable is wrapped by the error [NewRedisFallback]'s Check
// returns when Redis cannot answer. It is deliberately none of the
// verifier's revocation sentinels, so a verifier under
// verifier.StaleFallback rejects the token with verifier.ErrStale (503).
var ErrFallbackUnavailable = errors.New("revoker: fallback: redis cannot answer")

// redisFallback answers revocation questions from the revoker's Redis
// records. Safe for concurrent use (the Store is).
type redisFallback struct {
	s *store.Store
}

// NewRedisFallback returns a verifier.Fallback that checks a token against
// the revocation records the revoker keeps in Redis (its jti, sid, kid,
// subject epoch and epoch scopes; see store.Store.Check). Use it with
// verifier.StalePolicy verifier.StaleFallback: while the verifier's stream
// state is too stale, a revoked token is rejected with the matching
// revocation reason (401), an unrevoked one accepted, and when Redis does
// not answer within 2 s the token is rejected as stale (503) — fail closed.
//
// Every event is recorded in Redis (with its outbox entry) before it is
// published, so the records are never behind the stream; they may be ahead
// of it by what the outbox has not delivered yet. The returned Fallback is safe for
// concurrent use.
func NewRedisFallback(s *store.Store) verifier.Fallback {
	return redisFallback{s: s}
}

// recorded checks c against the Redis records, as the fallback does: the one
// look-up introspection, the issuer and a stale verifier share.
func (s *Server) recorded(ctx context.Context, c *verifier.Claims) error {
	return redisFallback{s: s.cfg.Store}.Check(ctx, c)
}

// Check implements verifier.Fallback.
func (f redisFallback) Check(ctx context.Context, c *verifier.Claims) error {
	ctx, cancel := context.WithTimeout(ctx, fallbackTimeout)
	defer cancel()
	err := f.s.Check(ctx, store.Query{
		JTI:      c.ID,
		SID:      c.SessionID,
		Sub:      c.Subject,
		KID:      c.KeyID,
		Iss:      c.Issuer,
		IssuedAt: c.IssuedAt,
		Scopes:   c.Scopes,
	})
	if err == nil {
		return nil
	}
	if events.RevokedBy(err) != nil {
		return fmt.Errorf("revoker: fallback: %w", err)
	}
	// Anything else means Redis could not answer. err wraps no revocation
	// sentinel (checked above), so the verifier answers ErrStale.
	return fmt.Errorf("%w: %w", ErrFallbackUnavailable, err)
}
