// Package providers reads the providers file: the outside identity
// providers (Keycloak, Auth0, Okta, Entra ID, Hydra, ...) whose tokens the
// services trust and whose logout signals the revoker takes. The revoker
// (-providers FILE) and the example service read the same file; the shape
// and each field are documented in docs/providers.md.
//
// The file is JSON:
//
//	{"providers": [{
//	  "name": "hydra",
//	  "issuer": "https://login.example.com/",
//	  "discovery": true,
//	  "audiences": ["api"],
//	  "algorithms": ["RS256"],
//	  "backchannel_logout": {"client_id": "my-client"}
//	}]}
//
// Unknown fields are refused, so a misspelt setting stops the start
// instead of being ignored.
package providers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/jwtrevoke/jwtrevoke/internal/httpx"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier"
)

// MaxFileSize bounds the providers file.
const MaxFileSize = 1 << 20

// Provider is one entry of the file.
type Provider struct {
	// Name identifies the provider in the revoker's URLs
	// (/v1/providers/{name}/...), metrics and logs (see ValidName).
	Name string `json:"name"`
	// Issuer is the exact iss of its tokens.
	Issuer string `json:"issuer"`
	// JWKSURL is its key set; or Discovery reads the key set's URL from
	// Issuer + /.well-known/openid-configuration. Exactly one of them.
	JWKSURL   string `json:"jwks_url,omitempty"`
	Discovery bool   `json:"discovery,omitempty"`
	// Audiences and Algorithms of its access tokens that services accept.
	Audiences  []string `json:"audiences"`
	Algorithms []string `json:"algorithms"`
	// SessionClaim, TokenIDClaim and TokenIDOptional: where its access
	// tokens carry the session and the token id (verifier.Provider).
	SessionClaim    string `json:"session_claim,omitempty"`
	TokenIDClaim    string `json:"token_id_claim,omitempty"`
	TokenIDOptional bool   `json:"token_id_optional,omitempty"`
	// BackchannelLogout, when set, lets the revoker take the provider's
	// OpenID Connect back-channel logout tokens.
	BackchannelLogout *Backchannel `json:"backchannel_logout,omitempty"`
	// SSF, when set, lets the revoker take the Security Event Tokens of
	// the provider's OpenID Shared Signals stream (push delivery).
	SSF *SSF `json:"ssf,omitempty"`
}

// SSF is the Shared Signals setting of a provider.
type SSF struct {
	// Audience is this receiver's id in the provider's stream: the aud of
	// its SETs.
	Audience string `json:"audience"`
	// Issuer is the iss of its SETs; default the provider's issuer.
	Issuer string `json:"issuer,omitempty"`
	// PushCredentialFile holds the bearer credential the transmitter
	// pushes with (the stream's authorization_header), one per line for a
	// rotation; at least 16 bytes each. A file, so that the secret is
	// neither in this file nor on a command line. Set it for push
	// delivery.
	PushCredentialFile string `json:"push_credential_file,omitempty"`
	// PollURL is the stream's poll endpoint, for poll delivery (RFC 8936);
	// PollCredentialFile holds the bearer token the revoker polls with
	// (its first line). PollInterval is the wait after an empty poll, a
	// Go duration; default 2s.
	PollURL            string `json:"poll_url,omitempty"`
	PollCredentialFile string `json:"poll_credential_file,omitempty"`
	PollInterval       string `json:"poll_interval,omitempty"`
	// MaxAge is how old a SET's iat may be; default
	// verifier.DefaultSETMaxAge (24h).
	MaxAge string `json:"max_age,omitempty"`
}

// Backchannel is the back-channel logout setting of a provider.
type Backchannel struct {
	// ClientID is the client registered at the provider with the
	// revoker's back-channel logout URL: the aud of its logout tokens.
	ClientID string `json:"client_id"`
	// MaxAge is how old a logout token may be, a Go duration ("10m");
	// default verifier.DefaultLogoutMaxAge.
	MaxAge string `json:"max_age,omitempty"`
	// Revoke is what a logout token naming both sub and sid revokes:
	// "session" (default; the provider's access tokens carry the session
	// id) or "subject" (they do not: Auth0, Zitadel, Dex), every token of
	// the user at the provider up to the logout.
	Revoke string `json:"revoke,omitempty"`
}

// BySubject reports whether the setting is "revoke": "subject".
func (b *Backchannel) BySubject() bool { return b.Revoke == "subject" }

// validName is the shape of a provider name: safe in a URL path, a metrics
// label and a log line as it is.
var validName = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)

// ValidName reports whether name can name a provider: 1 to 64 of a-z, 0-9,
// '-' and '_'.
func ValidName(name string) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("name %q must be 1 to 64 of a-z, 0-9, '-' and '_'", name)
	}
	return nil
}

// Load reads and checks the providers file at path.
func Load(path string) ([]Provider, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("providers file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("providers file %s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("providers file %s: larger than %d bytes", path, MaxFileSize)
	}
	ps, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("providers file %s: %w", path, err)
	}
	return ps, nil
}

// Parse reads and checks a providers file's contents: strict JSON, names
// valid and unique, exactly one of jwks_url and discovery, a client id and
// a valid max_age for back-channel logout. The rules of tokens (algorithms,
// audiences, claim names) are checked where they are used, by the
// verifier.
func Parse(data []byte) ([]Provider, error) {
	var file struct {
		Providers *[]Provider `json:"providers"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&file); err != nil {
		return nil, errors.New(strings.TrimPrefix(httpx.JSONError(err).Description, "body "))
	}
	if dec.More() {
		return nil, errors.New("data after the JSON object")
	}
	if file.Providers == nil {
		return nil, errors.New(`no "providers" list`)
	}
	ps := *file.Providers
	var errs []error
	seen := map[string]bool{}
	for i, p := range ps {
		bad := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("providers[%d] (%s): "+format, append([]any{i, p.Name}, args...)...))
		}
		if err := ValidName(p.Name); err != nil {
			bad("%v", err)
		} else if seen[p.Name] {
			bad("name used twice")
		}
		seen[p.Name] = true
		if p.Issuer == "" {
			bad(`"issuer" is required`)
		}
		if (p.JWKSURL == "") == !p.Discovery {
			bad(`give exactly one of "jwks_url" and "discovery": true`)
		}
		if b := p.BackchannelLogout; b != nil {
			if b.ClientID == "" {
				bad(`"backchannel_logout": "client_id" is required`)
			}
			if _, err := maxAge(b.MaxAge); err != nil {
				bad(`"backchannel_logout": %v`, err)
			}
			if b.Revoke != "" && b.Revoke != "session" && b.Revoke != "subject" {
				bad(`"backchannel_logout": "revoke" %q must be "session" or "subject"`, b.Revoke)
			}
		}
		if f := p.SSF; f != nil {
			if f.Audience == "" {
				bad(`"ssf": "audience" is required`)
			}
			if f.PushCredentialFile == "" && f.PollURL == "" {
				bad(`"ssf": give "push_credential_file" (push delivery), "poll_url" (poll delivery) or both`)
			}
			if (f.PollURL == "") != (f.PollCredentialFile == "") {
				bad(`"ssf": "poll_url" and "poll_credential_file" go together`)
			}
			if _, err := maxAge(f.PollInterval); err != nil {
				bad(`"ssf": "poll_interval": %v`, strings.TrimPrefix(err.Error(), `"max_age" `))
			}
			if _, err := maxAge(f.MaxAge); err != nil {
				bad(`"ssf": %v`, err)
			}
		}
	}
	return ps, errors.Join(errs...)
}

// maxAge reads a max_age setting: "" is zero (the default).
func maxAge(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf(`"max_age" %q is not a positive duration such as "10m"`, s)
	}
	return d, nil
}

// KeyOptions are the deployment's settings for fetching providers' keys.
type KeyOptions struct {
	// InsecureJWKSOverHTTP allows http:// key sets and discovery documents
	// on non-loopback hosts (verifier.JWKSConfig.InsecureAllowHTTP).
	InsecureJWKSOverHTTP bool
	Logger               *slog.Logger
}

// Keys returns the provider's key source: a JWKS at jwks_url, or one found
// by discovery. Run it (a Checker or Verifier runs the sources it holds).
func (p Provider) Keys(o KeyOptions) (verifier.KeySource, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg := verifier.JWKSConfig{InsecureAllowHTTP: o.InsecureJWKSOverHTTP, Logger: log.With("component", "jwks", "provider", p.Name)}
	if p.Discovery {
		d, err := verifier.NewDiscovery(verifier.DiscoveryConfig{Issuer: p.Issuer, JWKS: cfg})
		if err != nil {
			return nil, fmt.Errorf("provider %s: %w", p.Name, err)
		}
		return d, nil
	}
	cfg.URL = p.JWKSURL
	k, err := verifier.NewJWKS(cfg)
	if err != nil {
		return nil, fmt.Errorf("provider %s: %w", p.Name, err)
	}
	return k, nil
}

// Trust returns the verifier's rules for the provider's access tokens,
// verified with keys.
func (p Provider) Trust(keys verifier.KeySource) verifier.Provider {
	return verifier.Provider{
		Name: p.Name, Issuer: p.Issuer, Keys: keys, Audiences: p.Audiences, Algorithms: p.Algorithms,
		SessionClaim: p.SessionClaim, TokenIDClaim: p.TokenIDClaim, TokenIDOptional: p.TokenIDOptional,
	}
}

// Trusts returns the verifier rules of every provider in ps, each with its
// own key source, for verifier.Config.Providers.
func Trusts(ps []Provider, o KeyOptions) ([]verifier.Provider, error) {
	out := make([]verifier.Provider, 0, len(ps))
	for _, p := range ps {
		keys, err := p.Keys(o)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Trust(keys))
	}
	return out, nil
}

// LogoutChecker returns the checker of the provider's back-channel logout
// tokens, verified with keys; nil when the provider has no
// backchannel_logout setting.
func (p Provider) LogoutChecker(keys verifier.KeySource) (*verifier.LogoutChecker, error) {
	b := p.BackchannelLogout
	if b == nil {
		return nil, nil
	}
	age, err := maxAge(b.MaxAge)
	if err != nil {
		return nil, fmt.Errorf("provider %s: %w", p.Name, err)
	}
	k, err := verifier.NewLogoutChecker(verifier.LogoutConfig{
		Issuer: p.Issuer, ClientID: b.ClientID, Keys: keys, Algorithms: p.Algorithms, MaxAge: age,
	})
	if err != nil {
		return nil, fmt.Errorf("provider %s: %w", p.Name, err)
	}
	return k, nil
}

// SETChecker returns the checker of the provider's Security Event Tokens,
// verified with keys, and the credentials its transmitter pushes with (read
// from push_credential_file; none for a poll-only stream); nil when the
// provider has no ssf setting.
func (p Provider) SETChecker(keys verifier.KeySource) (*verifier.SETChecker, []string, error) {
	f := p.SSF
	if f == nil {
		return nil, nil, nil
	}
	age, err := maxAge(f.MaxAge)
	if err != nil {
		return nil, nil, fmt.Errorf("provider %s: %w", p.Name, err)
	}
	iss := f.Issuer
	if iss == "" {
		iss = p.Issuer
	}
	k, err := verifier.NewSETChecker(verifier.SETConfig{Issuer: iss, Audience: f.Audience, Keys: keys, Algorithms: p.Algorithms, MaxAge: age})
	if err != nil {
		return nil, nil, fmt.Errorf("provider %s: %w", p.Name, err)
	}
	if f.PushCredentialFile == "" {
		return k, nil, nil
	}
	creds, err := secretLines(f.PushCredentialFile)
	if err != nil {
		return nil, nil, fmt.Errorf("provider %s: ssf push credential: %w", p.Name, err)
	}
	return k, creds, nil
}

// Poll is the poll delivery of the provider's stream: the URL, the bearer
// token (the first line of poll_credential_file) and the wait after an
// empty poll; ok is false without poll_url.
func (p Provider) Poll() (pollURL, credential string, interval time.Duration, ok bool, err error) {
	f := p.SSF
	if f == nil || f.PollURL == "" {
		return "", "", 0, false, nil
	}
	creds, err := secretLines(f.PollCredentialFile)
	if err != nil {
		return "", "", 0, false, fmt.Errorf("provider %s: ssf poll credential: %w", p.Name, err)
	}
	interval, err = maxAge(f.PollInterval)
	if err != nil {
		return "", "", 0, false, fmt.Errorf("provider %s: poll_interval: %w", p.Name, err)
	}
	return f.PollURL, creds[0], interval, true, nil
}

// secretLines reads a file of secrets, one per line, blank lines skipped;
// at least one.
func secretLines(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s is empty", path)
	}
	return out, nil
}
