package source

import (
	"encoding/base64"
	"net/url"
	"regexp"
	"strings"
)

var (
	// urlUserinfo matches "scheme://user:password@" so the credentials can
	// be cut out of anything git prints about a URL.
	urlUserinfo = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@`)
	// authHeader matches an Authorization header value, whoever's it is.
	authHeader = regexp.MustCompile(`(?i)(authorization:\s*[A-Za-z]+\s+)\S+`)
)

// scrubber removes one repository's secrets from text that is about to leave
// the package in an error. It is defence in depth: git is never given the
// token on argv or in a URL, so it should not print it in the first place.
type scrubber struct {
	secrets []string
}

func newScrubber(token string) scrubber {
	if token == "" {
		return scrubber{}
	}
	secrets := []string{token, basicAuth(token)}
	if q := url.QueryEscape(token); q != token {
		secrets = append(secrets, q)
	}
	return scrubber{secrets: secrets}
}

func (s scrubber) scrub(text string) string {
	for _, secret := range s.secrets {
		text = strings.ReplaceAll(text, secret, "[REDACTED]")
	}
	text = authHeader.ReplaceAllString(text, "${1}[REDACTED]")
	return urlUserinfo.ReplaceAllString(text, "${1}[REDACTED]@")
}

// basicAuth is the credential GitHub accepts for installation tokens.
func basicAuth(token string) string {
	return base64.StdEncoding.EncodeToString([]byte("x-access-token:" + token))
}
