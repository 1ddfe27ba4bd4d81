package chaos

import (
	"slices"
	"sync"
	"time"
)

// Kind is what a revocation names: a token (jti), a session (sid) or a
// subject (every token of sub issued not after the revocation).
type Kind string

// Revocation kinds, spelled as in pkg/events.
const (
	KindToken   Kind = "token"
	KindSession Kind = "session"
	KindSubject Kind = "subject"
	KindKey     Kind = "key"
)

// Stored names an event as the stream held it or a replica applied it: its
// id and the thing it revokes. An id the history's revocations do not carry
// is the event of an attempt never acknowledged (the client never learnt
// its id).
type Stored struct {
	ID    string
	Kind  Kind
	Value string
}

// Revocation is one revocation the client asked for. Start is when the
// first attempt began, End when the last attempt ended (the acknowledgement,
// when Acked). ID is the event id the revoker answered with ("" when never
// acknowledged).
type Revocation struct {
	ID    string
	Kind  Kind
	Value string
	Start time.Duration
	End   time.Duration
	Acked bool
	// Attempts is how many times the client sent it (retries with the
	// same Idempotency-Key after an error or a refusal).
	Attempts int
	// Recorded: never acknowledged, but the revoker answered that it had
	// recorded it (503 with recorded:true); ID is then the event id it
	// named, which its outbox must deliver without a retry.
	Recorded bool
}

// Outcome is what a replica answered to one request.
type Outcome int

// Outcomes of [Request].
const (
	// Accepted: Verify returned the claims.
	Accepted Outcome = iota
	// Revoked: Verify refused the token as revoked (token, session or
	// subject).
	Revoked
	// Unavailable: Verify could not decide (not ready, stale): 503.
	Unavailable
	// Failed: any other refusal (expired, bad signature, ...); never
	// expected in a run.
	Failed
)

func (o Outcome) String() string {
	switch o {
	case Accepted:
		return "accepted"
	case Revoked:
		return "revoked"
	case Unavailable:
		return "unavailable"
	case Failed:
		return "failed"
	}
	return "outcome?"
}

// Request is one Verify call on one replica incarnation, with the token's
// identifiers. IssuedAt is the token's iat on the history's clock.
type Request struct {
	Replica  string
	JTI      string
	SID      string
	Sub      string
	IssuedAt time.Duration
	Start    time.Duration
	End      time.Duration
	Outcome  Outcome
	Reason   string
}

// Incarnation is one run of a replica: a verifier from its start to its
// stop. Ready is when it first reported ready, Stop when it was stopped; a
// negative value means never (Ready) or still running at the end (Stop).
type Incarnation struct {
	Name  string
	Start time.Duration
	Ready time.Duration
	Stop  time.Duration
}

// Applied is a replica incarnation's own record (verifier.Config.OnApplied)
// of applying an event at At.
type Applied struct {
	Replica string
	Stored
	At time.Duration
}

// Deciding is a sample: at At, replica incarnation Replica reported that it
// would accept a valid, unrevoked token (verifier.Health.Deciding).
type Deciding struct {
	Replica string
	At      time.Duration
}

// History is everything recorded in one run, on one monotonic clock
// (durations since the recorder started). Stream lists the events the
// stream held at the end; nil means it was not read.
type History struct {
	Revocations  []Revocation
	Requests     []Request
	Incarnations []Incarnation
	Applied      []Applied
	Deciding     []Deciding
	Stream       []Stored
	// Reachable lists when NATS became reachable again for the revoker
	// after a fault that cut it off (the bound of recorded revocations).
	Reachable []time.Duration
}

// Recorder collects a [History] from many goroutines. It is safe for
// concurrent use.
type Recorder struct {
	start time.Time

	// mu guards h and applied.
	mu      sync.Mutex
	h       History
	applied map[string]int // events applied, per incarnation
}

// NewRecorder returns a recorder whose clock starts now.
func NewRecorder() *Recorder { return &Recorder{start: time.Now()} }

// Now is the recorder's clock: the monotonic time since it started.
func (r *Recorder) Now() time.Duration { return time.Since(r.start) }

// Since converts t, taken with time.Now in this process, to the recorder's
// clock (monotonic readings are compared when t has one).
func (r *Recorder) Since(t time.Time) time.Duration { return t.Sub(r.start) }

// Revocation records one revocation.
func (r *Recorder) Revocation(v Revocation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.h.Revocations = append(r.h.Revocations, v)
}

// Request records one request.
func (r *Recorder) Request(q Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.h.Requests = append(r.h.Requests, q)
}

// Started records that incarnation name started now.
func (r *Recorder) Started(name string) {
	now := r.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.h.Incarnations = append(r.h.Incarnations, Incarnation{Name: name, Start: now, Ready: -1, Stop: -1})
}

// Ready records that incarnation name reported ready at.
func (r *Recorder) Ready(name string, at time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if i := r.incarnation(name); i >= 0 && r.h.Incarnations[i].Ready < 0 {
		r.h.Incarnations[i].Ready = at
	}
}

// Stopped records that incarnation name stopped now.
func (r *Recorder) Stopped(name string) {
	now := r.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if i := r.incarnation(name); i >= 0 {
		r.h.Incarnations[i].Stop = now
	}
}

func (r *Recorder) incarnation(name string) int {
	return slices.IndexFunc(r.h.Incarnations, func(in Incarnation) bool { return in.Name == name })
}

// Applied records that incarnation name applied event ev at.
func (r *Recorder) Applied(name string, ev Stored, at time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.h.Applied = append(r.h.Applied, Applied{Replica: name, Stored: ev, At: at})
	if r.applied == nil {
		r.applied = make(map[string]int)
	}
	r.applied[name]++
}

// AppliedBy returns how many events incarnation name applied so far.
func (r *Recorder) AppliedBy(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.applied[name]
}

// Deciding records that incarnation name was deciding at.
func (r *Recorder) Deciding(name string, at time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.h.Deciding = append(r.h.Deciding, Deciding{Replica: name, At: at})
}

// Reachable records that NATS became reachable again for the revoker now.
func (r *Recorder) Reachable() {
	now := r.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.h.Reachable = append(r.h.Reachable, now)
}

// SetStream records the events the stream held at the end.
func (r *Recorder) SetStream(evs []Stored) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.h.Stream = slices.Clone(evs)
}

// History returns a copy of what was recorded so far.
func (r *Recorder) History() History {
	r.mu.Lock()
	defer r.mu.Unlock()
	return History{
		Revocations:  slices.Clone(r.h.Revocations),
		Requests:     slices.Clone(r.h.Requests),
		Incarnations: slices.Clone(r.h.Incarnations),
		Applied:      slices.Clone(r.h.Applied),
		Deciding:     slices.Clone(r.h.Deciding),
		Stream:       slices.Clone(r.h.Stream),
		Reachable:    slices.Clone(r.h.Reachable),
	}
}
