package issuer

import (
	"context"
	"errors"
	"net/http"

	"github.com/jwtrevoke/jwtrevoke/internal/httpx"
	"github.com/jwtrevoke/jwtrevoke/internal/revoker"
)

// keysRevoked is the answer while every signing key is revoked.
var keysRevoked = httpx.Errorf(http.StatusServiceUnavailable, "temporarily_unavailable", keysRevokedReason)

// fail answers err: a recorded-but-unconfirmed revocation with its own body,
// anything else through httpx.Fail.
func (s *Server) fail(w http.ResponseWriter, err error) {
	var rec *revoker.RecordedError
	if errors.As(err, &rec) {
		rec.Write(w)
		return
	}
	httpx.Fail(w, s.log, err)
}

func (s *Server) storeDown(err error) error {
	s.log.Error("redis", "err", err)
	return httpx.Errorf(http.StatusServiceUnavailable, "temporarily_unavailable", "session store unavailable, retry")
}

func (s *Server) revokerFailed(ctx context.Context, err error) error {
	s.revokerErrors.Add(ctx, 1)
	var api *revoker.APIError
	if errors.As(err, &api) {
		s.log.Error("revoker refused a request", "err", err)
		return httpx.Errorf(http.StatusBadGateway, "server_error", "revocation service refused the request")
	}
	s.log.Warn("revoker unavailable", "err", err)
	return httpx.Errorf(http.StatusServiceUnavailable, "temporarily_unavailable", "revocation service unavailable, retry")
}
