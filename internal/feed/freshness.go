package feed

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// freshness is the proof in progress that the feed is current: the probes
// taken and not yet settled, and when the last one was taken.
type freshness struct {
	// marks are the probes not yet settled: at t0 the stream's last
	// message was at seq; once the feed has processed and synced through
	// seq, it was current at t0. In order of t0 (and of seq).
	marks     []mark
	lastProbe time.Time // real clock
}

// mark is one probe's answer: at t0 the stream's last message was seq.
//
// Settling it proves the feed was current at t0 only because every
// message the feed processes after the answer, up to seq, comes without
// a gap: messages up to the feed's position at the answer were read before
// the answer, when whatever the stream held at t0 was there or replaced by
// a message up to seq; messages after it were all read, none skipped. A
// gap (a message removed before it was read — replaced by a later one,
// perhaps past seq) drops the pending marks. Why waiting for seq alone is
// not enough: docs/failure-testing.md, "What the suite found".
type mark struct {
	t0  time.Time
	seq uint64
}

// maxMarks bounds the probes awaiting settlement; a feed that far behind
// skips probing until it catches up.
const maxMarks = 64

// reached forgets every mark the feed has caught up with at seq and
// returns the latest one's t0. The latest reached may have a seq below an
// earlier one's, when the stream's newest messages expired in between.
func (fr *freshness) reached(seq uint64) (time.Time, bool) {
	n := 0
	for i, m := range fr.marks {
		if m.seq <= seq {
			n = i + 1
		}
	}
	if n == 0 {
		return time.Time{}, false
	}
	t0 := fr.marks[n-1].t0
	fr.marks = append(fr.marks[:0], fr.marks[n:]...)
	return t0, true
}

// gap forgets the pending marks: a message was removed before it was read,
// and its replacement may lie past a mark's seq (see mark).
func (fr *freshness) gap() { fr.marks = fr.marks[:0] }

// settle confirms the latest probe the feed has caught up with, if
// everything applied is synced.
func (l *loop) settle() {
	if l.unsynced > 0 {
		return
	}
	if t0, ok := l.reached(l.pos.seq); ok {
		l.confirm(t0)
	}
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
	info, err := consumerInfo(ctx, l.att.cons)
	l.lastProbe = time.Now()
	if err == nil && l.notePull(info) {
		return
	}
	if err != nil {
		if l.ctx.Err() == nil {
			f.setErr(fmt.Errorf("feed: probe: %w", err))
			f.log.Debug("probe failed", "err", err)
		}
		// The server lost the consumer, or the node hosting it is down
		// (it went away with the stream's leadership, say), or nats.go
		// is recreating it. The ordered consumer would notice only after
		// missing heartbeats, seconds on, and its recreation may wait
		// 10 s for a leader, the feed growing stale meanwhile: attach
		// anew now, after the last message, on a node that is up.
		if consumerGone(err) {
			l.att.lost = fmt.Errorf("feed: the server lost the consumer, attaching anew after seq %d: %w", l.pos.seq, err)
			l.att.detach()
		}
		return
	}
	if l.pullCheckPending() {
		// Not ready before the server holds this attachment's pull
		// request (see checkPull): until then nothing proves that what
		// is published next will reach it.
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
	// events.StreamConfig never sets.)
	last, err := l.att.stream.GetLastMsgForSubject(ctx, ">")
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		// ">" reads the message at the stream's last sequence, which may
		// be gone (expired) while older ones live on — key revocations
		// never expire. Look for the last message that exists (slower:
		// the server searches its subjects; rare). A stream of several
		// subjects cannot be searched so: it is current only if empty.
		if l.att.filter != ">" {
			last, err = l.att.stream.GetLastMsgForSubject(ctx, l.att.filter)
		} else if info, ierr := l.att.stream.Info(ctx); ierr != nil || info.State.Msgs > 0 {
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

// pullCheckDue reports whether checkPull should run now: every pullRetry
// while it is pending.
func (l *loop) pullCheckDue() bool {
	return l.pullCheckPending() && time.Since(l.att.lastPullCheck) >= pullRetry
}

// pullCheckPending reports whether a feed that is not ready yet has still
// to see that the server holds its attachment's pull request: nothing
// received and no waiting request seen.
func (l *loop) pullCheckPending() bool {
	return !l.att.received && !l.att.pullHeld && !l.f.ready.Load()
}

// checkPull asks the server whether the consumer holds the feed's pull
// request. A pull request published before the new consumer's interest has
// reached this client's server (it lives on another node of a cluster that
// formed moments ago, say) is dropped without a word; nats.go would ask
// again only after two missed heartbeats, 2 s on (docs/propagation.md). A
// starting feed therefore becomes ready only once a message arrived or the
// consumer shows a waiting request, and attaches anew when neither happened
// within pullCheckAfter.
func (l *loop) checkPull() {
	l.att.lastPullCheck = time.Now()
	ctx, cancel := context.WithTimeout(l.ctx, max(l.f.cfg.ProbeInterval, time.Second))
	defer cancel()
	info, err := consumerInfo(ctx, l.att.cons)
	if err == nil {
		l.notePull(info) // a failed look-up is the probe's business
	}
}

// notePull reads the consumer's info for the state of the feed's pull
// request: a waiting request means the server holds it (a starting feed
// then probes at once, to become ready); none, for a starting attachment
// that has received nothing pullCheckAfter after it began, means it was
// lost: the feed attaches anew and notePull reports true.
func (l *loop) notePull(info *jetstream.ConsumerInfo) (lost bool) {
	if l.att.received || l.f.ready.Load() {
		return false
	}
	if info.NumWaiting > 0 {
		if !l.att.pullHeld {
			l.att.pullHeld = true
			l.lastProbe = time.Time{}
		}
		return false
	}
	if l.att.pullHeld || time.Since(l.att.since) < pullCheckAfter {
		return false
	}
	l.f.lostPulls.Add(1)
	l.att.lost = fmt.Errorf("feed: the server holds no pull request of this feed %s after attaching; attaching anew after seq %d",
		pullCheckAfter, l.pos.seq)
	l.att.detach()
	return true
}

// errCodeConsumerOffline is JetStream's error code for a consumer whose
// node is unreachable ("consumer is offline"); nats.go has no constant.
const errCodeConsumerOffline jetstream.ErrorCode = 10119

// consumerGone reports whether err says the server no longer serves the
// consumer: deleted, lost, or hosted on a node that is down.
func consumerGone(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, errConsumerStuck) ||
		errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeConsumerOffline
}

// errConsumerStuck is consumerInfo's error when the consumer did not
// answer within the probe's time.
var errConsumerStuck = errors.New("feed: the consumer did not answer in time")

// consumerInfo is cons.Info bounded by ctx. nats.go's ordered consumer
// holds its lock while it recreates its server-side consumer — a request
// that waits up to 10 s for the stream's leader, whatever ctx says — and
// Info waits for that lock (nats.go v1.55.0): after a leader's node died
// the feed's loop would stall that long. Past ctx it returns
// errConsumerStuck, and the look-up ends on its own goroutine.
func consumerInfo(ctx context.Context, cons jetstream.Consumer) (*jetstream.ConsumerInfo, error) {
	type answer struct {
		info *jetstream.ConsumerInfo
		err  error
	}
	done := make(chan answer, 1)
	go func() {
		info, err := cons.Info(ctx)
		done <- answer{info, err}
	}()
	select {
	case a := <-done:
		return a.info, a.err
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w", errConsumerStuck, ctx.Err())
	}
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
	if first {
		f.ready.Store(true)
		close(f.readyCh)
		f.log.Info("revocation replay done", "seq", l.pos.seq, "applied", f.applied.Load(),
			"rejected", f.rejected.Load(), "took", replay)
	}
}
