package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// revokeFunc makes revoke call number i and returns the event id the
// revoker acknowledged.
type revokeFunc func(ctx context.Context, i int) (id string, err error)

// drive makes n calls at rate per second (open loop: call i is due at
// start + i/rate), at most workers at once, and stops sending once maxDur
// has passed since the start or ctx ended. A call that is due while every
// worker is busy goes out late, which shows as a lower sustained rate.
// Each call's Start is taken just before it is made.
func drive(ctx context.Context, rate float64, n int, maxDur time.Duration, workers int, do revokeFunc) rateResult {
	r := rateResult{Target: rate}
	calls := make([]call, n)
	sent := 0
	sem := make(chan struct{}, workers)
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(maxDur)
	timer := time.NewTimer(0)
	defer timer.Stop()
send:
	for i := range n {
		due := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
		if due.After(deadline) {
			break
		}
		if d := time.Until(due); d > 0 {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				break send
			case <-timer.C:
			}
		}
		select {
		case <-ctx.Done():
			break send
		case sem <- struct{}{}:
		}
		if time.Now().After(deadline) {
			<-sem
			break
		}
		sent++
		wg.Add(1)
		go func() { // bounded by do's context and the HTTP client's timeout
			defer wg.Done()
			defer func() { <-sem }()
			t0 := time.Now()
			id, err := do(ctx, i)
			calls[i] = call{Start: t0, Took: time.Since(t0), ID: id, Err: err}
		}()
	}
	wg.Wait()
	r.Calls = calls[:sent]
	if sent > 0 {
		end := r.Calls[0].Start
		for _, c := range r.Calls {
			end = later(end, c.Start.Add(c.Took))
		}
		r.Elapsed = end.Sub(r.Calls[0].Start)
	}
	return r
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// httpRevoker returns a revokeFunc that revokes token jti prefix-i (expiring
// in 50 minutes) through the revoker's POST /v1/revocations.
func httpRevoker(hc *http.Client, revokerURL, credential, prefix string) revokeFunc {
	return func(ctx context.Context, i int) (string, error) {
		body, err := json.Marshal(map[string]any{
			"type": "token", "jti": prefix + "-" + strconv.Itoa(i),
			"exp": time.Now().Add(50 * time.Minute).Unix(),
		})
		if err != nil {
			return "", fmt.Errorf("bench: %w", err)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, revokerURL+"/v1/revocations", bytes.NewReader(body))
		if err != nil {
			return "", fmt.Errorf("bench: %w", err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+credential)
		resp, err := hc.Do(req)
		if err != nil {
			return "", fmt.Errorf("bench: revoke: %w", err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if err != nil {
			return "", fmt.Errorf("bench: revoke: %w", err)
		}
		if resp.StatusCode != http.StatusCreated {
			return "", fmt.Errorf("bench: revoke: %d %s", resp.StatusCode, bytes.TrimSpace(b))
		}
		var res struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(b, &res); err != nil || res.ID == "" {
			return "", fmt.Errorf("bench: revoke: bad answer %q", b)
		}
		return res.ID, nil
	}
}
