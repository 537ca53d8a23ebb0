package typo

import "testing"

func TestClosest(t *testing.T) {
	known := []string{"DATABASE_URL", "WORKERS", "LISTEN_ADDR"}
	for _, tc := range []struct {
		name string
		max  int
		want string
	}{
		{"DATABSE_URL", 2, "DATABASE_URL"}, // a swap is one edit
		{"WORKER", 2, "WORKERS"},
		{"LISTEN_ADR", 1, "LISTEN_ADDR"},
		{"FROBNICATE", 3, ""},
		{"WROKERS", 1, "WORKERS"},
		{string(make([]byte, 100)), 10, ""}, // long input costs nothing and matches nothing
	} {
		if got := Closest(tc.name, known, tc.max); got != tc.want {
			t.Errorf("Closest(%q, %d) = %q, want %q", tc.name, tc.max, got, tc.want)
		}
	}
}
