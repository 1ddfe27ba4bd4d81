package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name    string
		status  int
		wantErr bool
	}{
		{name: "ready", status: http.StatusOK},
		{name: "no content", status: http.StatusNoContent},
		{name: "not ready", status: http.StatusServiceUnavailable, wantErr: true},
		{name: "not found", status: http.StatusNotFound, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(tc.status) }))
			t.Cleanup(srv.Close)
			if err := check(srv.URL+"/readyz", 2*time.Second); (err != nil) != tc.wantErr {
				t.Fatalf("check: %v, want error %v", err, tc.wantErr)
			}
		})
	}
	t.Run("refused", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		if err := check(url, 2*time.Second); err == nil {
			t.Fatal("check of a closed port succeeded")
		}
	})
}
