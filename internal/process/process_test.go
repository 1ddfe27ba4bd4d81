package process

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSplitList(t *testing.T) {
	if got := SplitList(" a, b,,c ,"); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("SplitList = %q", got)
	}
	if got := SplitList(""); got != nil {
		t.Fatalf("SplitList(\"\") = %q", got)
	}
}

func TestRunStopsAllWhenOneStops(t *testing.T) {
	boom := errors.New("boom")
	done := make(chan error, 1)
	go func() {
		done <- Run(context.Background(),
			func(context.Context) error { return boom },
			func(ctx context.Context) error { <-ctx.Done(); return nil })
	}()
	select {
	case err := <-done:
		if !errors.Is(err, boom) {
			t.Fatalf("Run = %v, want boom", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return when one function stopped")
	}
}

func TestRunStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, func(ctx context.Context) error { <-ctx.Done(); return nil }) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestRedactURLs(t *testing.T) {
	got := RedactURLs("nats://revoker:s3cret@nats-0:4222, nats://nats-1:4222")
	if strings.Contains(got, "s3cret") || !strings.Contains(got, "nats://revoker:xxxxx@nats-0:4222") || !strings.Contains(got, "nats://nats-1:4222") {
		t.Fatalf("RedactURLs = %q", got)
	}
}
