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
}

type seenReplica struct {
	a  events.Announcement
	at time.Time
}

// note records an announcement that arrived on subject at at.
func (f *fleet) note(subject string, data []byte, at time.Time) {
	a, err := events.DecodeAnnouncement(data)
	f.mu.Lock()
	defer f.mu.Unlock()
	// The subject's last token is the replica's id: one replica cannot
	// speak for another.
	if err != nil || !strings.HasSuffix(subject, "."+a.ID) {
		f.rejected++
		return
	}
	if f.seen == nil {
		f.seen = map[string]seenReplica{}
	}
	f.seen[a.ID] = seenReplica{a: a, at: at}
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
		s.fleet.note(m.Subject, m.Data, time.Now())
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
