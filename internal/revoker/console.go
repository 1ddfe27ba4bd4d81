package revoker

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jwtrevoke/jwtrevoke/internal/httpx"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
)

// The operators' console: GET /console on the revoker, enabled by
// Config.ConsoleCredentials. A server-rendered page (html/template, which
// escapes every value: ids, reasons and initiators come from clients) that
// Server-Sent Events keep live with sections rendered by the same
// templates; a little plain JavaScript swaps them in. No inline script or
// style, so the Content-Security-Policy allows only the console's own
// files. docs/console.md is the operator's guide.

//go:embed console
var consoleFiles embed.FS

var consoleTemplates = template.Must(template.New("console").ParseFS(consoleFiles, "console/*.html"))

// consoleCSP is the console's Content-Security-Policy: its own script and
// style files only, nothing inline, no framing, forms only to itself.
const consoleCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Console bounds.
const (
	// DefaultConsoleSession is how long a console login lasts.
	DefaultConsoleSession = 8 * time.Hour
	// maxConsoleViewers bounds the live (SSE) connections per revoker.
	maxConsoleViewers = 32
	// consoleMaxForm bounds a console form's body, in bytes.
	consoleMaxForm = 16 << 10
	// consoleRefresh is how often a live view is sent without a change,
	// and consoleCoalesce the least time between two sends.
	consoleRefresh  = time.Second
	consoleCoalesce = 200 * time.Millisecond
	// streamInfoMaxAge is how long the stream's figures (or why they are
	// missing) are reused, and streamInfoTimeout bounds fetching them.
	streamInfoMaxAge  = time.Second
	streamInfoTimeout = 500 * time.Millisecond
)

// console serves the /console pages of a Server.
type console struct {
	s        *Server
	sessions *consoleSessions
	viewers  atomic.Int32

	streamMu  sync.Mutex
	streamAt  time.Time
	stream    StreamView
	streamErr string
}

// StreamView is the revocation stream as the console and `jwtrevoke
// status` show it.
type StreamView struct {
	Name     string `json:"name"`
	LastSeq  uint64 `json:"last_seq"`
	Messages uint64 `json:"messages"`
	Bytes    uint64 `json:"bytes"`
	Replicas int    `json:"replicas"`
	// Leader is the server that leads the stream; Peers are its other
	// replicas.
	Leader string   `json:"leader,omitempty"`
	Peers  []string `json:"peers,omitempty"`
}

// NewStreamView summarizes a stream's info.
func NewStreamView(info *jetstream.StreamInfo) StreamView {
	v := StreamView{Name: info.Config.Name, LastSeq: info.State.LastSeq, Messages: info.State.Msgs,
		Bytes: info.State.Bytes, Replicas: info.Config.Replicas}
	if ci := info.Cluster; ci != nil {
		v.Leader = ci.Leader
		for _, p := range ci.Replicas {
			v.Peers = append(v.Peers, p.Name)
		}
	}
	return v
}

// Lag is how many stream sequences r has yet to apply when the stream's
// last sequence is head.
func (r Replica) Lag(head uint64) uint64 {
	if head > r.AppliedSeq {
		return head - r.AppliedSeq
	}
	return 0
}

func (c *console) routes(mux *httpx.Mux) {
	mux.HandleFunc(http.MethodGet, "/console", c.page)
	mux.HandleFunc(http.MethodGet, "/console/login", c.loginPage)
	mux.HandleFunc(http.MethodPost, "/console/login", c.login)
	mux.HandleFunc(http.MethodPost, "/console/logout", c.logout)
	mux.HandleFunc(http.MethodPost, "/console/revoke", c.revoke)
	mux.HandleFunc(http.MethodGet, "/console/events", c.events)
	mux.HandleFunc(http.MethodGet, "/console/static/console.js", c.static)
	mux.HandleFunc(http.MethodGet, "/console/static/console.css", c.static)
}

// secure sets the headers of every console answer.
func secure(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", consoleCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	// same-origin, not no-referrer: under no-referrer browsers send
	// "Origin: null" with the console's own forms, which sameOrigin refuses.
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
}

func (c *console) static(w http.ResponseWriter, r *http.Request) {
	secure(w)
	name := strings.TrimPrefix(r.URL.Path, "/console/static/")
	b, err := fs.ReadFile(consoleFiles, "console/"+name)
	if err != nil {
		httpx.WriteError(w, http.StatusNotFound, "not_found", "no such endpoint")
		return
	}
	ct := "text/css; charset=utf-8"
	if strings.HasSuffix(name, ".js") {
		ct = "text/javascript; charset=utf-8"
	}
	w.Header().Set("Content-Type", ct)
	_, _ = w.Write(b)
}

// render answers the template name with data.
func (c *console) render(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := consoleTemplates.ExecuteTemplate(&buf, name, data); err != nil {
		c.s.cfg.Logger.Error("revoker: console: template", "template", name, "err", err)
		httpx.WriteError(w, http.StatusInternalServerError, "server_error", "internal error")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// loginView is the login page's data.
type loginView struct {
	CSRF  string
	Error string
}

func (c *console) loginPage(w http.ResponseWriter, r *http.Request) {
	secure(w)
	if _, ok := c.sessions.session(r, time.Now()); ok {
		http.Redirect(w, r, consolePath, http.StatusSeeOther)
		return
	}
	c.renderLogin(w, r, http.StatusOK, "")
}

func (c *console) renderLogin(w http.ResponseWriter, r *http.Request, status int, msg string) {
	nonce := c.sessions.loginNonce(w, r)
	c.render(w, status, "login.html", loginView{CSRF: c.sessions.csrf("login", nonce), Error: msg})
}

func (c *console) login(w http.ResponseWriter, r *http.Request) {
	secure(w)
	log := c.s.cfg.Logger
	form, err := httpx.ParseForm(w, r, consoleMaxForm)
	if err != nil {
		c.renderLogin(w, r, http.StatusBadRequest, "The form could not be read.")
		return
	}
	var nonce string
	if ck, err := r.Cookie(consoleLoginCookie); err == nil {
		nonce, _ = c.sessions.verify(ck.Value)
	}
	if !sameOrigin(r) || !c.sessions.checkCSRF("login", nonce, form.Get("csrf")) {
		log.Warn("revoker: console: login refused: missing or wrong CSRF token", "remote", r.RemoteAddr)
		c.renderLogin(w, r, http.StatusForbidden, "The login form expired. Try again.")
		return
	}
	now := time.Now()
	ok, err := c.sessions.login(form.Get("credential"), now)
	switch {
	case errors.Is(err, errTooManyLogins):
		log.Warn("revoker: console: login refused: too many failures", "remote", r.RemoteAddr)
		w.Header().Set("Retry-After", "60")
		c.renderLogin(w, r, http.StatusTooManyRequests, "Too many failed logins. Try again in a minute.")
		return
	case !ok:
		log.Warn("revoker: console: login refused: wrong credential", "remote", r.RemoteAddr)
		c.renderLogin(w, r, http.StatusUnauthorized, "Wrong console credential.")
		return
	}
	value, sess := c.sessions.start(now)
	setCookie(w, consoleCookie, value, time.Until(sess.expires))
	setCookie(w, consoleLoginCookie, "", -1)
	log.Info("revoker: console: login", "remote", r.RemoteAddr)
	http.Redirect(w, r, consolePath, http.StatusSeeOther)
}

// authorized returns the request's session; without one the browser is
// sent to the login page.
func (c *console) authorized(w http.ResponseWriter, r *http.Request) (consoleSession, bool) {
	sess, ok := c.sessions.session(r, time.Now())
	if !ok {
		http.Redirect(w, r, consolePath+"/login", http.StatusSeeOther)
	}
	return sess, ok
}

// posted reads a console form and returns it with the request's session:
// the form must come from the console's pages (its origin) with the
// session's CSRF token. Otherwise it answers and returns false.
func (c *console) posted(w http.ResponseWriter, r *http.Request) (url.Values, consoleSession, bool) {
	form, err := httpx.ParseForm(w, r, consoleMaxForm)
	if err != nil {
		c.render(w, http.StatusBadRequest, "error.html", "The form could not be read.")
		return nil, consoleSession{}, false
	}
	sess, ok := c.authorized(w, r)
	if !ok {
		return nil, consoleSession{}, false
	}
	if !sameOrigin(r) || !c.sessions.checkCSRF("session", sess.id, form.Get("csrf")) {
		c.s.cfg.Logger.Warn("revoker: console: request refused: missing or wrong CSRF token", "path", r.URL.Path, "remote", r.RemoteAddr)
		c.render(w, http.StatusForbidden, "error.html", "The form expired or did not come from this console. Reload the console and try again.")
		return nil, consoleSession{}, false
	}
	return form, sess, true
}

func (c *console) logout(w http.ResponseWriter, r *http.Request) {
	secure(w)
	if _, _, ok := c.posted(w, r); !ok {
		return
	}
	setCookie(w, consoleCookie, "", -1)
	http.Redirect(w, r, consolePath+"/login", http.StatusSeeOther)
}

// consoleForm is the revoke form's values, kept when a revocation fails.
type consoleForm struct {
	Type, Value, Reason string
	Wait                bool
}

// consoleBanner is the outcome of the form's last revocation.
type consoleBanner struct {
	OK          bool
	Title       string
	Detail      string
	ID          string
	Seq         uint64
	Enforcement *Enforcement
}

// pageView is the console page's data.
type pageView struct {
	CSRF     string
	Sections sections
	Banner   *consoleBanner
	Form     consoleForm
	Types    []string
}

// consoleTypes are the revocations the form offers, as the API names them.
var consoleTypes = []string{"session", "subject", "token", "key", "issuer"}

func (c *console) page(w http.ResponseWriter, r *http.Request) {
	secure(w)
	sess, ok := c.authorized(w, r)
	if !ok {
		return
	}
	c.renderPage(w, r.Context(), http.StatusOK, sess, nil, consoleForm{Type: "session", Wait: true})
}

func (c *console) renderPage(w http.ResponseWriter, ctx context.Context, status int, sess consoleSession, b *consoleBanner, f consoleForm) {
	c.render(w, status, "console.html", pageView{
		CSRF: c.sessions.csrf("session", sess.id), Sections: c.sections(ctx), Banner: b, Form: f, Types: consoleTypes,
	})
}

// formRequest turns the form into the API's request: the value is the
// field its type names; a token is its jti (held for the longest token
// lifetime) or, when it has the shape of a JWS, the token itself.
func (c *console) formRequest(f consoleForm) (wireRequest, error) {
	v := strings.TrimSpace(f.Value)
	req := wireRequest{Type: &f.Type, Initiator: ptr("console")}
	if f.Reason != "" {
		req.Reason = ptr(f.Reason)
	}
	switch f.Type {
	case "session":
		req.SID = &v
	case "subject":
		req.Sub = &v
	case "key":
		req.KID = &v
	case "issuer":
		req.Iss = &v
	case "token":
		if strings.Count(v, ".") == 2 {
			req.Token = &v
			break
		}
		exp := float64(c.s.latestExp(c.s.cfg.Now()).Unix())
		req.JTI, req.Exp = &v, &exp
	default:
		return wireRequest{}, httpx.BadRequest("choose what to revoke: one of %s", strings.Join(consoleTypes, ", "))
	}
	return req, nil
}

func ptr(s string) *string { return &s }

func (c *console) revoke(w http.ResponseWriter, r *http.Request) {
	secure(w)
	form, sess, ok := c.posted(w, r)
	if !ok {
		return
	}
	f := consoleForm{Type: form.Get("type"), Value: form.Get("value"), Reason: form.Get("reason"), Wait: form.Get("wait") != ""}
	// Bounded, and not cut short by a browser that goes away, as an API
	// revocation.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), c.s.cfg.Timeout)
	defer cancel()
	req, err := c.formRequest(f)
	var res Result
	typ := ""
	if err == nil {
		res, typ, err = c.s.revokeRequest(ctx, req, nil)
		c.s.metrics.revocation(ctx, typ, outcomeOf(err))
	}
	if err != nil {
		status, b := http.StatusServiceUnavailable, &consoleBanner{Title: "Not revoked"}
		var he *httpx.Error
		var rec *RecordedError
		switch {
		case errors.As(err, &rec):
			status, b.Title, b.ID = http.StatusAccepted, "Recorded, not acknowledged yet", rec.ID
			b.Detail = "The revocation is recorded and will be delivered to the stream without a retry (the outbox)."
		case errors.As(err, &he):
			status, b.Detail = he.Status, he.Description
		default:
			status, b.Detail = http.StatusInternalServerError, "internal error"
			c.s.cfg.Logger.Error("revoker: console: revoke", "err", err)
		}
		c.renderPage(w, r.Context(), status, sess, b, f)
		return
	}
	b := &consoleBanner{OK: true, Title: "Revoked", ID: res.ID, Seq: res.Seq}
	if f.Wait {
		e := c.s.fleet.waitEnforced(r.Context(), res.Seq, DefaultWaitTimeout)
		b.Enforcement = &e
	}
	c.s.cfg.Logger.Info("revoker: console: revoked", "type", typ, "id", res.ID, "seq", res.Seq, "remote", r.RemoteAddr)
	c.renderPage(w, r.Context(), http.StatusOK, sess, b, consoleForm{Type: f.Type, Wait: f.Wait})
}

// events serves the live view: a "state" event with the sections
// rendered, at every change (coalesced) and every second, until the
// browser goes away or the session ends.
func (c *console) events(w http.ResponseWriter, r *http.Request) {
	secure(w)
	sess, ok := c.sessions.session(r, time.Now())
	if !ok {
		httpx.WriteError(w, http.StatusUnauthorized, "invalid_client", "log in to the console first")
		return
	}
	if c.viewers.Add(1) > maxConsoleViewers {
		c.viewers.Add(-1)
		w.Header().Set("Retry-After", "5")
		httpx.WriteError(w, http.StatusServiceUnavailable, codeUnavailable, "too many live console views")
		return
	}
	defer c.viewers.Add(-1)
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no") // a proxy in front must not hold events back
	w.WriteHeader(http.StatusOK)
	ctx := r.Context()
	end := time.NewTimer(time.Until(sess.expires))
	defer end.Stop()
	tick := time.NewTicker(consoleRefresh)
	defer tick.Stop()
	for {
		fleetChanged, recentChanged := c.s.fleet.wait(), c.s.recent.wait()
		b, err := json.Marshal(c.sections(ctx).rendered())
		if err != nil {
			c.s.cfg.Logger.Error("revoker: console: live view", "err", err)
			return
		}
		_ = rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := fmt.Fprintf(w, "event: state\ndata: %s\n\n", b); err != nil {
			return
		}
		if rc.Flush() != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-end.C:
			return
		case <-fleetChanged:
		case <-recentChanged:
		case <-tick.C:
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(consoleCoalesce):
		}
	}
}

// streamView returns the stream's figures, fetched at most every
// streamInfoMaxAge (or consoleCoalesce once the console has read a later
// sequence than they show), or why they are missing.
func (c *console) streamView(ctx context.Context, seen uint64) (StreamView, string) {
	c.streamMu.Lock()
	defer c.streamMu.Unlock()
	maxAge := streamInfoMaxAge
	if seen > c.stream.LastSeq {
		maxAge = consoleCoalesce
	}
	if time.Since(c.streamAt) < maxAge {
		return c.stream, c.streamErr
	}
	// Bounded well below the revoker's Timeout: while NATS is away every
	// live view waits on this look-up, and the fleet is what an operator
	// needs to see then.
	ctx, cancel := context.WithTimeout(ctx, min(c.s.cfg.Timeout, streamInfoTimeout))
	defer cancel()
	c.streamAt, c.streamErr = time.Now(), ""
	st, err := c.s.cfg.JetStream.Stream(ctx, c.s.cfg.Stream)
	var info *jetstream.StreamInfo
	if err == nil {
		info, err = st.Info(ctx)
	}
	if err != nil {
		c.streamErr = "the stream's figures are unavailable: " + err.Error()
		return c.stream, c.streamErr
	}
	c.stream = NewStreamView(info)
	return c.stream, ""
}

// sections is what the live parts of the page show.
type sections struct {
	// Disconnected: the revoker is not connected to NATS, so no
	// announcement reaches it (replicas drop out of the table).
	Disconnected bool
	Now          string
	Head         uint64
	Replicas     []replicaRow
	Stream       StreamView
	StreamErr    string
	Recent       []recentRow
	Plot         plotView
}

type replicaRow struct {
	Replica
	State     string // deciding, failing closed, replaying
	Lag       uint64
	Staleness string
	Used      string // held / capacity, percent
	LastSeen  string
}

type recentRow struct {
	Seq                       uint64
	Time, Type, Value, Issuer string
	Reason, Initiator         string
	Confirmed, Eligible       int
	Took                      string // fastest–slowest
}

func (c *console) sections(ctx context.Context) sections {
	now := time.Now()
	live := c.s.fleet.live(now).Replicas
	seen, recent := c.s.recent.view()
	sv, serr := c.streamView(ctx, seen)
	v := sections{Now: now.UTC().Format("15:04:05"), Head: max(sv.LastSeq, seen), Stream: sv, StreamErr: serr,
		Disconnected: c.s.cfg.JetStream.Conn().Status() != nats.CONNECTED}
	for _, r := range live {
		row := replicaRow{Replica: r, Lag: r.Lag(v.Head), Staleness: ms(time.Duration(r.StalenessMs) * time.Millisecond),
			LastSeen: ms(time.Duration(r.LastSeenMs)*time.Millisecond) + " ago"}
		switch {
		case r.Deciding:
			row.State = "deciding"
		case r.Ready:
			row.State = "failing closed"
		default:
			row.State = "replaying"
		}
		if r.Capacity > 0 {
			row.Used = fmt.Sprintf("%.1f%%", 100*float64(r.Held)/float64(r.Capacity))
		}
		v.Replicas = append(v.Replicas, row)
	}
	for _, rr := range recent {
		ev := rr.Event
		row := recentRow{Seq: rr.Seq, Time: ev.IssuedAt.UTC().Format("15:04:05.000"), Type: string(ev.Kind), Value: ev.Value(),
			Issuer: ev.Issuer, Reason: ev.Reason, Initiator: ev.Initiator, Confirmed: len(rr.Confirmed)}
		if ev.Kind == events.KindScope {
			row.Type, row.Value = "scope", ev.Claim+"="+ev.Value()
			if ev.Claim == events.ScopeIssuer {
				row.Type, row.Value = typeIssuer, ev.Value()
			}
		}
		row.Eligible = row.Confirmed
		for _, r := range live {
			if _, done := rr.Confirmed[r.ID]; !done && r.Started.Before(ev.IssuedAt) {
				row.Eligible++
			}
		}
		if len(rr.Confirmed) > 0 {
			lo, hi := time.Duration(1<<62), time.Duration(0)
			for _, d := range rr.Confirmed {
				lo, hi = min(lo, d), max(hi, d)
			}
			row.Took = ms(lo) + " – " + ms(hi)
			if lo == hi {
				row.Took = ms(lo)
			}
		}
		v.Recent = append(v.Recent, row)
	}
	v.Plot = newPlot(recent, live)
	return v
}

// ms shows a duration in milliseconds: one decimal below 10 ms.
func ms(d time.Duration) string {
	f := float64(d) / float64(time.Millisecond)
	switch {
	case d == 0:
		return "0 ms"
	case f < 10:
		return fmt.Sprintf("%.1f ms", f)
	}
	return fmt.Sprintf("%.0f ms", f)
}

// rendered is the sections as HTML, by the page's own templates, for a
// live update: element id → its new content.
func (v sections) rendered() map[string]string {
	out := map[string]string{}
	for _, id := range []string{"now", "replicas", "stream", "recent", "plot"} {
		var buf bytes.Buffer
		if err := consoleTemplates.ExecuteTemplate(&buf, "section-"+id, v); err != nil {
			continue
		}
		out[id] = buf.String()
	}
	return out
}

// plotView is the propagation plot: for each recent revocation (oldest
// left), a dot per replica at the time it took to confirm it.
type plotView struct {
	Width, Height, Left, Top, Bottom int
	Ticks                            []tick   // y axis
	Dots                             []dot    // one per confirmation
	Legend                           []legend // one per replica
	First, Last                      uint64   // seqs at the x axis' ends
}

type tick struct {
	Y     int
	Label string
}

type dot struct {
	X, Y  int
	Color string
	Title string
}

type legend struct {
	ID, Color string
}

// plotColors tell replicas apart (ColorBrewer's Dark2).
var plotColors = []string{"#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"}

func newPlot(newestFirst []recentRevocation, live []Replica) plotView {
	p := plotView{Width: 720, Height: 220, Left: 56, Top: 10, Bottom: 30}
	ids := []string{}
	for _, r := range live {
		ids = append(ids, r.ID)
	}
	var top time.Duration
	for _, rr := range newestFirst {
		for id, d := range rr.Confirmed {
			top = max(top, d)
			if !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	slices.Sort(ids)
	color, offset := map[string]string{}, map[string]int{}
	for i, id := range ids {
		color[id] = plotColors[i%len(plotColors)]
		// Dots of one revocation side by side, so that equal times do
		// not hide each other.
		offset[id] = 4*i - 2*(len(ids)-1)
		p.Legend = append(p.Legend, legend{ID: id, Color: color[id]})
	}
	// A round top of at least 10 ms: 1, 2 or 5 times a power of ten.
	scale := 10 * time.Millisecond
	for i := 0; scale < top; i++ {
		if i%3 == 1 {
			scale = scale * 5 / 2 // 20 → 50
		} else {
			scale *= 2 // 10 → 20, 50 → 100
		}
	}
	h := p.Height - p.Top - p.Bottom
	for _, f := range []float64{0, 0.5, 1} {
		p.Ticks = append(p.Ticks, tick{Y: p.Top + h - int(f*float64(h)), Label: ms(time.Duration(f * float64(scale)))})
	}
	n := len(newestFirst)
	if n == 0 {
		return p
	}
	p.First, p.Last = newestFirst[n-1].Seq, newestFirst[0].Seq
	w := float64(p.Width-p.Left-10) / float64(n)
	for i := range n {
		rr := newestFirst[n-1-i]
		x := p.Left + int((float64(i)+0.5)*w)
		for id, d := range rr.Confirmed {
			y := p.Top + h - int(float64(d)/float64(scale)*float64(h))
			p.Dots = append(p.Dots, dot{X: x + offset[id], Y: y, Color: color[id], Title: fmt.Sprintf("seq %d, %s: %s", rr.Seq, id, ms(d))})
		}
	}
	slices.SortFunc(p.Dots, func(a, b dot) int { return strings.Compare(a.Title, b.Title) })
	return p
}
