package rewrite

// The bounds of what the plugin reads, in one place. Registry clients send short requests and
// small documents; anything past these bounds is refused (or, for responses, passed unrewritten
// where the README says so) before any work per parameter or per byte, which under Yaegi costs
// microseconds per parameter.
const (
	// MaxRequestTarget bounds the path and query of a request the general path maps (a pull or
	// token request the lanes do not take, an upload, a catalog page): 414 beyond. Apache's and
	// nginx's default request-line limit is about 8 KiB too; Harbor's upload _state is a few
	// hundred bytes.
	MaxRequestTarget = 8 << 10
	// MaxQueryParams bounds the key=value pairs of a query or of a token form: 400 beyond. Room
	// for MaxScopes scope parameters and the others of a token request.
	MaxQueryParams = 64
	// MaxScopes bounds the scopes of one token request, over all its scope parameters, each of
	// which may hold several separated by spaces: 400 beyond.
	MaxScopes = 32
	// MaxHostLength bounds a Host header echoed into a realm or a URL: a DNS name (253) and a
	// port. A longer one is refused like any Host that cannot be a URL host (400), before the
	// host grammar's regexp, which would take tens of milliseconds over Traefik's 1 MiB.
	MaxHostLength = 253 + len(":65535")
	// MaxTokenForm bounds the OAuth2 token form (POST) read to map its scopes: 413 beyond.
	MaxTokenForm = 64 << 10
	// MaxRewrittenBody bounds a tags/list or _catalog document buffered to rewrite its names, and
	// the decoded size of an encoded document: a larger plain one streams through unchanged, a
	// larger encoded one is refused.
	MaxRewrittenBody = 8 << 20
	// MaxErrorBodyDigits bounds the registry error documents buffered to put the client's names
	// back: a Content-Length of at most five digits, under 100 kB.
	MaxErrorBodyDigits = 5
)
