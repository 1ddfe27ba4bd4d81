package verifier

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/jwtrevoke/jwtrevoke/pkg/events"
)

// meterName is the instrumentation scope of every verifier instrument.
const meterName = "github.com/jwtrevoke/jwtrevoke/pkg/verifier"

// metrics holds the verifier's instruments. Verify only increments atomic
// counters (no allocation on the hot path); an observable callback reports
// them. It also receives the feed's events (feed.Observer).
type metrics struct {
	v *Verifier

	// blocks count Verify results, counterShards blocks of whole cache
	// lines: in each block index 0 is "ok", 1+i is reasons[i], the last
	// used one is "internal". A Verify adds to the block its P holds in
	// shard (a sync.Pool keeps one per P), so cores rarely write the same
	// cache line: one shared counter made Verify on two cores slower than
	// on one, and a random block per call still moved a line between the
	// cores about every other call.
	blocks []counterBlock
	shard  sync.Pool // of *counterBlock
	next   atomic.Uint32

	applied  metric.Int64Counter
	kinds    map[events.Kind]kindOptions // built once: one per event is a replay's garbage
	rejected metric.Int64Counter
	lag      metric.Float64Histogram
	reg      metric.Registration
}

func newMetrics(v *Verifier) (*metrics, error) {
	mp := v.cfg.MeterProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	meter := mp.Meter(meterName)
	m := newCounters()
	m.v = v
	m.kinds = make(map[events.Kind]kindOptions)
	for _, k := range events.Kinds() {
		m.kinds[k] = newKindOptions(k)
	}
	var errs []error
	must := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	var err error
	m.applied, err = meter.Int64Counter("jwtrevoke.verifier.events.applied",
		metric.WithDescription("Revocation events applied to the local state"), metric.WithUnit("{event}"))
	must(err)
	m.rejected, err = meter.Int64Counter("jwtrevoke.verifier.events.rejected",
		metric.WithDescription("Stream messages refused as invalid events (skipped, never partly applied)"), metric.WithUnit("{event}"))
	must(err)
	m.lag, err = meter.Float64Histogram("jwtrevoke.verifier.propagation.lag",
		metric.WithDescription("Time from a revocation's issue to its application here"), metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
	must(err)
	verifications, err := meter.Int64ObservableCounter("jwtrevoke.verifier.verifications",
		metric.WithDescription("Verify calls by outcome (accepted, rejected, unavailable) and reason"), metric.WithUnit("{call}"))
	must(err)
	held, err := meter.Int64ObservableGauge("jwtrevoke.verifier.revocations.held",
		metric.WithDescription("Live revocations held in memory"), metric.WithUnit("{revocation}"))
	must(err)
	used, err := meter.Float64ObservableGauge("jwtrevoke.verifier.capacity.used",
		metric.WithDescription("Share of the revocation capacity in use (1 = full; past it the verifier fails closed)"), metric.WithUnit("1"))
	must(err)
	over, err := meter.Int64ObservableGauge("jwtrevoke.verifier.capacity.exceeded",
		metric.WithDescription("1 while the verifier fails closed because live revocations exceeded capacity"))
	must(err)
	staleness, err := meter.Float64ObservableGauge("jwtrevoke.verifier.staleness",
		metric.WithDescription("Upper bound of how far behind the revocation stream the state may be"), metric.WithUnit("s"))
	must(err)
	replay, err := meter.Float64ObservableGauge("jwtrevoke.verifier.replay.duration",
		metric.WithDescription("Time from start until the stream was replayed (ready)"), metric.WithUnit("s"))
	must(err)
	ready, err := meter.Int64ObservableGauge("jwtrevoke.verifier.ready",
		metric.WithDescription("1 when the verifier has replayed the stream and can decide"))
	must(err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	kinds := len(reasons) + 2
	outcomeAttrs := make([]metric.ObserveOption, kinds)
	for i := range outcomeAttrs {
		code, outcome := "ok", "accepted"
		switch {
		case i == kinds-1:
			code, outcome = "internal", "unavailable"
		case i > 0:
			code = reasons[i-1].code
			outcome = "rejected"
			if reasons[i-1].class == ErrUnavailable {
				outcome = "unavailable"
			}
		}
		outcomeAttrs[i] = metric.WithAttributes(attribute.String("outcome", outcome), attribute.String("reason", code))
	}
	m.reg, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for i := range kinds {
			o.ObserveInt64(verifications, m.total(i), outcomeAttrs[i])
		}
		h := v.Health()
		o.ObserveInt64(held, h.Held)
		if h.Capacity > 0 {
			o.ObserveFloat64(used, float64(h.Held)/float64(h.Capacity))
		}
		o.ObserveInt64(over, b2i(h.OverCapacity))
		o.ObserveFloat64(staleness, h.Staleness.Seconds())
		o.ObserveFloat64(replay, h.ReplayDuration.Seconds())
		o.ObserveInt64(ready, b2i(h.Ready))
		return nil
	}, verifications, held, used, over, staleness, replay, ready)
	if err != nil {
		return nil, err
	}
	return m, nil
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// counterShards is the number of counter blocks (a power of two).
const counterShards = 8

// counterBlock is one shard of the outcome counters.
type counterBlock []atomic.Int64

// newCounters returns metrics with zeroed outcome counters and nothing else.
func newCounters() *metrics {
	stride := (len(reasons) + 2 + 7) &^ 7 // whole 64-byte lines per block
	all := make([]atomic.Int64, counterShards*stride)
	m := &metrics{blocks: make([]counterBlock, counterShards)}
	for b := range m.blocks {
		m.blocks[b] = all[b*stride : (b+1)*stride]
	}
	// A P without a block (at its first Verify, or after the GC emptied
	// the pool) takes the next block in turn.
	m.shard.New = func() any { return &m.blocks[m.next.Add(1)&(counterShards-1)] }
	return m
}

// count records one Verify outcome. It allocates nothing.
func (m *metrics) count(err error) {
	b := m.shard.Get().(*counterBlock)
	(*b)[outcomeIndex(err)].Add(1)
	m.shard.Put(b)
}

// outcomeIndex is err's counter in a block.
func outcomeIndex(err error) int {
	if err == nil {
		return 0
	}
	if ve, ok := err.(*verifyError); ok {
		for i, r := range reasons {
			if r.err == ve.reason {
				return i + 1
			}
		}
	}
	return len(reasons) + 1
}

// total sums counter i over every block.
func (m *metrics) total(i int) int64 {
	var n int64
	for _, b := range m.blocks {
		n += b[i].Load()
	}
	return n
}

func (m *metrics) close() {
	if m.reg != nil {
		_ = m.reg.Unregister()
	}
}

// EventApplied implements feed.Observer.
func (m *metrics) EventApplied(e events.Event, _ time.Time, applied time.Time) {
	kind, ok := m.kinds[e.Kind]
	if !ok {
		kind = newKindOptions(e.Kind)
	}
	m.applied.Add(context.Background(), 1, kind.add...)
	m.lag.Record(context.Background(), applied.Sub(e.IssuedAt).Seconds(), kind.record...)
	m.v.noteApplied()
	if m.v.cfg.OnApplied != nil {
		m.v.cfg.OnApplied(e, applied)
	}
}

// kindOptions holds the attribute option of the events of one kind as the
// slices the instruments take, so that passing them allocates nothing.
type kindOptions struct {
	add    []metric.AddOption
	record []metric.RecordOption
}

func newKindOptions(k events.Kind) kindOptions {
	o := metric.WithAttributes(attribute.String("kind", string(k)))
	return kindOptions{add: []metric.AddOption{o}, record: []metric.RecordOption{o}}
}

// EventRejected implements feed.Observer. The feed logs the event.
func (m *metrics) EventRejected(string, error) {
	m.rejected.Add(context.Background(), 1)
}
