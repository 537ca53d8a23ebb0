package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// session makes requests to one registry host for one repository scope, answering a 401 once:
// Basic with the host's credentials, Bearer with a token fetched from the challenge's realm.
type session struct {
	r     *Registry
	host  string
	scope string // default scope for a Bearer challenge that names none

	authorization string // header value that worked, reused for the session's next requests
}

func (s *session) do(ctx context.Context, method, url string) (*http.Response, error) {
	return s.doBody(ctx, method, url, "", nil)
}

// doBody is do with a request body of contentType; the body is sent again after a challenge.
func (s *session) doBody(ctx context.Context, method, url, contentType string, body []byte) (*http.Response, error) {
	resp, err := s.send(ctx, method, url, contentType, body)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	// Answer the challenge. A login the registry refuses is replaced once by a fresh one when the
	// credentials can tell it went stale (an ECR token expired or revoked before its time).
	for retried := false; ; retried = true {
		challenge := resp.Header.Get("WWW-Authenticate")
		resp.Body.Close()
		authz, password, err := s.authorize(ctx, challenge)
		if err != nil {
			return nil, err
		}
		s.authorization = authz
		resp, err = s.send(ctx, method, url, contentType, body)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusUnauthorized {
			return resp, nil
		}
		if retried || !s.r.invalidate(ctx, s.host, password) {
			resp.Body.Close()
			return nil, fmt.Errorf("registry %s refused the credentials (401 after authenticating)", s.host)
		}
	}
}

func (s *session) send(ctx context.Context, method, url, contentType string, body []byte) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", manifestTypes)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if s.authorization != "" {
		req.Header.Set("Authorization", s.authorization)
	}
	resp, err := s.r.client.Do(req)
	if err != nil {
		// *url.Error holds the URL, which holds no secret: credentials travel in headers.
		return nil, err
	}
	return resp, nil
}

// authorize answers a WWW-Authenticate challenge with an Authorization header value; password is
// the one it was made with, "" for none.
func (s *session) authorize(ctx context.Context, challenge string) (authz, password string, err error) {
	scheme, params := parseChallenge(challenge)
	user, password, ok, err := s.r.creds.Lookup(ctx, s.host)
	if err != nil {
		return "", "", fmt.Errorf("looking up credentials for %s: %w", s.host, err)
	}
	if !ok {
		password = ""
	}
	switch strings.ToLower(scheme) {
	case "basic":
		if !ok {
			return "", "", fmt.Errorf("registry %s requires credentials and none are configured", s.host)
		}
		req := http.Request{Header: http.Header{}}
		req.SetBasicAuth(user, password)
		return req.Header.Get("Authorization"), password, nil
	case "bearer":
		token, err := s.token(ctx, params, user, password, ok)
		if err != nil {
			return "", "", fmt.Errorf("getting a token for %s: %w", s.host, err)
		}
		return "Bearer " + token, password, nil
	default:
		return "", "", fmt.Errorf("registry %s asks for unsupported authentication %q", s.host, scheme)
	}
}

// token fetches a bearer token from the realm of the challenge (the distribution token spec).
func (s *session) token(ctx context.Context, params map[string]string, user, password string, haveCreds bool) (string, error) {
	realm, err := url.Parse(params["realm"])
	if err != nil || (realm.Scheme != "https" && realm.Scheme != "http") || realm.Host == "" {
		return "", fmt.Errorf("invalid token realm %q", params["realm"])
	}
	q := realm.Query()
	if v := params["service"]; v != "" {
		q.Set("service", v)
	}
	q.Set("scope", s.scope)
	if v := params["scope"]; v != "" {
		q.Set("scope", v)
	}
	realm.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, realm.String(), nil)
	if err != nil {
		return "", err
	}
	if haveCreds {
		// A password goes over plain http only where the registry itself is reached so.
		if realm.Scheme != "https" && s.r.scheme(realm.Host) != "http" {
			return "", fmt.Errorf("token realm %s is not https; refusing to send credentials", realm.Host)
		}
		req.SetBasicAuth(user, password)
	}
	resp, err := s.r.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			return "", fmt.Errorf("token server refused the credentials: %s", resp.Status)
		}
		return "", statusError(resp)
	}
	var body struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
		return "", fmt.Errorf("decoding token response: %w", err)
	}
	token := body.Token
	if token == "" {
		token = body.AccessToken
	}
	if token == "" {
		return "", errors.New("token response holds no token")
	}
	return token, nil
}

// parseChallenge splits `Bearer realm="…",service="…",scope="repository:a:pull,push"` into the
// scheme and its parameters; quoted values may hold commas and backslash escapes.
func parseChallenge(h string) (string, map[string]string) {
	h = strings.TrimSpace(h)
	scheme, rest, _ := strings.Cut(h, " ")
	params := map[string]string{}
	for rest = strings.TrimSpace(rest); rest != ""; rest = strings.TrimLeft(rest, " ,") {
		key, after, ok := strings.Cut(rest, "=")
		if !ok {
			break
		}
		key = strings.ToLower(strings.TrimSpace(key))
		var val strings.Builder
		if strings.HasPrefix(after, `"`) {
			i := 1
			for ; i < len(after) && after[i] != '"'; i++ {
				if after[i] == '\\' && i+1 < len(after) {
					i++
				}
				val.WriteByte(after[i])
			}
			rest = after[min(i+1, len(after)):]
		} else {
			v, r, _ := strings.Cut(after, ",")
			val.WriteString(strings.TrimSpace(v))
			rest = r
		}
		params[key] = val.String()
	}
	return scheme, params
}
