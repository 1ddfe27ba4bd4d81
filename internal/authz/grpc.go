package authz

import (
	"context"
	"encoding/json"
	"net/http"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
)

// ServerOptions are the options of verifierd's gRPC server (the tests and
// benchmarks serve with them too): a CheckRequest carries the request's
// headers (Envoy's limit is 60 KiB by default), so 1 MiB bounds what one
// message may hold.
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.MaxRecvMsgSize(1 << 20)}
}

// Register registers the authorizer as Envoy's ext_authz service
// (envoy.service.auth.v3.Authorization) on s.
func (a *Authorizer) Register(s *grpc.Server) {
	authv3.RegisterAuthorizationServer(s, grpcServer{a: a})
}

type grpcServer struct {
	authv3.UnimplementedAuthorizationServer
	a *Authorizer
}

func (g grpcServer) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return g.a.Check(ctx, req), nil
}

// Check answers an ext_authz check: OK with the identity headers set
// upstream (overwriting any the client sent) and those the token has no
// value for in headers_to_remove; or a denial with the HTTP answer the
// client gets: 401 with WWW-Authenticate (gRPC code UNAUTHENTICATED), or
// 503 with Retry-After when the verifier cannot decide (UNAVAILABLE; run
// Envoy with failure_mode_allow: false, so that an unreachable authorizer
// is a denial too). The body of a denial is {"error","error_description"}.
func (a *Authorizer) Check(ctx context.Context, req *authv3.CheckRequest) *authv3.CheckResponse {
	d := a.Decide(ctx, requestHeader(req))
	if d.Allowed {
		ok := &authv3.OkHttpResponse{}
		for _, n := range a.names { // a fixed order
			if v := d.Identity[n]; v != "" {
				ok.Headers = append(ok.Headers, &corev3.HeaderValueOption{
					Header:       &corev3.HeaderValue{Key: n, Value: v},
					AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
				})
			} else {
				ok.HeadersToRemove = append(ok.HeadersToRemove, n)
			}
		}
		return &authv3.CheckResponse{
			Status:       &rpcstatus.Status{Code: int32(codes.OK)},
			HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: ok},
		}
	}
	ref := d.Refusal
	code, status := codes.Unauthenticated, typev3.StatusCode_Unauthorized
	hdr := &corev3.HeaderValue{Key: "WWW-Authenticate", Value: ref.Challenge}
	if ref.Status == http.StatusServiceUnavailable {
		code, status = codes.Unavailable, typev3.StatusCode_ServiceUnavailable
		hdr = &corev3.HeaderValue{Key: "Retry-After", Value: d.RetryAfter}
	}
	body, _ := json.Marshal(struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}{ref.Error, ref.Description})
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(code), Message: ref.Description},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status: &typev3.HttpStatus{Code: status},
			Headers: []*corev3.HeaderValueOption{
				{Header: hdr, AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD},
				{Header: &corev3.HeaderValue{Key: "Content-Type", Value: "application/json"}, AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD},
				{Header: &corev3.HeaderValue{Key: "Cache-Control", Value: "no-store"}, AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD},
			},
			Body: string(body),
		}},
	}
}

// requestHeader is the checked request's header: Envoy sends it as a map
// of lower-case names (repeated headers joined with ","), or, with
// encode_raw_headers, as a header map.
func requestHeader(req *authv3.CheckRequest) http.Header {
	hr := req.GetAttributes().GetRequest().GetHttp()
	h := http.Header{}
	for k, v := range hr.GetHeaders() {
		h.Add(k, v)
	}
	for _, hv := range hr.GetHeaderMap().GetHeaders() {
		v := hv.GetValue()
		if v == "" {
			v = string(hv.GetRawValue())
		}
		h.Add(hv.GetKey(), v)
	}
	return h
}
