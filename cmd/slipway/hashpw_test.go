package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/internal/auth/password"
)

func TestHashPassword(t *testing.T) {
	for _, tc := range []struct {
		in      string
		wantErr bool
	}{
		{"correct horse battery\n", false},
		{"no newline at all", false},
		{"short\n", true},
		{"", true},
	} {
		stdin = strings.NewReader(tc.in)
		var out bytes.Buffer
		err := hashPassword(context.Background(), nil, nil, &out, &out)
		if tc.wantErr {
			if err == nil {
				t.Errorf("%q: no error", tc.in)
			}
			continue
		}
		h := strings.TrimSpace(out.String())
		if err != nil || !strings.HasPrefix(h, "$argon2id$") || strings.Contains(h, strings.TrimSpace(tc.in)) {
			t.Fatalf("%q: %q, %v", tc.in, h, err)
		}
		if ok, err := password.Verify(h, strings.TrimSpace(tc.in)); !ok || err != nil {
			t.Errorf("%q: the hash does not verify: %v %v", tc.in, ok, err)
		}
	}
}
