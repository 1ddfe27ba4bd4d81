package gateway

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Nginx is a running nginx of one test.
type Nginx struct {
	// URL is http://127.0.0.1:port.
	URL string
	cmd *exec.Cmd
	log string
}

// NginxBinary finds nginx: on PATH or at /usr/sbin/nginx (Debian's, not on
// a user's PATH).
func NginxBinary() (string, error) {
	if p, err := exec.LookPath("nginx"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx", nil
	}
	return "", fmt.Errorf("nginx not found on PATH or at /usr/sbin/nginx: run `make deps` (installs Debian's nginx)")
}

// SnippetPath is deploy/nginx/jwtrevoke.conf, the configuration
// docs/gateways.md gives.
func SnippetPath() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "deploy", "nginx", "jwtrevoke.conf")
}

// Lines of the snippet a deployment changes, replaced for a test.
var (
	verifierdLine = regexp.MustCompile(`(?m)^(\s*server )127\.0\.0\.1:8083;.*$`)
	appLine       = regexp.MustCompile(`(?m)^(\s*server )127\.0\.0\.1:3000;.*$`)
	listenLine    = regexp.MustCompile(`(?m)^(\s*listen )8000;$`)
)

// RunNginx runs nginx with the snippet, its verifierd upstream pointed at
// verifierd ("127.0.0.1:port" or "unix:/path") and its app at app, on a
// free loopback port, until the test ends.
func RunNginx(tb testing.TB, verifierd, app string) *Nginx {
	tb.Helper()
	bin, err := NginxBinary()
	if err != nil {
		tb.Fatal(err)
	}
	raw, err := os.ReadFile(SnippetPath())
	if err != nil {
		tb.Fatal(err)
	}
	port := freePort(tb)
	snippet := string(raw)
	for _, r := range []struct {
		re   *regexp.Regexp
		with string
	}{
		{verifierdLine, "${1}" + verifierd + ";"}, {appLine, "${1}" + app + ";"},
		{listenLine, "${1}127.0.0.1:" + strconv.Itoa(port) + ";"},
	} {
		if !r.re.MatchString(snippet) {
			tb.Fatalf("%s: no line matching %s to configure", SnippetPath(), r.re)
		}
		snippet = r.re.ReplaceAllString(snippet, r.with)
	}
	dir := tb.TempDir()
	for _, d := range []string{"tmp", "logs"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	t := filepath.Join(dir, "tmp")
	conf := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/logs/error.log warn;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path %[2]s/body;
    proxy_temp_path %[2]s/proxy;
    fastcgi_temp_path %[2]s/fastcgi;
    uwsgi_temp_path %[2]s/uwsgi;
    scgi_temp_path %[2]s/scgi;
%[3]s
}
`, dir, t, snippet)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		tb.Fatal(err)
	}
	n := &Nginx{URL: "http://127.0.0.1:" + strconv.Itoa(port), log: filepath.Join(dir, "logs", "error.log")}
	n.cmd = exec.Command(bin, "-p", dir, "-c", path, "-e", n.log)
	out, err := os.Create(filepath.Join(dir, "logs", "stderr.log"))
	if err != nil {
		tb.Fatal(err)
	}
	n.cmd.Stdout, n.cmd.Stderr = out, out
	if err := n.cmd.Start(); err != nil {
		tb.Fatalf("start nginx: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = n.cmd.Wait(); out.Close(); close(exited) }()
	tb.Cleanup(func() {
		_ = n.cmd.Process.Kill()
		<-exited
		if tb.Failed() {
			for _, f := range []string{n.log, out.Name()} {
				b, _ := os.ReadFile(f)
				tb.Logf("--- nginx %s ---\n%s", filepath.Base(f), b)
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		if c, err := net.DialTimeout("tcp", strings.TrimPrefix(n.URL, "http://"), time.Second); err == nil {
			c.Close()
			return n
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(out.Name())
			tb.Fatalf("nginx exited at start:\n%s", b)
		case <-ctx.Done():
			tb.Fatal("nginx did not listen within 10s")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Do sends a request through nginx.
func (n *Nginx) Do(tb testing.TB, method, path string, header http.Header) *http.Response {
	tb.Helper()
	req, err := http.NewRequest(method, n.URL+path, nil)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	return resp
}

func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
