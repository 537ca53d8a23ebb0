package e2e

// A trimmed copy of internal/rollout/ecs's test double (double_test.go, package-internal there):
// the part of the ECS API the ECS target calls, in ECS's own JSON protocol (awsJson1_1: POST /,
// X-Amz-Target: AmazonEC2ContainerServiceV20141113.<Operation>, errors as {"__type", "message"}),
// so that the real binary's SDK client talks to it through SLIPWAY_AWS_ECS_ENDPOINT. Each
// DescribeServices of a service whose deployment runs moves that deployment's script one step on.

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	ecsAccount = "123456789012"
	ecsRegion  = "eu-west-1"
	ecsCluster = "prod"
	ecsKeyID   = "AKIDSLIPWAYE2E"
)

type ecsDouble struct {
	t   testing.TB
	srv *httptest.Server

	mu         sync.Mutex
	calls      map[string]int
	taskDefs   map[string]map[string]any // ARN → as DescribeTaskDefinition returns it
	tdTags     map[string][]any
	revs       map[string]int   // family → last revision
	registered []map[string]any // RegisterTaskDefinition request bodies, in order
	services   map[string]*ecsService
	seq        int
}

type ecsService struct {
	name, arn, taskDef string
	desired            int
	tags               []any
	deployments        []*ecsDeployment // PRIMARY first
	events             []any            // newest first
	currentSD          string
	sds                []*ecsSD // newest first
	scripts            [][]ecsStep
	run                *ecsRun
}

type ecsDeployment struct {
	id, status, taskDef, rollout, reason string
	desired, running, pending, failed    int
	created                              time.Time
}

type ecsSD struct {
	arn, status, reason, rollbackReason string
	created                             time.Time
}

type ecsRun struct {
	dep, rollback *ecsDeployment
	prev          string
	sd            *ecsSD
	steps         []ecsStep
	n             int
}

// ecsStep changes a running deployment; the double's lock is held.
type ecsStep func(d *ecsDouble, s *ecsService, r *ecsRun)

func newECSDouble(t testing.TB) *ecsDouble {
	d := &ecsDouble{t: t, calls: map[string]int{}, taskDefs: map[string]map[string]any{},
		tdTags: map[string][]any{}, revs: map[string]int{}, services: map[string]*ecsService{}}
	d.srv = httptest.NewServer(http.HandlerFunc(d.serve))
	t.Cleanup(d.srv.Close)
	return d
}

func ecsTaskDefARN(family string, rev int) string {
	return fmt.Sprintf("arn:aws:ecs:%s:%s:task-definition/%s:%d", ecsRegion, ecsAccount, family, rev)
}

func (d *ecsDouble) addTaskDef(td map[string]any) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	arn := td["taskDefinitionArn"].(string)
	d.taskDefs[arn] = td
	fam := td["family"].(string)
	rev, _ := td["revision"].(float64)
	d.revs[fam] = max(d.revs[fam], int(rev))
	return arn
}

// addService creates a steady service running td, with the circuit breaker's rollback on and no
// owner tag.
func (d *ecsDouble) addService(name, td string, desired int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := &ecsService{name: name, arn: fmt.Sprintf("arn:aws:ecs:%s:%s:service/%s/%s", ecsRegion, ecsAccount, ecsCluster, name),
		taskDef: td, desired: desired}
	s.deployments = []*ecsDeployment{{id: d.nextID("ecs-svc/"), status: "PRIMARY", taskDef: td, rollout: "COMPLETED",
		reason: "ECS deployment completed.", desired: desired, running: desired, created: time.Now().Add(-time.Hour)}}
	sd := &ecsSD{arn: d.sdARN(name), status: "SUCCESSFUL", created: time.Now().Add(-time.Hour)}
	s.sds, s.currentSD = []*ecsSD{sd}, sd.arn
	s.events = []any{ecsEvent(d.nextID("ev-"), fmt.Sprintf("(service %s) has reached a steady state.", name))}
	d.services[name] = s
}

// script queues the steps of the service's next deployments, one list per UpdateService.
func (d *ecsDouble) script(name string, scripts ...[]ecsStep) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.services[name].scripts = append(d.services[name].scripts, scripts...)
}

// service returns what the test checks of a service: its task definition, tags and whether a
// deployment still runs.
func (d *ecsDouble) service(name string) (taskDef string, tags []any, running bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.services[name]
	return s.taskDef, slices.Clone(s.tags), s.run != nil
}

func (d *ecsDouble) taskDef(arn string) map[string]any {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.taskDefs[arn]
}

func (d *ecsDouble) take() map[string]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := maps.Clone(d.calls)
	clear(d.calls)
	return c
}

func (d *ecsDouble) nextID(prefix string) string {
	d.seq++
	return fmt.Sprintf("%s%08d", prefix, d.seq)
}

func (d *ecsDouble) sdARN(name string) string {
	return fmt.Sprintf("arn:aws:ecs:%s:%s:service-deployment/%s/%s/%s", ecsRegion, ecsAccount, ecsCluster, name, d.nextID("sd"))
}

func (d *ecsDouble) serve(w http.ResponseWriter, req *http.Request) {
	target := req.Header.Get("X-Amz-Target")
	op, ok := strings.CutPrefix(target, "AmazonEC2ContainerServiceV20141113.")
	if req.Method != http.MethodPost || !ok || req.Header.Get("Content-Type") != "application/x-amz-json-1.1" {
		d.t.Errorf("ecs double: unexpected request %s %s (X-Amz-Target %q)", req.Method, req.URL, target)
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	// Signed with the static credentials, for the configured region.
	if auth := req.Header.Get("Authorization"); !strings.Contains(auth, "Credential="+ecsKeyID+"/") ||
		!strings.Contains(auth, "/"+ecsRegion+"/ecs/aws4_request") {
		d.t.Errorf("ecs double: %s not signed with the static credentials in %s: %q", op, ecsRegion, auth)
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		d.t.Errorf("ecs double: reading %s: %v", op, err)
		return
	}
	var in map[string]any
	if err := json.Unmarshal(body, &in); err != nil {
		d.t.Errorf("ecs double: %s body %q: %v", op, body, err)
		return
	}
	d.mu.Lock()
	d.calls[op]++
	out, code, msg := d.handle(op, in)
	d.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	if code != "" {
		w.Header().Set("X-Amzn-ErrorType", code)
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]any{"__type": code, "message": msg})
		return
	}
	w.Header().Set("X-Amzn-RequestId", "req-"+op)
	if err := json.NewEncoder(w).Encode(out); err != nil {
		d.t.Errorf("ecs double: answering %s: %v", op, err)
	}
}

// handle answers one operation with d.mu held: its output, or an error code and message.
func (d *ecsDouble) handle(op string, in map[string]any) (out any, code, msg string) {
	str := func(k string) string { s, _ := in[k].(string); return s }
	findService := func(arn string) *ecsService {
		for _, s := range d.services {
			if s.arn == arn {
				return s
			}
		}
		return nil
	}
	switch op {
	case "DescribeServices":
		if lastPathPart(str("cluster")) != ecsCluster {
			return nil, "ClusterNotFoundException", "Cluster not found."
		}
		var found, failures []any
		for _, n := range in["services"].([]any) {
			s := d.services[lastPathPart(n.(string))]
			if s == nil {
				failures = append(failures, map[string]any{"arn": n, "reason": "MISSING"})
				continue
			}
			if r := s.run; r != nil {
				if r.n < len(r.steps) {
					r.steps[r.n](d, s, r)
				}
				r.n++
			}
			found = append(found, s.json())
		}
		return map[string]any{"services": nonNil(found), "failures": nonNil(failures)}, "", ""

	case "DescribeTaskDefinition":
		arn := d.resolve(str("taskDefinition"))
		td := d.taskDefs[arn]
		if td == nil {
			return nil, "ClientException", "Unable to describe task definition."
		}
		out := map[string]any{"taskDefinition": td}
		if inc, _ := in["include"].([]any); slices.Contains(inc, any("TAGS")) {
			out["tags"] = nonNil(d.tdTags[arn])
		}
		return out, "", ""

	case "RegisterTaskDefinition":
		d.registered = append(d.registered, in)
		fam := str("family")
		d.revs[fam]++
		arn := ecsTaskDefARN(fam, d.revs[fam])
		td := maps.Clone(in)
		delete(td, "tags")
		td["taskDefinitionArn"], td["revision"], td["status"] = arn, d.revs[fam], "ACTIVE"
		td["compatibilities"] = []any{"EC2", "FARGATE"}
		td["registeredAt"], td["registeredBy"] = ecsEpoch(time.Now()), "arn:aws:iam::"+ecsAccount+":role/slipway"
		tags, _ := in["tags"].([]any)
		d.taskDefs[arn], d.tdTags[arn] = td, tags
		return map[string]any{"taskDefinition": td, "tags": nonNil(tags)}, "", ""

	case "UpdateService":
		s := d.services[lastPathPart(str("service"))]
		if s == nil {
			return nil, "ServiceNotFoundException", "Service not found."
		}
		td := d.resolve(str("taskDefinition"))
		if d.taskDefs[td] == nil {
			return nil, "ClientException", "TaskDefinition not found."
		}
		if td != s.taskDef {
			d.deploy(s, td)
		}
		return map[string]any{"service": s.json()}, "", ""

	case "ListServiceDeployments":
		s := d.services[lastPathPart(str("service"))]
		if s == nil {
			return nil, "ServiceNotFoundException", "Service not found."
		}
		var after time.Time
		if c, ok := in["createdAt"].(map[string]any); ok {
			if a, ok := c["after"].(float64); ok {
				after = time.Unix(0, int64(a*1e9))
			}
		}
		var briefs []any
		for _, sd := range s.sds {
			if sd.created.Before(after) {
				continue
			}
			briefs = append(briefs, map[string]any{"serviceDeploymentArn": sd.arn, "serviceArn": s.arn,
				"status": sd.status, "createdAt": ecsEpoch(sd.created), "statusReason": sd.reason})
		}
		return map[string]any{"serviceDeployments": nonNil(briefs)}, "", ""

	case "DescribeServiceDeployments":
		var found, failures []any
		for _, a := range in["serviceDeploymentArns"].([]any) {
			sd := d.findSD(a.(string))
			if sd == nil {
				failures = append(failures, map[string]any{"arn": a, "reason": "MISSING"})
				continue
			}
			j := map[string]any{"serviceDeploymentArn": sd.arn, "status": sd.status, "createdAt": ecsEpoch(sd.created)}
			if sd.reason != "" {
				j["statusReason"] = sd.reason
			}
			if sd.rollbackReason != "" {
				j["rollback"] = map[string]any{"reason": sd.rollbackReason, "startedAt": ecsEpoch(time.Now())}
			}
			found = append(found, j)
		}
		return map[string]any{"serviceDeployments": nonNil(found), "failures": nonNil(failures)}, "", ""

	case "ListTasks":
		return map[string]any{"taskArns": []any{}}, "", ""

	case "DescribeTasks":
		return map[string]any{"tasks": []any{}, "failures": []any{}}, "", ""

	case "ListTagsForResource":
		if s := findService(str("resourceArn")); s != nil {
			return map[string]any{"tags": nonNil(s.tags)}, "", ""
		}
		return nil, "InvalidParameterException", "The specified resource is not valid."

	case "TagResource":
		if s := findService(str("resourceArn")); s != nil {
			s.tags = append(s.tags, in["tags"].([]any)...)
			return map[string]any{}, "", ""
		}
		return nil, "InvalidParameterException", "The specified resource is not valid."
	}
	d.t.Errorf("ecs double: unexpected operation %s", op)
	return nil, "UnknownOperationException", "unknown operation " + op
}

// deploy starts a deployment of td on s, as UpdateService does, under the next script (by
// default: complete at the first read).
func (d *ecsDouble) deploy(s *ecsService, td string) {
	for _, o := range s.deployments {
		o.status = "ACTIVE"
	}
	dep := &ecsDeployment{id: d.nextID("ecs-svc/"), status: "PRIMARY", taskDef: td, rollout: "IN_PROGRESS",
		desired: s.desired, created: time.Now()}
	dep.reason = "ECS deployment " + dep.id + " in progress."
	s.deployments = append([]*ecsDeployment{dep}, s.deployments...)
	sd := &ecsSD{arn: d.sdARN(s.name), status: "IN_PROGRESS", created: dep.created}
	s.sds = append([]*ecsSD{sd}, s.sds...)
	s.currentSD = sd.arn
	steps := []ecsStep{ecsComplete()}
	if len(s.scripts) > 0 {
		steps, s.scripts = s.scripts[0], s.scripts[1:]
	}
	s.run = &ecsRun{dep: dep, prev: s.taskDef, sd: sd, steps: steps}
	s.taskDef = td
}

func (d *ecsDouble) resolve(ref string) string {
	if strings.HasPrefix(ref, "arn:") {
		return ref
	}
	if !strings.Contains(ref, ":") {
		ref = fmt.Sprintf("%s:%d", ref, d.revs[ref])
	}
	return fmt.Sprintf("arn:aws:ecs:%s:%s:task-definition/%s", ecsRegion, ecsAccount, ref)
}

func (d *ecsDouble) findSD(arn string) *ecsSD {
	for _, s := range d.services {
		for _, sd := range s.sds {
			if sd.arn == arn {
				return sd
			}
		}
	}
	return nil
}

func (s *ecsService) json() map[string]any {
	var deps []any
	running, pending := 0, 0
	for _, dp := range s.deployments {
		running += dp.running
		pending += dp.pending
		deps = append(deps, map[string]any{
			"id": dp.id, "status": dp.status, "taskDefinition": dp.taskDef,
			"desiredCount": dp.desired, "runningCount": dp.running, "pendingCount": dp.pending, "failedTasks": dp.failed,
			"createdAt": ecsEpoch(dp.created), "updatedAt": ecsEpoch(dp.created), "launchType": "FARGATE",
			"rolloutState": dp.rollout, "rolloutStateReason": dp.reason,
		})
	}
	j := map[string]any{
		"serviceArn": s.arn, "serviceName": s.name,
		"clusterArn": fmt.Sprintf("arn:aws:ecs:%s:%s:cluster/%s", ecsRegion, ecsAccount, ecsCluster),
		"status":     "ACTIVE", "desiredCount": s.desired, "runningCount": running, "pendingCount": pending,
		"launchType": "FARGATE", "taskDefinition": s.taskDef, "deployments": nonNil(deps), "events": nonNil(s.events),
		"deploymentController": map[string]any{"type": "ECS"},
		"deploymentConfiguration": map[string]any{
			"deploymentCircuitBreaker": map[string]any{"enable": true, "rollback": true},
			"maximumPercent":           200, "minimumHealthyPercent": 100,
		},
		"schedulingStrategy": "REPLICA",
	}
	if s.currentSD != "" {
		j["currentServiceDeployment"] = s.currentSD
	}
	return j
}

// ecsProgress sets the running deployment's task counts.
func ecsProgress(running, pending int) ecsStep {
	return func(d *ecsDouble, s *ecsService, r *ecsRun) { r.dep.running, r.dep.pending = running, pending }
}

// ecsComplete ends the deployment as ECS does when it succeeds.
func ecsComplete() ecsStep {
	return func(d *ecsDouble, s *ecsService, r *ecsRun) {
		r.dep.rollout, r.dep.reason = "COMPLETED", "ECS deployment "+r.dep.id+" completed."
		r.dep.running, r.dep.pending = r.dep.desired, 0
		s.deployments = []*ecsDeployment{r.dep}
		r.sd.status = "SUCCESSFUL"
		s.events = append([]any{ecsEvent(d.nextID("ev-"), fmt.Sprintf("(service %s) has reached a steady state.", s.name))}, s.events...)
		s.run = nil
	}
}

// ecsCircuitBreaker fails the deployment as ECS's circuit breaker does and starts ECS's rollback
// to the task definition from before.
func ecsCircuitBreaker(reason string) ecsStep {
	return func(d *ecsDouble, s *ecsService, r *ecsRun) {
		r.dep.rollout, r.dep.reason, r.dep.status = "FAILED", reason, "ACTIVE"
		rb := &ecsDeployment{id: d.nextID("ecs-svc/"), status: "PRIMARY", taskDef: r.prev, rollout: "IN_PROGRESS",
			desired: s.desired, created: time.Now()}
		rb.reason = "ECS deployment " + rb.id + " in progress."
		s.deployments = append([]*ecsDeployment{rb}, s.deployments...)
		r.rollback = rb
		s.taskDef = r.prev
		r.sd.status, r.sd.reason = "ROLLBACK_IN_PROGRESS", reason
	}
}

// ecsRolledBack ends ECS's rollback: the task definition from before runs again.
func ecsRolledBack(reason string) ecsStep {
	return func(d *ecsDouble, s *ecsService, r *ecsRun) {
		rb := r.rollback
		rb.rollout, rb.reason, rb.running, rb.pending = "COMPLETED", "ECS deployment "+rb.id+" completed.", rb.desired, 0
		s.deployments = []*ecsDeployment{rb}
		r.sd.status, r.sd.reason, r.sd.rollbackReason = "ROLLBACK_SUCCESSFUL", reason, reason
		s.run = nil
	}
}

func ecsEvent(id, msg string) map[string]any {
	return map[string]any{"id": id, "createdAt": ecsEpoch(time.Now()), "message": msg}
}

func ecsEpoch(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }

func lastPathPart(s string) string { return s[strings.LastIndexByte(s, '/')+1:] }

// nonNil keeps a nil list from being answered as null: ECS answers [].
func nonNil(l []any) []any {
	if l == nil {
		return []any{}
	}
	return l
}
