package harness

import (
	"net"
	"testing"
)

// Listen returns a TCP listener on 127.0.0.1 with a port chosen by the kernel,
// closed when the test ends. Prefer it to FreePort when the listener can be handed
// over directly (e.g. httptest.NewUnstartedServer), as it has no reuse race.
func Listen(t testing.TB) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("harness: listen on 127.0.0.1:0: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago, for a child
// process that must be told its port up front. Another process can take it before
// the child binds it; StartTraefik retries on "address already in use" for that reason.
func FreePort(t testing.TB) int {
	t.Helper()
	p, err := freePort()
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	return p
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// FreePorts returns n distinct TCP ports on 127.0.0.1 that were free a moment ago, for a group
// of child processes (see FreePort for the race this leaves).
func FreePorts(n int) ([]int, error) { return freePorts(n) }

// freePorts returns n distinct free ports. All listeners stay open until every port is
// chosen, so the kernel cannot hand out the same port twice.
func freePorts(n int) ([]int, error) {
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
