package revoker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"time"

	"github.com/jwtrevoke/jwtrevoke/internal/keyset"
)

// Defaults of [Poll].
const (
	DefaultPollMaxEvents = 25
	DefaultPollInterval  = 2 * time.Second
	// maxPollBackoff bounds the wait after failed polls.
	maxPollBackoff = 30 * time.Second
	// maxPollBody bounds a poll answer: MaxEvents SETs of up to 16 KiB.
	maxPollBody = 4 << 20
)

// Poll is the poll delivery (RFC 8936) of a provider's Shared Signals
// stream: the revoker polls URL with Credential as the bearer token,
// records each SET's revocation, and acknowledges a SET only once it is
// recorded (or refused, reported back in setErrs). A SET whose revocation
// could not be recorded (Redis down) is neither acknowledged nor refused,
// so the transmitter delivers it again. Several revoker replicas may poll
// the same stream: a SET delivered to two of them is recorded once (its
// jti is the idempotency record) and acknowledged by both.
type Poll struct {
	// URL is the stream's poll endpoint (the endpoint_url of its
	// urn:ietf:rfc:8936 delivery). Required; https, or http on a loopback
	// host.
	URL string
	// Credential is the bearer token of the poll endpoint. Required.
	Credential string
	// MaxEvents asked for per poll; default DefaultPollMaxEvents.
	MaxEvents int
	// Interval is the wait after a poll that returned nothing;
	// default DefaultPollInterval. A poll that returned SETs is followed
	// at once (it acknowledges them and asks for more).
	Interval time.Duration
	// InsecureHTTP allows an http URL to a non-loopback host; MUST NOT be
	// set in production (anyone on the path could read the credential and
	// drop events).
	InsecureHTTP bool
	// Client makes the requests; nil means one with a 30 s timeout.
	Client *http.Client
}

// pollRequest is RFC 8936 §2.4's request body.
type pollRequest struct {
	Ack               []string                `json:"ack"`
	SetErrs           map[string]pollSetError `json:"setErrs,omitempty"`
	MaxEvents         int                     `json:"maxEvents"`
	ReturnImmediately bool                    `json:"returnImmediately"`
}

type pollSetError struct {
	Err         string `json:"err"`
	Description string `json:"description"`
}

// pollAnswer is RFC 8936 §2.5's answer body.
type pollAnswer struct {
	Sets          map[string]string `json:"sets"`
	MoreAvailable bool              `json:"moreAvailable"`
}

// checkPoll validates p and fills in its defaults.
func checkPoll(p *Poll) error {
	if _, err := keyset.CheckFetchURL(p.URL, p.InsecureHTTP); err != nil {
		return fmt.Errorf("poll URL: %w", err)
	}
	switch {
	case len(p.Credential) < 16:
		return errors.New("poll Credential must be at least 16 bytes")
	case p.MaxEvents < 0 || p.Interval < 0:
		return errors.New("poll MaxEvents and Interval must not be negative")
	}
	if p.MaxEvents == 0 {
		p.MaxEvents = DefaultPollMaxEvents
	}
	if p.Interval == 0 {
		p.Interval = DefaultPollInterval
	}
	if p.Client == nil {
		p.Client = &http.Client{Timeout: 30 * time.Second}
	}
	return nil
}

// pollLoop polls p's stream until ctx ends. The acknowledgements and
// errors of one answer go out with the next poll; a failed poll keeps
// them for the one after.
func (s *Server) pollLoop(ctx context.Context, p *Provider) {
	log := s.cfg.Logger.With("provider", p.Name)
	req := pollRequest{Ack: []string{}, MaxEvents: p.Poll.MaxEvents, ReturnImmediately: true}
	backoff := p.Poll.Interval
	for {
		ans, err := s.poll(ctx, p.Poll, req)
		wait := time.Duration(0)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Warn("revoker: polling the provider's security events failed; the acknowledgements are sent again with the next poll",
				"url", p.Poll.URL, "err", err, "retry_in", backoff)
			wait, backoff = backoff, min(2*backoff, maxPollBackoff)
		} else {
			backoff = p.Poll.Interval
			req = pollRequest{Ack: []string{}, MaxEvents: p.Poll.MaxEvents, ReturnImmediately: true}
			for jti, raw := range ans.Sets {
				id, outcome, reason, err := s.applySET(ctx, p, raw)
				var se *setError
				switch {
				case err == nil && id != jti:
					// Recorded under the SET's own jti; the answer's key
					// for it is the transmitter's mistake, reported.
					req.SetErrs = withSetErr(req.SetErrs, jti, setInvalidRequest, "the key of the SET in sets is not its jti")
				case err == nil:
					req.Ack = append(req.Ack, jti)
				case errors.As(err, &se):
					req.SetErrs = withSetErr(req.SetErrs, jti, se.code, se.description)
				default:
					// Not decided now: neither acknowledged nor refused,
					// so the transmitter delivers it again.
					log.Warn("revoker: polled security event not taken now", "jti", jti, "err", err)
				}
				s.metrics.signal(ctx, p.Name, "ssf_poll", outcome, reason)
			}
			if len(ans.Sets) == 0 && !ans.MoreAvailable {
				wait = p.Poll.Interval
			}
		}
		if wait > 0 && !sleep(ctx, wait) || ctx.Err() != nil {
			return
		}
	}
}

func withSetErr(m map[string]pollSetError, jti, code, desc string) map[string]pollSetError {
	if m == nil {
		m = map[string]pollSetError{}
	}
	m[jti] = pollSetError{Err: code, Description: desc}
	return m
}

// poll makes one poll request.
func (s *Server) poll(ctx context.Context, p *Poll, body pollRequest) (pollAnswer, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return pollAnswer{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, 35*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL, bytes.NewReader(b))
	if err != nil {
		return pollAnswer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+p.Credential)
	resp, err := p.Client.Do(req)
	if err != nil {
		return pollAnswer{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxPollBody+1))
	if err != nil {
		return pollAnswer{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return pollAnswer{}, fmt.Errorf("status %d", resp.StatusCode)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/json" {
		return pollAnswer{}, fmt.Errorf("content type %q, want application/json", mt)
	}
	if len(data) > maxPollBody {
		return pollAnswer{}, fmt.Errorf("answer larger than %d bytes", maxPollBody)
	}
	var ans pollAnswer
	if err := json.Unmarshal(data, &ans); err != nil {
		return pollAnswer{}, fmt.Errorf("answer is not {\"sets\":{…},\"moreAvailable\":…}: %w", err)
	}
	return ans, nil
}
