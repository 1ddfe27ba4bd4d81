package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Announcements: every verifier says, on a core NATS subject (not the
// revocation stream), about once a second and right after applying events,
// who it is and what it has applied. The revoker learns the live fleet
// from them, with no registry: a replica silent for [AnnounceMissed]
// intervals is gone.
//
// Subject: jwtrevoke.replicas.<stream>.<replica id>, e.g.
// jwtrevoke.replicas.REVOCATIONS.r-1f2e… ([AnnounceSubject]). Body, JSON:
//
//	{"v":1,"id":"r-1f2e…","service":"orders","version":"1.4.2",
//	 "ready":true,"deciding":true,"applied_seq":1234,"staleness_ms":12,
//	 "held":567,"capacity":1000000,"started":"2026-12-03T10:00:00Z",
//	 "interval_ms":1000}

// AnnounceMissed is how many announcement intervals a replica may stay
// silent before it counts as gone.
const AnnounceMissed = 3

// MaxAnnouncementSize bounds an announcement, in bytes.
const MaxAnnouncementSize = 1024

// Announcement is one verifier's report of itself.
type Announcement struct {
	// Version of the announcement format: 1.
	Version int `json:"v"`
	// ID identifies the replica for its process's life: 1 to 64 bytes of
	// [A-Za-z0-9_-].
	ID string `json:"id"`
	// Service and ServiceVersion name what embeds the verifier (as
	// configured; may be empty), at most 64 printable bytes each.
	Service        string `json:"service,omitempty"`
	ServiceVersion string `json:"version,omitempty"`
	// Ready: the stream is replayed and the keys are fetched. Deciding: a
	// valid, unrevoked token would be accepted now (ready, not stale
	// under a rejecting policy, not over capacity); a replica that is not
	// deciding refuses every token.
	Ready    bool `json:"ready"`
	Deciding bool `json:"deciding"`
	// AppliedSeq is the last stream sequence applied.
	AppliedSeq uint64 `json:"applied_seq"`
	// StalenessMs bounds how far behind the stream its state may be.
	StalenessMs int64 `json:"staleness_ms"`
	// Held and Capacity: revocations in memory, and the most it can hold.
	Held     int64 `json:"held"`
	Capacity int   `json:"capacity"`
	// Started is when the verifier started.
	Started time.Time `json:"started"`
	// IntervalMs is the announcement interval: the replica is gone after
	// AnnounceMissed of them without one.
	IntervalMs int64 `json:"interval_ms"`
}

// ErrBadAnnouncement wraps every reason an announcement is refused.
var ErrBadAnnouncement = errors.New("events: invalid announcement")

// AnnounceSubject is the subject replica id of stream announces on.
func AnnounceSubject(stream, id string) string { return announcePrefix + stream + "." + id }

// AnnouncementsSubject is the subject that matches every announcement of
// stream's replicas (a wildcard for subscribing).
func AnnouncementsSubject(stream string) string { return announcePrefix + stream + ".*" }

const announcePrefix = "jwtrevoke.replicas."

// Validate checks a's fields against the limits above.
func (a Announcement) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrBadAnnouncement}, args...)...)
	}
	switch {
	case a.Version != 1:
		return bad("version %d", a.Version)
	case !ValidReplicaID(a.ID):
		return bad("id must be 1 to 64 bytes of [A-Za-z0-9_-]")
	case len(a.Service) > 64 || len(a.ServiceVersion) > 64:
		return bad("service or version longer than 64 bytes")
	case checkPrintable("service", a.Service) != nil || checkPrintable("version", a.ServiceVersion) != nil:
		return bad("service or version with control characters")
	case a.StalenessMs < 0 || a.Held < 0 || a.Capacity < 0:
		return bad("negative figure")
	case a.IntervalMs < 10 || a.IntervalMs > 60_000:
		return bad("interval_ms %d not in [10, 60000]", a.IntervalMs)
	case a.Started.Before(minTime) || !a.Started.Before(maxTime):
		return bad("absurd start time")
	}
	return nil
}

// ValidReplicaID reports whether id can name a replica: 1 to 64 bytes of
// [A-Za-z0-9_-] (it is a subject token).
func ValidReplicaID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	return strings.IndexFunc(id, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-')
	}) < 0
}

// Encode returns a's JSON, validated.
func (a Announcement) Encode() ([]byte, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	return json.Marshal(a)
}

// DecodeAnnouncement parses and validates an announcement: at most
// MaxAnnouncementSize bytes, one JSON object, no unknown field.
func DecodeAnnouncement(b []byte) (Announcement, error) {
	var a Announcement
	if len(b) > MaxAnnouncementSize {
		return a, fmt.Errorf("%w: larger than %d bytes", ErrBadAnnouncement, MaxAnnouncementSize)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		return Announcement{}, fmt.Errorf("%w: %v", ErrBadAnnouncement, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Announcement{}, fmt.Errorf("%w: trailing data", ErrBadAnnouncement)
	}
	if err := a.Validate(); err != nil {
		return Announcement{}, err
	}
	return a, nil
}
