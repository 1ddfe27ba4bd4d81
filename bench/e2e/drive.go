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

	"github.com/jwtrevoke/jwtrevoke/internal/revoker"
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
// in 50 minutes) through the revoker's POST /v1/revocations, with wait's
// query (?wait=enforced). When answers is not nil, call i's answer goes to
// answers[i] (each call writes only its own element); with wait.Enforced an
// answer without "enforcement" is an error.
func httpRevoker(hc *http.Client, revokerURL, credential, prefix string, wait revoker.Wait, answers []revoker.Result) revokeFunc {
	return func(ctx context.Context, i int) (string, error) {
		exp := float64(time.Now().Add(50 * time.Minute).Unix())
		req := revoker.Request{Type: "token", JTI: prefix + "-" + strconv.Itoa(i), Exp: &exp}
		var res revoker.Result
		if err := postJSON(ctx, hc, revokerURL+"/v1/revocations"+wait.Query(), credential, req, http.StatusCreated, &res); err != nil {
			return "", fmt.Errorf("bench: revoke: %w", err)
		}
		if res.ID == "" || (wait.Enforced && res.Enforcement == nil) {
			return "", fmt.Errorf("bench: revoke: answer without id or enforcement: %+v", res)
		}
		if answers != nil {
			answers[i] = res
		}
		return res.ID, nil
	}
}

// postJSON POSTs body as JSON to url with the service credential and
// decodes an answer of status want into out; any other status is an error
// with the status and the answer's start.
func postJSON(ctx context.Context, hc *http.Client, url, credential string, body any, want int, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+credential)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	a, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%d %s", resp.StatusCode, bytes.TrimSpace(a[:min(len(a), 512)]))
	}
	if err := json.Unmarshal(a, out); err != nil {
		return fmt.Errorf("bad answer %q: %w", a[:min(len(a), 512)], err)
	}
	return nil
}
