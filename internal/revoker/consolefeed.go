package revoker

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jwtrevoke/jwtrevoke/pkg/events"
)

// maxRecent is how many of the last revocations the console shows.
const maxRecent = 30

// recentRevocation is one revocation the console shows: the event as the
// stream holds it, and when each replica was heard to have applied it.
type recentRevocation struct {
	Seq   uint64
	Event events.Event
	// Confirmed is, for each replica that announced it applied the
	// event, the time from the event's issue (its iat, the revoker's
	// clock) to the arrival of that announcement here. Replicas that
	// started after the event was issued are not counted: they replayed
	// it.
	Confirmed map[string]time.Duration
}

// recentFeed is the console's view of the stream: its head and the last
// revocations, read with an ordered consumer, with the replicas'
// confirmations from their announcements. Safe for concurrent use.
type recentFeed struct {
	mu   sync.Mutex
	list []recentRevocation // ascending seq
	head uint64
	// changed wakes the console's live views.
	changed signal
}

// wait returns a channel closed at the next change.
func (f *recentFeed) wait() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changed.wait()
}

// add records the events of the message of seq (one, or a batch's);
// live is the fleet now, for replicas that announced having applied it
// before the console read it.
func (f *recentFeed) add(seq uint64, evs []events.Event, live []Replica, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.head = max(f.head, seq)
	if n := len(f.list); n > 0 && f.list[n-1].Seq >= seq {
		return // an ordered consumer's redelivery after a reset
	}
	for _, ev := range evs {
		rr := recentRevocation{Seq: seq, Event: ev, Confirmed: map[string]time.Duration{}}
		for _, r := range live {
			if r.Deciding && r.AppliedSeq >= seq && r.Started.Before(ev.IssuedAt) {
				rr.Confirmed[r.ID] = max(0, now.Add(-time.Duration(r.LastSeenMs)*time.Millisecond).Sub(ev.IssuedAt))
			}
		}
		f.list = append(f.list, rr)
	}
	if len(f.list) > maxRecent {
		f.list = slices.Delete(f.list, 0, len(f.list)-maxRecent)
	}
	f.changed.notify()
}

// applied records that replica a, heard at at, has applied every event up
// to its AppliedSeq.
func (f *recentFeed) applied(a events.Announcement, at time.Time) {
	if !a.Deciding {
		return // it refuses every token: it enforces, but has confirmed nothing
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	changed := false
	for i := len(f.list) - 1; i >= 0; i-- {
		rr := &f.list[i]
		if rr.Seq > a.AppliedSeq {
			continue
		}
		if _, done := rr.Confirmed[a.ID]; done || !a.Started.Before(rr.Event.IssuedAt) {
			continue
		}
		rr.Confirmed[a.ID] = max(0, at.Sub(rr.Event.IssuedAt))
		changed = true
	}
	if changed {
		f.changed.notify()
	}
}

// view returns the stream head seen and a copy of the recent revocations,
// newest first.
func (f *recentFeed) view() (uint64, []recentRevocation) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]recentRevocation, len(f.list))
	for i, rr := range f.list {
		rr.Confirmed = maps.Clone(rr.Confirmed)
		out[len(f.list)-1-i] = rr
	}
	return f.head, out
}

// followRecent reads the stream from its last maxRecent events on, for the
// console, until ctx ends; it starts again (from the head then) after an
// error.
func (s *Server) followRecent(ctx context.Context) {
	backoff := minEnsureBackoff
	for ctx.Err() == nil {
		err := s.readRecent(ctx)
		if ctx.Err() != nil {
			return
		}
		s.cfg.Logger.Debug("revoker: console: reading the stream", "err", err, "retry_in", backoff)
		if !sleep(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, maxEnsureBackoff)
	}
}

func (s *Server) readRecent(ctx context.Context) error {
	st, err := s.cfg.JetStream.Stream(ctx, s.cfg.Stream)
	if err != nil {
		return err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return err
	}
	start := uint64(1)
	if seen, _ := s.recent.view(); seen > 0 {
		start = seen + 1
	} else if last := info.State.LastSeq; last > maxRecent {
		start = last - maxRecent + 1
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: start,
	})
	if err != nil {
		return err
	}
	it, err := cons.Messages()
	if err != nil {
		return err
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for {
		m, err := it.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) && ctx.Err() != nil {
				return nil
			}
			return err
		}
		meta, err := m.Metadata()
		if err != nil {
			continue
		}
		evs, err := events.MsgEvents(m.Subject(), m.Data())
		if err != nil {
			continue // the verifiers refuse it too; it revoked nothing
		}
		s.recent.add(meta.Sequence.Stream, evs, s.fleet.live(time.Now()).Replicas, time.Now())
	}
}
