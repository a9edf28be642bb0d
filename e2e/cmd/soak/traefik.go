package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/harbormirror/harbormirror/e2e/internal/traefikproc"
)

// traefik is Traefik with the plugin in front of Harbor, as e2e/cmd/demo runs it, plus
// api.debug for the goroutine profile.
type traefik struct {
	*traefikproc.Traefik
	webAddr string
}

// startTraefik writes the configuration and the plugin's sources into work (Traefik reads
// plugins-local/ relative to its working directory), starts Traefik there and waits until the
// router is enabled with the plugin.
func startTraefik(bin, repo, work, project, harborURL string) (*traefik, error) {
	ports, err := traefikproc.FreePorts(2)
	if err != nil {
		return nil, err
	}
	cfg := traefikproc.Config{
		Bin:      bin,
		Repo:     repo,
		Dir:      work,
		Listen:   fmt.Sprintf("127.0.0.1:%d", ports[0]),
		API:      fmt.Sprintf("127.0.0.1:%d", ports[1]),
		Project:  project,
		Upstream: harborURL,
		// api.debug serves /debug/pprof on the API entrypoint: the goroutine count comes from there.
		Debug: true,
	}
	p, err := traefikproc.Start(cfg)
	if err != nil {
		return nil, err
	}
	if err := p.WaitReady(60 * time.Second); err != nil {
		p.Stop()
		return nil, err
	}
	return &traefik{Traefik: p, webAddr: cfg.Listen}, nil
}

// accessLogLines counts the lines of the access log (one per request Traefik answered).
func (tr *traefik) accessLogLines() int {
	return strings.Count(traefikproc.ReadFile(tr.AccessPath), "\n")
}
