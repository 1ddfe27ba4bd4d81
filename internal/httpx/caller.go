package httpx

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
)

// CallerID returns a stable, non-secret id of a service credential: the
// same on every replica and across restarts, and different for different
// credentials. Records a caller owns (idempotency keys) are scoped by it, so
// one credential holder cannot claim another's.
func CallerID(credential string) string {
	d := sha256.Sum256([]byte("jwtrevoke caller\x00" + credential))
	return hex.EncodeToString(d[:8])
}

// Caller returns the [CallerID] of the credential r authenticated with; call
// it behind [Credentials.Require], which has checked the credential.
func Caller(r *http.Request) string {
	key, err := BearerToken(r, "")
	if err != nil {
		return ""
	}
	return CallerID(key)
}
