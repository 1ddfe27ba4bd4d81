package feed

import (
	"errors"
	"fmt"
	"testing"

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
