package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Tag implements deploy.Registry: it makes ref (repository:tag) point to the manifest digest
// already holds in the same repository, through the registry API: the manifest is read by digest
// and put again under the tag. Unlike a second docker push of the same image, it starts no
// process and sends no layer requests: two HTTP requests.
func (r *Registry) Tag(ctx context.Context, ref, digest string) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	if err := r.tag(ctx, ref, digest); err != nil {
		return fmt.Errorf("tagging %s as %s: %w", digest, ref, err)
	}
	return nil
}

func (r *Registry) tag(ctx context.Context, ref, digest string) error {
	p, err := ParseReference(ref)
	if err != nil {
		return err
	}
	if p.Tag == "" || p.Digest != "" {
		return fmt.Errorf("image reference %q: want repository:tag", ref)
	}
	if hexPart, ok := strings.CutPrefix(digest, "sha256:"); !ok || len(hexPart) != 64 {
		return fmt.Errorf("digest %q: want sha256:<64 hex digits>", digest)
	}
	base := fmt.Sprintf("%s://%s/v2/%s/manifests/", r.scheme(p.Host), p.Host, p.Repository)
	sess := &session{r: r, host: p.Host, scope: "repository:" + p.Repository + ":pull,push"}

	resp, err := sess.do(ctx, http.MethodGet, base+digest)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("registry %s has no manifest %s in %s", p.Host, digest, p.Repository)
	case resp.StatusCode != http.StatusOK:
		return statusError(resp)
	}
	mediaType := resp.Header.Get("Content-Type")
	if mediaType == "" {
		return errors.New("the registry gave the manifest no media type")
	}
	body, err := readManifest(resp)
	if err != nil {
		return err
	}
	// The bytes must be the very manifest: a tag pointing to anything else would deploy it.
	if sha256Digest(body) != digest {
		return fmt.Errorf("the manifest the registry sent for %s does not hash to it", digest)
	}

	resp, err = sess.doBody(ctx, http.MethodPut, base+p.Tag, mediaType, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return statusError(resp)
	}
	if got := resp.Header.Get("Docker-Content-Digest"); got != "" && got != digest {
		return fmt.Errorf("the registry stored the manifest as %s, not %s", got, digest)
	}
	return nil
}
