package keyset

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Defaults for [RemoteConfig].
const (
	DefaultClientTimeout      = 10 * time.Second
	DefaultRefreshInterval    = 5 * time.Minute
	DefaultMinRefreshInterval = 10 * time.Second
	DefaultMaxBodyBytes       = 1 << 20
)

// fetchTimeout bounds every fetch, whatever client was configured, so a
// fetch goroutine always ends.
const fetchTimeout = 30 * time.Second

// errRedirectRefused is returned (inside a *url.Error) when the JWKS server
// redirects to another origin.
var errRedirectRefused = errors.New("keyset: redirect to another origin refused")

// RemoteConfig configures [NewRemote]. It is copied; NewRemote never writes
// to it.
type RemoteConfig struct {
	// URL of the JSON Web Key Set. It MUST come from configuration, never
	// from a token. It must be https, unless its host is a loopback address
	// (localhost, 127.0.0.0/8, ::1) or InsecureAllowHTTP is set.
	URL string
	// InsecureAllowHTTP allows a plain-http URL to a non-loopback host. Keys
	// fetched over http can be replaced by anyone on the path, who can then
	// forge any token: it MUST NOT be set outside tests and closed networks.
	InsecureAllowHTTP bool
	// Client makes the requests. Nil means a client with a
	// [DefaultClientTimeout] timeout. The client is copied and its
	// CheckRedirect replaced by one that refuses redirects to another
	// scheme, host or port.
	Client *http.Client
	// RefreshInterval is how often [Remote.Run] refetches the set. Zero
	// means [DefaultRefreshInterval].
	RefreshInterval time.Duration
	// MinRefreshInterval rate-limits fetches triggered by unknown kids: at
	// most one fetch starts per interval (measured from the start of the
	// last fetch of any kind), so a flood of tokens with random kids cannot
	// become a flood of requests. Zero means [DefaultMinRefreshInterval].
	// A new key should be published at least this long before tokens are
	// signed with it.
	MinRefreshInterval time.Duration
	// MaxBodyBytes bounds the response body. Zero means [DefaultMaxBodyBytes].
	MaxBodyBytes int64
	// Now returns the current time, for the rate limit and status. Nil
	// means time.Now.
	Now func() time.Time
	// Logger receives fetch failures and skipped keys. Nil discards.
	Logger *slog.Logger
}

// RemoteStatus describes a [Remote]'s key set, for health checks and metrics.
type RemoteStatus struct {
	// LastFetch is when the last successful fetch finished; zero if none has.
	LastFetch time.Time
	// LastAttempt is when the last fetch started; zero if none has.
	LastAttempt time.Time
	// LastError is the error of the most recent finished fetch, nil if it
	// succeeded or none has finished.
	LastError error
	// Keys is the number of keys currently held.
	Keys int
}

// Remote is a [Source] backed by a JSON Web Key Set fetched over HTTP. It is
// safe for concurrent use.
//
// Keys are cached. A kid not in the cache triggers a fetch, subject to the
// rate limit of [RemoteConfig.MinRefreshInterval]; at most one fetch is in
// flight at a time and all callers share it. A failed fetch keeps the
// previous keys; a successful one replaces them, so a key removed from the
// set stops verifying. [Remote.Run] refreshes in the background.
type Remote struct {
	url                string
	client             *http.Client
	refreshInterval    time.Duration
	minRefreshInterval time.Duration
	maxBodyBytes       int64
	now                func() time.Time
	log                *slog.Logger

	// mu guards keys, lastFetch, lastAttempt, lastErr and inflight.
	mu sync.RWMutex
	// keys is nil until the first successful fetch, then replaced as a whole
	// by each successful fetch; a map once stored is never modified.
	keys        map[string]Key
	lastFetch   time.Time
	lastAttempt time.Time
	lastErr     error
	// inflight is the fetch under way, nil when none is.
	inflight *inflight

	ready     chan struct{} // closed by the first successful fetch
	readyOnce sync.Once
}

// inflight is one fetch shared by every caller that waits for it.
type inflight struct {
	done chan struct{} // closed once the result is applied to the Remote
	err  error         // written before done is closed, read only after
}

// NewRemote validates cfg and returns a [Remote]. It does not fetch: call
// [Remote.Refresh] to fetch at start, and [Remote.Run] to keep the set fresh.
// Errors wrap [ErrInvalidConfig].
func NewRemote(cfg RemoteConfig) (*Remote, error) {
	u, err := CheckFetchURL(cfg.URL, cfg.InsecureAllowHTTP)
	if err != nil {
		return nil, err
	}
	if cfg.RefreshInterval < 0 || cfg.MinRefreshInterval < 0 || cfg.MaxBodyBytes < 0 {
		return nil, fmt.Errorf("%w: negative interval or size", ErrInvalidConfig)
	}

	r := &Remote{
		url:                u.String(),
		refreshInterval:    cmp.Or(cfg.RefreshInterval, DefaultRefreshInterval),
		minRefreshInterval: cmp.Or(cfg.MinRefreshInterval, DefaultMinRefreshInterval),
		maxBodyBytes:       cmp.Or(cfg.MaxBodyBytes, DefaultMaxBodyBytes),
		now:                cfg.Now,
		log:                cfg.Logger,
		ready:              make(chan struct{}),
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.client = fetchClient(cfg.Client)
	return r, nil
}

// fetchClient returns a copy of c (nil: one with DefaultClientTimeout)
// that refuses redirects to another origin.
func fetchClient(c *http.Client) *http.Client {
	client := http.Client{Timeout: DefaultClientTimeout}
	if c != nil {
		client = *c
	}
	client.CheckRedirect = refuseCrossOriginRedirect
	return &client
}

// CheckFetchURL parses raw, a URL from configuration that something
// security-relevant is fetched from (keys, a discovery document, security
// events): https, or http to a loopback host unless insecureHTTP; a host;
// no user info (it would end up in errors and logs). Errors wrap
// [ErrInvalidConfig].
func CheckFetchURL(raw string, insecureHTTP bool) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: url: %w", ErrInvalidConfig, err)
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return nil, fmt.Errorf("%w: url scheme %q (want https)", ErrInvalidConfig, u.Scheme)
	case u.Host == "" || u.Hostname() == "":
		return nil, fmt.Errorf("%w: url without host", ErrInvalidConfig)
	case u.User != nil:
		return nil, fmt.Errorf("%w: url with user info", ErrInvalidConfig)
	case u.Scheme == "http" && !insecureHTTP && !isLoopback(u.Hostname()):
		return nil, fmt.Errorf("%w: http url to non-loopback host %q (use https)", ErrInvalidConfig, u.Hostname())
	}
	return u, nil
}

// isLoopback reports whether host names the loopback interface.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// refuseCrossOriginRedirect allows a few redirects within the configured
// origin and refuses any other, so configuration alone decides where keys
// come from.
func refuseCrossOriginRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 3 {
		return fmt.Errorf("%w: too many redirects", errRedirectRefused)
	}
	from := via[0].URL
	if req.URL.Scheme != from.Scheme || req.URL.Host != from.Host {
		return errRedirectRefused
	}
	return nil
}

// Key returns the key with the given kid. A kid not in the cache triggers a
// fetch (shared with other callers, rate-limited) and Key waits for it or
// for ctx to end, whichever comes first.
//
// Errors: [ErrUnknownKey] when the kid is still unknown after that;
// [ErrKeysUnavailable], wrapping the last fetch error, when no fetch has ever
// succeeded; ctx's error when ctx ends while waiting.
func (r *Remote) Key(ctx context.Context, kid string) (Key, error) {
	if kid == "" {
		// Every held key has a kid: a token without one is bad, whatever
		// the state of the set.
		return Key{}, unknownKey(kid)
	}
	if k, ok := r.lookup(kid); ok {
		return k, nil
	}
	if f := r.startFetch(ctx, true); f != nil {
		select {
		case <-f.done:
		case <-ctx.Done():
			return Key{}, fmt.Errorf("keyset: waiting for signing keys: %w", ctx.Err())
		}
	}

	r.mu.RLock()
	defer r.mu.RUnlock()
	if k, ok := r.keys[kid]; ok {
		return k, nil
	}
	if r.keys == nil {
		cause := r.lastErr
		if cause == nil {
			cause = errors.New("keyset: no fetch has completed")
		}
		return Key{}, fmt.Errorf("%w: %w", ErrKeysUnavailable, cause)
	}
	return Key{}, unknownKey(kid)
}

// lookup returns the cached key for kid.
func (r *Remote) lookup(kid string) (Key, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	k, ok := r.keys[kid]
	return k, ok
}

// Refresh fetches the set now, ignoring the rate limit, or joins the fetch
// already in flight. It returns that fetch's error, or ctx's error if ctx
// ends first (the fetch itself then still completes in the background).
func (r *Remote) Refresh(ctx context.Context) error {
	f := r.startFetch(ctx, false)
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		return fmt.Errorf("keyset: waiting for signing keys: %w", ctx.Err())
	}
}

// Retries of [Remote.Run] while no fetch has ever succeeded: the service is
// not ready until one does, and its JWKS may simply be starting (compose
// starts the revoker before the issuer), so retry soon, backing off to a
// second so that an issuer that stays down is not hammered.
const (
	startRetryMin = 100 * time.Millisecond
	startRetryMax = time.Second
)

// Run refreshes the set at once and then every RefreshInterval until ctx
// ends, and returns nil then. After a failed fetch it retries sooner: while
// no fetch has ever succeeded, from 100 ms doubling to 1 s, so keys are there
// about a second after the JWKS becomes reachable; after that, from
// MinRefreshInterval up to RefreshInterval. Running it is optional: without
// it keys are fetched only for unknown kids (rate-limited) and by
// [Remote.Refresh].
func (r *Remote) Run(ctx context.Context) error {
	backoff := r.minRefreshInterval
	startBackoff := startRetryMin
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		next := r.refreshInterval
		switch err := r.Refresh(ctx); {
		case err == nil || ctx.Err() != nil:
			backoff, startBackoff = r.minRefreshInterval, startRetryMin
		case r.Status().LastFetch.IsZero():
			next = min(startBackoff, r.refreshInterval)
			startBackoff = min(2*startBackoff, startRetryMax)
		default:
			next = min(backoff, r.refreshInterval)
			backoff = min(2*backoff, r.refreshInterval)
		}
		timer.Reset(next)
	}
}

// Status reports the state of the key set.
func (r *Remote) Status() RemoteStatus {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return RemoteStatus{
		LastFetch:   r.lastFetch,
		LastAttempt: r.lastAttempt,
		LastError:   r.lastErr,
		Keys:        len(r.keys),
	}
}

// startFetch returns the fetch in flight, or starts one. When limited and
// the last fetch started less than minRefreshInterval ago, it starts none
// and returns nil.
//
// The fetch runs in its own goroutine on a context detached from ctx's
// cancellation (it keeps ctx's values), because other callers may be
// waiting for it; fetchTimeout bounds it.
func (r *Remote) startFetch(ctx context.Context, limited bool) *inflight {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.inflight != nil {
		return r.inflight
	}
	now := r.now()
	if limited && !r.lastAttempt.IsZero() {
		// A clock that went backwards does not block fetching.
		if since := now.Sub(r.lastAttempt); since >= 0 && since < r.minRefreshInterval {
			return nil
		}
	}
	f := &inflight{done: make(chan struct{})}
	r.inflight = f
	r.lastAttempt = now
	go r.fetch(context.WithoutCancel(ctx), f)
	return f
}

// fetch runs one fetch, applies its result and completes f.
func (r *Remote) fetch(ctx context.Context, f *inflight) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	keys, skipped, err := r.get(ctx)

	r.mu.Lock()
	if err == nil {
		m := make(map[string]Key, len(keys))
		for _, k := range keys {
			m[k.ID] = k
		}
		r.keys = m
		r.lastFetch = r.now()
	}
	r.lastErr = err
	r.inflight = nil
	r.mu.Unlock()

	// Ready before the waiters return: a Refresh that succeeded sees the
	// source ready.
	if err == nil {
		r.readyOnce.Do(func() { close(r.ready) })
	}
	f.err = err
	close(f.done)

	if err != nil {
		r.log.WarnContext(ctx, "keyset: jwks fetch failed, keeping previous keys",
			slog.String("url", r.url), slog.Any("error", err))
		return
	}
	if len(skipped) > 0 {
		r.log.InfoContext(ctx, "keyset: jwks keys skipped",
			slog.String("url", r.url), slog.Any("skipped", skipped))
	}
	r.log.DebugContext(ctx, "keyset: jwks fetched", slog.String("url", r.url), slog.Int("keys", len(keys)))
}

// Ready implements [Source]: the channel is closed by the first successful
// fetch.
func (r *Remote) Ready() <-chan struct{} { return r.ready }

// get performs the HTTP request and parses the body.
func (r *Remote) get(ctx context.Context) ([]Key, []string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("keyset: fetch jwks: %w", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("keyset: fetch jwks: %w", err)
	}
	defer func() {
		// Drain a little so the connection can be reused, then close.
		_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
		_ = resp.Body.Close()
	}()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("keyset: fetch jwks %s: status %d", r.url, resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !isJSON(ct) {
		return nil, nil, fmt.Errorf("keyset: fetch jwks %s: content type %q is not json", r.url, truncate(ct))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, r.maxBodyBytes+1))
	if err != nil {
		return nil, nil, fmt.Errorf("keyset: fetch jwks %s: read body: %w", r.url, err)
	}
	if int64(len(body)) > r.maxBodyBytes {
		return nil, nil, fmt.Errorf("keyset: fetch jwks %s: body larger than %d bytes", r.url, r.maxBodyBytes)
	}
	keys, skipped, err := parseJWKS(body)
	if err != nil {
		return nil, nil, fmt.Errorf("keyset: fetch jwks %s: %w", r.url, err)
	}
	return keys, skipped, nil
}

// isJSON reports whether a Content-Type names JSON: application/json or an
// application/*+json type such as application/jwk-set+json.
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}
