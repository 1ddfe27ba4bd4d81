package verifier

import (
	"net/http"
	"time"

	"github.com/jwtrevoke/jwtrevoke/internal/httpx"
)

// Health is a snapshot of the verifier's state, for health endpoints,
// metrics and logs.
type Health struct {
	// Ready: the stream has been replayed and keys are available.
	Ready bool `json:"ready"`
	// KeysFetched: signing keys are available (always true with static keys).
	KeysFetched bool `json:"keys_fetched"`
	// Stale: Staleness is past MaxStaleness; StalePolicy applies.
	Stale bool `json:"stale"`
	// Staleness bounds how far behind the stream the state may be.
	Staleness time.Duration `json:"staleness_ns"`
	// MaxStaleness and StalePolicy as configured.
	MaxStaleness time.Duration `json:"max_staleness_ns"`
	StalePolicy  string        `json:"stale_policy"`
	// Held is the number of live revocations in memory; Capacity the most
	// that can be held. OverCapacity: the verifier fails closed.
	Held         int64 `json:"held"`
	Capacity     int   `json:"capacity"`
	OverCapacity bool  `json:"over_capacity"`
	// AppliedSeq is the last stream sequence applied.
	AppliedSeq uint64 `json:"applied_seq"`
	// ReplayDuration is how long the initial replay took (0 before ready).
	ReplayDuration time.Duration `json:"replay_duration_ns"`
	// LastError is the feed's last error, if any.
	LastError string `json:"last_error,omitempty"`
}

// Deciding reports whether a valid, unrevoked token would be accepted now:
// ready, not over capacity, and not stale under a policy that rejects.
func (h Health) Deciding() bool {
	return h.Ready && !h.OverCapacity && !(h.Stale && h.StalePolicy == StaleReject.String())
}

// Reason is a short, public reason why the verifier cannot decide ("keys
// not fetched yet", "stream not replayed", "revocation capacity exceeded",
// "revocation state stale"), or "" while it can. It carries no address or
// error text, so an unauthenticated readiness probe may show it.
func (h Health) Reason() string {
	switch {
	case h.Deciding():
		return ""
	case !h.KeysFetched:
		return "keys not fetched yet"
	case !h.Ready:
		return "stream not replayed"
	case h.OverCapacity:
		return "revocation capacity exceeded"
	}
	return "revocation state stale"
}

// Health returns the current state.
func (v *Verifier) Health() Health {
	fs := v.feed.Status()
	ss := v.store.Stats()
	staleness := v.feed.Staleness()
	return Health{
		Ready:          v.Ready(),
		KeysFetched:    v.checker.KeysReady(),
		Stale:          staleness > v.cfg.MaxStaleness,
		Staleness:      staleness,
		MaxStaleness:   v.cfg.MaxStaleness,
		StalePolicy:    v.cfg.StalePolicy.String(),
		Held:           int64(ss.Held),
		Capacity:       ss.Capacity,
		OverCapacity:   ss.OverCapacity,
		AppliedSeq:     fs.AppliedSeq,
		ReplayDuration: fs.ReplayDuration,
		LastError:      fs.LastError,
	}
}

// ReadyHandler serves a readiness probe: 200 while the verifier can decide
// (see [Health.Deciding]), 503 otherwise, with the [Health] as JSON. Point a
// Kubernetes readinessProbe and startupProbe at it, never a livenessProbe: a
// NATS outage must not restart every replica.
func (v *Verifier) ReadyHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h := v.Health()
		status := http.StatusOK
		if !h.Deciding() {
			status = http.StatusServiceUnavailable
		}
		httpx.WriteJSON(w, status, h)
	})
}
