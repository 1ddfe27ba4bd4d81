package main

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jwtrevoke/jwtrevoke/internal/eventually"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
)

// syncBuffer is a bytes.Buffer safe for the timer's goroutine, counting
// writes.
type syncBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	return s.b.Write(p)
}

func (s *syncBuffer) String() (string, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String(), s.writes
}

// TestAppliedLogger: a thousand applied events reach the writer as a
// thousand whole lines in a few writes; a lone event's line is written
// within a few milliseconds without a flush.
func TestAppliedLogger(t *testing.T) {
	var out syncBuffer
	onApplied, flush := appliedLogger(&out)
	at := time.Unix(1_700_000_000, 123)
	start := time.Now()
	for i := range 1000 {
		onApplied(events.Event{ID: "rev." + strings.Repeat("x", i%7)}, at)
	}
	flush()
	took := time.Since(start)
	s, writes := out.String()
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	// One write per lineBufferSize of lines, one per lineFlushAfter that
	// passed while writing them (-race slows this), and the final flush.
	most := len(s)/lineBufferSize + int(took/lineFlushAfter) + 2
	if len(lines) != 1000 || writes > most {
		t.Fatalf("%d lines in %d writes over %s, want 1000 lines in at most %d writes", len(lines), writes, took, most)
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "{") || !strings.Contains(l, `"msg":"revocation applied"`) || !strings.HasSuffix(l, `"applied_unix_ns":1700000000000000123}`) {
			t.Fatalf("line %q", l)
		}
	}
	onApplied(events.Event{ID: "rev.alone"}, at)
	eventually.True(t, time.Second, "the lone line written", func() bool {
		s, _ := out.String()
		return strings.Contains(s, `"id":"rev.alone"`)
	})
}
