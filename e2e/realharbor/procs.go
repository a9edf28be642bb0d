package realharbor

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// proc is one child process of the stack, its stdout and stderr in logPath.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	stopSig syscall.Signal
	exited  chan struct{}
}

// run starts a child whose output goes to <Dir>/logs/<name>.log. It dies with the test binary
// or command (Pdeathsig) even when Stop is never reached, e.g. on a test timeout's panic. It
// runs in a process group of its own: a Ctrl-C at the terminal reaches only the command, which
// then stops the stack in order (nginx first, PostgreSQL last).
func (h *Harbor) run(name string, cmd *exec.Cmd, stopSig syscall.Signal) (*proc, error) {
	logDir := filepath.Join(h.Dir, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, err
	}
	p := &proc{name: name, cmd: cmd, logPath: filepath.Join(logDir, name+".log"), stopSig: stopSig, exited: make(chan struct{})}
	out, err := os.Create(p.logPath)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	cmd.SysProcAttr.Setpgid = true
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	h.procsMu.Lock()
	h.procs = append(h.procs, p)
	h.procsMu.Unlock()
	return p, nil
}

// stop signals the process and waits for it; after 15 s its whole process group (nginx's
// workers, PostgreSQL's backends) is killed.
func (p *proc) stop() {
	_ = p.cmd.Process.Signal(p.stopSig)
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
	}
}

// waitReady polls check until it reports success, the process exits, ctx ends or timeout
// passes.
func (p *proc) waitReady(ctx context.Context, timeout time.Duration, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", p.name, ctx.Err())
		case <-p.exited:
			return fmt.Errorf("%s exited (%v) before it was ready: %v; see %s", p.name, p.cmd.ProcessState, err, p.logPath)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready within %v: %v; see %s", p.name, timeout, err, p.logPath)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// httpCheck is a readiness check: GET url must answer one of the statuses.
func httpCheck(url string, statuses ...int) func() error {
	client := &http.Client{Timeout: 5 * time.Second}
	return func() error {
		resp, err := client.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		for _, s := range statuses {
			if resp.StatusCode == s {
				return nil
			}
		}
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
}
