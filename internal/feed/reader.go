package feed

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jwtrevoke/jwtrevoke/pkg/events"
)

// item is one message read from the stream, decoded by the reader.
type item struct {
	msg  jetstream.Msg
	meta *jetstream.MsgMetadata // nil when the message has no JetStream metadata
	// ev is the message's event, or a batch message's first; more are a
	// batch's others, in order. Both are zero when err is set.
	ev   events.Event
	more []events.Event
	err  error // why the message is refused; nil for a valid one
}

// count is how many events it carries.
func (it *item) count() int {
	if it.err != nil {
		return 0
	}
	return 1 + len(it.more)
}

// event returns the i-th of its events, i < count.
func (it *item) event(i int) *events.Event {
	if i == 0 {
		return &it.ev
	}
	return &it.more[i-1]
}

// read takes messages from it, decodes them and sends them in batches to
// out, until it fails, is stopped or ctx ends; then it sends the error to
// errc and closes out. Batches come from free when the consumer has handed one back
// (emptied), so a replay does not allocate a batch per readBatch messages.
func (f *Feed) read(ctx context.Context, it jetstream.MessagesContext, out chan<- []item, free <-chan []item, errc chan<- error) {
	defer close(out)
	fresh := func() []item {
		select {
		case b := <-free:
			return b
		default:
			return make([]item, 0, readBatch)
		}
	}
	batch := fresh()
	// The options are kept as slices: a variadic call with a fresh
	// argument list allocates it, once per message.
	next := []jetstream.NextOpt{jetstream.NextContext(ctx)} // every wait on an empty batch
	var (
		first time.Time // real clock, when the batch got its first item
		// wait ends a wait for more items flushAfter after first: one
		// deadline per batch, not a timer per message (NextMaxWait).
		wait     []jetstream.NextOpt
		stopWait context.CancelFunc
	)
	flush := func() {
		if stopWait != nil {
			stopWait()
			wait, stopWait = nil, nil
		}
		if len(batch) > 0 {
			out <- batch
			batch = fresh()
		}
	}
	for {
		var msg jetstream.Msg
		var err error
		if len(batch) == 0 {
			msg, err = it.Next(next...)
		} else {
			if wait == nil {
				dctx, cancel := context.WithDeadline(ctx, first.Add(flushAfter))
				wait, stopWait = []jetstream.NextOpt{jetstream.NextContext(dctx)}, cancel
			}
			msg, err = it.Next(wait...)
		}
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
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

// decode reads the metadata and the events of msg, by the events
// package's rule for a message ([events.DecodeMsg]: one event on its own
// subject, or a batch, all or nothing).
func (f *Feed) decode(msg jetstream.Msg) item {
	it := item{msg: msg}
	meta, err := msg.Metadata()
	if err != nil {
		it.err = fmt.Errorf("feed: message metadata: %w", err)
		return it
	}
	it.meta = meta
	it.ev, it.more, it.err = events.DecodeMsg(msg.Subject(), msg.Data())
	return it
}
