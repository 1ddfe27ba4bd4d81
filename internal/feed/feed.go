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
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// SpanName is the name of the span that wraps the application of one event.
// Its parent is the trace context the revoker put in the message headers, so
// one trace shows the revocation request and every verifier applying it.
const SpanName = "jwtrevoke.revocation.apply"

// Span attributes set on every [SpanName] span.
const (
	AttrEventKind = attribute.Key("jwtrevoke.event.kind")
	AttrEventID   = attribute.Key("jwtrevoke.event.id")
	AttrStreamSeq = attribute.Key("jwtrevoke.stream.seq")
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
	// stream's one-message-per-subject compaction, so it is rejected. The
	// error also wraps [events.ErrInvalid].
	ErrWrongSubject = errors.New("feed: event published on another subject than its own")
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
	// Synced is called each time the feed confirms it had applied and
	// synced everything the stream held at some instant (see
	// [Feed.Staleness]). replayDone is true on the call that ends the
	// initial replay and false afterwards. Both methods report an event or
	// the end of the replay before the feed reports itself ready: once
	// [Feed.WaitReady] returns, the observer has heard of everything the
	// replay applied.
	Synced(replayDone bool)
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
	// Observer, when set, is told of every applied or rejected event and
	// every confirmed sync.
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
	created time.Time     // staleness origin before the first confirmation
	readyCh chan struct{} // closed when the feed becomes ready
	running atomic.Bool   // Run was called

	applied    atomic.Uint64
	rejected   atomic.Uint64
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

	// Owned by the goroutine running Run.
	lastSeq       uint64    // stream sequence of the last message processed
	streamCreated time.Time // creation time of the stream lastSeq refers to
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
	if cfg.TracerProvider == nil {
		cfg.TracerProvider = noop.NewTracerProvider()
	}
	return &Feed{
		cfg:     cfg,
		log:     cfg.Logger.With("stream", cfg.Stream),
		tracer:  cfg.TracerProvider.Tracer("github.com/jwtrevoke/jwtrevoke/internal/feed"),
		created: cfg.Now(),
		readyCh: make(chan struct{}),
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

	// The loop state outlives each attachment: events applied but not yet
	// synced when the consumer failed are still to be synced.
	l := &loop{f: f, ctx: ctx}
	backoff := minBackoff
	for {
		attached, err := f.consume(ctx, l)
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

// consume attaches an ordered consumer to the stream, resuming after
// f.lastSeq, and processes messages with l until ctx ends or the consumer
// fails. attached reports whether it got as far as consuming.
func (f *Feed) consume(ctx context.Context, l *loop) (attached bool, err error) {
	stream, err := f.cfg.JetStream.Stream(ctx, f.cfg.Stream)
	if err != nil {
		return false, fmt.Errorf("feed: stream %s: %w", f.cfg.Stream, err)
	}
	maxAge := stream.CachedInfo().Config.MaxAge
	if f.cfg.MinMaxAge > 0 && maxAge > 0 && maxAge < f.cfg.MinMaxAge {
		return false, fmt.Errorf("%w: stream %s keeps events %s, need at least %s",
			ErrMaxAgeTooShort, f.cfg.Stream, maxAge, f.cfg.MinMaxAge)
	}
	if stream.CachedInfo().Config.AllowDirect {
		f.log.Warn("revocation stream allows direct gets: freshness probes may be answered by a lagging follower; turn allow_direct off",
			"stream", f.cfg.Stream)
	}
	// A stream deleted and created again numbers its messages from 1:
	// resuming after lastSeq would skip them, so replay it all.
	if created := stream.CachedInfo().Created; !created.Equal(f.streamCreated) {
		if !f.streamCreated.IsZero() {
			f.log.Warn("revocation stream was recreated, replaying it", "created", created)
		}
		f.streamCreated, f.lastSeq = created, 0
		f.appliedSeq.Store(0)
		l.marks = l.marks[:0] // sequences of the old stream
	}
	occ := jetstream.OrderedConsumerConfig{
		DeliverPolicy:    jetstream.DeliverAllPolicy,
		MaxResetAttempts: resetAttempts,
	}
	if f.lastSeq > 0 {
		occ.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		occ.OptStartSeq = f.lastSeq + 1
	}
	cons, err := stream.OrderedConsumer(ctx, occ)
	if err != nil {
		return false, fmt.Errorf("feed: create consumer: %w", err)
	}
	// A pull request the server never serves (lost while the consumer
	// was being placed, say) is noticed only after two missed
	// heartbeats; nats.go's default of 5 s left replicas receiving
	// nothing for 10 s in about one benchmark run in five.
	it, err := cons.Messages(jetstream.PullMaxMessages(pullBatch),
		jetstream.PullExpiry(pullExpiry), jetstream.PullHeartbeat(pullHeartbeat))
	if err != nil {
		return false, fmt.Errorf("feed: consume: %w", err)
	}
	defer it.Stop()
	// Next does not watch ctx while the consumer resets itself; stopping
	// the iterator ends any wait.
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	f.log.Debug("feed attached", "from_seq", f.lastSeq+1)

	// Decoding runs on a reader goroutine, applying on this one: replay
	// then uses two cores. The reader ends when the iterator does (ctx
	// ended, connection closed, consumer lost) and closes batches; this
	// loop always drains batches to the end, so the reader never blocks
	// for ever.
	batches := make(chan []item, 4)
	readErr := make(chan error, 1)
	go f.read(it, batches, readErr)

	l.stream, l.cons, l.detach, l.lost = stream, cons, it.Stop, nil
	l.filter = ">"
	if subjects := stream.CachedInfo().Config.Subjects; len(subjects) == 1 {
		l.filter = subjects[0]
	}
	l.lastProbe = time.Time{} // probe at once: an empty stream is ready now
	l.housekeep()
	timer := time.NewTimer(l.wait())
	defer timer.Stop()
	for {
		select {
		case b, ok := <-batches:
			if !ok {
				err := <-readErr
				if l.lost != nil {
					err = l.lost
				}
				return true, err
			}
			for i := range b {
				l.handle(&b[i])
			}
		case <-timer.C:
		}
		l.housekeep()
		timer.Reset(l.wait())
	}
}

// item is one message read from the stream, decoded by the reader.
type item struct {
	msg  jetstream.Msg
	meta *jetstream.MsgMetadata // nil when the message has no JetStream metadata
	ev   events.Event           // the decoded event, if it decoded
	err  error                  // why the message is rejected; nil for a valid event
}

// read takes messages from it, decodes them and sends them in batches to
// out, until it fails or is stopped; then it sends the error to errc and
// closes out.
func (f *Feed) read(it jetstream.MessagesContext, out chan<- []item, errc chan<- error) {
	defer close(out)
	batch := make([]item, 0, readBatch)
	var first time.Time // real clock, when the batch got its first item
	flush := func() {
		if len(batch) > 0 {
			out <- batch
			batch = make([]item, 0, readBatch)
		}
	}
	for {
		var msg jetstream.Msg
		var err error
		if len(batch) == 0 {
			msg, err = it.Next()
		} else {
			msg, err = it.Next(jetstream.NextMaxWait(max(flushAfter-time.Since(first), time.Millisecond)))
		}
		if errors.Is(err, nats.ErrTimeout) {
			flush()
			continue
		}
		if err != nil {
			flush()
			errc <- fmt.Errorf("feed: next message: %w", err)
			return
		}
		if len(batch) == 0 {
			first = time.Now()
		}
		batch = append(batch, f.decode(msg))
		last := &batch[len(batch)-1]
		if len(batch) == cap(batch) || last.meta != nil && last.meta.NumPending == 0 || time.Since(first) >= flushAfter {
			flush()
		}
	}
}

// decode reads the metadata and the event of msg and checks that the event
// is on its own subject.
func (f *Feed) decode(msg jetstream.Msg) item {
	it := item{msg: msg}
	meta, err := msg.Metadata()
	if err != nil {
		it.err = fmt.Errorf("feed: message metadata: %w", err)
		return it
	}
	it.meta = meta
	e, err := events.Decode(msg.Data())
	if err != nil {
		it.err = err
		return it
	}
	it.ev = e
	if subj, err := e.Subject(); err != nil || subj != msg.Subject() {
		it.err = fmt.Errorf("%w (%w)", ErrWrongSubject, events.ErrInvalid)
	}
	return it
}

// loop is the applying side of the feed; it lives on the goroutine running
// Run.
type loop struct {
	f      *Feed
	ctx    context.Context
	stream jetstream.Stream   // of the current attachment
	cons   jetstream.Consumer // of the current attachment
	filter string             // the stream's subjects, as one filter
	// detach ends the current attachment (stops its iterator); the feed
	// then attaches anew. lost is why, when the probe found the consumer
	// gone.
	detach func()
	lost   error

	// marks are the probes not yet settled: at t0 the stream's last
	// message was at seq; once the feed has processed and synced through
	// seq, it was current at t0. In order of t0 (and of seq).
	marks []mark

	unsynced    int       // events applied since the last successful Sync
	syncFailing bool      // the last Sync failed
	lastSyncTry time.Time // real clock
	lastProbe   time.Time // real clock
}

// mark is one probe's answer: at t0 the stream's last message was seq.
//
// Settling it proves the feed was current at t0 only because every
// message the feed processes after the answer, up to seq, comes without
// a gap: messages up to the feed's position at the answer were read before
// the answer, when whatever the stream held at t0 was there or replaced by
// a message up to seq; messages after it were all read, none skipped. A
// gap (a message removed before it was read — replaced by a later one,
// perhaps past seq) drops the pending marks. (Waiting for seq alone was
// not enough: the failure suite caught a restarted replica ready 113 ms
// after its start without 14 revocations whose messages were replaced
// while it replayed.)
type mark struct {
	t0  time.Time
	seq uint64
}

// maxMarks bounds the probes awaiting settlement; a feed that far behind
// skips probing until it catches up.
const maxMarks = 64

// settle confirms the latest probe the feed has caught up with, if
// everything applied is synced, and forgets it and every probe taken
// before it.
func (l *loop) settle() {
	f := l.f
	if l.unsynced > 0 {
		return
	}
	// The latest mark reached; its seq may be below an earlier one's
	// when the stream's newest messages expired in between.
	n := 0
	for i, m := range l.marks {
		if m.seq <= f.lastSeq {
			n = i + 1
		}
	}
	if n == 0 {
		return
	}
	t0 := l.marks[n-1].t0
	l.marks = append(l.marks[:0], l.marks[n:]...)
	l.confirm(t0)
}

// wait returns how long Next may wait before housekeeping is due.
func (l *loop) wait() time.Duration {
	pi := l.f.cfg.ProbeInterval
	w := pi - time.Since(l.lastProbe)
	if l.unsynced > 0 {
		every := syncEvery
		if l.syncFailing {
			every = pi
		}
		w = min(w, every-time.Since(l.lastSyncTry))
	}
	return max(w, time.Millisecond)
}

// housekeep syncs applied events that waited long enough and probes the
// consumer when a probe is due.
func (l *loop) housekeep() {
	if l.unsynced > 0 {
		every := syncEvery
		if l.syncFailing {
			every = l.f.cfg.ProbeInterval
		}
		if time.Since(l.lastSyncTry) >= every {
			l.sync()
			l.settle()
		}
	}
	if time.Since(l.lastProbe) >= l.f.cfg.ProbeInterval {
		l.probe()
	}
}

// handle processes one message: apply inside a span; sync when caught up
// or when a batch is full; confirm freshness when nothing is pending behind
// it.
func (l *loop) handle(it *item) {
	f := l.f
	if it.meta == nil {
		// Not a JetStream message: nothing to position or apply.
		f.reject(it.msg.Subject(), 0, it.err)
		return
	}
	meta := it.meta
	ok := l.apply(it)
	// A gap in the sequence is a message removed before it was read. If
	// it was removed after a pending probe's answer, its replacement may
	// lie past the probe's last message, so that probe proves nothing:
	// forget the pending probes (see mark).
	if meta.Sequence.Stream != f.lastSeq+1 {
		l.marks = l.marks[:0]
	}
	f.lastSeq = meta.Sequence.Stream

	caughtUp := meta.NumPending == 0
	if l.unsynced > 0 && !l.syncFailing && (caughtUp || l.unsynced >= syncBatch) {
		l.sync()
	}
	// Reported before a confirmation it may complete: whoever sees the
	// feed ready has seen every event it applied reported.
	if ok && f.cfg.Observer != nil {
		f.cfg.Observer.EventApplied(it.ev, meta.Timestamp, f.cfg.Now())
	}
	if l.unsynced == 0 {
		f.appliedSeq.Store(f.lastSeq)
		l.settle()
	}
	// Caught up as the consumer sees it: confirm with the stream's leader
	// (probe) soon, at once while not ready, else at most four times a
	// ProbeInterval.
	if caughtUp && (!f.ready.Load() || time.Since(l.lastProbe) >= f.cfg.ProbeInterval/4) {
		l.lastProbe = time.Time{}
	}
}

// apply applies one decoded message inside its span, or rejects it, and
// reports whether the event was applied.
func (l *loop) apply(it *item) bool {
	f := l.f
	parent := propagation.TraceContext{}.Extract(l.ctx, events.HeaderCarrier(it.msg.Headers()))
	_, span := f.tracer.Start(parent, SpanName,
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(AttrStreamSeq.Int64(int64(it.meta.Sequence.Stream))))
	defer span.End()
	if it.ev.ID != "" {
		span.SetAttributes(AttrEventKind.String(string(it.ev.Kind)), AttrEventID.String(it.ev.ID))
	}

	err := it.err
	if err == nil {
		if _, aerr := f.cfg.Applier.Apply(it.ev); aerr != nil {
			err = fmt.Errorf("%w: event %s: %w", ErrApply, it.ev.ID, aerr)
		}
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "event rejected")
		f.reject(it.msg.Subject(), it.meta.Sequence.Stream, err)
		return false
	}
	l.unsynced++
	f.applied.Add(1)
	return true
}

// sync makes the applied events visible and, on success, advances the
// synced position. On failure the events stay unsynced and Sync is retried
// every ProbeInterval; freshness is not confirmed meanwhile.
func (l *loop) sync() {
	f := l.f
	l.lastSyncTry = time.Now()
	if err := f.cfg.Applier.Sync(); err != nil {
		err = fmt.Errorf("feed: sync: %w", err)
		f.setErr(err)
		if !l.syncFailing {
			f.log.Error("revocation state cannot hold the applied events", "err", err, "unsynced", l.unsynced)
		}
		l.syncFailing = true
		return
	}
	if l.syncFailing {
		f.log.Info("revocation state synced again", "seq", f.lastSeq)
	}
	l.syncFailing = false
	l.unsynced = 0
	f.appliedSeq.Store(f.lastSeq)
}

// probe asks the server whether the consumer is alive (replacing it at
// once when it is not) and the stream's leader for the stream's last
// message, and records the answer as a mark that [loop.settle] confirms
// once the feed has processed and synced through it.
func (l *loop) probe() {
	f := l.f
	l.lastProbe = time.Now()
	if l.unsynced > 0 {
		return // housekeep retries Sync on its own schedule
	}
	if len(l.marks) >= maxMarks {
		return // far behind: settle what is asked already first
	}
	t0 := f.cfg.Now()
	ctx, cancel := context.WithTimeout(l.ctx, max(f.cfg.ProbeInterval, time.Second))
	defer cancel()
	_, err := l.cons.Info(ctx)
	l.lastProbe = time.Now()
	if err != nil {
		if l.ctx.Err() == nil {
			f.setErr(fmt.Errorf("feed: probe: %w", err))
			f.log.Debug("probe failed", "err", err)
		}
		// The server lost the consumer, or the node hosting it is down
		// (it went away with the stream's leadership, say). The ordered
		// consumer would notice only after missing heartbeats, seconds
		// on, the feed growing stale meanwhile: attach anew now, after
		// the last message, on a node that is up.
		if consumerGone(err) {
			l.lost = fmt.Errorf("feed: the server lost the consumer, attaching anew after seq %d: %w", f.lastSeq, err)
			l.detach()
		}
		return
	}
	// Nothing pending at the consumer proves nothing by itself: an R1
	// consumer of a replicated stream may live on a follower, whose copy
	// of the stream lags the leader's (the leader acknowledged a publish
	// once a quorum stored it). Only the leader knows the last message of
	// an acknowledged publish: its answer, given after t0, names a
	// message at least as late as any acknowledged before t0, and if it
	// was processed, so was everything the stream held at t0. (Message
	// get goes to the leader unless the stream allows direct gets, which
	// events.StreamConfig never sets.) Found by the failure suite: with
	// 100k events preloaded, a replica reported itself current 2.6 s after
	// an acknowledgement it had not yet seen.
	last, err := l.stream.GetLastMsgForSubject(ctx, ">")
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		// ">" reads the message at the stream's last sequence, which may
		// be gone (expired) while older ones live on — key revocations
		// never expire. Look for the last message that exists (slower:
		// the server searches its subjects; rare). A stream of several
		// subjects cannot be searched so: it is current only if empty.
		if l.filter != ">" {
			last, err = l.stream.GetLastMsgForSubject(ctx, l.filter)
		} else if info, ierr := l.stream.Info(ctx); ierr != nil || info.State.Msgs > 0 {
			return // cannot prove it: no mark
		}
	}
	l.lastProbe = time.Now()
	var seq uint64 // 0: an empty stream
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
	case err != nil:
		if l.ctx.Err() == nil {
			f.setErr(fmt.Errorf("feed: probe the stream's last message: %w", err))
		}
		return
	default:
		seq = last.Sequence
	}
	// Settled at once if already processed, else when the feed gets there:
	// while events keep coming, the leader's last one is often still on
	// its way to this feed.
	l.marks = append(l.marks, mark{t0: t0, seq: seq})
	l.settle()
}

// errCodeConsumerOffline is JetStream's error code for a consumer whose
// node is unreachable ("consumer is offline"); nats.go has no constant.
const errCodeConsumerOffline jetstream.ErrorCode = 10119

// consumerGone reports whether err says the server no longer serves the
// consumer: deleted, lost, or hosted on a node that is down.
func consumerGone(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, jetstream.ErrConsumerNotFound) ||
		errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeConsumerOffline
}

// confirm records that at instant t everything the stream held was applied
// and synced; the first confirmation makes the feed ready.
func (l *loop) confirm(t time.Time) {
	f := l.f
	f.mu.Lock()
	if t.After(f.lastSync()) {
		f.lastSyncNano.Store(t.UnixNano())
	}
	first := !f.ready.Load() // only this goroutine sets it
	if first {
		// Until now, not t: t is when the settling probe was asked,
		// which may lie well inside the replay.
		f.replayDur = max(f.cfg.Now().Sub(f.runStart), 0)
	}
	replay := f.replayDur
	f.mu.Unlock()
	// The observer hears first: whoever sees the feed ready has seen it
	// reported.
	if f.cfg.Observer != nil {
		f.cfg.Observer.Synced(first)
	}
	if first {
		f.ready.Store(true)
		close(f.readyCh)
		f.log.Info("revocation replay done", "seq", f.lastSeq, "applied", f.applied.Load(),
			"rejected", f.rejected.Load(), "took", replay)
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
