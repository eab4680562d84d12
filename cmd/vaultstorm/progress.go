package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"
)

// stageBars shows one mpb bar per bring-up stage on a terminal, and plain
// lines otherwise (CI logs).
type stageBars struct {
	mu   sync.Mutex
	p    *mpb.Progress
	bars map[string]*mpb.Bar
	out  io.Writer
	on   bool
	t0   map[string]time.Time
}

func newStageBars(enabled bool) *stageBars {
	s := &stageBars{bars: map[string]*mpb.Bar{}, out: os.Stderr, on: enabled, t0: map[string]time.Time{}}
	if enabled && term.IsTerminal(int(os.Stderr.Fd())) {
		s.p = mpb.New(mpb.WithOutput(os.Stderr), mpb.WithWidth(30))
	}
	return s
}

func (s *stageBars) Stage(name string, total int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.on {
		return
	}
	if s.p == nil {
		s.t0[name] = time.Now()
		fmt.Fprintf(s.out, "  %s ...\n", name)
		return
	}
	s.bars[name] = s.p.AddBar(int64(total),
		mpb.PrependDecorators(decor.Name(fmt.Sprintf("%-8s", name)), decor.Elapsed(decor.ET_STYLE_GO)),
		mpb.AppendDecorators(decor.CountersNoUnit("%d/%d")))
}

func (s *stageBars) Step(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b := s.bars[name]; b != nil {
		b.Increment()
	}
}

func (s *stageBars) Done(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b := s.bars[name]; b != nil {
		b.SetTotal(-1, true)
	} else if s.on && s.p == nil {
		fmt.Fprintf(s.out, "  %s done (%.1fs)\n", name, time.Since(s.t0[name]).Seconds())
	}
}

// Log prints a line above the bars.
func (s *stageBars) Log(format string, a ...any) {
	fmt.Fprintf(s.out, format+"\n", a...)
}

// Wait ends the bars (also unfinished ones, after an error).
func (s *stageBars) Wait() {
	if s.p == nil {
		return
	}
	s.mu.Lock()
	for _, b := range s.bars {
		if !b.Completed() {
			b.Abort(false)
		}
	}
	s.mu.Unlock()
	s.p.Wait()
}
