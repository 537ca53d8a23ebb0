package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/slipway-dev/slipway/internal/config"
)

// checkRegistry asks registries[i] for /v2/ with its login, as a push would: reachable, and the
// login accepted (Basic, or a token from the realm of a Bearer challenge). It never prints the
// login. client is nil for the default one.
func checkRegistry(ctx context.Context, i int, reg config.Registry, client *http.Client) result {
	if client == nil {
		client = &http.Client{}
	}
	key := fmt.Sprintf("registries[%d]", i)
	scheme := "https"
	if reg.Insecure || loopback(reg.Host) {
		scheme = "http"
	}
	base := scheme + "://" + reg.Host + "/v2/"
	get := func(u, authz string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		return client.Do(req)
	}
	resp, err := get(base, "")
	if err != nil {
		hint := "check " + key + ".host and that this host reaches it"
		if scheme == "https" {
			hint += "; a registry served over plain http needs " + key + ".insecure: true"
		}
		return failed(fmt.Errorf("%s: %w", reg.Host, err), hint)
	}
	drain(resp)
	haveLogin := reg.Username != "" || reg.Password != ""
	switch {
	case resp.StatusCode == http.StatusOK && haveLogin:
		return passed("%s answers without a login (the configured one is not needed)", reg.Host)
	case resp.StatusCode == http.StatusOK:
		return passed("%s answers, no login needed", reg.Host)
	case resp.StatusCode != http.StatusUnauthorized:
		return failed(fmt.Errorf("%s answered %s to GET /v2/", reg.Host, resp.Status),
			"is "+key+".host a container registry (the Docker Registry HTTP API v2)?")
	case !haveLogin:
		return failed(fmt.Errorf("%s requires a login and none is configured", reg.Host),
			"set "+key+".username and its password (password_env keeps it out of the file)")
	}
	refused := "check " + key + ".username and its password (password or password_env)"
	basic := (&http.Request{Header: http.Header{}})
	basic.SetBasicAuth(reg.Username, reg.Password.Reveal())
	authz := basic.Header.Get("Authorization")
	scheme2, params := challenge(resp.Header.Get("WWW-Authenticate"))
	switch strings.ToLower(scheme2) {
	case "basic":
	case "bearer":
		token, err := registryToken(ctx, client, params, authz, scheme == "http")
		if err != nil {
			if errors.Is(err, errRefused) {
				return failed(fmt.Errorf("%s refused the login: %w", reg.Host, err), refused)
			}
			return failed(fmt.Errorf("%s: getting a token: %w", reg.Host, err), "check that the registry's token service is reachable from this host")
		}
		authz = "Bearer " + token
	default:
		return failed(fmt.Errorf("%s asks for %q authentication, which slipway does not speak", reg.Host, scheme2), "use a registry with Basic or token authentication")
	}
	resp, err = get(base, authz)
	if err != nil {
		return failed(fmt.Errorf("%s: %w", reg.Host, err), "check that this host reaches "+reg.Host)
	}
	drain(resp)
	if resp.StatusCode != http.StatusOK {
		return failed(fmt.Errorf("%s refused the login: %s", reg.Host, resp.Status), refused)
	}
	return passed("%s: login accepted", reg.Host)
}

var errRefused = errors.New("the token service refused it")

// registryToken gets a token from the realm of a Bearer challenge with the Basic login authz.
// The login goes over plain http only where the registry itself is reached so.
func registryToken(ctx context.Context, client *http.Client, params map[string]string, authz string, plain bool) (string, error) {
	realm, err := url.Parse(params["realm"])
	if err != nil || (realm.Scheme != "https" && realm.Scheme != "http") || realm.Host == "" {
		return "", fmt.Errorf("invalid token realm %q", params["realm"])
	}
	if realm.Scheme == "http" && !plain {
		return "", fmt.Errorf("token realm %s is not https; the login is not sent there", realm.Host)
	}
	q := realm.Query()
	if v := params["service"]; v != "" {
		q.Set("service", v)
	}
	realm.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, realm.String(), nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", authz)
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer drain(resp)
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return "", fmt.Errorf("%w (%s)", errRefused, resp.Status)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("token service answered %s", resp.Status)
	}
	var body struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
		return "", fmt.Errorf("decoding the token service's answer: %w", err)
	}
	if body.Token == "" {
		body.Token = body.AccessToken
	}
	if body.Token == "" {
		return "", errors.New("the token service's answer holds no token")
	}
	return body.Token, nil
}

var challengeParam = regexp.MustCompile(`(\w+)="([^"]*)"`)

// challenge splits `Bearer realm="…",service="…"` into its scheme and parameters.
func challenge(h string) (string, map[string]string) {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	params := map[string]string{}
	for _, m := range challengeParam.FindAllStringSubmatch(rest, -1) {
		params[strings.ToLower(m[1])] = m[2]
	}
	return scheme, params
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
}

func loopback(host string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	ip := net.ParseIP(h)
	return h == "localhost" || (ip != nil && ip.IsLoopback())
}

// checkAWS gets the credentials through the server's own AWS wiring and asks STS whose they are
// (GetCallerIdentity needs no permission). On failure it names what is missing.
func checkAWS(ctx context.Context, c config.AWS) result {
	cfg := loadAWSConfig(ctx, c)
	if cfg.Credentials == nil {
		cfg.Credentials = failing{errors.New("no credentials provider")}
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		if c.RoleARN != "" && assumeRoleRefused(err) {
			return failed(fmt.Errorf("sts:AssumeRole on %s refused: %w", c.RoleARN, apiCode(err)),
				"the role's trust policy must let this host's identity assume it (with aws.external_id when it asks one), and that identity needs sts:AssumeRole on the role")
		}
		missing := "no AWS credentials: none of the default chain's sources (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, " +
			"AWS_PROFILE and ~/.aws, a web identity token, an ECS task role, an EC2 instance role) gave any"
		if c.RoleARN != "" {
			missing = "no credentials to assume " + c.RoleARN + " with: the default chain gave none, or sts:AssumeRole failed"
		}
		return failed(fmt.Errorf("%s: %w", missing, err), "give this host credentials (an instance or task role, or keys in the environment)")
	}
	client := sts.NewFromConfig(cfg, func(o *sts.Options) { o.BaseEndpoint = endpoint(c.Endpoints.STS) })
	id, err := client.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return failed(fmt.Errorf("sts:GetCallerIdentity: %w", apiCode(err)),
			"the credentials are refused: renew or replace them (expired session, deleted or mistyped access key)")
	}
	return passed("credentials of %s (account %s) in %s", aws.ToString(id.Arn), aws.ToString(id.Account), c.Region)
}

// assumeRoleRefused reports whether err is STS refusing AssumeRole (not the chain finding nothing).
func assumeRoleRefused(err error) bool {
	if ae, ok := errors.AsType[smithy.APIError](err); ok {
		switch ae.ErrorCode() {
		case "AccessDenied", "AccessDeniedException", "InvalidClientTokenId", "ExpiredToken", "RegionDisabledException":
			return true
		}
	}
	return false
}

// apiCode shortens an AWS API error to its code and message; other errors are kept as they are.
func apiCode(err error) error {
	if ae, ok := errors.AsType[smithy.APIError](err); ok {
		return fmt.Errorf("%s: %s", ae.ErrorCode(), ae.ErrorMessage())
	}
	return err
}
