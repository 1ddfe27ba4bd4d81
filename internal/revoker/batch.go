package revoker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jwtrevoke/jwtrevoke/internal/httpx"
)

// Limits of POST /v1/revocations/batch.
const (
	// MaxBatch is the most revocations one batch may hold.
	MaxBatch = 1000
	// MaxBatchBody bounds a batch's body, in bytes.
	MaxBatchBody = 1 << 20
	// batchWorkers is how many of a batch's revocations are recorded and
	// published at once: the Redis writes and the stream's
	// acknowledgements of several are in flight together, each still
	// acknowledged only once durable.
	batchWorkers = 16
)

// BatchItem is one revocation's outcome in a batch's answer: its id and
// sequence, or the error a single request would have got (with its HTTP
// status), and with "recorded":true when it is recorded but not yet
// acknowledged (the outbox delivers it).
type BatchItem struct {
	Status      int    `json:"status"`
	ID          string `json:"id,omitempty"`
	Seq         uint64 `json:"seq,omitempty"`
	Error       string `json:"error,omitempty"`
	Description string `json:"error_description,omitempty"`
	Recorded    bool   `json:"recorded,omitempty"`
}

// BatchAnswer is the body of a batch's 200: one item per revocation, in
// the order asked.
type BatchAnswer struct {
	Results []BatchItem `json:"results"`
}

// handleBatch serves POST /v1/revocations/batch: {"revocations":[...]}, up
// to MaxBatch requests of POST /v1/revocations' shape, each validated,
// recorded and published as a single one would be. The answer is 200 with
// each one's outcome; a body that is not such a list is a 400 and nothing
// is recorded. No Idempotency-Key: a retried batch records each again,
// which the revocations' merge rules make harmless.
func (s *Server) handleBatch(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if r.Header.Get("Idempotency-Key") != "" {
		httpx.Fail(w, s.cfg.Logger, httpx.BadRequest("a batch takes no Idempotency-Key: retrying it is safe"))
		return
	}
	var raw json.RawMessage
	if err := httpx.DecodeJSON(w, r, MaxBatchBody, &raw); err != nil {
		httpx.Fail(w, s.cfg.Logger, err)
		return
	}
	if !utf8.Valid(raw) {
		httpx.Fail(w, s.cfg.Logger, httpx.BadRequest("body is not valid UTF-8"))
		return
	}
	var body struct {
		Revocations []json.RawMessage `json:"revocations"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		httpx.Fail(w, s.cfg.Logger, httpx.JSONError(err))
		return
	}
	switch n := len(body.Revocations); {
	case n == 0:
		httpx.Fail(w, s.cfg.Logger, httpx.BadRequest(`"revocations" must list 1 to %d revocations`, MaxBatch))
		return
	case n > MaxBatch:
		httpx.Fail(w, s.cfg.Logger, httpx.BadRequest("%d revocations in one batch, at most %d", n, MaxBatch))
		return
	}
	// The work is bounded but not cut short by a client that goes away,
	// as a single revocation's.
	work, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.Timeout+time.Duration(len(body.Revocations))*s.cfg.Timeout/batchWorkers)
	defer cancel()
	results := make([]BatchItem, len(body.Revocations))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(batchWorkers, len(body.Revocations)) {
		wg.Go(func() {
			for i := range next {
				results[i] = s.batchOne(work, body.Revocations[i])
			}
		})
	}
	for i := range body.Revocations {
		next <- i
	}
	close(next)
	wg.Wait()
	httpx.WriteJSON(w, http.StatusOK, BatchAnswer{Results: results})
}

// batchOne records and publishes one revocation of a batch.
func (s *Server) batchOne(ctx context.Context, raw json.RawMessage) BatchItem {
	var req wireRequest
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	res, typ, err := func() (Result, string, error) {
		if err := dec.Decode(&req); err != nil {
			return Result{}, "", httpx.JSONError(err)
		}
		now := s.cfg.Now()
		sp, err := s.parseRequest(req, now)
		if err != nil {
			return Result{}, "", err
		}
		if sp.token != "" {
			if err := s.fromToken(ctx, &sp, now); err != nil {
				return Result{}, sp.typ(), err
			}
		}
		res, err := s.record(ctx, sp, nil, now)
		return res, sp.typ(), err
	}()
	var he *httpx.Error
	var rec *RecordedError
	switch {
	case err == nil:
		s.metrics.revocation(ctx, typ, outcomeCreated)
		return BatchItem{Status: http.StatusCreated, ID: res.ID, Seq: res.Seq}
	case errors.As(err, &rec):
		s.metrics.revocation(ctx, typ, outcomeRecorded)
		return BatchItem{Status: http.StatusServiceUnavailable, ID: rec.ID, Error: codeUnavailable, Description: recordedDescription, Recorded: true}
	case errors.As(err, &he):
		outcome := outcomeInvalid
		if he.Status == http.StatusServiceUnavailable {
			outcome = outcomeUnavailable
		}
		s.metrics.revocation(ctx, typ, outcome)
		return BatchItem{Status: he.Status, Error: he.Code, Description: he.Description}
	default:
		s.metrics.revocation(ctx, typ, outcomeError)
		s.cfg.Logger.Error("revoker: batch item", "err", err)
		return BatchItem{Status: http.StatusInternalServerError, Error: "server_error", Description: "internal error"}
	}
}
