package revoker

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/jwtrevoke/jwtrevoke/internal/httpx"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
)

// Replica is one live verifier as GET /v1/replicas shows it: its last
// announcement and when it arrived.
type Replica struct {
	events.Announcement
	// LastSeenMs is how long ago its last announcement arrived.
	LastSeenMs int64 `json:"last_seen_ms"`
}

// Replicas is the body of GET /v1/replicas: the live fleet, by id.
type Replicas struct {
	Replicas []Replica `json:"replicas"`
	// Rejected counts announcements refused since the revoker started
	// (malformed, or on another replica's subject).
	Rejected int64 `json:"rejected"`
}

// fleet is the live replicas, learned from their announcements on NATS: no
// registry, any revoker replica learns the same. Safe for concurrent use.
type fleet struct {
	mu       sync.Mutex
	seen     map[string]seenReplica
	rejected int64
	// changed wakes waiters (for enforcement, the console) whenever an
	// announcement is recorded.
	changed signal
}

// signal wakes waiters at the next change: notify closes the channel wait
// returned. Its owner's lock is held around both.
type signal struct{ ch chan struct{} }

func (s *signal) wait() <-chan struct{} {
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

func (s *signal) notify() {
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
}

type seenReplica struct {
	a  events.Announcement
	at time.Time
}

// note records an announcement that arrived on subject at at, and
// returns it unless it was refused.
func (f *fleet) note(subject string, data []byte, at time.Time) (events.Announcement, bool) {
	a, err := events.DecodeAnnouncement(data)
	f.mu.Lock()
	defer f.mu.Unlock()
	// The subject's last token is the replica's id: one replica cannot
	// speak for another.
	if err != nil || !strings.HasSuffix(subject, "."+a.ID) {
		f.rejected++
		return events.Announcement{}, false
	}
	if f.seen == nil {
		f.seen = map[string]seenReplica{}
	}
	f.seen[a.ID] = seenReplica{a: a, at: at}
	f.changed.notify()
	return a, true
}

// wait returns a channel closed at the next announcement recorded.
func (f *fleet) wait() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changed.wait()
}

// Enforcement is what ?wait=enforced adds to a revocation's answer: which
// live replicas enforce it. A replica that is not deciding refuses every
// token, so it enforces the revocation too, but it is listed apart.
type Enforcement struct {
	// Complete: every live replica that decides has applied the event.
	Complete bool `json:"complete"`
	// Replicas is how many were live; Confirmed how many of the deciding
	// ones have applied the event's sequence.
	Replicas  int `json:"replicas"`
	Confirmed int `json:"confirmed"`
	// FailingClosed are the live replicas not deciding (they refuse every
	// token); Pending those deciding that have not applied it yet.
	FailingClosed []string `json:"failing_closed"`
	Pending       []string `json:"pending"`
	// TookMs is how long the wait took.
	TookMs int64 `json:"took_ms"`
}

// enforcement reports which live replicas have applied seq, and a channel
// closed at the next announcement.
func (f *fleet) enforcement(seq uint64, now time.Time) (Enforcement, <-chan struct{}) {
	// The channel first: an announcement recorded while the view is
	// computed closes it, so the waiter looks again at once.
	changed := f.wait()
	live := f.live(now)
	e := Enforcement{Replicas: len(live.Replicas), FailingClosed: []string{}, Pending: []string{}}
	for _, r := range live.Replicas {
		switch {
		case !r.Deciding:
			e.FailingClosed = append(e.FailingClosed, r.ID)
		case r.AppliedSeq >= seq:
			e.Confirmed++
		default:
			e.Pending = append(e.Pending, r.ID)
		}
	}
	e.Complete = len(e.Pending) == 0
	return e, changed
}

// waitEnforced waits until every live deciding replica has applied seq,
// or timeout passes, or ctx ends; it returns the last view. A replica
// that goes silent meanwhile drops out of the view (it is gone), so a
// dead replica does not hold the wait to its timeout longer than three
// of its intervals.
func (f *fleet) waitEnforced(ctx context.Context, seq uint64, timeout time.Duration) Enforcement {
	start := time.Now()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	// A look every 100 ms too, so that replicas that go silent leave the
	// view even when no announcement arrives.
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		e, changed := f.enforcement(seq, time.Now())
		e.TookMs = time.Since(start).Milliseconds()
		if e.Complete {
			return e
		}
		select {
		case <-changed:
		case <-tick.C:
		case <-deadline.C:
			e, _ = f.enforcement(seq, time.Now())
			e.TookMs = time.Since(start).Milliseconds()
			return e
		case <-ctx.Done():
			return e
		}
	}
}

// live returns the replicas heard from within events.AnnounceMissed of
// their intervals, sorted by id, and forgets the others.
func (f *fleet) live(now time.Time) Replicas {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := Replicas{Replicas: []Replica{}, Rejected: f.rejected}
	for id, r := range f.seen {
		ago := now.Sub(r.at)
		if ago > events.AnnounceMissed*time.Duration(r.a.IntervalMs)*time.Millisecond {
			delete(f.seen, id)
			continue
		}
		out.Replicas = append(out.Replicas, Replica{Announcement: r.a, LastSeenMs: ago.Milliseconds()})
	}
	slices.SortFunc(out.Replicas, func(a, b Replica) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// followFleet subscribes to the replicas' announcements until ctx ends.
// The subscription is core NATS: nats.go renews it after a reconnect.
func (s *Server) followFleet(ctx context.Context) {
	nc := s.cfg.JetStream.Conn()
	sub, err := nc.Subscribe(events.AnnouncementsSubject(s.cfg.Stream), func(m *nats.Msg) {
		at := time.Now()
		if a, ok := s.fleet.note(m.Subject, m.Data, at); ok && s.console != nil {
			s.recent.applied(a, at)
		}
	})
	if err != nil {
		s.cfg.Logger.Warn("revoker: cannot follow the replicas' announcements; GET /v1/replicas stays empty", "err", err)
		return
	}
	<-ctx.Done()
	_ = sub.Unsubscribe()
}

// handleReplicas serves GET /v1/replicas.
func (s *Server) handleReplicas(w http.ResponseWriter, _ *http.Request) {
	httpx.WriteJSON(w, http.StatusOK, s.fleet.live(time.Now()))
}
