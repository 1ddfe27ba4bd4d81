package verifier

import (
	"context"
	"fmt"
	"os"
	"testing"
)

// benchTB is a testing.TB whose cleanups run when the test binary ends, for
// fixtures that benchmarks share across -count runs.
var benchTB *longTB

func TestMain(m *testing.M) {
	benchTB = &longTB{}
	code := m.Run()
	benchTB.cleanup()
	os.Exit(code)
}

// longTB implements the parts of testing.TB the fixtures use; a failure
// panics, since there is no test to fail.
type longTB struct {
	testing.TB // nil: any method not below panics, which is a bug here
	cleanups   []func()
	dirs       []string
}

func (l *longTB) Helper()                           {}
func (l *longTB) Name() string                      { return "bench-fixture" }
func (l *longTB) Cleanup(f func())                  { l.cleanups = append(l.cleanups, f) }
func (l *longTB) Log(args ...any)                   {}
func (l *longTB) Logf(format string, args ...any)   {}
func (l *longTB) Error(args ...any)                 { panic(fmt.Sprint(args...)) }
func (l *longTB) Errorf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (l *longTB) Fatal(args ...any)                 { panic(fmt.Sprint(args...)) }
func (l *longTB) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (l *longTB) Fail()                             { panic("fixture failed") }
func (l *longTB) FailNow()                          { panic("fixture failed") }
func (l *longTB) Failed() bool                      { return false }
func (l *longTB) Context() context.Context          { return context.Background() }
func (l *longTB) TempDir() string {
	d, err := os.MkdirTemp("", "jwtrevoke-bench-")
	if err != nil {
		panic(err)
	}
	l.dirs = append(l.dirs, d)
	return d
}

func (l *longTB) cleanup() {
	for i := len(l.cleanups) - 1; i >= 0; i-- {
		l.cleanups[i]()
	}
	for _, d := range l.dirs {
		_ = os.RemoveAll(d)
	}
}
