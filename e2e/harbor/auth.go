package harbor

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/distribution/distribution/v3/registry/api/errcode"
	"github.com/distribution/distribution/v3/registry/auth"
	"github.com/distribution/distribution/v3/registry/auth/token"
	"github.com/go-jose/go-jose/v4"
)

// Harbor's names for its token service and issuer, as its embedded registry is configured.
const (
	tokenService = "harbor-registry"
	tokenIssuer  = "harbor-token-issuer"
	tokenPath    = "/service/token"
	tokenTTL     = 30 * time.Minute // Harbor's default token expiration
)

// Actions a token can carry.
const (
	actionPull   = "pull"
	actionPush   = "push"
	actionDelete = "delete"
	actionAll    = "*"
)

// tokenSigner signs registry tokens with a key that distribution trusts through
// its rootcertbundle; the kid header is the key's JWK thumbprint, which is how
// distribution v3 finds the key (a token without x5c or kid is rejected).
type tokenSigner struct {
	signer   jose.Signer
	certFile string
}

func newTokenSigner(dir string) (*tokenSigner, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	template := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: tokenIssuer},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(10 * 365 * 24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	certFile := filepath.Join(dir, "token-ca.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return nil, err
	}
	options := (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", token.GetJWKThumbprint(&key.PublicKey))
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, options)
	if err != nil {
		return nil, err
	}
	return &tokenSigner{signer: signer, certFile: certFile}, nil
}

func (ts *tokenSigner) sign(subject string, access []*token.ResourceActions, now time.Time) (string, error) {
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", err
	}
	claims := token.ClaimSet{
		Issuer:     tokenIssuer,
		Subject:    subject,
		Audience:   token.AudienceList{tokenService},
		Expiration: now.Add(tokenTTL).Unix(),
		NotBefore:  now.Add(-time.Minute).Unix(),
		IssuedAt:   now.Unix(),
		JWTID:      hex.EncodeToString(jti),
		Access:     access,
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	signed, err := ts.signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return signed.CompactSerialize()
}

// parseScope splits one scope as Harbor does: type is the first part, actions
// the last, and the name everything between, so a name holding host:port keeps
// its colon.
func parseScope(s string) Scope {
	parts := strings.Split(s, ":")
	scope := Scope{Type: parts[0]}
	switch len(parts) {
	case 1:
	case 2:
		scope.Name = parts[1]
	default:
		scope.Name = strings.Join(parts[1:len(parts)-1], ":")
		if actions := parts[len(parts)-1]; actions != "" {
			scope.Actions = strings.Split(actions, ",")
		}
	}
	return scope
}

// parseScopes reads every scope query parameter, each of which may hold
// several space-separated scopes.
func parseScopes(values []string) []Scope {
	var scopes []Scope
	for _, value := range values {
		for _, s := range strings.Split(value, " ") {
			if s != "" {
				scopes = append(scopes, parseScope(s))
			}
		}
	}
	return scopes
}

// serveToken is Harbor's token service: GET only, service harbor-registry,
// optional Basic credentials, and per-project grants.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request, entry *Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writeHarborError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "method not allowed")
		return
	}
	query := r.URL.Query()
	// Parsed first so that the log shows the scopes of refused requests too.
	entry.Scopes = parseScopes(query["scope"])
	if service := query.Get("service"); service != tokenService {
		writeHarborError(w, http.StatusBadRequest, "BAD_REQUEST", fmt.Sprintf("unknown service: %q", service))
		return
	}
	user := ""
	if name, password, ok := r.BasicAuth(); ok {
		if !s.authenticate(name, password) {
			writeHarborError(w, http.StatusUnauthorized, "UNAUTHORIZED", "invalid credentials")
			return
		}
		user = name
	}

	access := make([]*token.ResourceActions, 0, len(entry.Scopes))
	for i := range entry.Scopes {
		scope := &entry.Scopes[i]
		scope.Granted = s.grant(user, *scope)
		access = append(access, &token.ResourceActions{Type: scope.Type, Name: scope.Name, Actions: scope.Granted})
	}
	now := time.Now()
	signed, err := s.signer.sign(user, access, now)
	if err != nil {
		writeHarborError(w, http.StatusInternalServerError, "UNKNOWN", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"token":        signed,
		"access_token": signed,
		"expires_in":   int(tokenTTL.Seconds()),
		"issued_at":    now.UTC().Format(time.RFC3339),
	})
}

// grant intersects what a scope asks for with what user may do; only
// repository scopes (and the catalog, for the admin) are ever granted.
func (s *Server) grant(user string, scope Scope) []string {
	var allowed []string
	switch {
	case scope.Type == "repository":
		allowed = s.allowedActions(user, scope.Name)
	case scope.Type == "registry" && scope.Name == "catalog" && user == s.adminUser:
		allowed = []string{actionAll}
	}
	granted := []string{}
	for _, action := range scope.Actions {
		if slices.Contains(allowed, action) && !slices.Contains(granted, action) {
			granted = append(granted, action)
		}
	}
	return granted
}

// allowedActions is Harbor's permission model keyed by the project, the first
// segment of the repository name: the admin may do anything, members pull and
// push, anyone pulls from a public project; no project means no access.
func (s *Server) allowedActions(user, repository string) []string {
	projectName, _, ok := strings.Cut(repository, "/")
	if !ok {
		return nil
	}
	project, ok := s.projects[projectName]
	switch {
	case !ok:
		return nil
	case user != "" && user == s.adminUser:
		return []string{actionPull, actionPush, actionDelete, actionAll}
	case user != "" && slices.Contains(project.Members, user):
		return []string{actionPull, actionPush}
	case project.Public:
		return []string{actionPull}
	}
	return nil
}

func (s *Server) authenticate(user, password string) bool {
	want, ok := s.users[user]
	return ok && want == password
}

// accessControllerName is the distribution auth backend that makes the App
// answer like Harbor; every Server passes itself in the backend's options.
const accessControllerName = "fakeharbor"

var registerAccessController sync.Once

// harborAccess sits where Harbor's v2auth middleware sits. distribution's own
// token controller verifies Bearer tokens; what a token allows is then read as
// Harbor reads it: per project, so a token for one repository of a project
// serves its other repositories too (that is what lets a client follow the
// proxy-cache 301 to library/). Basic credentials are checked against the
// projects (Harbor accepts them on /v2 too). Denials carry Harbor's challenge.
type harborAccess struct {
	server *Server
	tokens auth.AccessController
}

func newHarborAccess(options map[string]any) (auth.AccessController, error) {
	server, ok := options["server"].(*Server)
	if !ok {
		return nil, errors.New("fakeharbor access controller needs its *Server")
	}
	tokens, err := auth.GetAccessController("token", map[string]any{
		"realm":          "unused: challenges are Harbor's, see harborChallenge",
		"service":        tokenService,
		"issuer":         tokenIssuer,
		"rootcertbundle": server.signer.certFile,
	})
	if err != nil {
		return nil, err
	}
	return &harborAccess{server: server, tokens: tokens}, nil
}

func (a *harborAccess) Authorized(r *http.Request, access ...auth.Access) (*auth.Grant, error) {
	deny := func(err error) (*auth.Grant, error) {
		// Harbor answers Basic whenever a credential was sent, and for the catalog.
		basic := r.Header.Get("Authorization") != "" ||
			slices.ContainsFunc(access, func(a auth.Access) bool { return a.Type != "repository" })
		return nil, harborChallenge{server: a.server, basic: basic, access: access, err: err}
	}
	if user, password, ok := r.BasicAuth(); ok {
		if !a.server.authenticate(user, password) || !a.basicAllows(user, access) {
			return deny(errors.New("unauthorized"))
		}
		return &auth.Grant{User: auth.UserInfo{Name: user}, Resources: resourcesOf(access)}, nil
	}
	// Without access items distribution only verifies the token itself.
	grant, err := a.tokens.Authorized(r)
	if err != nil {
		var challenge auth.Challenge
		if !errors.As(err, &challenge) {
			return nil, err
		}
		return deny(err)
	}
	if len(access) == 0 && grant.User.Name == "" {
		return deny(errors.New("login needs an authenticated user, not an anonymous token"))
	}
	allowed := projectActions(bearerClaims(r))
	for _, item := range access {
		projectName, _, _ := strings.Cut(item.Name, "/")
		if item.Type != "repository" || !slices.Contains(allowed[projectName], item.Action) {
			return deny(fmt.Errorf("unauthorized to access %s: %s, action: %s", item.Type, item.Name, item.Action))
		}
	}
	grant.Resources = resourcesOf(access)
	return grant, nil
}

// bearerClaims decodes the claims of the request's Bearer token, which
// distribution has verified already.
func bearerClaims(r *http.Request) token.ClaimSet {
	var claims token.ClaimSet
	_, raw, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return claims
	}
	if payload, err := base64.RawURLEncoding.DecodeString(parts[1]); err == nil {
		_ = json.Unmarshal(payload, &claims)
	}
	return claims
}

// projectActions is what a token allows per project, as Harbor's token security
// context reads it ("*" meaning pull, push and delete). Harbor keeps only the
// last entry of a project; the union is taken here, the safer reading.
func projectActions(claims token.ClaimSet) map[string][]string {
	allowed := make(map[string][]string)
	for _, access := range claims.Access {
		if access.Type != "repository" {
			continue
		}
		projectName, _, _ := strings.Cut(access.Name, "/")
		for _, action := range access.Actions {
			if action == actionAll {
				allowed[projectName] = append(allowed[projectName], actionPull, actionPush, actionDelete)
			} else {
				allowed[projectName] = append(allowed[projectName], action)
			}
		}
	}
	return allowed
}

func (a *harborAccess) basicAllows(user string, access []auth.Access) bool {
	for _, item := range access {
		scope := Scope{Type: item.Type, Name: item.Name, Actions: []string{item.Action}}
		if len(a.server.grant(user, scope)) == 0 {
			return false
		}
	}
	return true
}

func resourcesOf(access []auth.Access) []auth.Resource {
	resources := make([]auth.Resource, 0, len(access))
	for _, a := range access {
		resources = append(resources, a.Resource)
	}
	return resources
}

// harborChallenge writes Harbor's Www-Authenticate: Bearer with the realm
// built from the external scheme and the Host received, and Harbor's scope
// (pull; pull,push for writes; delete), or Basic realm="harbor".
type harborChallenge struct {
	server *Server
	basic  bool
	access []auth.Access
	err    error
}

func (c harborChallenge) Error() string { return c.err.Error() }

func (c harborChallenge) SetHeaders(r *http.Request, w http.ResponseWriter) {
	if c.basic {
		w.Header().Set("Www-Authenticate", `Basic realm="harbor"`)
		return
	}
	challenge := fmt.Sprintf(`Bearer realm="%s://%s%s",service="%s"`, c.server.externalScheme, r.Host, tokenPath, tokenService)
	if scope := harborScope(r.Method, c.access); scope != "" {
		challenge += fmt.Sprintf(`,scope="%s"`, scope)
	}
	w.Header().Set("Www-Authenticate", challenge)
}

// harborScope renders the access a request needs as Harbor does: the
// repository first with the method's action, a mount source after it with pull.
func harborScope(method string, access []auth.Access) string {
	var names []string
	for _, a := range access {
		if a.Type == "repository" && !slices.Contains(names, a.Name) {
			names = append(names, a.Name)
		}
	}
	scopes := make([]string, 0, len(names))
	for i, name := range names {
		action := actionPull
		if i == 0 {
			switch method {
			case http.MethodPost, http.MethodPut, http.MethodPatch:
				action = "pull,push"
			case http.MethodDelete:
				action = actionDelete
			}
		}
		scopes = append(scopes, fmt.Sprintf("repository:%s:%s", name, action))
	}
	return strings.Join(scopes, " ")
}

// authorize runs the access check for requests the fake answers itself and
// writes the denial; it reports whether the request may proceed.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, access ...auth.Access) bool {
	_, err := s.access.Authorized(r, access...)
	if err == nil {
		return true
	}
	// Harbor sets this on its denials too; docker manifest needs it (docker/cli#989).
	w.Header().Set("Docker-Distribution-Api-Version", "registry/2.0")
	var challenge auth.Challenge
	if errors.As(err, &challenge) {
		challenge.SetHeaders(r, w)
		_ = errcode.ServeJSON(w, errcode.ErrorCodeUnauthorized.WithDetail(access))
		return false
	}
	_ = errcode.ServeJSON(w, errcode.ErrorCodeUnknown.WithDetail(err.Error()))
	return false
}

// writeHarborError answers with Harbor's error body.
func writeHarborError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, map[string]any{"errors": []map[string]string{{"code": code, "message": message}}})
}

// repositoryAccess is what a request needs on repo: pull for reads, pull and
// push for writes, delete for deletes; a mount also needs pull on its source.
func repositoryAccess(r *http.Request, repo string) []auth.Access {
	resource := auth.Resource{Type: "repository", Name: repo}
	var access []auth.Access
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		access = append(access, auth.Access{Resource: resource, Action: actionPull})
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		access = append(access, auth.Access{Resource: resource, Action: actionPull}, auth.Access{Resource: resource, Action: actionPush})
	case http.MethodDelete:
		access = append(access, auth.Access{Resource: resource, Action: actionDelete})
	}
	if from := r.URL.Query().Get("from"); from != "" && r.Method == http.MethodPost {
		access = append(access, auth.Access{Resource: auth.Resource{Type: "repository", Name: from}, Action: actionPull})
	}
	return access
}
