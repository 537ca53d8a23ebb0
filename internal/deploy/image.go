package deploy

import "strings"

// SameImage reports whether two references name the same image. A platform can hold
// repository:tag@digest where Slipway asked for repository@digest; then the digest decides.
func SameImage(a, b string) bool {
	if a == b {
		return true
	}
	ra, da, okA := strings.Cut(a, "@")
	rb, db, okB := strings.Cut(b, "@")
	return okA && okB && da == db && stripTag(ra) == stripTag(rb)
}

// stripTag removes a :tag from a repository, leaving a registry's :port alone.
func stripTag(repo string) string {
	if i := strings.LastIndexByte(repo, ':'); i > strings.LastIndexByte(repo, '/') {
		return repo[:i]
	}
	return repo
}

// ShortImage shortens the digest of a pinned reference to 12 hex digits, enough to tell two
// builds apart in a progress line.
func ShortImage(ref string) string {
	repo, digest, ok := strings.Cut(ref, "@sha256:")
	if !ok || len(digest) <= 12 {
		return ref
	}
	return repo + "@sha256:" + digest[:12]
}
