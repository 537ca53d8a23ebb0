package deploy

import (
	"errors"
	"testing"
)

func TestRolloutError(t *testing.T) {
	boom := errors.New("container exited with code 3")
	cases := []struct {
		name               string
		rollback, restored bool
		err                error
		want               string
		rolledBack         bool
	}{
		{"success", false, false, nil, "", false},
		{"deploy restored", false, true, boom, "deploying img@sha256:1: container exited with code 3: rolled back to the previous version", true},
		{"deploy not restored", false, false, boom, "deploying img@sha256:1: container exited with code 3", false},
		{"rollback restored", true, true, boom, "rolling back to img@sha256:1: container exited with code 3 (what ran before is running again)", false},
		{"rollback not restored", true, false, boom, "rolling back to img@sha256:1: container exited with code 3", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := RolloutError(c.rollback, "img@sha256:1", c.restored, c.err)
			if c.want == "" {
				if err != nil {
					t.Fatalf("got %v", err)
				}
				return
			}
			if err == nil || err.Error() != c.want {
				t.Fatalf("got %v, want %q", err, c.want)
			}
			if errors.Is(err, ErrRolledBack) != c.rolledBack || !errors.Is(err, boom) {
				t.Errorf("wrapping: rolled back %v, cause kept %v", errors.Is(err, ErrRolledBack), errors.Is(err, boom))
			}
		})
	}
}
