package registry

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/testenv"
)

// startAuthRegistry runs a second docker-registry that only accepts bearer tokens from a token
// server served by this test, which hands them out for user and password only. It returns the
// registry's host:port.
//
// Token auth, as Docker Hub and most hosted registries do it (testenv.AuthRegistry covers basic
// auth): what the test proves is that the docker engine and Digest present our credentials to the
// token server, and a wrong password fails.
func startAuthRegistry(t *testing.T, user, password string) string {
	t.Helper()
	dir := t.TempDir()
	key, certPEM := signingKey(t)
	if err := os.WriteFile(filepath.Join(dir, "root.pem"), certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	const service, issuer = "slipway-test-registry", "slipway-test-issuer"

	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != password {
			http.Error(w, `{"details":"wrong user or password"}`, http.StatusUnauthorized)
			return
		}
		token := signToken(t, key, issuer, r.URL.Query().Get("service"), user, r.URL.Query()["scope"])
		json.NewEncoder(w).Encode(map[string]any{"token": token, "access_token": token, "expires_in": 300})
	}))
	t.Cleanup(tokens.Close)

	return testenv.RegistryWithAuth(t, dir, fmt.Sprintf(`token:
    realm: %s/token
    service: %s
    issuer: %s
    rootcertbundle: %s/root.pem
`, tokens.URL, service, issuer, dir))
}

// signingKey makes the token issuer's key and a self-signed certificate for the registry's
// rootcertbundle.
func signingKey(t *testing.T) (*rsa.PrivateKey, []byte) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "slipway test token issuer"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// signToken makes a JWT in the form the registry's token auth accepts (distribution's token
// spec): RS256, the key named by its libtrust key id, access granted to every requested scope.
func signToken(t *testing.T, key *rsa.PrivateKey, issuer, audience, subject string, scopes []string) string {
	t.Helper()
	type access struct {
		Type    string   `json:"type"`
		Name    string   `json:"name"`
		Actions []string `json:"actions"`
	}
	granted := []access{}
	for _, scope := range scopes {
		for _, s := range strings.Fields(scope) {
			parts := strings.Split(s, ":")
			if len(parts) < 3 {
				continue
			}
			// The name may hold a port ("host:5000/x" never does here, but be exact).
			name := strings.Join(parts[1:len(parts)-1], ":")
			granted = append(granted, access{parts[0], name, strings.Split(parts[len(parts)-1], ",")})
		}
	}
	now := time.Now()
	header := map[string]any{"typ": "JWT", "alg": "RS256", "kid": libtrustKeyID(t, &key.PublicKey)}
	claims := map[string]any{
		"iss": issuer, "sub": subject, "aud": audience,
		"exp": now.Add(5 * time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "iat": now.Unix(),
		"jti":    fmt.Sprint(now.UnixNano()),
		"access": granted,
	}
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signed := enc(header) + "." + enc(claims)
	sum := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signed + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// libtrustKeyID is the key id the registry computes for each key of its rootcertbundle: the
// first 240 bits of the SHA-256 of the DER public key, base32, in groups of four.
func libtrustKeyID(t *testing.T, pub *rsa.PublicKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	s := strings.TrimRight(base32.StdEncoding.EncodeToString(sum[:30]), "=")
	var groups []string
	for i := 0; i < len(s); i += 4 {
		groups = append(groups, s[i:min(i+4, len(s))])
	}
	return strings.Join(groups, ":")
}
