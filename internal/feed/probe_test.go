package feed

import (
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestConsumerGone: the probe's errors that make the feed attach anew at
// once: the consumer deleted, or its node down ("consumer is offline",
// what a replica saw for seconds after the stream leader's node was killed
// in the chaos suite). Any other error leaves the attachment alone.
func TestConsumerGone(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{jetstream.ErrConsumerNotFound, true},
		{fmt.Errorf("probe: %w", jetstream.ErrConsumerNotFound), true},
		{fmt.Errorf("probe: %w", &jetstream.APIError{Code: 500, ErrorCode: 10119, Description: "consumer is offline"}), true},
		{&jetstream.APIError{Code: 503, ErrorCode: jetstream.JSErrCodeJetStreamNotEnabled}, false},
		{errors.New("nats: timeout"), false},
		{nil, false},
	}
	for _, tc := range tests {
		if got := consumerGone(tc.err); got != tc.want {
			t.Errorf("consumerGone(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// TestSettle: the latest probe the feed has reached is confirmed and every
// earlier one forgotten, also when an earlier probe named a later message
// (the stream's newest messages expired between the two probes), which
// must not hold the later one back.
func TestSettle(t *testing.T) {
	base := time.Unix(1_800_000_000, 0)
	f := &Feed{cfg: Config{Now: time.Now}, log: slog.New(slog.DiscardHandler), readyCh: make(chan struct{})}
	l := &loop{f: f, freshness: freshness{marks: []mark{{base, 10}, {base.Add(time.Second), 7}, {base.Add(2 * time.Second), 12}}}}

	l.pos.seq = 5
	l.settle()
	if f.Ready() || len(l.marks) != 3 {
		t.Fatalf("at seq 5: ready %v, %d marks left; want not ready, 3", f.Ready(), len(l.marks))
	}
	l.pos.seq = 8 // past the second probe's message, not the first's
	l.settle()
	if !f.Ready() || !f.lastSync().Equal(base.Add(time.Second)) || len(l.marks) != 1 {
		t.Fatalf("at seq 8: ready %v, last sync %v, %d marks; want ready, %v, 1", f.Ready(), f.lastSync(), len(l.marks), base.Add(time.Second))
	}
	l.unsynced = 1 // applied, not synced: nothing is confirmed
	l.pos.seq = 12
	l.settle()
	if !f.lastSync().Equal(base.Add(time.Second)) {
		t.Fatalf("unsynced: last sync moved to %v", f.lastSync())
	}
	l.unsynced = 0
	l.settle()
	if !f.lastSync().Equal(base.Add(2*time.Second)) || len(l.marks) != 0 {
		t.Fatalf("at seq 12: last sync %v, %d marks; want %v, 0", f.lastSync(), len(l.marks), base.Add(2*time.Second))
	}
}
