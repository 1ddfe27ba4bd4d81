package events

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func goodAnnouncement() Announcement {
	return Announcement{Version: 1, ID: "r-0123456789abcdef", Service: "orders", ServiceVersion: "1.4.2", Ready: true,
		Deciding: true, AppliedSeq: 1234, StalenessMs: 12, Held: 567, Capacity: 1_000_000,
		Started: time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC), IntervalMs: 1000}
}

// TestAnnouncement: an announcement survives the wire; every field out of
// its limits, unknown fields, trailing data and oversized bodies are
// refused with ErrBadAnnouncement.
func TestAnnouncement(t *testing.T) {
	a := goodAnnouncement()
	b, err := a.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeAnnouncement(b)
	if err != nil || got != a {
		t.Fatalf("round trip: %+v, %v; want %+v", got, err, a)
	}
	if s := AnnounceSubject(DefaultStreamName, a.ID); s != "jwtrevoke.replicas.REVOCATIONS.r-0123456789abcdef" {
		t.Errorf("subject %q", s)
	}
	for name, edit := range map[string]func(*Announcement){
		"version 2":          func(a *Announcement) { a.Version = 2 },
		"no id":              func(a *Announcement) { a.ID = "" },
		"id with a dot":      func(a *Announcement) { a.ID = "r.1" },
		"id with a wildcard": func(a *Announcement) { a.ID = "r*" },
		"id of 65 bytes":     func(a *Announcement) { a.ID = strings.Repeat("r", 65) },
		"service too long":   func(a *Announcement) { a.Service = strings.Repeat("s", 65) },
		"control character":  func(a *Announcement) { a.ServiceVersion = "1\n2" },
		"negative held":      func(a *Announcement) { a.Held = -1 },
		"interval 5ms":       func(a *Announcement) { a.IntervalMs = 5 },
		"interval 2 minutes": func(a *Announcement) { a.IntervalMs = 120_000 },
		"no start":           func(a *Announcement) { a.Started = time.Time{} },
	} {
		bad := goodAnnouncement()
		edit(&bad)
		if _, err := bad.Encode(); !errors.Is(err, ErrBadAnnouncement) {
			t.Errorf("%s: Encode = %v, want ErrBadAnnouncement", name, err)
		}
	}
	for name, raw := range map[string]string{
		"unknown field": strings.Replace(string(b), `"v":1`, `"v":1,"admin":true`, 1),
		"trailing data": string(b) + "{}",
		"not json":      "{",
		"an array":      "[]",
		"oversized":     `{"v":1,"id":"` + strings.Repeat("r", MaxAnnouncementSize) + `"}`,
	} {
		if _, err := DecodeAnnouncement([]byte(raw)); !errors.Is(err, ErrBadAnnouncement) {
			t.Errorf("%s: DecodeAnnouncement = %v, want ErrBadAnnouncement", name, err)
		}
	}
}

// FuzzDecodeAnnouncement: whatever arrives, DecodeAnnouncement either
// refuses it with ErrBadAnnouncement or returns an announcement that
// validates and encodes back to what decodes the same.
func FuzzDecodeAnnouncement(f *testing.F) {
	b, _ := goodAnnouncement().Encode()
	f.Add(b)
	f.Add([]byte(`{"v":1,"id":"r-1","ready":false,"deciding":false,"applied_seq":0,"staleness_ms":0,"held":0,"capacity":0,"started":"2026-01-01T00:00:00Z","interval_ms":10}`))
	f.Add([]byte(`{"v":1,"id":"r-1","started":"1999-01-01T00:00:00Z","interval_ms":1000}`))
	f.Add([]byte(`{"v":1,"id":"a.b","started":"2026-01-01T00:00:00Z","interval_ms":1000}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"v":1} x`))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := DecodeAnnouncement(data)
		if err != nil {
			if !errors.Is(err, ErrBadAnnouncement) {
				t.Fatalf("error %v is not ErrBadAnnouncement", err)
			}
			return
		}
		enc, err := a.Encode()
		if err != nil {
			t.Fatalf("a decoded announcement does not encode: %v", err)
		}
		again, err := DecodeAnnouncement(enc)
		if err != nil || again != a {
			t.Fatalf("re-decoded %+v, %v; want %+v", again, err, a)
		}
	})
}
