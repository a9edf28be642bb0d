package rewrite

import (
	"errors"
	"net/url"
	"regexp"
	"strings"
)

// hostRE is a DNS name or IP literal with an optional port: nothing that could break out of a
// quoted realm or a URL when a client's Host header is echoed into one.
var hostRE = regexp.MustCompile(`^(?:[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$`)

// Origin builds the public origin of a request from its scheme and Host header.
func Origin(scheme, host string) (string, *Error) {
	if len(host) > MaxHostLength || !hostRE.MatchString(host) {
		return "", BadRequest("invalid Host header: " + quoteDetail(host))
	}
	return scheme + "://" + host, nil
}

// ParsePublicURL checks a configured public URL and returns its origin.
func ParsePublicURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", errors.New("scheme must be http or https")
	}
	if !hostRE.MatchString(u.Host) {
		return "", errors.New("host is missing or invalid")
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", errors.New("must be an origin only, like https://mirror.example.com (use mirrorPath for a path)")
	}
	return u.Scheme + "://" + u.Host, nil
}

// ParseMirrorPath checks a configured mirror path: "" or "/seg[/seg...]" without a trailing slash.
func ParseMirrorPath(p string) (string, error) {
	if p == "" {
		return "", nil
	}
	p = strings.TrimSuffix(p, "/")
	if !strings.HasPrefix(p, "/") || !pathRE.MatchString(p) {
		return "", errors.New("must look like /hub: segments of letters, digits, '.', '_', '-'")
	}
	if p == "/v2" || strings.HasPrefix(p, "/v2/") {
		return "", errors.New("must not start with /v2, which is the registry API itself")
	}
	return p, nil
}

// ParseTokenPath checks a configured token path.
func ParseTokenPath(p string) (string, error) {
	if !strings.HasPrefix(p, "/") || !pathRE.MatchString(p) || p == "/v2" || strings.HasPrefix(p, "/v2/") {
		return "", errors.New("must be an absolute path outside /v2, like /service/token")
	}
	return p, nil
}

var pathRE = regexp.MustCompile(`^(?:/[A-Za-z0-9._-]+)+$`)
