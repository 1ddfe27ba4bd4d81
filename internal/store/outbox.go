package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jwtrevoke/jwtrevoke/pkg/events"
)

// The outbox holds every recorded event until the stream has acknowledged
// it. [Store.Record] enqueues; whoever publishes an event calls
// [Store.Delivered]; drainers on every revoker replica take what is left
// with [Store.ClaimOutbox]. Entries are leased, not locked: a drainer that
// dies leaves its entries to another once the lease ends, and two drainers
// publishing one event is harmless (the stream stores an event id once, and
// the publisher's per-subject compare-and-set keeps the most restrictive).

// OutboxEntry is one recorded event waiting for the stream.
type OutboxEntry struct {
	// Event is the event as stored: its bytes are what [Store.Delivered]
	// compares.
	Event events.Encoded
	// QueuedAt is when it was recorded (the recording host's clock).
	QueuedAt time.Time
}

// FinishRecord writes the part of ev's restriction that lives outside the
// revocation slot: a session event also flags the session itself, so that
// its refresh tokens stop rotating. Idempotent. Callers of [Store.Record]
// and outbox drainers call it after Record and before publishing.
func (s *Store) FinishRecord(ctx context.Context, ev events.Event) error {
	if ev.Kind != events.KindSession {
		return nil
	}
	return s.RevokeSession(ctx, ev.SID)
}

// FinishRecordAll is [Store.FinishRecord] of each of evs (errs[i]), in one
// pipeline.
func (s *Store) FinishRecordAll(ctx context.Context, evs []events.Event) (errs []error) {
	errs = make([]error, len(evs))
	var calls []scriptCall
	var at []int // at[j] is the event of calls[j]
	for i, ev := range evs {
		if ev.Kind != events.KindSession {
			continue
		}
		c, err := s.revokeSessionCall(ev.SID)
		if err != nil {
			errs[i] = err
			continue
		}
		calls, at = append(calls, c), append(at, i)
	}
	for j, cmd := range s.runAll(ctx, scriptRevokeSession, calls) {
		if err := cmd.Err(); err != nil {
			errs[at[j]] = fmt.Errorf("store: revoke session: %w", err)
		}
	}
	return errs
}

// ClaimOutbox leases up to n entries that are due (recorded more than
// [OutboxGrace] ago and not leased, or whose lease ended), the longest due
// first, until now+lease.
func (s *Store) ClaimOutbox(ctx context.Context, now time.Time, lease time.Duration, n int) ([]OutboxEntry, error) {
	if n <= 0 || lease <= 0 {
		return nil, fmt.Errorf("store: claim outbox: need n > 0 and lease > 0, got %d, %s", n, lease)
	}
	evKey, queued, due := s.outboxKeys()
	r, err := scriptClaimOutbox.Run(ctx, s.rdb, []string{evKey, queued, due},
		now.UnixMilli(), now.Add(lease).UnixMilli(), n).Slice()
	if err != nil {
		return nil, fmt.Errorf("store: claim outbox: %w", err)
	}
	out := make([]OutboxEntry, 0, len(r)/3)
	for i := 0; i+2 < len(r); i += 3 {
		raw, _ := r[i+1].(string)
		ev, err := events.DecodeEncoded([]byte(raw))
		if err != nil {
			// Only Record writes the outbox, an Encoded's bytes: a bug or a
			// foreign writer. Keep it out of the way, not lost.
			return out, fmt.Errorf("store: claim outbox: entry %v: %w", r[i], err)
		}
		ms, _ := r[i+2].(string)
		q, _ := strconv.ParseInt(ms, 10, 64)
		out = append(out, OutboxEntry{Event: ev, QueuedAt: time.UnixMilli(q)})
	}
	return out, nil
}

// ReleaseOutbox makes leased entries due again at at (a drainer that could
// not publish them hands them back instead of letting the lease run out).
func (s *Store) ReleaseOutbox(ctx context.Context, ids []string, at time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	_, _, due := s.outboxKeys()
	members := make([]redis.Z, len(ids))
	for i, id := range ids {
		members[i] = redis.Z{Score: float64(at.UnixMilli()), Member: id}
	}
	if err := s.rdb.ZAddXX(ctx, due, members...).Err(); err != nil {
		return fmt.Errorf("store: release outbox: %w", err)
	}
	return nil
}

// Delivered removes the outbox entry of an event the stream acknowledged,
// if it still holds exactly recorded's bytes (the event as [Store.Record]
// stored it, or as [Store.ClaimOutbox] read it; what was published may be a
// reissue of it). It reports whether it removed it.
func (s *Store) Delivered(ctx context.Context, recorded events.Encoded) (bool, error) {
	c, err := s.deliveredCall(recorded)
	if err != nil {
		return false, err
	}
	return deliveredReply(scriptDelivered.Run(ctx, s.rdb, c.keys, c.args...))
}

// DeliveredAll is [Store.Delivered] of each of recorded (removed[i],
// errs[i]), in one pipeline.
func (s *Store) DeliveredAll(ctx context.Context, recorded []events.Encoded) (removed []bool, errs []error) {
	removed, errs = make([]bool, len(recorded)), make([]error, len(recorded))
	calls := make([]scriptCall, 0, len(recorded))
	at := make([]int, 0, len(recorded)) // at[j] is the event of calls[j]
	for i, x := range recorded {
		c, err := s.deliveredCall(x)
		if err != nil {
			errs[i] = err
			continue
		}
		calls, at = append(calls, c), append(at, i)
	}
	for j, cmd := range s.runAll(ctx, scriptDelivered, calls) {
		removed[at[j]], errs[at[j]] = deliveredReply(cmd)
	}
	return removed, errs
}

// deliveredCall is the call of scriptDelivered that removes recorded's
// entry.
func (s *Store) deliveredCall(recorded events.Encoded) (scriptCall, error) {
	if recorded.IsZero() {
		return scriptCall{}, fmt.Errorf("store: delivered: %w: no event", events.ErrInvalid)
	}
	evKey, queued, due := s.outboxKeys()
	return scriptCall{keys: []string{evKey, queued, due}, args: []any{recorded.Event().ID, recorded.Bytes()}}, nil
}

func deliveredReply(cmd *redis.Cmd) (bool, error) {
	n, err := cmd.Int64()
	if err != nil {
		return false, fmt.Errorf("store: delivered: %w", err)
	}
	return n == 1, nil
}

// OutboxStats is how much the outbox holds.
type OutboxStats struct {
	// Depth is the number of events recorded and not yet acknowledged.
	Depth int64
	// Oldest is when the oldest of them was recorded; zero when empty.
	Oldest time.Time
}

// Outbox reports the outbox's depth and its oldest entry.
func (s *Store) Outbox(ctx context.Context) (OutboxStats, error) {
	_, queued, _ := s.outboxKeys()
	var card *redis.IntCmd
	var first *redis.ZSliceCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		card = p.ZCard(ctx, queued)
		first = p.ZRangeWithScores(ctx, queued, 0, 0)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return OutboxStats{}, fmt.Errorf("store: outbox: %w", err)
	}
	st := OutboxStats{Depth: card.Val()}
	if z := first.Val(); len(z) == 1 {
		st.Oldest = time.UnixMilli(int64(z[0].Score))
	}
	return st, nil
}
