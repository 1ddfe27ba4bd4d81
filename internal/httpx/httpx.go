// Package httpx holds the HTTP plumbing jwtrevoke's services share: one way
// to answer errors ({"error","error_description"}), bounded and strict body
// parsing, one bearer-token parser, service-credential authentication,
// health endpoints, and a server that listens at start and shuts down
// gracefully. It imports only the standard library, so pkg/verifier can use
// it; the Prometheus /metrics handler is in internal/httpx/prommetrics.
package httpx

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Error is an error with the HTTP answer it deserves. Description is shown
// to the client: it must never carry secrets or internal detail.
type Error struct {
	Status      int
	Code        string // OAuth-style error code: invalid_request, invalid_grant, ...
	Description string
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Description) }

// Errorf returns an *Error.
func Errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Description: fmt.Sprintf(format, args...)}
}

// BadRequest is a 400 invalid_request.
func BadRequest(format string, args ...any) *Error {
	return Errorf(http.StatusBadRequest, "invalid_request", format, args...)
}

// WriteError writes the JSON error body {"error","error_description"}.
func WriteError(w http.ResponseWriter, status int, code, description string) {
	WriteJSON(w, status, struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}{code, description})
}

// Fail answers err: an *Error as itself; anything else as a 500 with a
// generic body, the detail going to the log only.
func Fail(w http.ResponseWriter, log *slog.Logger, err error) {
	var he *Error
	if errors.As(err, &he) {
		if he.Status == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
			w.Header().Set("Retry-After", "1")
		}
		WriteError(w, he.Status, he.Code, he.Description)
		return
	}
	if log != nil {
		log.Error("request failed", "err", err)
	}
	WriteError(w, http.StatusInternalServerError, "server_error", "internal error")
}

// WriteJSON writes v as JSON with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// DefaultMaxBody bounds request bodies, in bytes.
const DefaultMaxBody = 16 << 10

// DecodeJSON reads exactly one JSON object from r's body into v: the content
// type must be application/json, the body at most max bytes (0 means
// DefaultMaxBody), unknown fields and trailing data are refused. Errors are
// *Error (415, 413, 400).
func DecodeJSON(w http.ResponseWriter, r *http.Request, max int64, v any) error {
	if err := requireType(r, "application/json"); err != nil {
		return err
	}
	body, err := readBody(w, r, max)
	if err != nil {
		return err
	}
	// encoding/json would quietly turn invalid UTF-8 into U+FFFD.
	if !utf8.Valid(body) {
		return BadRequest("body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return JSONError(err)
	}
	// A json.RawMessage or an interface target takes any value; the API
	// promises an object.
	if b := bytes.TrimLeft(body, " \t\r\n"); b[0] != '{' {
		return BadRequest("body must be a JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return BadRequest("data after the JSON object")
	}
	return nil
}

// JSONError turns an error of json.Decoder.Decode (strict: unknown fields
// disallowed) into a 400 saying what is wrong in the client's terms — the
// field and the JSON type it must have, or where the syntax breaks — never
// Go type names.
func JSONError(err error) *Error {
	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
	)
	switch {
	case errors.Is(err, io.EOF):
		return BadRequest("body is empty: want a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return BadRequest("body is not valid JSON: it ends before the object is complete")
	case errors.As(err, &syntax):
		return BadRequest("body is not valid JSON at offset %d", syntax.Offset)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return BadRequest("body must be a JSON object")
		}
		return BadRequest("field %q must be %s", shorten(typ.Field), jsonKind(typ.Type, typ.Value))
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		// encoding/json has no type for this one; the name is quoted raw.
		return BadRequest("unknown field %q", shorten(strings.TrimSuffix(strings.TrimPrefix(name, `"`), `"`)))
	}
	// A type's own UnmarshalJSON failed: its message is not ours to show.
	return BadRequest("body has a value of the wrong form")
}

// jsonKind names, in JSON's terms, what a value decoded into t must be;
// got is encoding/json's description of what came ("number 300", "string").
func jsonKind(t reflect.Type, got string) string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return "of another type"
	}
	number := strings.HasPrefix(got, "number")
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if number {
			return "a whole number in range"
		}
		return "a number"
	case reflect.Float32, reflect.Float64:
		if number {
			return "a number in range"
		}
		return "a number"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return "a base64 string"
		}
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "of another type"
}

// ParseForm reads an application/x-www-form-urlencoded body of at most max
// bytes (0 means DefaultMaxBody). A parameter given twice is refused
// (RFC 6749 §3.1). Errors are *Error.
func ParseForm(w http.ResponseWriter, r *http.Request, max int64) (url.Values, error) {
	if err := requireType(r, "application/x-www-form-urlencoded"); err != nil {
		return nil, err
	}
	body, err := readBody(w, r, max)
	if err != nil {
		return nil, err
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, BadRequest("body is not a valid form")
	}
	for k, vs := range form {
		if !utf8.ValidString(k) || (len(vs) > 0 && !utf8.ValidString(vs[0])) {
			return nil, BadRequest("form is not valid UTF-8")
		}
	}
	for k, vs := range form {
		if len(vs) > 1 {
			return nil, BadRequest("parameter %q given more than once", shorten(k))
		}
	}
	return form, nil
}

func requireType(r *http.Request, want string) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != want {
		return Errorf(http.StatusUnsupportedMediaType, "invalid_request", "Content-Type must be %s", want)
	}
	return nil
}

func readBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, error) {
	if max <= 0 {
		max = DefaultMaxBody
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, Errorf(http.StatusRequestEntityTooLarge, "invalid_request", "body larger than %d bytes", max)
		}
		return nil, BadRequest("could not read the body")
	}
	return body, nil
}

func shorten(s string) string {
	if len(s) > 120 {
		return s[:120] + "..."
	}
	return s
}

// Credentials checks service credentials (Authorization: Bearer <key>, read
// by [BearerToken]; with [Credentials.AllowBasic] also HTTP Basic client
// authentication).
// Several keys may be valid at once, for rotation. Comparison is in
// constant time over SHA-256 digests, so neither content nor length leaks.
// A Credentials is safe for concurrent use.
type Credentials struct {
	digests [][sha256.Size]byte
	basic   bool
}

// NewCredentials returns Credentials accepting any of keys; it refuses an
// empty list, a key shorter than 16 bytes, or one with a space or tab.
func NewCredentials(keys ...string) (*Credentials, error) {
	if len(keys) == 0 {
		return nil, errors.New("httpx: at least one credential is required")
	}
	c := &Credentials{}
	for _, k := range keys {
		if len(k) < 16 {
			return nil, errors.New("httpx: credentials must be at least 16 bytes")
		}
		// Sent as a bearer token, which holds no space or tab
		// ([BearerToken]): such a key could never be presented.
		if strings.ContainsAny(k, " \t") {
			return nil, errors.New("httpx: credentials must not contain spaces or tabs")
		}
		c.digests = append(c.digests, sha256.Sum256([]byte(k)))
	}
	return c, nil
}

// AllowBasic returns Credentials with the same keys that also accept HTTP
// Basic client authentication (RFC 7662 §2.1, RFC 6749 §2.3.1): the password
// is the key, the username a client id, any non-empty value. For endpoints
// whose standard clients send Basic, such as token introspection.
func (c *Credentials) AllowBasic() *Credentials {
	return &Credentials{digests: c.digests, basic: true}
}

// Valid reports whether the request carries one of the keys.
func (c *Credentials) Valid(r *http.Request) bool {
	key, err := BearerToken(r, "")
	switch {
	case err == nil:
		return c.match(key)
	case !c.basic, errors.Is(err, ErrRepeatedAuthorization):
		return false
	}
	user, password, ok := r.BasicAuth()
	if !ok || user == "" || password == "" {
		return false
	}
	// RFC 6749 §2.3.1: clients form-encode the secret before base64;
	// many do not. Either form of a key is that key.
	if dec, err := url.QueryUnescape(password); err == nil && dec != password {
		return c.match(password) || c.match(dec)
	}
	return c.match(password)
}

// Match reports, in constant time over the digests, whether key is one of
// the keys: for a credential presented some other way than a request's
// Authorization (a login form).
func (c *Credentials) Match(key string) bool { return c.match(key) }

// match reports, in constant time over the digests, whether key is one of
// the keys.
func (c *Credentials) match(key string) bool {
	d := sha256.Sum256([]byte(key))
	match := 0
	for _, want := range c.digests {
		match |= subtle.ConstantTimeCompare(d[:], want[:])
	}
	return match == 1
}

// Require is middleware answering 401 invalid_client unless the request
// carries a valid credential.
func (c *Credentials) Require(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !c.Valid(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="jwtrevoke-service"`)
			if c.basic {
				w.Header().Add("WWW-Authenticate", `Basic realm="jwtrevoke-service", charset="UTF-8"`)
			}
			WriteError(w, http.StatusUnauthorized, "invalid_client", "missing or wrong service credential")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Mux routes requests by method and path like http.ServeMux, with the
// answers every service owes a client that asks for something else: a known
// path with another method gets a JSON 405 with Allow, an unknown path a
// JSON 404. Register everything before serving; it is then safe for
// concurrent use.
type Mux struct {
	mux *http.ServeMux
	// allow lists the methods of each path, in registration order.
	allow map[string][]string
}

// NewMux returns an empty Mux.
func NewMux() *Mux {
	m := &Mux{mux: http.NewServeMux(), allow: map[string][]string{}}
	m.mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		WriteError(w, http.StatusNotFound, "not_found", "no such endpoint")
	})
	return m
}

// Handle serves method (GET also serves HEAD) on the exact path.
func (m *Mux) Handle(method, path string, h http.Handler) {
	m.mux.Handle(method+" "+path, h)
	if _, known := m.allow[path]; !known {
		m.mux.HandleFunc(path, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Allow", strings.Join(m.allow[path], ", "))
			WriteError(w, http.StatusMethodNotAllowed, "invalid_request",
				"method not allowed: use "+strings.Join(m.allow[path], " or "))
		})
	}
	m.allow[path] = append(m.allow[path], method)
	if method == http.MethodGet {
		m.allow[path] = append(m.allow[path], http.MethodHead)
	}
}

// HandleFunc is Handle for a function.
func (m *Mux) HandleFunc(method, path string, f func(http.ResponseWriter, *http.Request)) {
	m.Handle(method, path, http.HandlerFunc(f))
}

func (m *Mux) ServeHTTP(w http.ResponseWriter, r *http.Request) { m.mux.ServeHTTP(w, r) }

// NotReady is a readiness failure. /readyz answers without credentials, so
// only Reason — short, fixed, free of addresses and causes ("redis
// unreachable", "stream not replayed") — is shown; Err, the detail, goes to
// the log.
type NotReady struct {
	Reason string
	Err    error
}

// NotReadyBecause returns a *NotReady with reason and its cause (may be nil).
func NotReadyBecause(reason string, cause error) error {
	return &NotReady{Reason: reason, Err: cause}
}

func (e *NotReady) Error() string {
	if e.Err == nil {
		return e.Reason
	}
	return e.Reason + ": " + e.Err.Error()
}

func (e *NotReady) Unwrap() error { return e.Err }

// publicReason is what /readyz may say about err.
func publicReason(err error) string {
	if nr, ok := errors.AsType[*NotReady](err); ok {
		return nr.Reason
	}
	return "not ready"
}

// Health adds GET /healthz (the process answers: liveness, never dependent
// on NATS or Redis) and GET /readyz (ready() == nil) to mux. A failing
// /readyz shows only the [NotReady] reason of ready's error; the whole error
// is logged to log (nil: slog.Default()) once per change of reason, not on
// every probe.
func Health(mux *Mux, ready func(context.Context) error, log *slog.Logger) {
	if log == nil {
		log = slog.Default()
	}
	var (
		mu   sync.Mutex // guards last
		last = "starting"
	)
	changed := func(reason string) bool {
		mu.Lock()
		defer mu.Unlock()
		if reason == last {
			return false
		}
		last = reason
		return true
	}
	mux.HandleFunc(http.MethodGet, "/healthz", func(w http.ResponseWriter, _ *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc(http.MethodGet, "/readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := ready(r.Context()); err != nil {
			reason := publicReason(err)
			if changed(reason) {
				log.Warn("not ready", "reason", reason, "err", err)
			}
			w.Header().Set("Retry-After", "1")
			WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": reason})
			return
		}
		if changed("") {
			log.Info("ready")
		}
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
}

// Header limits. net/http answers a request whose header exceeds the
// server's MaxHeaderBytes itself, in plain text, before any handler runs; so
// the server's bound is net/http's default, 1 MiB (bytes stay bounded), and
// [LimitHeader] refuses anything over MaxHeaderBytes with a JSON 431.
const (
	MaxHeaderBytes      = 32 << 10
	serverMaxHeaderSize = 1 << 20
)

// LimitHeader answers a JSON 431 to a request whose request line and header
// together exceed MaxHeaderBytes (as sent over HTTP/1.1), and passes every
// other request to next. Listen applies it to every service.
func LimitHeader(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if HeaderSize(r) > MaxHeaderBytes {
			w.Header().Set("Connection", "close")
			WriteError(w, http.StatusRequestHeaderFieldsTooLarge, "invalid_request",
				fmt.Sprintf("request header larger than %d bytes", MaxHeaderBytes))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// HeaderSize is the size of r's request line and header on the wire
// (HTTP/1.1).
func HeaderSize(r *http.Request) int {
	n := len(r.Method) + len(r.RequestURI) + len(r.Proto) + 4 // "GET /x HTTP/1.1\r\n"
	n += len("Host: \r\n") + len(r.Host)
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4 // "k: v\r\n"
		}
	}
	return n
}

// Server is an http.Server that listens when created, so a busy port fails
// at start, and serves until its context ends.
type Server struct {
	ln  net.Listener
	srv *http.Server
}

// Listen listens on addr (":0" picks a free port; "unix:/path" a Unix
// socket) for handler, with [LimitHeader] in front of it.
func Listen(addr string, handler http.Handler, log *slog.Logger) (*Server, error) {
	if handler == nil {
		handler = NewMux() // until SetHandler: JSON 404s
	}
	return ListenBare(addr, LimitHeader(handler), log)
}

// ListenBare is Listen without LimitHeader: for a handler that answers an
// oversized request header itself (see [HeaderSize]). The server still
// refuses a header over 1 MiB.
//
// With "unix:/path", a socket file left at path by an earlier run is
// replaced (any other file there is an error), and the socket is made
// readable and writable by every local user: a proxy in the same pod or on
// the same host runs as another user; restrict access with the directory's
// permissions.
func ListenBare(addr string, handler http.Handler, log *slog.Logger) (*Server, error) {
	ln, err := Listener(addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    serverMaxHeaderSize,
	}
	if log != nil {
		srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	}
	return &Server{ln: ln, srv: srv}, nil
}

// Listener listens on a TCP address or, with "unix:/path", a Unix socket,
// as [ListenBare] says; for servers that are not HTTP (gRPC).
func Listener(addr string) (net.Listener, error) {
	path, unix := strings.CutPrefix(addr, "unix:")
	if !unix {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("httpx: listen %s: %w", addr, err)
		}
		return ln, nil
	}
	if path == "" {
		return nil, errors.New("httpx: listen unix: no socket path")
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("httpx: listen %s: a file that is not a socket is in the way", addr)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("httpx: listen %s: remove the old socket: %w", addr, err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("httpx: listen %s: %w", addr, err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		ln.Close()
		return nil, fmt.Errorf("httpx: listen %s: %w", addr, err)
	}
	return ln, nil
}

// SetHandler sets the handler, with LimitHeader in front of it; only
// before Serve (for services that need to know their own address before
// they can be built).
func (s *Server) SetHandler(h http.Handler) { s.srv.Handler = LimitHeader(h) }

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is http://Addr.
func (s *Server) URL() string { return "http://" + s.Addr() }

// Serve serves until ctx ends, then shuts down gracefully (up to 10 s) and
// returns nil; or returns the error that stopped it.
func (s *Server) Serve(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("httpx: shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
