package dockercli

import "testing"

func TestSubcommandHidesArguments(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"run", "-d", "-e", "SECRET=x", "img"}, "run"},
		{[]string{"service", "update", "--image", "x", "svc"}, "service update"},
		{[]string{"container", "inspect", "name"}, "container inspect"},
		{[]string{"push", "registry.example.com/app:v1"}, "push"},
		{[]string{"rename", "abc123", "api"}, "rename"},
		{[]string{"build", "--file=/x/Dockerfile", "/x"}, "build"},
		{[]string{"service", "--help"}, "service"},
		{[]string{"--version"}, ""},
		{nil, ""},
	}
	for _, tt := range tests {
		if got := subcommand(tt.args); got != tt.want {
			t.Errorf("subcommand(%q) = %q, want %q", tt.args, got, tt.want)
		}
	}
}
