package ecs_test

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

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
)

// double serves the part of the ECS API the target calls, in ECS's own JSON protocol (awsJson1_1:
// POST /, X-Amz-Target: AmazonEC2ContainerServiceV20141113.<Operation>, JSON bodies, errors as
// {"__type", "message"}), so that the real SDK client, its serialization and its retryer are what
// the tests exercise. Its deployments follow scripts: each DescribeServices of a service whose
// deployment runs moves that deployment's script one step on, and a script that runs out leaves
// the deployment where it is, like a rollout that never finishes.
type double struct {
	t   testing.TB
	srv *httptest.Server

	mu         sync.Mutex
	calls      map[string]int            // requests per operation, throttled ones included
	throttle   map[string]int            // operation → how many of its next requests are throttled
	throttled  int                       // requests answered with ThrottlingException
	taskDefs   map[string]map[string]any // ARN → as DescribeTaskDefinition returns it
	tdTags     map[string][]any          // ARN → its tags
	revs       map[string]int            // family → last revision
	registered []map[string]any          // RegisterTaskDefinition request bodies, in order
	services   map[string]*dService      // by name
	tasks      []map[string]any          // stopped tasks
	seq        int

	// noSD answers the service-deployment API with AccessDeniedException, as for a policy that
	// does not grant it.
	noSD bool
	// quietUpdate leaves currentServiceDeployment out of UpdateService's answer: the target must
	// find the service deployment with ListServiceDeployments.
	quietUpdate bool
	// onPoll, when set, is called (without the lock) after each DescribeServices of a service
	// whose deployment runs, with the number of such reads so far.
	onPoll func(n int)
	polls  int
}

type dService struct {
	name, arn, taskDef string
	desired            int
	tags               []any
	cbRollback         bool
	deployments        []*dDeployment // PRIMARY first
	events             []any          // newest first
	currentSD          string
	sds                []*dSD // newest first
	scripts            [][]step
	run                *dRun
}

type dDeployment struct {
	id, status, taskDef, rollout, reason string
	desired, running, pending, failed    int
	created                              time.Time
}

type dSD struct {
	arn, status, reason, stage, rollbackReason string
	created                                    time.Time
}

// dRun is a deployment following its script.
type dRun struct {
	dep, rollback *dDeployment
	prev          string // the task definition before the update
	sd            *dSD
	steps         []step
	n             int
}

// step changes a running deployment; the double's lock is held.
type step func(d *double, s *dService, r *dRun)

const (
	account = "123456789012"
	region  = "us-east-1"
	cluster = "prod"
)

func newDouble(t testing.TB) *double {
	d := &double{
		t: t, calls: map[string]int{}, throttle: map[string]int{}, taskDefs: map[string]map[string]any{},
		tdTags: map[string][]any{}, revs: map[string]int{}, services: map[string]*dService{},
	}
	d.srv = httptest.NewServer(http.HandlerFunc(d.serve))
	t.Cleanup(d.srv.Close)
	return d
}

// client is the real SDK client pointed at the double: static credentials, the standard retryer
// with its delays shortened so that throttling costs the tests no time.
func (d *double) client() *awsecs.Client {
	return newClient(d.srv.URL)
}

func newClient(url string) *awsecs.Client {
	return awsecs.New(awsecs.Options{
		Region:       region,
		BaseEndpoint: aws.String(url),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDSLIPWAYTEST", "secret", ""),
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return time.Millisecond, nil })
		}),
	})
}

// addTaskDef stores a task definition as ECS returns it (read-only fields included).
func (d *double) addTaskDef(td map[string]any, tags []any) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	arn := td["taskDefinitionArn"].(string)
	d.taskDefs[arn] = td
	d.tdTags[arn] = tags
	fam := td["family"].(string)
	rev, _ := td["revision"].(float64)
	d.revs[fam] = max(d.revs[fam], int(rev))
	return arn
}

// addService creates a service running task definition td, steady, owned by owner ("" for none).
func (d *double) addService(name, td string, desired int, owner string, cbRollback bool) *dService {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := &dService{
		name: name, arn: fmt.Sprintf("arn:aws:ecs:%s:%s:service/%s/%s", region, account, cluster, name),
		taskDef: td, desired: desired, cbRollback: cbRollback,
	}
	if owner != "" {
		s.tags = []any{map[string]any{"key": "dev.slipway.repo", "value": owner}}
	}
	s.deployments = []*dDeployment{{
		id: d.nextID("ecs-svc/"), status: "PRIMARY", taskDef: td, rollout: "COMPLETED", reason: "ECS deployment completed.",
		desired: desired, running: desired, created: time.Now().Add(-time.Hour),
	}}
	sd := &dSD{arn: d.sdARN(name), status: "SUCCESSFUL", created: time.Now().Add(-time.Hour)}
	s.sds, s.currentSD = []*dSD{sd}, sd.arn
	s.events = []any{event(d.nextID("ev-"), fmt.Sprintf("(service %s) has reached a steady state.", name))}
	d.services[name] = s
	return s
}

// script queues the steps of the next deployments of the service, one list per UpdateService.
func (d *double) script(name string, scripts ...[]step) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.services[name]
	s.scripts = append(s.scripts, scripts...)
}

// calls returns the requests per operation since the last take and starts again from zero.
func (d *double) take() map[string]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := maps.Clone(d.calls)
	clear(d.calls)
	return c
}

func (d *double) service(name string) dService {
	d.mu.Lock()
	defer d.mu.Unlock()
	return *d.services[name]
}

func (d *double) nextID(prefix string) string {
	d.seq++
	return fmt.Sprintf("%s%08d", prefix, d.seq)
}

func (d *double) sdARN(name string) string {
	return fmt.Sprintf("arn:aws:ecs:%s:%s:service-deployment/%s/%s/%s", region, account, cluster, name, d.nextID("sd"))
}

func (d *double) serve(w http.ResponseWriter, req *http.Request) {
	target := req.Header.Get("X-Amz-Target")
	op, ok := strings.CutPrefix(target, "AmazonEC2ContainerServiceV20141113.")
	if req.Method != http.MethodPost || !ok || req.Header.Get("Content-Type") != "application/x-amz-json-1.1" {
		d.t.Errorf("double: unexpected request %s %s (X-Amz-Target %q, Content-Type %q)", req.Method, req.URL, target, req.Header.Get("Content-Type"))
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	if !strings.Contains(req.Header.Get("Authorization"), "Credential=AKIDSLIPWAYTEST/") {
		d.t.Errorf("double: %s not signed with the static credentials: %q", op, req.Header.Get("Authorization"))
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		d.t.Errorf("double: reading %s: %v", op, err)
		return
	}
	var in map[string]any
	if err := json.Unmarshal(body, &in); err != nil {
		d.t.Errorf("double: %s body %q: %v", op, body, err)
		return
	}

	d.mu.Lock()
	d.calls[op]++
	if d.throttle[op] > 0 {
		d.throttle[op]--
		d.throttled++
		d.mu.Unlock()
		fail(w, "ThrottlingException", "Rate exceeded")
		return
	}
	out, code, msg, poll := d.handle(op, in)
	hook, n := d.onPoll, d.polls
	d.mu.Unlock()

	if poll && hook != nil {
		hook(n)
	}
	if code != "" {
		fail(w, code, msg)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-RequestId", "req-"+op)
	if err := json.NewEncoder(w).Encode(out); err != nil {
		d.t.Errorf("double: answering %s: %v", op, err)
	}
}

func fail(w http.ResponseWriter, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", code)
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]any{"__type": code, "message": msg})
}

// handle answers one operation with d.mu held: its output, or an error code and message. poll says
// the request read a service whose deployment runs.
func (d *double) handle(op string, in map[string]any) (out any, code, msg string, poll bool) {
	str := func(k string) string { s, _ := in[k].(string); return s }
	switch op {
	case "DescribeServices":
		if c := str("cluster"); c != cluster {
			return nil, "ClusterNotFoundException", "Cluster not found.", false
		}
		var found, failures []any
		for _, n := range in["services"].([]any) {
			s := d.services[lastPart(n.(string))]
			if s == nil {
				failures = append(failures, map[string]any{"arn": fmt.Sprintf("arn:aws:ecs:%s:%s:service/%s/%s", region, account, cluster, n), "reason": "MISSING"})
				continue
			}
			if r := s.run; r != nil {
				if r.n < len(r.steps) {
					r.steps[r.n](d, s, r)
				}
				r.n++
				d.polls++
				poll = true
			}
			found = append(found, s.json())
		}
		return map[string]any{"services": orEmpty(found), "failures": orEmpty(failures)}, "", "", poll

	case "DescribeTaskDefinition":
		arn := d.resolve(str("taskDefinition"))
		td := d.taskDefs[arn]
		if td == nil {
			return nil, "ClientException", "Unable to describe task definition.", false
		}
		out := map[string]any{"taskDefinition": td}
		if inc, _ := in["include"].([]any); slices.Contains(inc, any("TAGS")) {
			out["tags"] = orEmpty(d.tdTags[arn])
		}
		return out, "", "", false

	case "RegisterTaskDefinition":
		d.registered = append(d.registered, in)
		fam := str("family")
		d.revs[fam]++
		arn := fmt.Sprintf("arn:aws:ecs:%s:%s:task-definition/%s:%d", region, account, fam, d.revs[fam])
		td := maps.Clone(in)
		delete(td, "tags")
		td["taskDefinitionArn"], td["revision"], td["status"] = arn, d.revs[fam], "ACTIVE"
		td["compatibilities"] = []any{"EC2", "FARGATE"}
		td["requiresAttributes"] = []any{map[string]any{"name": "com.amazonaws.ecs.capability.docker-remote-api.1.18"}}
		td["registeredAt"], td["registeredBy"] = epoch(time.Now()), "arn:aws:iam::"+account+":role/slipway"
		tags, _ := in["tags"].([]any)
		d.taskDefs[arn], d.tdTags[arn] = td, tags
		return map[string]any{"taskDefinition": td, "tags": orEmpty(tags)}, "", "", false

	case "UpdateService":
		s := d.services[lastPart(str("service"))]
		if s == nil {
			return nil, "ServiceNotFoundException", "Service not found.", false
		}
		td := d.resolve(str("taskDefinition"))
		if d.taskDefs[td] == nil {
			return nil, "ClientException", "TaskDefinition not found.", false
		}
		out := map[string]any{"service": nil}
		if td != s.taskDef {
			d.deploy(s, td)
		}
		j := s.json()
		if d.quietUpdate {
			delete(j, "currentServiceDeployment")
		}
		out["service"] = j
		return out, "", "", false

	case "ListServiceDeployments":
		if d.noSD {
			return nil, "AccessDeniedException", "User is not authorized to perform: ecs:ListServiceDeployments", false
		}
		s := d.services[lastPart(str("service"))]
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
			briefs = append(briefs, map[string]any{
				"serviceDeploymentArn": sd.arn, "serviceArn": s.arn, "status": sd.status,
				"createdAt": epoch(sd.created), "statusReason": sd.reason,
			})
		}
		return map[string]any{"serviceDeployments": orEmpty(briefs)}, "", "", false

	case "DescribeServiceDeployments":
		if d.noSD {
			return nil, "AccessDeniedException", "User is not authorized to perform: ecs:DescribeServiceDeployments", false
		}
		var found, failures []any
		for _, a := range in["serviceDeploymentArns"].([]any) {
			sd := d.findSD(a.(string))
			if sd == nil {
				failures = append(failures, map[string]any{"arn": a, "reason": "MISSING"})
				continue
			}
			j := map[string]any{
				"serviceDeploymentArn": sd.arn, "status": sd.status, "createdAt": epoch(sd.created),
			}
			if sd.reason != "" {
				j["statusReason"] = sd.reason
			}
			if sd.stage != "" {
				j["lifecycleStage"] = sd.stage
			}
			if sd.rollbackReason != "" {
				j["rollback"] = map[string]any{"reason": sd.rollbackReason, "startedAt": epoch(time.Now())}
			}
			found = append(found, j)
		}
		return map[string]any{"serviceDeployments": orEmpty(found), "failures": orEmpty(failures)}, "", "", false

	case "ListTasks":
		if str("desiredStatus") != "STOPPED" {
			d.t.Errorf("double: ListTasks for desired status %q", str("desiredStatus"))
		}
		var arns []any
		for _, k := range d.tasks {
			if k["group"] == "service:"+str("serviceName") {
				arns = append(arns, k["taskArn"])
			}
		}
		return map[string]any{"taskArns": orEmpty(arns)}, "", "", false

	case "DescribeTasks":
		var found []any
		for _, a := range in["tasks"].([]any) {
			for _, k := range d.tasks {
				if k["taskArn"] == a {
					found = append(found, k)
				}
			}
		}
		return map[string]any{"tasks": orEmpty(found), "failures": []any{}}, "", "", false

	case "ListTagsForResource":
		for _, s := range d.services {
			if s.arn == str("resourceArn") {
				return map[string]any{"tags": orEmpty(s.tags)}, "", "", false
			}
		}
		return nil, "InvalidParameterException", "The specified resource is not valid.", false

	case "TagResource":
		for _, s := range d.services {
			if s.arn == str("resourceArn") {
				s.tags = append(s.tags, in["tags"].([]any)...)
				return map[string]any{}, "", "", false
			}
		}
		return nil, "InvalidParameterException", "The specified resource is not valid.", false
	}
	d.t.Errorf("double: unexpected operation %s", op)
	return nil, "UnknownOperationException", "unknown operation " + op, false
}

// deploy starts a deployment of td on s, as UpdateService does, under the next script (by
// default: complete at the first read).
func (d *double) deploy(s *dService, td string) {
	for _, o := range s.deployments {
		o.status = "ACTIVE"
	}
	dep := &dDeployment{
		id: d.nextID("ecs-svc/"), status: "PRIMARY", taskDef: td, rollout: "IN_PROGRESS",
		desired: s.desired, pending: 0, created: time.Now(),
	}
	dep.reason = "ECS deployment " + dep.id + " in progress."
	s.deployments = append([]*dDeployment{dep}, s.deployments...)
	sd := &dSD{arn: d.sdARN(s.name), status: "IN_PROGRESS", created: dep.created}
	s.sds = append([]*dSD{sd}, s.sds...)
	s.currentSD = sd.arn
	steps := []step{complete()}
	if len(s.scripts) > 0 {
		steps, s.scripts = s.scripts[0], s.scripts[1:]
	}
	s.run = &dRun{dep: dep, prev: s.taskDef, sd: sd, steps: steps}
	s.taskDef = td
}

func (d *double) resolve(ref string) string {
	if strings.HasPrefix(ref, "arn:") {
		return ref
	}
	if !strings.Contains(ref, ":") {
		ref = fmt.Sprintf("%s:%d", ref, d.revs[ref])
	}
	return fmt.Sprintf("arn:aws:ecs:%s:%s:task-definition/%s", region, account, ref)
}

func (d *double) findSD(arn string) *dSD {
	for _, s := range d.services {
		for _, sd := range s.sds {
			if sd.arn == arn {
				return sd
			}
		}
	}
	return nil
}

func (s *dService) json() map[string]any {
	var deps []any
	running, pending := 0, 0
	for _, dp := range s.deployments {
		running += dp.running
		pending += dp.pending
		deps = append(deps, map[string]any{
			"id": dp.id, "status": dp.status, "taskDefinition": dp.taskDef,
			"desiredCount": dp.desired, "runningCount": dp.running, "pendingCount": dp.pending, "failedTasks": dp.failed,
			"createdAt": epoch(dp.created), "updatedAt": epoch(dp.created), "launchType": "FARGATE",
			"rolloutState": dp.rollout, "rolloutStateReason": dp.reason,
		})
	}
	j := map[string]any{
		"serviceArn": s.arn, "serviceName": s.name, "clusterArn": fmt.Sprintf("arn:aws:ecs:%s:%s:cluster/%s", region, account, cluster),
		"status": "ACTIVE", "desiredCount": s.desired, "runningCount": running, "pendingCount": pending,
		"launchType": "FARGATE", "taskDefinition": s.taskDef, "deployments": orEmpty(deps), "events": orEmpty(s.events),
		"deploymentController": map[string]any{"type": "ECS"},
		"deploymentConfiguration": map[string]any{
			"deploymentCircuitBreaker": map[string]any{"enable": true, "rollback": s.cbRollback},
			"maximumPercent":           200, "minimumHealthyPercent": 100,
		},
		"schedulingStrategy": "REPLICA",
	}
	if s.currentSD != "" {
		j["currentServiceDeployment"] = s.currentSD
	}
	return j
}

// The steps scripts are made of.

// progress sets the running deployment's task counts.
func progress(running, pending int) step {
	return func(d *double, s *dService, r *dRun) { r.dep.running, r.dep.pending = running, pending }
}

// say adds a service event.
func say(msg string) step {
	return func(d *double, s *dService, r *dRun) {
		s.events = append([]any{event(d.nextID("ev-"), msg)}, s.events...)
	}
}

// idle changes nothing: the rollout is still under way.
func idle() step { return func(*double, *dService, *dRun) {} }

// stopTask records a task of the running deployment that stopped, with ECS's reason and its
// container's exit code.
func stopTask(reason string, exit int, containerReason string) step {
	return func(d *double, s *dService, r *dRun) {
		id := d.nextID("")
		d.tasks = append(d.tasks, map[string]any{
			"taskArn":           fmt.Sprintf("arn:aws:ecs:%s:%s:task/%s/%s%s", region, account, cluster, id, strings.Repeat("0", 24)),
			"taskDefinitionArn": r.dep.taskDef, "startedBy": r.dep.id, "group": "service:" + s.name,
			"lastStatus": "STOPPED", "desiredStatus": "STOPPED", "stoppedReason": reason, "stopCode": "EssentialContainerExited",
			"stoppedAt": epoch(time.Now()), "createdAt": epoch(r.dep.created),
			"containers": []any{map[string]any{"name": "api", "lastStatus": "STOPPED", "exitCode": exit, "reason": containerReason}},
		})
		r.dep.failed++
		s.events = append([]any{event(d.nextID("ev-"), fmt.Sprintf("(service %s) has stopped 1 running tasks: (task %s).", s.name, id))}, s.events...)
	}
}

// complete ends the deployment as ECS does when it succeeds.
func complete() step {
	return func(d *double, s *dService, r *dRun) {
		r.dep.rollout, r.dep.reason = "COMPLETED", "ECS deployment "+r.dep.id+" completed."
		r.dep.running, r.dep.pending = r.dep.desired, 0
		s.deployments = []*dDeployment{r.dep}
		r.sd.status = "SUCCESSFUL"
		s.events = append([]any{event(d.nextID("ev-"), fmt.Sprintf("(service %s) has reached a steady state.", s.name))}, s.events...)
		s.run = nil
	}
}

// circuitBreaker fails the deployment as ECS's circuit breaker does, and starts ECS's rollback to
// the task definition from before.
func circuitBreaker(reason string) step {
	return func(d *double, s *dService, r *dRun) {
		r.dep.rollout, r.dep.reason, r.dep.status = "FAILED", reason, "ACTIVE"
		rb := &dDeployment{
			id: d.nextID("ecs-svc/"), status: "PRIMARY", taskDef: r.prev, rollout: "IN_PROGRESS",
			desired: s.desired, created: time.Now(),
		}
		rb.reason = "ECS deployment " + rb.id + " in progress."
		s.deployments = append([]*dDeployment{rb}, s.deployments...)
		r.rollback = rb
		s.taskDef = r.prev
		r.sd.status, r.sd.reason = "ROLLBACK_IN_PROGRESS", reason
	}
}

// rolledBack ends ECS's rollback: the task definition from before runs again.
func rolledBack(reason string) step {
	return func(d *double, s *dService, r *dRun) {
		rb := r.rollback
		rb.rollout, rb.reason, rb.running, rb.pending = "COMPLETED", "ECS deployment "+rb.id+" completed.", rb.desired, 0
		s.deployments = []*dDeployment{rb}
		r.sd.status, r.sd.reason, r.sd.rollbackReason = "ROLLBACK_SUCCESSFUL", reason, reason
		s.run = nil
	}
}

// rollbackFailed ends ECS's rollback in failure.
func rollbackFailed(reason string) step {
	return func(d *double, s *dService, r *dRun) {
		r.rollback.rollout, r.rollback.reason = "FAILED", reason
		r.sd.status, r.sd.reason = "ROLLBACK_FAILED", reason
		s.run = nil
	}
}

// throttleNext makes the next n requests of op fail with ThrottlingException.
func throttleNext(op string, n int) step {
	return func(d *double, s *dService, r *dRun) { d.throttle[op] += n }
}

func event(id, msg string) map[string]any {
	return map[string]any{"id": id, "createdAt": epoch(time.Now()), "message": msg}
}

func epoch(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }

func lastPart(s string) string { return s[strings.LastIndexByte(s, '/')+1:] }

// orEmpty keeps a nil list from being answered as null: ECS answers [].
func orEmpty(l []any) []any {
	if l == nil {
		return []any{}
	}
	return l
}
