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
	"github.com/jwtrevoke/jwtrevoke/internal/store"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
)

// Limits of POST /v1/revocations/batch.
const (
	// MaxBatch is the most revocations one batch may hold.
	MaxBatch = 1000
	// MaxBatchBody bounds a batch's body, in bytes.
	MaxBatchBody = 1 << 20
	// batchWorkers is how many of a batch's revocations are decoded and
	// checked at once (checking a token may fetch the issuer's keys); they
	// are then recorded and published all together (revokeBatch).
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
	items := s.parseBatch(work, body.Revocations)
	s.revokeBatch(work, items)
	results := make([]BatchItem, len(items))
	for i, it := range items {
		results[i] = s.batchItem(work, it.typ, it.res, it.err)
	}
	httpx.WriteJSON(w, http.StatusOK, BatchAnswer{Results: results})
}

// batchEntry is one revocation of a batch on its way through the steps a
// single request takes; err is set at the step it failed at (its answer),
// and the later steps skip it.
type batchEntry struct {
	typ string    // the validated type, for metrics ("" while unknown)
	sp  spec      // the request
	now time.Time // the request's instant
	x   events.Encoded
	rec store.Recording
	res Result
	err error
}

// parseBatch decodes and checks each revocation of a batch as a single
// request (parseOne), batchWorkers at a time.
func (s *Server) parseBatch(ctx context.Context, raws []json.RawMessage) []batchEntry {
	items := make([]batchEntry, len(raws))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(batchWorkers, len(raws)) {
		wg.Go(func() {
			for i := range next {
				it := &items[i]
				it.sp, it.now, it.err = s.parseOne(ctx, raws[i])
				it.typ = it.sp.typ()
			}
		})
	}
	for i := range raws {
		next <- i
	}
	close(next)
	wg.Wait()
	return items
}

// parseOne decodes and checks one revocation of a batch as POST
// /v1/revocations does its body (the batch's bytes are checked to be UTF-8
// as a whole), taking a revoked token's jti and exp from the token. sp's
// kind is set once the type is known, also on error.
func (s *Server) parseOne(ctx context.Context, raw json.RawMessage) (sp spec, now time.Time, _ error) {
	var req wireRequest
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return spec{}, now, httpx.JSONError(err)
	}
	return s.checkRequest(ctx, req)
}

// revokeBatch records and publishes the valid revocations of a batch as
// record does each (without an idempotency record), a step at a time for
// all of them: one Redis round trip reads the epochs, one records every
// event with its outbox entry (each in one atomic step, as Record), one
// flags the sessions; then every event is published, many in flight
// together, and one round trip removes the acknowledged ones from the
// outbox. An event is published only once recorded, and answered 201 only
// once the stream acknowledged it; one recorded but not acknowledged is
// answered as record answers it (a RecordedError: the outbox delivers it).
//
// Epochs: the subject and scope events get theirs in the batch's order,
// each the next after the larger of the recorded epoch and those given to
// earlier events of the batch that the same look-up would read (the same
// claim and value, for every issuer or for its issuer). So two of a
// batch for one subject get two distinct epochs, the later one larger, as
// two requests one after the other would.
func (s *Server) revokeBatch(ctx context.Context, items []batchEntry) {
	st := s.cfg.Store
	step := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, s.cfg.Timeout) }

	// The events, and the epochs recorded for the subjects and scopes.
	evs := make([]events.Event, len(items))
	var epochAt []int // the items with an epoch, in order
	for i := range items {
		it := &items[i]
		if it.err != nil {
			continue
		}
		evs[i] = it.sp.event(NewEventID(), it.now)
		if it.sp.hasEpoch() {
			epochAt = append(epochAt, i)
		}
	}
	recorded, epochErrs := make([]time.Time, len(items)), make([]error, len(items))
	if len(epochAt) > 0 {
		c, cancel := step()
		epochs, errs := st.EpochAll(c, gather(epochAt, func(i int) events.Event { return evs[i] }))
		cancel()
		for j, i := range epochAt {
			recorded[i], epochErrs[i] = epochs[j], errs[j]
		}
	}
	given := map[epochKey]time.Time{} // the latest epoch given in this batch
	var rec []int                     // the items to record, in order
	for i := range items {
		it := &items[i]
		if it.err != nil {
			continue
		}
		if it.sp.hasEpoch() {
			k := epochKey{kind: it.sp.kind, claim: it.sp.claim, value: it.sp.value}
			for _, iss := range []string{"", it.sp.iss} {
				k.iss = iss
				if e := given[k]; e.After(recorded[i]) {
					recorded[i] = e
				}
			}
		}
		if it.x, it.err = s.encode(it.sp, evs[i], recorded[i], it.now); it.err != nil {
			continue
		}
		if epochErrs[i] != nil {
			it.err = s.unrecorded("epoch", evs[i].ID, epochErrs[i])
			continue
		}
		if it.sp.hasEpoch() {
			given[epochKey{kind: it.sp.kind, claim: it.sp.claim, value: it.sp.value, iss: it.sp.iss}] = it.x.Event().Epoch
		}
		rec = append(rec, i)
	}

	// Record first, always (see record).
	c, cancel := step()
	recs, errs := st.RecordAll(c, gather(rec, func(i int) events.Encoded { return items[i].x }), s.cfg.Leeway)
	cancel()
	var fin []int // the recorded items
	for j, i := range rec {
		if errs[j] != nil {
			items[i].err = s.unrecorded("record", evs[i].ID, errs[j])
			continue
		}
		items[i].rec, fin = recs[j], append(fin, i)
	}

	// Then deliver them, as deliver does each.
	c, cancel = step()
	errs = st.FinishRecordAll(c, gather(fin, func(i int) events.Event { return evs[i] }))
	cancel()
	var out []events.Outgoing
	var pub []int // the items published
	for j, i := range fin {
		if errs[j] != nil {
			items[i].err = s.unacknowledged(evs[i].ID, errs[j])
			continue
		}
		out, pub = append(out, events.Outgoing{Encoded: items[i].x, First: items[i].rec.First}), append(pub, i)
	}
	c, cancel = step()
	pubStart := time.Now()
	published := s.publisher.PublishAll(c, out)
	took := time.Since(pubStart)
	cancel()
	var acked []int
	for j, i := range pub {
		p := published[j]
		s.metrics.published(ctx, took, p.Err == nil)
		if p.Err != nil {
			items[i].err = s.unacknowledged(evs[i].ID, p.Err)
			continue
		}
		items[i].res, acked = s.acknowledged(items[i].x.Event(), p.Ack), append(acked, i)
	}
	if len(acked) == 0 {
		return
	}
	c, cancel = step()
	_, errs = st.DeliveredAll(c, gather(acked, func(i int) events.Encoded { return items[i].x }))
	cancel()
	for j, i := range acked {
		if errs[j] != nil {
			// Harmless: a drainer publishes it again, which the stream
			// stores once.
			s.cfg.Logger.Warn("revoker: redis", "op", "delivered", "id", evs[i].ID, "err", errs[j])
		}
	}
}

// epochKey names the epoch records one subject or scope event raises: its
// claim and value, for every issuer (iss "") or for one.
type epochKey struct {
	kind              events.Kind
	claim, value, iss string
}

// gather returns f(i) for each i of at: the part of a batch one step
// works on.
func gather[T any](at []int, f func(i int) T) []T {
	out := make([]T, len(at))
	for j, i := range at {
		out[j] = f(i)
	}
	return out
}

// batchItem is the answer of one revocation of a batch: res, or the error
// a single request would have got.
func (s *Server) batchItem(ctx context.Context, typ string, res Result, err error) BatchItem {
	s.metrics.revocation(ctx, typ, outcomeOf(err))
	var he *httpx.Error
	var rec *RecordedError
	switch {
	case err == nil:
		return BatchItem{Status: http.StatusCreated, ID: res.ID, Seq: res.Seq}
	case errors.As(err, &rec):
		return BatchItem{Status: http.StatusServiceUnavailable, ID: rec.ID, Error: codeUnavailable, Description: recordedDescription, Recorded: true}
	case errors.As(err, &he):
		return BatchItem{Status: he.Status, Error: he.Code, Description: he.Description}
	default:
		s.cfg.Logger.Error("revoker: batch item", "err", err)
		return BatchItem{Status: http.StatusInternalServerError, Error: "server_error", Description: "internal error"}
	}
}
