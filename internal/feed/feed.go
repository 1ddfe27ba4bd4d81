// Package feed keeps a verifier's revocation state current from the
// JetStream revocation stream.
//
// A [Feed] reads the whole stream with an ordered consumer of its own — never
// a queue group and never durable, because every replica needs every event —
// starting from the first message the stream still holds (the stream's MaxAge
// already trims what can no longer matter), then follows it live. Each event
// is decoded, checked and handed to an [Applier]; the applier is idempotent
// and monotonic, so a redelivery after a reconnect costs nothing.
//
// Readiness and staleness come from the stream itself. A probe, taken at
// instant t0, asks the stream's leader for the stream's last message; when
// the feed has processed it with no sequence gap after its position at the
// answer (see mark), and applied and synced everything it received, the
// feed was current at t0 (the leader acknowledges a publish only once
// stored, so its last message is at least as late as any acknowledged
// before t0; a consumer's own "nothing pending" is not enough, since an R1
// consumer may live on a follower whose copy lags). The first such
// confirmation after the start makes the feed ready; no fixed "last
// sequence" is awaited beyond the leader's answer, since messages may be
// removed (MaxAge, per-message TTL, one message per subject). From then on
// every confirmation — probes every ProbeInterval, and soon after the
// consumer reports nothing pending — moves the instant the feed is known to
// have been current; [Feed.Staleness] is the time since.
package feed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jwtrevoke/jwtrevoke/pkg/events"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// SpanName is the name of the span that wraps the application of one
// message's events (one, or a batch's: then its kind and id are the
// first's, and AttrBatchEvents counts them).
// Its parent is the trace context the revoker put in the message headers, so
// one trace shows the revocation request and every verifier applying it.
const SpanName = "jwtrevoke.revocation.apply"

// Span attributes set on every [SpanName] span.
const (
	AttrEventKind = attribute.Key("jwtrevoke.event.kind")
	AttrEventID   = attribute.Key("jwtrevoke.event.id")
	AttrStreamSeq = attribute.Key("jwtrevoke.stream.seq")
	// AttrBatchEvents is set on the span of a batch message only.
	AttrBatchEvents = attribute.Key("jwtrevoke.batch.events")
)

// Tuning of the consuming loop.
const (
	// syncBatch is the most events applied between two Sync calls while
	// the feed is behind (replay). Syncing per event would make replay of a
	// large stream slow; syncing never would leave freshness unconfirmed.
	syncBatch = 8192
	// syncEvery is the longest time applied events wait for a Sync while
	// more are pending.
	syncEvery = 10 * time.Millisecond
	// pullBatch is how many messages the consumer asks the server for at
	// once.
	pullBatch = 1024
	// pullExpiry and pullHeartbeat shape each pull request: the server
	// sends an idle heartbeat every pullHeartbeat, and the client re-asks
	// after two are missed.
	pullExpiry    = 5 * time.Second
	pullHeartbeat = time.Second
	// readBatch is the most decoded messages the reader hands over at once,
	// and flushAfter the longest an incomplete batch waits for more.
	readBatch  = 256
	flushAfter = 2 * time.Millisecond
	// minBackoff and maxBackoff bound the wait before retrying to attach to
	// the stream (server unreachable, stream missing).
	minBackoff = 50 * time.Millisecond
	maxBackoff = 2 * time.Second
	// pullCheckAfter is how long a starting feed's new attachment may go
	// without a message or a pull request the server shows before it is
	// replaced; pullRetry is how often the feed asks meanwhile (see
	// loop.checkPull).
	pullCheckAfter = 250 * time.Millisecond
	pullRetry      = 25 * time.Millisecond
	// resetAttempts is how many times the ordered consumer tries to recreate
	// itself after a gap or a reconnect before the feed starts over, which
	// re-reads the stream's configuration and notices a recreated stream.
	// One: the feed's own retry loop does the waiting.
	resetAttempts = 1
)

// Errors returned by [New] and [Feed.Run], and reported to
// [Observer.EventRejected]. Callers test them with errors.Is.
var (
	// ErrInvalidConfig wraps every configuration error of [New].
	ErrInvalidConfig = errors.New("feed: invalid config")
	// ErrMaxAgeTooShort is returned by Run when the stream keeps events for
	// less than [Config.MinMaxAge]: replay could not cover the lifetime of
	// every token, so the feed refuses to run.
	ErrMaxAgeTooShort = errors.New("feed: stream max age shorter than the token lifetime it must cover")
	// ErrRunning is returned by a second call to Run on the same Feed.
	ErrRunning = errors.New("feed: already running")
	// ErrWrongSubject is reported for a valid event published on another
	// subject than its own (see [events.Subject]); it would break the
	// stream's one-message-per-subject compaction, so it is rejected. It
	// is [events.ErrWrongSubject] and wraps [events.ErrInvalid].
	ErrWrongSubject = events.ErrWrongSubject
	// ErrApply wraps an error returned by [Applier.Apply]; the event is
	// counted as rejected and the feed moves on (the applier fails closed).
	ErrApply = errors.New("feed: apply")
)

// Applier is the revocation state the feed writes to. The feed calls it from
// one goroutine only.
type Applier interface {
	// Apply records e. It must be idempotent and monotonic: applying an
	// event twice, or events in any order, gives the same state. changed
	// reports whether e added restriction. An error means the state could
	// not record e; the applier itself must then fail closed.
	Apply(e events.Event) (changed bool, err error)
	// Sync makes every Apply that returned visible to readers. An error
	// means the state could not hold them (capacity); the feed then does
	// not count those events as synced and retries later.
	Sync() error
}

// Observer receives the feed's events, for metrics. Its methods are called
// from the goroutine running [Feed.Run], one at a time, and must be cheap.
type Observer interface {
	// EventApplied is called once per event applied without error, after
	// Apply (and, when the feed was caught up, Sync) returned. stored is
	// the time the stream stored the event (JetStream metadata); applied is
	// the feed's clock then. The propagation lag is applied - e.IssuedAt.
	EventApplied(e events.Event, stored time.Time, applied time.Time)
	// EventRejected is called for every message that was skipped: not
	// decodable, invalid (err wraps [events.ErrInvalid]), on a subject not
	// its own ([ErrWrongSubject]) or refused by the applier ([ErrApply]).
	// Nothing of a rejected event is applied.
	EventRejected(subject string, err error)
	//
	// Both methods are called before the feed reports itself ready for the
	// events of the replay: once [Feed.WaitReady] returns, the observer
	// has heard of everything the replay applied.
}

// Config configures a [Feed]. JetStream and Applier are required; every
// other field has a default. New copies it; later changes have no effect.
type Config struct {
	// JetStream is the client to read the stream with. Required. The
	// caller owns its connection: the feed never closes it, and stops with
	// an error if it is closed.
	JetStream jetstream.JetStream
	// Stream is the name of the revocation stream. Default
	// [events.DefaultStreamName].
	Stream string
	// Applier receives every valid event. Required.
	Applier Applier
	// MinMaxAge, when positive, is the shortest retention the stream may
	// have: Run fails with [ErrMaxAgeTooShort] when the stream's MaxAge is
	// set and shorter (replay must cover the longest token lifetime plus
	// leeway). Zero disables the check. A MaxAge of zero (keep forever)
	// always passes.
	MinMaxAge time.Duration
	// ProbeInterval is how often the feed asks the stream's leader for the
	// stream's last message (and checks its consumer is alive), to confirm
	// freshness; a consumer with nothing pending probes sooner, at most
	// four times an interval. Default 1s. Staleness stays below about
	// ProbeInterval plus a round trip while the server is reachable and
	// the feed keeps up.
	ProbeInterval time.Duration
	// Now is the clock of every reported time (staleness, last sync,
	// replay duration, observer). Default time.Now. It is called from
	// several goroutines.
	Now func() time.Time
	// Logger receives the feed's logs. Default: discarded.
	Logger *slog.Logger
	// TracerProvider creates the [SpanName] spans. Default: no-op.
	TracerProvider trace.TracerProvider
	// Observer, when set, is told of every applied or rejected event.
	Observer Observer
}

// Status is a snapshot of a feed's progress, for health endpoints and logs.
type Status struct {
	// Ready is true once the initial replay is done (see [Feed.Ready]).
	Ready bool
	// AppliedSeq is the stream sequence up to which every message has been
	// applied and synced (rejected messages skipped).
	AppliedSeq uint64
	// LastSync is the last instant at which the feed is known to have
	// applied and synced everything the stream held; zero before the first
	// confirmation.
	LastSync time.Time
	// Staleness is [Feed.Staleness] at the time of the snapshot.
	Staleness time.Duration
	// ReplayDuration is how long the initial replay took, from Run to
	// ready; zero before.
	ReplayDuration time.Duration
	// Applied counts events applied without error, redeliveries included.
	Applied uint64
	// Rejected counts messages skipped (see [Observer.EventRejected]).
	Rejected uint64
	// LostPulls counts attachments whose first pull request the server
	// never got; the feed attached anew each time.
	LostPulls uint64
	// LastError is the most recent error the feed met (attaching to the
	// stream, probing, syncing, a rejected event); it is kept after
	// recovery, with LastErrorAt. Empty when there was none.
	LastError string
	// LastErrorAt is when LastError happened.
	LastErrorAt time.Time
}

// Feed applies the revocation stream to an [Applier]. Create it with [New],
// run it with [Feed.Run]. Its methods are safe for concurrent use; Run may
// be called once.
type Feed struct {
	cfg     Config // defaults filled
	log     *slog.Logger
	tracer  trace.Tracer
	tracing bool          // a TracerProvider was given: without one, no spans at all
	created time.Time     // staleness origin before the first confirmation
	readyCh chan struct{} // closed when the feed becomes ready
	running atomic.Bool   // Run was called

	applied    atomic.Uint64
	rejected   atomic.Uint64
	lostPulls  atomic.Uint64
	appliedSeq atomic.Uint64

	// Read on every Verify, so atomics; written only by confirm, under mu.
	ready        atomic.Bool
	lastSyncNano atomic.Int64 // UnixNano of the last confirmation; 0 before

	// mu guards the fields below it.
	mu        sync.Mutex
	runStart  time.Time
	replayDur time.Duration
	lastErr   string
	lastErrAt time.Time
}

// New validates cfg and returns a feed that is not running yet.
func New(cfg Config) (*Feed, error) {
	if cfg.JetStream == nil {
		return nil, fmt.Errorf("%w: JetStream is required", ErrInvalidConfig)
	}
	if cfg.Applier == nil {
		return nil, fmt.Errorf("%w: Applier is required", ErrInvalidConfig)
	}
	if cfg.MinMaxAge < 0 {
		return nil, fmt.Errorf("%w: MinMaxAge must not be negative", ErrInvalidConfig)
	}
	if cfg.ProbeInterval < 0 {
		return nil, fmt.Errorf("%w: ProbeInterval must not be negative", ErrInvalidConfig)
	}
	if cfg.Stream == "" {
		cfg.Stream = events.DefaultStreamName
	}
	if cfg.ProbeInterval == 0 {
		cfg.ProbeInterval = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	tracing := cfg.TracerProvider != nil
	if !tracing {
		cfg.TracerProvider = noop.NewTracerProvider()
	}
	return &Feed{
		cfg:     cfg,
		log:     cfg.Logger.With("stream", cfg.Stream),
		tracer:  cfg.TracerProvider.Tracer("github.com/jwtrevoke/jwtrevoke/internal/feed"),
		created: cfg.Now(),
		readyCh: make(chan struct{}),
		tracing: tracing,
	}, nil
}

// Ready reports whether the feed has applied and synced everything the
// stream held when it started. It stays true afterwards: later trouble shows
// in [Feed.Staleness], not here.
func (f *Feed) Ready() bool { return f.ready.Load() }

// WaitReady blocks until the feed is ready or ctx ends, and then returns
// ctx's error.
func (f *Feed) WaitReady(ctx context.Context) error {
	select {
	case <-f.readyCh:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("feed: wait ready: %w", ctx.Err())
	}
}

// Staleness is an upper bound of how far behind the stream the applied state
// may be: the time since the feed last confirmed it had applied and synced
// everything the stream held, or, before the first confirmation, the time
// since [New].
func (f *Feed) Staleness() time.Duration { return f.StalenessAt(f.cfg.Now()) }

// StalenessAt is Staleness as of now, for callers that already read the
// clock (the verifier, once per request).
func (f *Feed) StalenessAt(now time.Time) time.Duration {
	since := f.lastSync()
	if since.IsZero() {
		since = f.created
	}
	return max(now.Sub(since), 0)
}

// lastSync is the instant of the last confirmation; zero before.
func (f *Feed) lastSync() time.Time {
	if n := f.lastSyncNano.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// Status returns a snapshot of the feed's progress.
func (f *Feed) Status() Status {
	now := f.cfg.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	return Status{
		Ready:          f.ready.Load(),
		AppliedSeq:     f.appliedSeq.Load(),
		LastSync:       f.lastSync(),
		Staleness:      f.StalenessAt(now),
		ReplayDuration: f.replayDur,
		Applied:        f.applied.Load(),
		Rejected:       f.rejected.Load(),
		LostPulls:      f.lostPulls.Load(),
		LastError:      f.lastErr,
		LastErrorAt:    f.lastErrAt,
	}
}

// Run consumes the stream until ctx ends, and then returns nil. It replays
// the stream from its first message, then follows it live.
//
// Trouble that may pass is not fatal: while the server is unreachable or the
// stream does not exist yet, Run retries with backoff (50 ms doubling to
// 2 s), the feed staying not ready (or growing stale); after a reconnect it
// resumes after the last message it processed. Run returns an error only
// when it cannot go on: the stream keeps events for less than
// [Config.MinMaxAge] ([ErrMaxAgeTooShort]), the connection was closed by its
// owner (wrapping nats.ErrConnectionClosed), or Run was already called
// ([ErrRunning]).
func (f *Feed) Run(ctx context.Context) error {
	if !f.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	f.mu.Lock()
	f.runStart = f.cfg.Now()
	f.mu.Unlock()

	l := &loop{f: f, ctx: ctx}
	backoff := minBackoff
	for {
		attached, err := l.consume(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, ErrMaxAgeTooShort) || errors.Is(err, nats.ErrConnectionClosed) {
			f.setErr(err)
			f.log.Error("feed stopped", "err", err)
			return err
		}
		if attached {
			backoff = minBackoff
		}
		f.setErr(err)
		f.log.Warn("feed detached from the stream, retrying", "err", err, "retry_in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// reject counts, logs and reports a message that is skipped.
func (f *Feed) reject(subject string, seq uint64, err error) {
	f.rejected.Add(1)
	f.setErr(err)
	f.log.Error("revocation event rejected", "subject", subject, "seq", seq, "err", err)
	if f.cfg.Observer != nil {
		f.cfg.Observer.EventRejected(subject, err)
	}
}

func (f *Feed) setErr(err error) {
	if err == nil {
		return
	}
	now := f.cfg.Now()
	f.mu.Lock()
	f.lastErr, f.lastErrAt = err.Error(), now
	f.mu.Unlock()
}
