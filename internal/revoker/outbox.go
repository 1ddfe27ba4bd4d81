package revoker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/jwtrevoke/jwtrevoke/internal/store"
)

// The outbox drainer: every revoker replica publishes what is recorded in
// Redis and not yet acknowledged by the stream (store.Record enqueues it in
// the same step as the record), oldest first, as soon as NATS is reachable.
const (
	// drainInterval is how often an idle drainer looks at the outbox.
	drainInterval = 200 * time.Millisecond
	// drainBatch is how many entries one round leases.
	drainBatch = 256
	// drainWorkers publish a round's entries concurrently (the publisher's
	// per-subject compare-and-set keeps concurrent publishes safe).
	drainWorkers = 16
	// maxDrainBackoff bounds the wait after a failed round (kept short:
	// a failed entry is due again only after it).
	maxDrainBackoff = time.Second
)

// outboxState is what the drainer last saw, for metrics.
type outboxState struct {
	depth       atomic.Int64
	oldestMilli atomic.Int64 // Unix ms of the oldest entry; 0 when empty
}

// errNATSDown stops a round: nothing can be acknowledged now.
var errNATSDown = errors.New("revoker: outbox: nats is not connected")

// drainOutbox runs until ctx ends. While NATS is disconnected it only
// watches (every drainInterval), so it drains within about drainInterval of
// the connection coming back; after a failed round it backs off, doubling
// up to maxDrainBackoff, and resets on success.
func (s *Server) drainOutbox(ctx context.Context) {
	log := s.cfg.Logger
	backoff := time.Duration(0)
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := s.drainRound(ctx, backoff)
		next := drainInterval
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, errNATSDown):
			backoff = 0
		case err != nil:
			backoff = min(max(2*backoff, drainInterval), maxDrainBackoff)
			next = backoff
			log.Warn("revoker: outbox: drain failed, retrying", "err", err, "retry_in", backoff)
		case n == drainBatch:
			backoff, next = 0, 0 // more is due
		default:
			backoff = 0
		}
		t.Reset(next)
	}
}

// drainRound refreshes the outbox figures, then leases and publishes one
// batch of due entries. It returns how many it leased. On the first failed
// publish the round stops, and every entry not delivered is handed back,
// due again after backoff.
func (s *Server) drainRound(ctx context.Context, backoff time.Duration) (int, error) {
	st := s.cfg.Store
	rctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	stats, err := st.Outbox(rctx)
	cancel()
	if err != nil {
		return 0, err
	}
	s.outbox.depth.Store(stats.Depth)
	if stats.Oldest.IsZero() {
		s.outbox.oldestMilli.Store(0)
	} else {
		s.outbox.oldestMilli.Store(stats.Oldest.UnixMilli())
	}
	if stats.Depth == 0 {
		return 0, nil
	}
	if s.cfg.JetStream.Conn().Status() != nats.CONNECTED {
		return 0, errNATSDown
	}
	// The lease outlasts a publish's timeout, so two drainers take the
	// same entry only when one of them stopped.
	lease := 2 * s.cfg.Timeout
	rctx, cancel = context.WithTimeout(ctx, s.cfg.Timeout)
	entries, err := st.ClaimOutbox(rctx, time.Now(), lease, drainBatch)
	cancel()
	if err != nil || len(entries) == 0 {
		return len(entries), err
	}
	round, stop := context.WithCancel(ctx)
	defer stop()
	var (
		wg   sync.WaitGroup
		next atomic.Int64
		// mu guards firstErr and undelivered.
		mu          sync.Mutex
		firstErr    error
		undelivered []string
	)
	for range min(drainWorkers, len(entries)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(entries) {
					return
				}
				err := round.Err()
				if err == nil {
					err = s.republish(round, entries[i])
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil && round.Err() == nil {
						firstErr = err
					}
					undelivered = append(undelivered, entries[i].Event.Event().ID)
					mu.Unlock()
					stop()
				}
			}
		}()
	}
	wg.Wait()
	if len(undelivered) > 0 {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.Timeout)
		defer cancel()
		if err := st.ReleaseOutbox(rctx, undelivered, time.Now().Add(backoff)); err != nil {
			s.cfg.Logger.Warn("revoker: outbox: could not hand entries back; they are due again when their lease ends", "err", err)
		}
	}
	if firstErr == nil && ctx.Err() == nil && len(undelivered) > 0 {
		firstErr = errors.New("revoker: outbox: round stopped")
	}
	return len(entries), firstErr
}

// republish publishes one outbox entry, reissued now (a republished event
// never holds less than a fresh one; the reissue is its one new encoding),
// and removes the entry, by the bytes it was read as, once the stream
// acknowledged it.
func (s *Server) republish(ctx context.Context, e store.OutboxEntry) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	x, err := e.Event.Reissued(s.cfg.Now())
	if err != nil {
		return fmt.Errorf("revoker: outbox: reissue %s: %w", e.Event.Event().ID, err)
	}
	ev := x.Event()
	ack, err := s.deliver(ctx, x, e.Event)
	if err != nil {
		return fmt.Errorf("revoker: outbox: deliver %s: %w", ev.ID, err)
	}
	s.metrics.republished(ctx)
	s.cfg.Logger.Info("revoker: outbox: delivered", "id", ev.ID, "type", string(ev.Kind), "seq", ack.Sequence,
		"duplicate", ack.Duplicate, "recorded_ago", time.Since(e.QueuedAt).Round(time.Millisecond))
	return nil
}
