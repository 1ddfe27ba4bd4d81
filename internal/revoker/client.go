package revoker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/jwtrevoke/jwtrevoke/internal/httpx"
)

// Request is the body of POST /v1/revocations. Type is "token", "session",
// "subject", "key", "scope" or "issuer"; exactly the fields of that type
// are set:
//
//	{"type":"token","jti":"...","exp":1763812854}   exp: NumericDate (seconds, may have a fraction)
//	{"type":"token","token":"<the access token itself>"}
//	{"type":"session","sid":"..."}
//	{"type":"subject","sub":"..."}
//	{"type":"key","kid":"..."}
//	{"type":"scope","claim":"tenant","value":"acme"}  claim: one of the revoker's EpochScopes
//	{"type":"issuer","iss":"https://idp.example.com/"} every token of that issuer
//
// A subject, scope or issuer revocation logs out the tokens issued up to
// now. Reason and Initiator are optional, at most 256 bytes each. Iss,
// optional but for "issuer", scopes the revocation to the tokens of that
// issuer (see pkg/events, "Issuers"); without it the revocation applies to
// every issuer's tokens.
type Request struct {
	Type      string   `json:"type"`
	JTI       string   `json:"jti,omitempty"`
	Exp       *float64 `json:"exp,omitempty"`
	Token     string   `json:"token,omitempty"`
	SID       string   `json:"sid,omitempty"`
	Sub       string   `json:"sub,omitempty"`
	KID       string   `json:"kid,omitempty"`
	Claim     string   `json:"claim,omitempty"`
	Value     string   `json:"value,omitempty"`
	Iss       string   `json:"iss,omitempty"`
	Reason    string   `json:"reason,omitempty"`
	Initiator string   `json:"initiator,omitempty"`
}

// Result is the body of a 201 answer: the event id and its stream
// sequence; with ?wait=enforced, which live replicas enforce it.
type Result struct {
	ID          string       `json:"id"`
	Seq         uint64       `json:"seq"`
	Enforcement *Enforcement `json:"enforcement,omitempty"`
}

// ErrUnavailable is returned when the revoker answers 503 or cannot be
// reached: the revocation may not be stored; retry with the same
// idempotency key.
var ErrUnavailable = errors.New("revoker: unavailable")

// ErrRecorded is matched, together with [ErrUnavailable], by the error of a
// revoker's 503 answer given after recording the revocation: the stream has
// not acknowledged it yet, and the revoker's outbox delivers it without a
// retry (a retry with the same idempotency key is safe). errors.As gives the
// [*RecordedError] with the event id.
var ErrRecorded = errors.New("revoker: recorded, not acknowledged yet")

// APIError is a 4xx answer: the request itself is wrong; retrying it will
// not help.
type APIError struct {
	Status      int
	Code        string `json:"error"`
	Description string `json:"error_description"`
}

func (e *APIError) Error() string {
	return fmt.Sprintf("revoker: %d %s: %s", e.Status, e.Code, e.Description)
}

// CallerID is the id the revoker scopes this client's idempotency keys by
// (httpx.CallerID of its credential).
func (c *Client) CallerID() string { return httpx.CallerID(c.credential) }

// Client calls a revoker over HTTP. It is safe for concurrent use.
type Client struct {
	base       string
	credential string
	hc         *http.Client
}

// NewClient returns a client for the revoker at baseURL (e.g.
// "http://revoker:8082") authenticating with the service credential. A nil
// hc means a client with a 10 s timeout.
func NewClient(baseURL, credential string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{} // each call bounds itself (Revoke)
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), credential: credential, hc: hc}
}

// callTimeout bounds one call to the revoker, beside any wait it asks for.
const callTimeout = 10 * time.Second

// Revoke asks the revoker to revoke; it returns once the revocation is
// durable (the revoker answers only after the stream acknowledged it).
// idempotencyKey, if not empty, is sent as Idempotency-Key (1 to 128
// printable ASCII characters): retrying with the same key yields the same
// event; using it for a different revocation is refused (409, *APIError).
//
// With wait (at most one), the revoker answers once every live replica
// enforces the revocation, or when wait.Timeout passes; Result.Enforcement
// says which. The HTTP client's own timeout must leave room for it.
func (c *Client) Revoke(ctx context.Context, req Request, idempotencyKey string, wait ...Wait) (Result, error) {
	var query string
	limit := callTimeout
	if len(wait) > 0 {
		query = wait[0].Query()
		if wait[0].Enforced {
			limit += wait[0].Timeout
		}
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	body, err := json.Marshal(req)
	if err != nil {
		return Result{}, fmt.Errorf("revoker: encode request: %w", err)
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/v1/revocations"+query, bytes.NewReader(body))
	if err != nil {
		return Result{}, fmt.Errorf("revoker: %w", err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Authorization", "Bearer "+c.credential)
	if idempotencyKey != "" {
		hreq.Header.Set("Idempotency-Key", idempotencyKey)
	}
	resp, err := c.hc.Do(hreq)
	if err != nil {
		return Result{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return Result{}, fmt.Errorf("%w: read answer: %w", ErrUnavailable, err)
	}
	switch {
	case resp.StatusCode == http.StatusCreated || resp.StatusCode == http.StatusOK:
		var r Result
		if err := json.Unmarshal(data, &r); err != nil {
			return Result{}, fmt.Errorf("revoker: decode answer: %w", err)
		}
		return r, nil
	case resp.StatusCode == http.StatusServiceUnavailable:
		var ans RecordedAnswer
		if json.Unmarshal(data, &ans) == nil && ans.Recorded {
			return Result{}, fmt.Errorf("%w: %w", ErrUnavailable, &RecordedError{ID: ans.ID, Description: ans.Description})
		}
		return Result{}, fmt.Errorf("%w: status %d", ErrUnavailable, resp.StatusCode)
	case resp.StatusCode >= 500:
		return Result{}, fmt.Errorf("%w: status %d", ErrUnavailable, resp.StatusCode)
	}
	apiErr := &APIError{Status: resp.StatusCode}
	_ = json.Unmarshal(data, apiErr)
	return Result{}, apiErr
}

// Replicas returns the live fleet as the revoker sees it (GET
// /v1/replicas).
func (c *Client) Replicas(ctx context.Context) (Replicas, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/v1/replicas", nil)
	if err != nil {
		return Replicas{}, fmt.Errorf("revoker: %w", err)
	}
	hreq.Header.Set("Authorization", "Bearer "+c.credential)
	resp, err := c.hc.Do(hreq)
	if err != nil {
		return Replicas{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return Replicas{}, fmt.Errorf("%w: read answer: %w", ErrUnavailable, err)
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		var r Replicas
		if err := json.Unmarshal(data, &r); err != nil {
			return Replicas{}, fmt.Errorf("revoker: decode answer: %w", err)
		}
		return r, nil
	case resp.StatusCode >= 500:
		return Replicas{}, fmt.Errorf("%w: status %d", ErrUnavailable, resp.StatusCode)
	}
	apiErr := &APIError{Status: resp.StatusCode}
	_ = json.Unmarshal(data, apiErr)
	return Replicas{}, apiErr
}
