package keyset

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DiscoveryPath is where an OpenID provider publishes its metadata, below
// its issuer (OpenID Connect Discovery 1.0 §4).
const DiscoveryPath = "/.well-known/openid-configuration"

// Retries of the discovery document while none was read: from startRetryMin
// doubling to discoveryRetryMax.
const discoveryRetryMax = 30 * time.Second

// maxDiscoveryBody bounds the discovery document.
const maxDiscoveryBody = 256 << 10

// DiscoveryConfig configures [NewDiscovery].
type DiscoveryConfig struct {
	// Issuer is the provider's exact issuer identifier, from
	// configuration. Its metadata is read from Issuer (without a trailing
	// '/') + DiscoveryPath, must name the same issuer, and gives jwks_uri.
	Issuer string
	// JWKS configures the key set at jwks_uri: every field but URL
	// applies, to the discovery request too (InsecureAllowHTTP, Client,
	// Logger).
	JWKS RemoteConfig
}

// Discovery is a [Source] whose JWKS URL comes from the provider's OpenID
// discovery document, read from the configured issuer (never from a
// token). It is ready once the document was read and the key set fetched;
// until then Key answers [ErrKeysUnavailable]. [Discovery.Run] reads the
// document (retrying until it succeeds), then runs the key set. The
// document is read once per Run: a provider that moves its jwks_uri is
// followed at the next start.
type Discovery struct {
	issuer, docURL string
	cfg            RemoteConfig
	client         *http.Client
	log            *slog.Logger

	remote    atomic.Pointer[Remote] // nil until discovered
	lastErr   atomic.Pointer[error]
	ready     chan struct{}
	readyOnce sync.Once
}

// NewDiscovery validates cfg and returns a [Discovery]. It does not fetch:
// run it. Errors wrap [ErrInvalidConfig].
func NewDiscovery(cfg DiscoveryConfig) (*Discovery, error) {
	if cfg.Issuer == "" {
		return nil, fmt.Errorf("%w: discovery needs the issuer", ErrInvalidConfig)
	}
	doc := strings.TrimSuffix(cfg.Issuer, "/") + DiscoveryPath
	// The document URL gets the checks a JWKS URL gets (https, no user
	// info), and the same client.
	if _, err := CheckFetchURL(doc, cfg.JWKS.InsecureAllowHTTP); err != nil {
		return nil, fmt.Errorf("%w (the issuer's discovery document %s)", err, doc)
	}
	log := cfg.JWKS.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Discovery{issuer: cfg.Issuer, docURL: doc, cfg: cfg.JWKS, client: fetchClient(cfg.JWKS.Client), log: log,
		ready: make(chan struct{})}, nil
}

// Key implements [Source].
func (d *Discovery) Key(ctx context.Context, kid string) (Key, error) {
	r := d.remote.Load()
	if r == nil {
		cause := errors.New("keyset: the discovery document has not been read yet")
		if p := d.lastErr.Load(); p != nil {
			cause = *p
		}
		return Key{}, fmt.Errorf("%w: %w", ErrKeysUnavailable, cause)
	}
	return r.Key(ctx, kid)
}

// Ready implements [Source]: closed once the key set at the discovered
// jwks_uri was fetched.
func (d *Discovery) Ready() <-chan struct{} { return d.ready }

// JWKSURL returns the discovered jwks_uri, "" before discovery.
func (d *Discovery) JWKSURL() string {
	if r := d.remote.Load(); r != nil {
		return r.url
	}
	return ""
}

// Run reads the discovery document, retrying with backoff until it
// succeeds, then runs the key set it names until ctx ends, and returns nil
// then.
func (d *Discovery) Run(ctx context.Context) error {
	backoff := startRetryMin
	for d.remote.Load() == nil {
		jwksURI, err := d.discover(ctx)
		if err == nil {
			cfg := d.cfg
			cfg.URL = jwksURI
			r, err := NewRemote(cfg)
			if err != nil {
				err = fmt.Errorf("keyset: discovery document %s: jwks_uri: %w", d.docURL, err)
				d.lastErr.Store(&err)
				// Configuration on the provider's side: retrying soon
				// will not help, but it may be fixed there.
				backoff = discoveryRetryMax
			} else {
				d.remote.Store(r)
				d.log.Info("keyset: discovered the provider's key set", slog.String("issuer", d.issuer), slog.String("jwks_uri", jwksURI))
				break
			}
		} else {
			d.lastErr.Store(&err)
		}
		if ctx.Err() != nil {
			return nil
		}
		d.log.Warn("keyset: provider discovery failed, retrying", slog.String("url", d.docURL),
			slog.Any("error", *d.lastErr.Load()), slog.Duration("retry_in", backoff))
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, discoveryRetryMax)
	}
	r := d.remote.Load()
	go func() {
		select {
		case <-r.Ready():
			d.readyOnce.Do(func() { close(d.ready) })
		case <-ctx.Done():
		}
	}()
	return r.Run(ctx)
}

// discover reads the document and returns its jwks_uri, after checking
// that it names the configured issuer exactly (Discovery §4.3: otherwise
// the keys could be another issuer's).
func (d *Discovery) discover(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.docURL, nil)
	if err != nil {
		return "", fmt.Errorf("keyset: discovery: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := d.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("keyset: discovery: %w", err)
	}
	defer func() {
		_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
		_ = resp.Body.Close()
	}()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("keyset: discovery %s: status %d", d.docURL, resp.StatusCode)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/json" {
		return "", fmt.Errorf("keyset: discovery %s: content type %q, want application/json", d.docURL, mt)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDiscoveryBody+1))
	if err != nil {
		return "", fmt.Errorf("keyset: discovery %s: %w", d.docURL, err)
	}
	if len(body) > maxDiscoveryBody {
		return "", fmt.Errorf("keyset: discovery %s: document larger than %d bytes", d.docURL, maxDiscoveryBody)
	}
	// Members by their exact names (a struct would match "ISSUER" too).
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", fmt.Errorf("keyset: discovery %s: not a JSON object", d.docURL)
	}
	var iss, jwksURI string
	if json.Unmarshal(doc["issuer"], &iss) != nil || iss != d.issuer {
		return "", fmt.Errorf("keyset: discovery %s: the document's issuer is not the configured %q", d.docURL, d.issuer)
	}
	if json.Unmarshal(doc["jwks_uri"], &jwksURI) != nil || jwksURI == "" {
		return "", fmt.Errorf("keyset: discovery %s: no jwks_uri string", d.docURL)
	}
	return jwksURI, nil
}
