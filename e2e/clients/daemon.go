package clients

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// daemonStartTimeout bounds how long a daemon may take to accept connections; generous because
// another process may be compiling on the same two cores.
const daemonStartTimeout = 60 * time.Second

// daemonStopTimeout bounds a graceful stop before the daemon is killed.
const daemonStopTimeout = 30 * time.Second

// daemon is a background process started by this package and stopped in t.Cleanup.
type daemon struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{} // closed when the process has been reaped
	waitErr error         // valid once exited is closed
}

// startDaemon starts bin with args, its output going to logPath, and registers a cleanup that stops it.
// Cleanups run last-in first-out, so a daemon started later is stopped earlier.
func startDaemon(t testing.TB, name, logPath string, env []string, bin string, args ...string) *daemon {
	t.Helper()
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = clientEnv(env)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Own process group: a ^C aimed at `go test` must not kill the daemon before cleanup stops it.
		Setpgid: true,
		// If the test binary dies (panic, -timeout) the daemon is told to shut down rather than leak.
		// (The signal is tied to the forking OS thread, which Go only ends when a goroutine exits
		// while locked to it.)
		Pdeathsig: syscall.SIGTERM,
	}
	err = cmd.Start()
	logFile.Close()
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	d := &daemon{name: name, cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		d.waitErr = cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(func() {
		d.stop(t)
		if t.Failed() {
			t.Logf("%s log tail (%s):\n%s", name, logPath, d.logTail(60))
		}
	})
	return d
}

// stop asks the daemon to exit and kills it if it does not in time.
func (d *daemon) stop(t testing.TB) {
	select {
	case <-d.exited:
		return
	default:
	}
	start := time.Now()
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
		t.Logf("%s stopped in %v", d.name, time.Since(start).Round(time.Millisecond))
	case <-time.After(daemonStopTimeout):
		t.Errorf("%s (pid %d) did not exit within %v of SIGTERM; killing it", d.name, d.cmd.Process.Pid, daemonStopTimeout)
		_ = d.cmd.Process.Kill()
		<-d.exited
	}
}

// logTail returns the last n lines of the daemon's log.
func (d *daemon) logTail(n int) string {
	data, err := os.ReadFile(d.logPath)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitReady polls ready until it succeeds, failing the test with the daemon's log if the daemon exits
// or does not become ready in time.
func (d *daemon) waitReady(t testing.TB, ready func() error) {
	t.Helper()
	deadline := time.Now().Add(daemonStartTimeout)
	for {
		err := ready()
		if err == nil {
			return
		}
		select {
		case <-d.exited:
			t.Fatalf("%s exited during start-up (%v); log:\n%s", d.name, d.waitErr, d.logTail(60))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after %v: %v; log:\n%s", d.name, daemonStartTimeout, err, d.logTail(60))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dialUnix checks that something accepts connections on a unix socket.
func dialUnix(socket string) error {
	conn, err := net.DialTimeout("unix", socket, time.Second)
	if err != nil {
		return err
	}
	return conn.Close()
}

// shortRunDir returns a fresh directory with a short path for sockets and runtime state, removed in
// t.Cleanup. t.TempDir() paths (up to ~90 bytes) plus daemon-chosen names such as
// "containerd/containerd.sock.ttrpc" overflow the 108-byte unix socket path limit.
func shortRunDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "hm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		unmountUnder(t, dir)
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove %s: %v", dir, err)
		}
	})
	return dir
}

// unmountUnder detaches every mount at or below dir, deepest first. dockerd bind-mounts its data-root
// onto itself and mounts container file systems and network namespaces; a daemon that was killed or
// crashed leaves those behind, and t.TempDir's removal would then fail or descend into them.
func unmountUnder(t testing.TB, dir string) {
	mounts, err := mountPointsUnder(dir)
	if err != nil {
		t.Errorf("list mounts under %s: %v", dir, err)
		return
	}
	for _, mountPoint := range mounts {
		if err := syscall.Unmount(mountPoint, syscall.MNT_DETACH); err != nil && err != syscall.EINVAL && err != syscall.ENOENT {
			t.Errorf("unmount %s: %v", mountPoint, err)
		}
	}
}

// mountPointsUnder lists mount points at or below dir from /proc/self/mountinfo, deepest first.
func mountPointsUnder(dir string) ([]string, error) {
	dir = filepath.Clean(dir)
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var found []string
	scanner := bufio.NewScanner(f)
	scanner.Buffer(make([]byte, 64*1024), 1024*1024)
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if len(fields) < 5 {
			continue
		}
		mountPoint := unescapeMountInfo(fields[4])
		if mountPoint == dir || strings.HasPrefix(mountPoint, dir+"/") {
			found = append(found, mountPoint)
		}
	}
	if err := scanner.Err(); err != nil {
		return nil, err
	}
	sort.Slice(found, func(i, j int) bool { return len(found[i]) > len(found[j]) })
	return found, nil
}

// unescapeMountInfo decodes the octal escapes (\040 for space, ...) used in /proc/self/mountinfo.
func unescapeMountInfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
