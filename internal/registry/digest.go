package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// manifestTypes are the manifests a tag may point to: a multi-platform index or a single image,
// in the OCI or the Docker format. Without them a registry may answer with (and hash) an old
// schema 1 conversion.
var manifestTypes = strings.Join([]string{
	"application/vnd.oci.image.index.v1+json",
	"application/vnd.oci.image.manifest.v1+json",
	"application/vnd.docker.distribution.manifest.list.v2+json",
	"application/vnd.docker.distribution.manifest.v2+json",
}, ", ")

// maxManifest bounds a manifest read to compute its digest ourselves.
const maxManifest = 4 << 20

// Digest implements deploy.Registry: a HEAD of the manifest, answered with its
// Docker-Content-Digest. ok is false when the registry has no such tag (or repository).
func (r *Registry) Digest(ctx context.Context, ref string) (string, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	d, ok, err := r.digest(ctx, ref)
	if err != nil {
		return "", false, fmt.Errorf("reading digest of %s: %w", ref, err)
	}
	return d, ok, nil
}

func (r *Registry) digest(ctx context.Context, ref string) (string, bool, error) {
	p, err := ParseReference(ref)
	if err != nil {
		return "", false, err
	}
	version := p.Tag
	if p.Digest != "" {
		version = p.Digest
	}
	url := fmt.Sprintf("%s://%s/v2/%s/manifests/%s", r.scheme(p.Host), p.Host, p.Repository, version)
	sess := &session{r: r, host: p.Host, scope: "repository:" + p.Repository + ":pull"}

	resp, err := sess.do(ctx, http.MethodHead, url)
	if err != nil {
		return "", false, err
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return "", false, nil
	case resp.StatusCode != http.StatusOK:
		return "", false, statusError(resp)
	}
	if d := resp.Header.Get("Docker-Content-Digest"); d != "" {
		return d, true, nil
	}

	// The header is optional in the spec: hash the manifest itself.
	resp, err = sess.do(ctx, http.MethodGet, url)
	if err != nil {
		return "", false, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return "", false, nil
	case resp.StatusCode != http.StatusOK:
		return "", false, statusError(resp)
	}
	body, err := readManifest(resp)
	if err != nil {
		return "", false, err
	}
	return sha256Digest(body), true, nil
}

// readManifest reads a manifest from resp, at most maxManifest bytes of it.
func readManifest(resp *http.Response) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxManifest+1))
	if err != nil {
		return nil, fmt.Errorf("reading manifest: %w", err)
	}
	if len(body) > maxManifest {
		return nil, errors.New("manifest larger than 4 MiB")
	}
	return body, nil
}

func sha256Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// statusError describes an unexpected answer, with the registry's own error text when it sent
// one (a HEAD has no body).
func statusError(resp *http.Response) error {
	msg := ""
	if resp.Request.Method != http.MethodHead {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		msg = strings.TrimSpace(string(b))
	}
	if msg == "" {
		return fmt.Errorf("registry answered %s", resp.Status)
	}
	return fmt.Errorf("registry answered %s: %s", resp.Status, msg)
}
