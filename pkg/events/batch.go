package events

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"
)

// Limits of a batch message (see [NewBatchMsg]).
const (
	// MaxBatchEvents is the most events one batch message carries.
	MaxBatchEvents = 256
	// MaxBatchSize is the largest batch message body, in bytes. The
	// stream's MaxMsgSize is set from it (see [StreamConfig]).
	MaxBatchSize = 64 << 10
)

// BatchSubjectPrefix starts the subject of every batch message:
// SubjectPrefix.batch.<base64url of the first 16 bytes of the body's
// SHA-256, no padding>.
const BatchSubjectPrefix = SubjectPrefix + ".batch."

// ErrWrongSubject is the error of a valid event published on another
// subject than its own (see [DecodeMsg]).
var ErrWrongSubject = fmt.Errorf("%w: event published on another subject than its own", ErrInvalid)

// Errors of a batch message's form; each wraps [ErrInvalid].
var (
	ErrBatchTooLarge = fmt.Errorf("%w: batch larger than %d bytes or %d events", ErrInvalid, MaxBatchSize, MaxBatchEvents)
	errBatchSubject  = fmt.Errorf("%w: batch not on the subject of its content", ErrInvalid)
	errBatchEmpty    = fmt.Errorf("%w: empty event line in a batch", ErrInvalid)
)

// Batchable reports whether e may travel in a batch message: every kind
// but key revocations, which carry a per-message TTL of their own
// ("Nats-TTL: never") that a batch cannot give each of its events.
func Batchable(e Event) bool { return e.Kind != KindKey }

// BatchFits reports whether n events, whose encodings add up to size
// bytes, fit in one batch message (one newline between two events).
func BatchFits(n, size int) bool {
	return n <= MaxBatchEvents && size+n-1 <= MaxBatchSize
}

// NewBatchMsg returns one NATS message carrying xs (at least one, each
// [Batchable], together within [BatchFits]): the events' wire forms in
// order, one per line, separated by a newline; the subject and the
// Nats-Msg-Id named by a digest of that body; the trace context of ctx.
//
// The stream keeps only the latest message of a subject: a subject named
// by the body's digest is shared only by a batch of the very same bytes
// (a retried publish), so a batch never replaces another one and no
// single event's message ever replaces a batch. A batch is therefore
// kept for the stream's MaxAge, which covers every event's hold.
func NewBatchMsg(ctx context.Context, xs []Encoded) (*nats.Msg, error) {
	size := 0
	for _, x := range xs {
		if x.IsZero() {
			return nil, errNotEncoded
		}
		if !Batchable(x.ev) {
			return nil, fmt.Errorf("%w: a %s event cannot travel in a batch", ErrInvalid, x.ev.Kind)
		}
		size += len(x.raw)
	}
	if len(xs) == 0 || !BatchFits(len(xs), size) {
		return nil, ErrBatchTooLarge
	}
	body := make([]byte, 0, size+len(xs)-1)
	for i, x := range xs {
		if i > 0 {
			body = append(body, '\n')
		}
		body = append(body, x.raw...)
	}
	name := batchName(body)
	m := nats.NewMsg(BatchSubjectPrefix + name)
	m.Data = body
	m.Header.Set(HeaderMsgID, "batch."+name)
	propagation.TraceContext{}.Inject(ctx, HeaderCarrier(m.Header))
	return m, nil
}

// BatchSubject is the subject of a batch message of the given body:
// [BatchSubjectPrefix] and the body's digest.
func BatchSubject(body []byte) string { return BatchSubjectPrefix + batchName(body) }

// batchName is the subject token of a batch body.
func batchName(body []byte) string {
	sum := sha256.Sum256(body)
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// DecodeMsg decodes the events of one stream message by its subject and
// body: a batch message (subject under [BatchSubjectPrefix]) gives its
// first event and the others in order, any other message the one event it
// carries (rest nil, so a single event costs no slice). The rule is all or
// nothing: an event that does not decode, an event not on its own subject
// ([ErrWrongSubject]) or a batch not on the subject of its body refuses
// the whole message, with an error wrapping [ErrInvalid].
func DecodeMsg(subject string, data []byte) (first Event, rest []Event, err error) {
	name, batch := strings.CutPrefix(subject, BatchSubjectPrefix)
	if !batch {
		e, err := Decode(data)
		if err != nil {
			return Event{}, nil, err
		}
		if !e.OnSubject(subject) {
			return Event{}, nil, ErrWrongSubject
		}
		return e, nil, nil
	}
	if len(data) > MaxBatchSize {
		return Event{}, nil, ErrBatchTooLarge
	}
	if name != batchName(data) {
		return Event{}, nil, errBatchSubject
	}
	var evs []Event
	for body := data; ; {
		line, after, more := bytes.Cut(body, []byte{'\n'})
		if len(line) == 0 { // an empty body, two newlines in a row, a trailing newline
			return Event{}, nil, errBatchEmpty
		}
		if len(evs) == MaxBatchEvents {
			return Event{}, nil, ErrBatchTooLarge
		}
		e, err := Decode(line)
		if err != nil {
			return Event{}, nil, fmt.Errorf("event %d of the batch: %w", len(evs)+1, err)
		}
		if !Batchable(e) {
			return Event{}, nil, fmt.Errorf("event %d of the batch: %w: a %s event cannot travel in a batch", len(evs)+1, ErrInvalid, e.Kind)
		}
		if evs == nil {
			evs = make([]Event, 0, bytes.Count(data, []byte{'\n'})+1)
		}
		evs = append(evs, e)
		if !more {
			return evs[0], evs[1:], nil
		}
		body = after
	}
}

// MsgEvents is [DecodeMsg]'s events as one slice, in order, for a
// consumer that does not mind allocating it for a single event.
func MsgEvents(subject string, data []byte) ([]Event, error) {
	first, rest, err := DecodeMsg(subject, data)
	if err != nil {
		return nil, err
	}
	return append([]Event{first}, rest...), nil
}

// IsBatchSubject reports whether subject is a batch message's.
func IsBatchSubject(subject string) bool { return strings.HasPrefix(subject, BatchSubjectPrefix) }
