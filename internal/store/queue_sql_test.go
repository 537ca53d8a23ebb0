package store

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/internal/deploy"
)

// The queue's SQL spells the active statuses out (a partial index only matches a literal list);
// they must be deploy's, in every query that names them.
func TestQueueSQLActiveStatusesAreDeploys(t *testing.T) {
	want := make([]string, len(deploy.ActiveDeployment))
	for i, s := range deploy.ActiveDeployment {
		want[i] = string(s)
	}
	if !slices.Equal(deploymentsQueue.active, want) {
		t.Errorf("deploymentsQueue.active = %v, want %v", deploymentsQueue.active, want)
	}
	lists := regexp.MustCompile(`status IN \(([^)]*)\)`)
	q := deploymentsQueue
	for name, sql := range map[string]string{"claim": q.claim, "heartbeat": q.heartbeat, "finish": q.finish,
		"retry": q.retry, "release": q.release, "rescue": q.rescue, "cancel": q.cancel, "depth": q.depth} {
		for _, m := range lists.FindAllStringSubmatch(sql, -1) {
			got := strings.Split(strings.NewReplacer("'", "", " ", "").Replace(m[1]), ",")
			got = slices.DeleteFunc(got, func(s string) bool { return s == "queued" })
			if !slices.Equal(got, want) {
				t.Errorf("%s: status IN (%s), want the active statuses %v", name, m[1], want)
			}
		}
	}
}
