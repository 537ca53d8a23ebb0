// Package password hashes and checks the password hashes of the server config: argon2id in PHC
// form ($argon2id$v=19$m=…,t=…,p=…$salt$hash) or bcrypt ($2a$, $2b$, $2y$). It imports nothing
// of Slipway's, so that internal/config can validate a hash without importing internal/auth.
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Parameters of Hash: OWASP's first argon2id recommendation (19 MiB, 2 passes, 1 lane), which
// costs a login tens of milliseconds and bounds the memory of concurrent logins.
const (
	hashMemory  = 19 * 1024 // KiB
	hashTime    = 2
	hashThreads = 1
	saltLen     = 16
	keyLen      = 32
)

// Bounds of the hashes accepted: a typo in a config hash must not make every login take a
// gigabyte or a minute.
const (
	maxMemory     = 1 << 20 // KiB: 1 GiB
	maxTime       = 64
	maxThreads    = 64
	maxBcryptCost = 16
	// MaxLength is the longest password checked; longer ones are refused unchecked.
	MaxLength = 1024
)

// Hash returns the argon2id PHC string of pw, with a fresh random salt.
func Hash(pw string) (string, error) {
	if len(pw) > MaxLength {
		return "", fmt.Errorf("password longer than %d bytes", MaxLength)
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("reading random salt: %w", err)
	}
	key := argon2.IDKey([]byte(pw), salt, hashTime, hashMemory, hashThreads, keyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, hashMemory, hashTime, hashThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

var b64 = base64.RawStdEncoding

type argonParams struct {
	memory  uint32
	time    uint32
	threads uint8
	salt    []byte
	key     []byte
}

// Check reports whether hash is one Verify can use. Its errors never quote the hash.
func Check(hash string) error {
	switch {
	case strings.HasPrefix(hash, "$argon2id$"):
		_, err := parseArgon2id(hash)
		return err
	case strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"), strings.HasPrefix(hash, "$2y$"):
		cost, err := bcrypt.Cost([]byte(hash))
		if err != nil || len(hash) != 60 {
			return errors.New("malformed bcrypt hash")
		}
		if cost > maxBcryptCost {
			return fmt.Errorf("bcrypt cost %d is above %d: each login would take too long", cost, maxBcryptCost)
		}
		return nil
	case strings.HasPrefix(hash, "$argon2i$"), strings.HasPrefix(hash, "$argon2d$"):
		return errors.New("argon2i and argon2d are not accepted: use argon2id")
	}
	return errors.New("not an argon2id ($argon2id$v=19$m=…,t=…,p=…$salt$hash) or bcrypt ($2a$, $2b$, $2y$) hash")
}

func parseArgon2id(hash string) (argonParams, error) {
	var p argonParams
	parts := strings.Split(hash, "$")
	// "", "argon2id", "v=19", "m=…,t=…,p=…", salt, key
	if len(parts) != 6 {
		return p, errors.New("malformed argon2id hash: want $argon2id$v=19$m=…,t=…,p=…$salt$hash")
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, fmt.Errorf("argon2id hash: version must be v=%d", argon2.Version)
	}
	var seen [3]bool
	for kv := range strings.SplitSeq(parts[3], ",") {
		k, v, _ := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return p, errors.New("malformed argon2id parameters: want m=…,t=…,p=…")
		}
		switch k {
		case "m":
			p.memory, seen[0] = uint32(n), true
		case "t":
			p.time, seen[1] = uint32(n), true
		case "p":
			if n > 255 {
				return p, fmt.Errorf("argon2id parallelism above %d", maxThreads)
			}
			p.threads, seen[2] = uint8(n), true
		default:
			return p, errors.New("malformed argon2id parameters: want m=…,t=…,p=…")
		}
	}
	switch {
	case !seen[0] || !seen[1] || !seen[2]:
		return p, errors.New("argon2id hash needs m, t and p")
	case p.threads < 1 || p.threads > maxThreads:
		return p, fmt.Errorf("argon2id parallelism must be 1..%d", maxThreads)
	case p.time < 1 || p.time > maxTime:
		return p, fmt.Errorf("argon2id time must be 1..%d", maxTime)
	case p.memory < 8*uint32(p.threads) || p.memory > maxMemory:
		return p, fmt.Errorf("argon2id memory must be 8*p..%d KiB", maxMemory)
	}
	var err error
	if p.salt, err = b64.DecodeString(parts[4]); err != nil || len(p.salt) < 8 {
		return p, errors.New("argon2id salt must be unpadded base64 of at least 8 bytes")
	}
	if p.key, err = b64.DecodeString(parts[5]); err != nil || len(p.key) < 16 || len(p.key) > 128 {
		return p, errors.New("argon2id hash must be unpadded base64 of 16 to 128 bytes")
	}
	return p, nil
}

// Verify reports whether pw matches hash, in time independent of where they differ. An error
// means the hash is unusable (Check would have said so).
func Verify(hash, pw string) (bool, error) {
	if len(pw) > MaxLength {
		return false, nil
	}
	if strings.HasPrefix(hash, "$argon2id$") {
		p, err := parseArgon2id(hash)
		if err != nil {
			return false, err
		}
		key := argon2.IDKey([]byte(pw), p.salt, p.time, p.memory, p.threads, uint32(len(p.key)))
		return subtle.ConstantTimeCompare(key, p.key) == 1, nil
	}
	if err := Check(hash); err != nil {
		return false, err
	}
	err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword), errors.Is(err, bcrypt.ErrPasswordTooLong):
		return false, nil
	}
	return false, errors.New("bcrypt hash unusable")
}
