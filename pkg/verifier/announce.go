package verifier

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/jwtrevoke/jwtrevoke/pkg/events"
)

// newReplicaID returns "r-" and 64 random bits in hex: unique enough for a
// fleet, stable for the process.
func newReplicaID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return "r-" + hex.EncodeToString(b[:])
}

// ReplicaID is the id the verifier announces itself with on NATS (see
// events.Announcement): random, stable for the verifier's life.
func (v *Verifier) ReplicaID() string { return v.id }

// announcement is what the verifier says of itself now.
func (v *Verifier) announcement() events.Announcement {
	h := v.Health()
	return events.Announcement{
		Version: 1, ID: v.id, Service: v.cfg.Service, ServiceVersion: v.cfg.ServiceVersion,
		Ready: h.Ready, Deciding: h.Deciding(), AppliedSeq: h.AppliedSeq,
		StalenessMs: h.Staleness.Milliseconds(), Held: h.Held, Capacity: h.Capacity,
		Started: v.started, IntervalMs: v.cfg.AnnounceInterval.Milliseconds(),
	}
}

// After applied events the verifier announces coalesce after the first of
// them (the rest of a burst joins it), and while events keep coming at
// most every announceGap: at 1,000 events/s that is 200 announcements a
// second per replica instead of one per event, and a confirmation waits
// at most announceGap longer.
const (
	coalesce    = time.Millisecond
	announceGap = 5 * time.Millisecond
)

// announce publishes the verifier's announcement every AnnounceInterval
// and, coalesced, right after it applied events (a burst costs a few
// messages), until ctx ends. Core NATS, fire and forget: a lost one is
// made up by the next; while disconnected, nats.go buffers a few.
func (v *Verifier) announce(ctx context.Context) error {
	nc := v.cfg.JetStream.Conn()
	subject := events.AnnounceSubject(v.cfg.Stream, v.id)
	every := v.cfg.AnnounceInterval
	tick := time.NewTicker(max(every/20, 5*time.Millisecond))
	defer tick.Stop()
	soon := time.NewTimer(time.Hour)
	soon.Stop()
	armed := false // soon will fire
	var sentSeq uint64
	var sentAt time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-v.applied:
			// During the replay the periodic announcement is enough: a
			// replay of a million events would otherwise announce every
			// millisecond, and nobody waits on a replica not deciding.
			// Armed once per announcement, not pushed back by every
			// event: under a steady stream it still fires.
			if v.Ready() && !armed {
				soon.Reset(max(coalesce, time.Until(sentAt.Add(announceGap))))
				armed = true
			}
			continue
		case <-soon.C:
			armed = false
		case <-tick.C:
		}
		a := v.announcement()
		if now := time.Now(); a.AppliedSeq != sentSeq || now.Sub(sentAt) >= every {
			if b, err := a.Encode(); err == nil {
				if err := nc.Publish(subject, b); err != nil {
					v.cfg.Logger.Debug("verifier: announce", "err", err)
				}
			}
			sentSeq, sentAt = a.AppliedSeq, now
		}
	}
}

// noteApplied tells the announcer that events were applied; it never
// blocks (one pending note is enough).
func (v *Verifier) noteApplied() {
	select {
	case v.applied <- struct{}{}:
	default:
	}
}
