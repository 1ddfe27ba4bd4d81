package issuer

import (
	"errors"
	"sync"
	"sync/atomic"
)

// errKeysRevoked: every configured signing key has been revoked, so the
// issuer mints nothing (each token would be refused as revoked_key).
var errKeysRevoked = errors.New("issuer: " + keysRevokedReason)

// keysRevokedReason is what /readyz and the 503 of minting say then.
const keysRevokedReason = "every signing key of this issuer is revoked"

// signingKeys chooses the key that signs: the configured signing key, or,
// once it is revoked, the next configured key (in Config.Keys order) that
// is not. Every configured key is in the JWKS already, so verifiers know
// the replacement. It is safe for concurrent use.
type signingKeys struct {
	order   []signer                // preference order
	current atomic.Pointer[signing] // nil: every key revoked

	// mu guards revoked and serialises the updates of current.
	mu      sync.Mutex
	revoked map[string]bool
}

// signing is a signer with its encoded JWS header.
type signing struct {
	signer
	header string
}

func newSigningKeys(order []signer) *signingKeys {
	k := &signingKeys{order: order, revoked: map[string]bool{}}
	k.current.Store(&signing{signer: order[0], header: encodedHeader(order[0])})
	return k
}

// active returns the key to sign with, or nil when every key is revoked.
func (k *signingKeys) active() *signing { return k.current.Load() }

// revoke records that kid is revoked and moves to the next unrevoked key if
// kid was signing. It reports whether kid is one of the issuer's keys and
// was not known revoked before.
func (k *signingKeys) revoke(kid string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.revoked[kid] || !k.has(kid) {
		return false
	}
	k.revoked[kid] = true
	var next *signing
	for _, sg := range k.order {
		if !k.revoked[sg.kid] {
			next = &signing{signer: sg, header: encodedHeader(sg)}
			break
		}
	}
	if cur := k.current.Load(); cur == nil || next == nil || cur.kid != next.kid {
		k.current.Store(next)
	}
	return true
}

func (k *signingKeys) has(kid string) bool {
	for _, sg := range k.order {
		if sg.kid == kid {
			return true
		}
	}
	return false
}
