package feed

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/jwtrevoke/jwtrevoke/pkg/events"
)

// loop is the state of a running feed, owned by the goroutine running
// [Feed.Run] and kept across attachments (events applied but not yet synced
// when a consumer failed are still to be synced): the position in the
// stream, the current attachment, the sync bookkeeping and the pending
// freshness proof. The [Feed] holds only what other goroutines read.
type loop struct {
	f   *Feed
	ctx context.Context
	pos cursor
	att attachment
	freshness

	unsynced    int       // events applied since the last successful Sync
	syncFailing bool      // the last Sync failed
	lastSyncTry time.Time // real clock
}

// cursor is where the feed is in the stream.
type cursor struct {
	seq     uint64    // stream sequence of the last message processed
	created time.Time // creation time of the stream seq refers to
}

// attachment is the consumer the feed currently reads through.
type attachment struct {
	stream jetstream.Stream
	cons   jetstream.Consumer
	filter string // the stream's subjects, as one filter
	// detach ends the attachment (stops its iterator); the feed then
	// attaches anew. lost is why, when a probe found the consumer gone or
	// the first pull request lost.
	detach func()
	lost   error
	// since is when the attachment began (real clock); received is set by
	// the first message, pullHeld once the consumer showed a waiting pull
	// request; lastPullCheck is when checkPull last asked.
	since         time.Time
	received      bool
	pullHeld      bool
	lastPullCheck time.Time
}

// consume attaches an ordered consumer to the stream, resuming after the
// cursor, and processes messages until ctx ends or the consumer fails.
// attached reports whether it got as far as consuming.
func (l *loop) consume(ctx context.Context) (attached bool, err error) {
	f := l.f
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
	if created := stream.CachedInfo().Created; !created.Equal(l.pos.created) {
		if !l.pos.created.IsZero() {
			f.log.Warn("revocation stream was recreated, replaying it", "created", created)
		}
		l.pos = cursor{created: created}
		f.appliedSeq.Store(0)
		l.gap() // sequences of the old stream
	}
	occ := jetstream.OrderedConsumerConfig{
		DeliverPolicy:    jetstream.DeliverAllPolicy,
		MaxResetAttempts: resetAttempts,
	}
	if l.pos.seq > 0 {
		occ.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		occ.OptStartSeq = l.pos.seq + 1
	}
	cons, err := stream.OrderedConsumer(ctx, occ)
	if err != nil {
		return false, fmt.Errorf("feed: create consumer: %w", err)
	}
	// A pull request the server never serves is noticed only after two
	// missed heartbeats: short heartbeats keep that stall short
	// (docs/propagation.md).
	it, err := cons.Messages(jetstream.PullMaxMessages(pullBatch),
		jetstream.PullExpiry(pullExpiry), jetstream.PullHeartbeat(pullHeartbeat))
	if err != nil {
		return false, fmt.Errorf("feed: consume: %w", err)
	}
	// The reader's Next watches actx: stopping the iterator is not enough
	// to end it. nats.go's ordered consumer holds its lock while it
	// recreates its consumer (a request of up to 10 s), so Stop can wait
	// that long, and a Stop that lands during such a reset leaves the new
	// inner subscription running (nats.go v1.55.0). detach therefore
	// cancels actx and stops the iterator without waiting for it, and the
	// loop below returns as soon as actx ends; whatever the reader still
	// sends is drained in the background.
	actx, cancel := context.WithCancel(ctx)
	detach := func() {
		cancel()
		go it.Stop()
	}
	f.log.Debug("feed attached", "from_seq", l.pos.seq+1)

	// Decoding runs on a reader goroutine, applying on this one: replay
	// then uses two cores. The reader ends when Next fails (actx ended,
	// connection closed, consumer lost) and closes batches.
	batches := make(chan []item, 4)
	free := make(chan []item, cap(batches)+2) // handled batches, for reuse
	readErr := make(chan error, 1)
	go f.read(actx, it, batches, free, readErr)
	defer func() {
		detach()
		go func() { // until the reader ends
			for range batches {
			}
		}()
	}()

	l.att = attachment{stream: stream, cons: cons, filter: ">", detach: detach, since: time.Now()}
	if subjects := stream.CachedInfo().Config.Subjects; len(subjects) == 1 {
		l.att.filter = subjects[0]
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
				if l.att.lost != nil {
					err = l.att.lost
				}
				return true, err
			}
			for i := range b {
				l.handle(&b[i])
			}
			clear(b) // drop the messages before the batch is reused
			select {
			case free <- b[:0]:
			default:
			}
		case <-timer.C:
		case <-actx.Done():
			return true, l.att.lost // nil when ctx ended: Run returns
		}
		l.housekeep()
		timer.Reset(l.wait())
	}
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
	if l.pullCheckPending() {
		w = min(w, pullRetry-time.Since(l.att.lastPullCheck))
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
	if l.pullCheckDue() {
		l.checkPull()
	}
}

// handle processes one message: apply its events inside a span; sync when
// caught up or when a batch is full; confirm freshness when nothing is
// pending behind it.
func (l *loop) handle(it *item) {
	f := l.f
	l.att.received = true
	if it.meta == nil {
		// Not a JetStream message: nothing to position or apply.
		f.reject(it.msg.Subject(), 0, it.err)
		return
	}
	meta := it.meta
	refused := l.apply(it)
	// A gap in the sequence is a message removed before it was read. If
	// it was removed after a pending probe's answer, its replacement may
	// lie past the probe's last message, so that probe proves nothing:
	// forget the pending probes (see mark).
	if meta.Sequence.Stream != l.pos.seq+1 {
		l.gap()
	}
	l.pos.seq = meta.Sequence.Stream

	caughtUp := meta.NumPending == 0
	if l.unsynced > 0 && !l.syncFailing && (caughtUp || l.unsynced >= syncBatch) {
		l.sync()
	}
	// Reported before a confirmation it may complete: whoever sees the
	// feed ready has seen every event it applied reported.
	if f.cfg.Observer != nil {
		now := f.cfg.Now()
		for i := range it.count() {
			if !slices.Contains(refused, i) {
				f.cfg.Observer.EventApplied(*it.event(i), meta.Timestamp, now)
			}
		}
	}
	if l.unsynced == 0 {
		f.appliedSeq.Store(l.pos.seq)
		l.settle()
	}
	// Caught up as the consumer sees it: confirm with the stream's leader
	// (probe) soon, at once while not ready, else at most four times a
	// ProbeInterval.
	if caughtUp && (!f.ready.Load() || time.Since(l.lastProbe) >= f.cfg.ProbeInterval/4) {
		l.lastProbe = time.Time{}
	}
}

// apply applies the events of one decoded message inside its span, or
// rejects the message, and returns the indexes of the events the applier
// refused (each rejected on its own; the others stay applied).
func (l *loop) apply(it *item) (refused []int) {
	f := l.f
	span := noSpan
	if f.tracing {
		span = l.startSpan(it)
	}
	defer span.End()

	reject := func(err error) {
		span.RecordError(err)
		span.SetStatus(codes.Error, "event rejected")
		f.reject(it.msg.Subject(), it.meta.Sequence.Stream, err)
	}
	if it.err != nil {
		reject(it.err)
		return nil
	}
	for i := range it.count() {
		e := it.event(i)
		if _, err := f.cfg.Applier.Apply(*e); err != nil {
			reject(fmt.Errorf("%w: event %s: %w", ErrApply, e.ID, err))
			refused = append(refused, i)
			continue
		}
		l.unsynced++
		f.applied.Add(1)
	}
	return refused
}

// noSpan is the span of an event applied without tracing: a no-op.
var noSpan = trace.SpanFromContext(context.Background())

// startSpan starts the span of one event, a child of the trace context in
// its headers.
func (l *loop) startSpan(it *item) trace.Span {
	parent := propagation.TraceContext{}.Extract(l.ctx, events.HeaderCarrier(it.msg.Headers()))
	_, span := l.f.tracer.Start(parent, SpanName,
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(AttrStreamSeq.Int64(int64(it.meta.Sequence.Stream))))
	if it.ev.ID != "" {
		span.SetAttributes(AttrEventKind.String(string(it.ev.Kind)), AttrEventID.String(it.ev.ID))
	}
	if len(it.more) > 0 {
		span.SetAttributes(AttrBatchEvents.Int(it.count()))
	}
	return span
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
		f.log.Info("revocation state synced again", "seq", l.pos.seq)
	}
	l.syncFailing = false
	l.unsynced = 0
	f.appliedSeq.Store(l.pos.seq)
}
