package events

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/propagation"
)

// DefaultStreamName is the stream revocations are stored in.
const DefaultStreamName = "REVOCATIONS"

// StreamOptions are the few numbers the stream's configuration is derived
// from. The zero value is not usable: MaxTokenLifetime is required.
type StreamOptions struct {
	// Name of the stream; DefaultStreamName when empty.
	Name string
	// Replicas is the number of copies JetStream keeps: 1 for a single
	// server (dev, tests), 3 in production. 0 means 1. At most 5.
	Replicas int
	// MaxTokenLifetime is the longest lifetime (exp - iat) of any access
	// token a verifier accepts. Required.
	MaxTokenLifetime time.Duration
	// Leeway is the verifiers' clock leeway. Default 0.
	Leeway time.Duration
	// Margin is extra retention on top, for clock skew and slow starts.
	// Default 1 hour.
	Margin time.Duration
	// DuplicateWindow is how long a Nats-Msg-Id is remembered, so a retried
	// publish is stored once. Default 2 minutes.
	DuplicateWindow time.Duration
}

// MaxAge returns the retention of the stream for o: the longest token
// lifetime plus leeway plus margin. Promise: an event is kept at least as
// long as any token it can affect can still be presented.
func (o StreamOptions) MaxAge() time.Duration {
	return o.MaxTokenLifetime + o.Leeway + o.margin()
}

func (o StreamOptions) margin() time.Duration {
	if o.Margin == 0 {
		return time.Hour
	}
	return o.Margin
}

// StreamConfig returns the JetStream configuration of the revocation stream:
// file storage, limits retention with MaxAge from [StreamOptions.MaxAge],
// the latest message per subject only, messages capped at [MaxEventSize]
// plus room for headers, delete and purge denied (nothing may un-revoke),
// per-message TTL allowed (key revocations are published with "Nats-TTL:
// never": a leaked key stays revoked however old its event).
func StreamConfig(o StreamOptions) (jetstream.StreamConfig, error) {
	if o.MaxTokenLifetime <= 0 {
		return jetstream.StreamConfig{}, errors.New("events: stream options: MaxTokenLifetime must be positive")
	}
	if o.Leeway < 0 || o.Margin < 0 || o.DuplicateWindow < 0 {
		return jetstream.StreamConfig{}, errors.New("events: stream options: durations must not be negative")
	}
	replicas := o.Replicas
	if replicas == 0 {
		replicas = 1
	}
	if replicas < 1 || replicas > 5 {
		return jetstream.StreamConfig{}, fmt.Errorf("events: stream options: replicas %d not in 1..5", replicas)
	}
	name := o.Name
	if name == "" {
		name = DefaultStreamName
	}
	dup := o.DuplicateWindow
	if dup == 0 {
		dup = 2 * time.Minute
	}
	if dup > o.MaxAge() {
		dup = o.MaxAge()
	}
	return jetstream.StreamConfig{
		Name:              name,
		Description:       "jwtrevoke revocation events (pkg/events wire format v1)",
		Subjects:          []string{SubjectPrefix + ".>"},
		Retention:         jetstream.LimitsPolicy,
		Storage:           jetstream.FileStorage,
		Discard:           jetstream.DiscardOld,
		MaxAge:            o.MaxAge(),
		MaxMsgsPerSubject: 1,
		MaxMsgs:           -1,
		MaxBytes:          -1,
		MaxMsgSize:        MaxBatchSize + 2048,
		Duplicates:        dup,
		Replicas:          replicas,
		DenyDelete:        true,
		DenyPurge:         true,
		AllowMsgTTL:       true,
		// Off: a verifier proves itself current by asking the stream's
		// leader for the last message; a direct get may be answered by a
		// follower that lags it.
		AllowDirect: false,
	}, nil
}

// EnsureStream creates the revocation stream, or updates it to the
// configuration of [StreamConfig] when it exists. Calling it any number of
// times, from any number of processes, converges on one stream.
func EnsureStream(ctx context.Context, js jetstream.StreamManager, o StreamOptions) (jetstream.Stream, error) {
	cfg, err := StreamConfig(o)
	if err != nil {
		return nil, err
	}
	s, err := js.CreateOrUpdateStream(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("events: ensure stream %s: %w", cfg.Name, err)
	}
	return s, nil
}

// Header names carried by every published event besides the W3C trace
// context (traceparent, tracestate).
const (
	// HeaderMsgID is JetStream's de-duplication header; its value is the
	// event id.
	HeaderMsgID = jetstream.MsgIDHeader
	// HeaderTTL is JetStream's per-message TTL header; key revocations carry
	// "never".
	HeaderTTL = jetstream.MsgTTLHeader
)

// NewMsg returns the NATS message for x: the event's subject, x's wire form
// as data (shared, not copied), the event id as Nats-Msg-Id, "Nats-TTL:
// never" for key revocations, and the trace context of ctx (W3C
// traceparent) so consumers continue the trace. Nothing is validated or
// encoded again; the only error is the zero Encoded.
func NewMsg(ctx context.Context, x Encoded) (*nats.Msg, error) {
	if x.IsZero() {
		return nil, errNotEncoded
	}
	e := &x.ev
	m := nats.NewMsg(eventSubject(*e))
	m.Data = x.raw
	m.Header.Set(HeaderMsgID, e.ID)
	if e.Kind == KindKey {
		m.Header.Set(HeaderTTL, "never")
	}
	propagation.TraceContext{}.Inject(ctx, HeaderCarrier(m.Header))
	return m, nil
}

// Publish publishes e on the default stream (see [Publisher.Publish]).
func Publish(ctx context.Context, js jetstream.JetStream, e Event) (*jetstream.PubAck, error) {
	return NewPublisher(js, DefaultStreamName).Publish(ctx, e)
}

// Publisher publishes events so that the stream's latest message for every
// subject is always the most restrictive event published for it. The stream
// keeps only that latest message (MaxMsgsPerSubject 1), so a plain publish of
// an older epoch after a newer one — a replayed request, a revoker with a
// slow clock — would make verifiers that start later forget the newer one.
// Publisher reads the subject's last message first and publishes only with
// JetStream's per-subject compare-and-set (Nats-Expected-Last-Subject-
// Sequence), so concurrent publishers cannot interleave either.
//
// A Publisher is safe for concurrent use.
type Publisher struct {
	js     jetstream.JetStream
	stream string

	// mu guards handle, the stream looked up on first use.
	mu     sync.Mutex
	handle jetstream.Stream

	// window holds a token per asynchronous publish awaiting its
	// acknowledgement, across every PublishAll at once: concurrent
	// batches together stay under nats.go's limit of pending
	// asynchronous publishes (4,000 by default), past which a publish
	// stalls and then fails.
	window chan struct{}
}

// streamHandle looks the stream up once; a failed look-up is retried on the
// next call.
func (p *Publisher) streamHandle(ctx context.Context) (jetstream.Stream, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.handle != nil {
		return p.handle, nil
	}
	h, err := p.js.Stream(ctx, p.stream)
	if err != nil {
		return nil, err
	}
	p.handle = h
	return h, nil
}

// NewPublisher returns a Publisher for the named stream.
func NewPublisher(js jetstream.JetStream, stream string) *Publisher {
	if stream == "" {
		stream = DefaultStreamName
	}
	return &Publisher{js: js, stream: stream, window: make(chan struct{}, maxAsyncInFlight)}
}

// maxCASAttempts bounds the compare-and-set retries of one Publish.
const maxCASAttempts = 16

// Publish validates and encodes e once ([NewEncoded]) and publishes it
// ([Publisher.PublishEncoded]).
func (p *Publisher) Publish(ctx context.Context, e Event) (*jetstream.PubAck, error) {
	x, err := NewEncoded(e)
	if err != nil {
		return nil, err
	}
	return p.PublishEncoded(ctx, x)
}

// PublishOpt changes how [Publisher.PublishEncoded] publishes.
type PublishOpt func(*publishOpts)

type publishOpts struct{ first bool }

// ExpectFirst says the caller holds no earlier event for the subject (it
// has recorded none): the first attempt is a publish on the condition that
// the stream holds no event for the subject, without reading the subject's
// last event first, which saves a round trip to the stream's leader. If the
// stream does hold one, the server refuses that publish and PublishEncoded
// goes on as without the option (read, cover check, conditional publish),
// so a wrong guess costs one refused publish and never an event.
func ExpectFirst() PublishOpt { return func(o *publishOpts) { o.first = true } }

// PublishEncoded stores x's event, as x's bytes, and returns only once the
// stream acknowledged it (the event is then stored, replicated where the
// stream is). When the stream already holds an event for the same thing
// that covers it (see [Event.Covers]), nothing is published and the ack
// names that event's sequence, with Duplicate set. A retry of the same
// event is therefore stored once. The zero Encoded is refused with an error
// wrapping [ErrInvalid].
func (p *Publisher) PublishEncoded(ctx context.Context, x Encoded, opts ...PublishOpt) (*jetstream.PubAck, error) {
	var o publishOpts
	for _, opt := range opts {
		opt(&o)
	}
	m, err := NewMsg(ctx, x)
	if err != nil {
		return nil, err
	}
	e := &x.ev
	stream, err := p.streamHandle(ctx)
	if err != nil {
		return nil, fmt.Errorf("events: publish %s: stream %s: %w", e.ID, p.stream, err)
	}
	read := !o.first
	for range maxCASAttempts {
		var lastSeq uint64
		if read {
			last, err := stream.GetLastMsgForSubject(ctx, m.Subject)
			switch {
			case errors.Is(err, jetstream.ErrMsgNotFound):
			case err != nil:
				return nil, fmt.Errorf("events: publish %s: read the subject's last event: %w", e.ID, err)
			default:
				lastSeq = last.Sequence
				if prev, err := Decode(last.Data); err == nil && prev.Covers(*e) {
					return &jetstream.PubAck{Stream: p.stream, Sequence: last.Sequence, Duplicate: true}, nil
				}
			}
		}
		read = true
		ack, err := p.js.PublishMsg(ctx, m, jetstream.WithMsgID(e.ID), jetstream.WithExpectStream(p.stream),
			jetstream.WithExpectLastSequencePerSubject(lastSeq))
		if err == nil {
			return ack, nil
		}
		if wrongLastSeq(err) {
			continue // the subject holds an event we have not read: read it
		}
		return nil, fmt.Errorf("events: publish %s: %w", e.ID, err)
	}
	return nil, fmt.Errorf("events: publish %s: subject changed %d times while publishing", e.ID, maxCASAttempts)
}

// wrongLastSeq reports whether err is the stream refusing a conditional
// publish because the subject holds another last event.
func wrongLastSeq(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// Outgoing is one event of [Publisher.PublishAll].
type Outgoing struct {
	Encoded Encoded
	// First is [ExpectFirst] for this event.
	First bool
}

// Published is the outcome of one event of [Publisher.PublishAll]: the
// stream's acknowledgement, or the error.
type Published struct {
	Ack *jetstream.PubAck
	Err error
}

// Limits of [Publisher.PublishAll].
const (
	// maxAsyncInFlight bounds the conditional publishes of a Publisher
	// awaiting their acknowledgement at once, all PublishAll calls
	// together.
	maxAsyncInFlight = 3072
	// maxReadPublishers bounds the events published at once by the
	// read-then-publish path.
	maxReadPublishers = 32
)

// PublishAll publishes each of out as [Publisher.PublishEncoded] does and
// returns each one's outcome, in out's order, once every one is
// acknowledged or has failed. The events marked First go out
// asynchronously, up to maxAsyncInFlight messages awaiting their
// acknowledgement: those that may ([Batchable]) several to a batch
// message ([NewBatchMsg]; consecutive ones, as many as fit), each event of
// it acknowledged with the batch's sequence; the others, and a batch of
// one, as conditional publishes (the subject holds no event). One the
// stream refuses because its subject does hold an event, and every event
// not marked First, takes PublishEncoded's read-then-publish path, several
// at once. Each outcome is as PublishEncoded's would be: an ack only once
// the stream stored the event (or holds one covering it, Duplicate set).
func (p *Publisher) PublishAll(ctx context.Context, out []Outgoing) []Published {
	res := make([]Published, len(out))
	if _, err := p.streamHandle(ctx); err != nil {
		for i, o := range out {
			res[i].Err = fmt.Errorf("events: publish %s: stream %s: %w", o.Encoded.ev.ID, p.stream, err)
		}
		return res
	}
	read := make([]int, 0, len(out)) // the events for the read-then-publish path
	var wg sync.WaitGroup
	var (
		mu      sync.Mutex // guards refused
		refused []int      // the First events whose subject does hold one
	)
	// send publishes m asynchronously; done gets the
	// acknowledgement or the error.
	send := func(m *nats.Msg, opts []jetstream.PublishOpt, done func(*jetstream.PubAck, error)) {
		select {
		case p.window <- struct{}{}:
		case <-ctx.Done():
			done(nil, ctx.Err())
			return
		}
		f, err := p.js.PublishMsgAsync(m, opts...)
		if err != nil {
			<-p.window
			done(nil, err)
			return
		}
		wg.Go(func() {
			defer func() { <-p.window }()
			select {
			case ack := <-f.Ok():
				done(ack, nil)
			case err := <-f.Err():
				done(nil, err)
			case <-ctx.Done():
				done(nil, ctx.Err())
			}
		})
	}
	single := func(i int) {
		o := out[i]
		m, err := NewMsg(ctx, o.Encoded)
		if err != nil {
			res[i].Err = err
			return
		}
		send(m, []jetstream.PublishOpt{jetstream.WithMsgID(o.Encoded.ev.ID), jetstream.WithExpectStream(p.stream),
			jetstream.WithExpectLastSequencePerSubject(0)}, func(ack *jetstream.PubAck, err error) {
			switch {
			case err == nil:
				res[i].Ack = ack
			case wrongLastSeq(err):
				mu.Lock()
				refused = append(refused, i)
				mu.Unlock()
			default:
				res[i].Err = fmt.Errorf("events: publish %s: %w", o.Encoded.ev.ID, err)
			}
		})
	}
	batch := func(at []int) {
		if len(at) == 1 {
			single(at[0])
			return
		}
		xs := make([]Encoded, len(at))
		for j, i := range at {
			xs[j] = out[i].Encoded
		}
		m, err := NewBatchMsg(ctx, xs)
		if err != nil {
			for _, i := range at {
				res[i].Err = err
			}
			return
		}
		send(m, []jetstream.PublishOpt{jetstream.WithExpectStream(p.stream)}, func(ack *jetstream.PubAck, err error) {
			for _, i := range at {
				if err != nil {
					res[i].Err = fmt.Errorf("events: publish %s (in a batch of %d): %w", out[i].Encoded.ev.ID, len(at), err)
				} else {
					res[i].Ack = ack
				}
			}
		})
	}
	var (
		group []int // consecutive Batchable First events, not sent yet
		size  int   // their encodings' bytes
	)
	for i, o := range out {
		switch {
		case !o.First:
			read = append(read, i)
		case !Batchable(o.Encoded.ev):
			single(i)
		default:
			if !BatchFits(len(group)+1, size+len(o.Encoded.raw)) {
				batch(group)
				group, size = nil, 0
			}
			group, size = append(group, i), size+len(o.Encoded.raw)
		}
	}
	if len(group) > 0 {
		batch(group)
	}
	wg.Wait()
	read = append(read, refused...)
	next := make(chan int)
	for range min(maxReadPublishers, len(read)) {
		wg.Go(func() {
			for i := range next {
				res[i].Ack, res[i].Err = p.PublishEncoded(ctx, out[i].Encoded)
			}
		})
	}
	for _, i := range read {
		next <- i
	}
	close(next)
	wg.Wait()
	return res
}

// HeaderCarrier adapts NATS message headers to OpenTelemetry's
// [propagation.TextMapCarrier], to inject and extract trace context.
type HeaderCarrier nats.Header

var _ propagation.TextMapCarrier = HeaderCarrier(nil)

// Get returns the first value of key.
func (h HeaderCarrier) Get(key string) string { return nats.Header(h).Get(key) }

// Set sets key to value.
func (h HeaderCarrier) Set(key, value string) { nats.Header(h).Set(key, value) }

// Keys lists the header names.
func (h HeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	return keys
}
