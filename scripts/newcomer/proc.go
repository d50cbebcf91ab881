package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a command running in a process group of its own, like a
// program a newcomer starts in a terminal, whose output is kept line by
// line so that the check can wait for a log line instead of a timer.
type proc struct {
	cmd  *exec.Cmd
	name string

	mu      sync.Mutex // guards lines and changed
	lines   []string
	changed chan struct{} // closed and replaced when a line arrives

	readDone chan struct{} // closed when the output has ended
	exited   chan struct{} // closed when the process has been waited for
	waitErr  error         // set before exited is closed
}

// startProc starts name with args in dir, in a new process group.
func startProc(dir string, env []string, name string, args ...string) (*proc, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(name, args...)
	cmd.Dir, cmd.Env = dir, env
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, err
	}
	w.Close() // the group holds the write end now
	p := &proc{
		cmd: cmd, name: strings.Join(append([]string{name}, args...), " "),
		changed: make(chan struct{}), readDone: make(chan struct{}), exited: make(chan struct{}),
	}
	go p.read(r)
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// read keeps the output's lines until every process of the group has
// closed it.
func (p *proc) read(r *os.File) {
	defer close(p.readDone)
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		p.mu.Lock()
		p.lines = append(p.lines, sc.Text())
		close(p.changed)
		p.changed = make(chan struct{})
		p.mu.Unlock()
	}
}

// waitFor returns the first output line that contains substr, waiting for
// it until ctx ends or the output ends.
func (p *proc) waitFor(ctx context.Context, substr string) (string, error) {
	for i := 0; ; {
		p.mu.Lock()
		for ; i < len(p.lines); i++ {
			if strings.Contains(p.lines[i], substr) {
				line := p.lines[i]
				p.mu.Unlock()
				return line, nil
			}
		}
		changed := p.changed
		p.mu.Unlock()
		select {
		case <-changed:
		case <-p.readDone:
			p.mu.Lock()
			more := i < len(p.lines)
			p.mu.Unlock()
			if !more {
				select {
				case <-p.exited:
				case <-ctx.Done():
				}
				return "", fmt.Errorf("%s ended (%s) without printing %q; its output:\n%s", p.name, p.status(), substr, p.output())
			}
		case <-ctx.Done():
			return "", fmt.Errorf("%s did not print %q: %w; its output so far:\n%s", p.name, substr, ctx.Err(), p.output())
		}
	}
}

// status describes how the process ended, or says it runs.
func (p *proc) status() string {
	select {
	case <-p.exited:
		if p.waitErr == nil {
			return "exit status 0"
		}
		return p.waitErr.Error()
	default:
		return "still running"
	}
}

// has reports whether an output line so far contains substr.
func (p *proc) has(substr string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.lines {
		if strings.Contains(l, substr) {
			return true
		}
	}
	return false
}

// output returns the output so far, indented.
func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.lines) == 0 {
		return "\t(nothing)"
	}
	return "\t" + strings.Join(p.lines, "\n\t")
}

// interrupt sends SIGINT to the process group, as Ctrl-C in a terminal
// does, and waits for the group's output to end and its leader to exit;
// after grace it kills the group. It reports an error when the group had
// to be killed.
func (p *proc) interrupt(grace time.Duration) error {
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGINT)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.readDone:
		<-p.exited
		return nil
	case <-t.C:
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-p.readDone
	<-p.exited
	return errors.New(p.name + " was still running " + grace.String() + " after an interrupt and was killed")
}
