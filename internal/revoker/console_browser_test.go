package revoker

import (
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/jwtrevoke/jwtrevoke/internal/eventually"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier"
)

// chromiumPath is Debian's Chromium, which `make deps` installs.
const chromiumPath = "/usr/bin/chromium"

// browser starts headless Chromium for the test and returns its context.
// Chromium runs with the flags this sandboxed machine needs: no sandbox
// (tests may run as root) and no background connections (the network is
// closed).
func browser(t *testing.T) context.Context {
	t.Helper()
	path := chromiumPath
	if p := os.Getenv("JWTREVOKE_CHROMIUM"); p != "" {
		path = p
	}
	if _, err := exec.LookPath(path); err != nil {
		t.Fatalf("the console's browser test needs Chromium at %s (`make deps` installs Debian's chromium): %v", path, err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.WindowSize(1280, 1000),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelA)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	ctx, cancelT := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(cancelT)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	return ctx
}

// waitJS waits until a JavaScript condition holds in the page, at most d:
// the browser's own view of the page, as an operator sees it.
func waitJS(t *testing.T, ctx context.Context, d time.Duration, what, cond string) {
	t.Helper()
	var err error
	if eventually.Until(d, func() bool {
		var ok bool
		ok, err = chromedp.Run(ctx, chromedp.Evaluate[bool](`Boolean(`+cond+`)`))
		return err == nil && ok
	}) {
		return
	}
	html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("main")))
	t.Fatalf("%s: not within %s (last error %v); the page's main:\n%s", what, d, err, html)
}

// TestConsoleInBrowser drives the console in a real browser (headless
// Chromium): log in, see every replica of a fleet of three, revoke a
// session with a reason holding markup and see the revocation confirmed
// by all three and the reason shown as text, see a replica disappear when
// it stops. JWTREVOKE_CONSOLE_SCREENSHOT=path saves a screenshot (the one
// in docs/console.md comes from here: make console-screenshot).
func TestConsoleInBrowser(t *testing.T) {
	e := newEnv(t, withConsole)
	// Served on localhost, where browsers keep Secure cookies without TLS.
	ln, err := net.Listen("tcp", "localhost:0")
	if err != nil {
		t.Fatal(err)
	}
	site := httptest.NewUnstartedServer(e.srv.Handler())
	site.Listener.Close()
	site.Listener = ln
	site.Start()
	t.Cleanup(site.Close)
	base := "http://localhost:" + fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)

	type replica struct {
		v    *verifier.Verifier
		stop func()
	}
	var fleet []replica
	for _, svc := range []string{"orders", "billing", "search"} {
		v, stop := e.announcing(t, svc, 100*time.Millisecond)
		fleet = append(fleet, replica{v: v, stop: stop})
	}
	// Some history for the table and the plot.
	for i := range 5 {
		e.revokeJSON(t, fmt.Sprintf(`{"type":"session","sid":"s-history-%d","reason":"user logged out","initiator":"issuer"}`, i), "").result(t)
	}

	ctx := browser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/console")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, 10*time.Second, "the login page", `location.pathname === "/console/login" && document.querySelector('input[name=credential]')`)
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`input[name=credential]`), testConsoleCredential),
		chromedp.Submit(chromedp.CSS(`input[name=credential]`)),
	); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, 10*time.Second, "the console after login", `location.pathname === "/console" && document.getElementById("replicas")`)
	// The live view works under the CSP: the script ran and the events
	// arrive.
	waitJS(t, ctx, 10*time.Second, "the live view connected", `document.getElementById("live").textContent === "live"`)
	for _, r := range fleet {
		waitJS(t, ctx, 10*time.Second, "replica "+r.v.ReplicaID()+" listed, deciding",
			fmt.Sprintf(`(function(){const row = document.querySelector('#replicas tr[data-replica=%q]'); return row && row.textContent.includes("deciding")})()`, r.v.ReplicaID()))
	}

	// Revoke from the form, waiting for enforcement.
	const reason = `<b id="injected">bold</b> & "quoted"`
	if err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS(`select[name=type]`), "session"),
		chromedp.SendKeys(chromedp.CSS(`input[name=value]`), "s-from-the-browser"),
		chromedp.SendKeys(chromedp.CSS(`input[name=reason]`), reason),
		chromedp.Click(chromedp.CSS(`#revoke-form button`)),
	); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, 10*time.Second, "the revocation confirmed by all three replicas",
		`(function(){const e = document.getElementById("enforcement"); return e && e.dataset.complete === "true" && e.textContent.includes("3 of 3")})()`)
	// The answer's page moves its address back to /console once its
	// (deferred) script runs, so a reload does not post the form again.
	waitJS(t, ctx, 5*time.Second, "the address back at /console after the revocation (a reload must not post again)",
		`location.pathname === "/console"`)
	_, seq := e.lastEvent(t, "session", "s-from-the-browser")
	row := fmt.Sprintf(`document.querySelector('#recent tr[data-seq="%d"]')`, seq)
	waitJS(t, ctx, 10*time.Second, "the revocation in the recent list, confirmed 3/3",
		row+` && `+row+`.querySelector(".confirmed").textContent === "3/3"`)
	waitJS(t, ctx, 5*time.Second, "the reason shown as text, not markup",
		fmt.Sprintf(`%s.querySelector(".reason").textContent === %q && !document.getElementById("injected")`, row, reason))
	waitJS(t, ctx, 5*time.Second, "the plot shows the confirmations", `document.querySelectorAll("#plot circle").length >= 3`)

	if p := os.Getenv("JWTREVOKE_CONSOLE_SCREENSHOT"); p != "" {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(p, ".png") {
			t.Fatalf("JWTREVOKE_CONSOLE_SCREENSHOT=%s: want a .png path", p)
		}
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// A replica that stops is gone within three of its intervals.
	gone := fleet[2].v.ReplicaID()
	fleet[2].stop()
	waitJS(t, ctx, 5*time.Second, "the stopped replica gone from the table",
		fmt.Sprintf(`!document.querySelector('#replicas tr[data-replica=%q]') && document.querySelectorAll('#replicas tbody tr').length === 2`, gone))
}
