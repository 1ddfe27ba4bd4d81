package chaos

import (
	"net"
	"sync"
	"testing"
	"time"
)

// Proxy is a TCP proxy from a loopback port to one upstream address that
// can add latency, reset every connection, or partition: while partitioned
// no byte is forwarded in either direction (connections stay open, as in a
// network partition, until an end gives up) and new connections are held
// the same way. Heal resumes forwarding. It is safe for concurrent use.
type Proxy struct {
	ln       net.Listener
	upstream string

	// mu guards conns, latency and healed.
	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	latency time.Duration
	// healed is closed while traffic flows; a fresh open channel while
	// partitioned.
	healed chan struct{}

	wg   sync.WaitGroup
	done chan struct{}
}

// NewProxy listens on 127.0.0.1:0 and forwards to upstream until tb's
// Cleanup closes it.
func NewProxy(tb testing.TB, upstream string) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("chaos: proxy listen: %v", err)
	}
	healed := make(chan struct{})
	close(healed)
	p := &Proxy{ln: ln, upstream: upstream, conns: map[net.Conn]struct{}{}, healed: healed, done: make(chan struct{})}
	p.wg.Add(1)
	go p.accept()
	tb.Cleanup(p.Close)
	return p
}

// Addr is the proxy's listening address, host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// URL is nats://Addr.
func (p *Proxy) URL() string { return "nats://" + p.Addr() }

// SetLatency delays every forwarded chunk by d (0: none).
func (p *Proxy) SetLatency(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.latency = d
}

// Reset closes every open connection with a TCP RST.
func (p *Proxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		_ = c.Close()
	}
}

// Partition stops forwarding in both directions until Heal.
func (p *Proxy) Partition() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.healed:
		p.healed = make(chan struct{})
	default:
	}
}

// Heal resumes forwarding.
func (p *Proxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.healed:
	default:
		close(p.healed)
	}
}

// Close stops the proxy, closes every connection and waits for its
// goroutines.
func (p *Proxy) Close() {
	select {
	case <-p.done:
		return
	default:
	}
	close(p.done)
	_ = p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		down, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.DialTimeout("tcp", p.upstream, time.Second)
		if err != nil {
			_ = down.Close()
			continue
		}
		if !p.track(down, up) {
			return
		}
		p.wg.Add(2)
		go p.pipe(up, down)
		go p.pipe(down, up)
	}
}

// track registers both ends, or closes them when the proxy is closing.
func (p *Proxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.done:
		for _, c := range cs {
			_ = c.Close()
		}
		return false
	default:
	}
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	return true
}

// pipe copies src to dst, honouring latency and partitions; when either
// side fails both are closed.
func (p *Proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	defer func() {
		p.mu.Lock()
		delete(p.conns, dst)
		delete(p.conns, src)
		p.mu.Unlock()
		_ = dst.Close()
		_ = src.Close()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			healed, latency := p.healed, p.latency
			p.mu.Unlock()
			select {
			case <-healed:
			case <-p.done:
				return
			}
			if latency > 0 {
				t := time.NewTimer(latency)
				select {
				case <-t.C:
				case <-p.done:
					t.Stop()
					return
				}
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // io.EOF or a reset: either way this direction is done
		}
	}
}
