// Package ecstest is a Double of the ECS JSON protocol (awsJson1_1 over HTTP) for tests: the
// real SDK client talks to it, and a scripted deployment state machine decides each rollout.
package ecstest

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

// Double serves the part of the ECS API the target calls, in ECS's own JSON protocol (awsJson1_1:
// POST /, X-Amz-Target: AmazonEC2ContainerServiceV20141113.<Operation>, JSON bodies, errors as
// {"__type", "message"}), so that the real SDK client, its serialization and its retryer are what
// the tests exercise. Its deployments follow scripts: each DescribeServices of a service whose
// deployment runs moves that deployment's script one step on, and a script that runs out leaves
// the deployment where it is, like a rollout that never finishes.
type Double struct {
	t   testing.TB
	srv *httptest.Server

	Mu         sync.Mutex
	Calls      map[string]int            // requests per operation, throttled ones included
	Throttle   map[string]int            // operation → how many of its next requests are throttled
	Throttled  int                       // requests answered with ThrottlingException
	Denied     map[string]bool           // operations answered with AccessDeniedException, as IAM does
	taskDefs   map[string]map[string]any // ARN → as DescribeTaskDefinition returns it
	tdTags     map[string][]any          // ARN → its tags
	revs       map[string]int            // family → last revision
	Registered []map[string]any          // RegisterTaskDefinition request bodies, in order
	Services   map[string]*dService      // by name
	tasks      []map[string]any          // stopped tasks
	seq        int

	// noSD answers the service-deployment API with AccessDeniedException, as for a policy that
	// does not grant it.
	NoSD bool
	// quietUpdate leaves currentServiceDeployment out of UpdateService's answer: the target must
	// find the service deployment with ListServiceDeployments.
	QuietUpdate bool
	// onPoll, when set, is called (without the lock) after each DescribeServices of a service
	// whose deployment runs, with the number of such reads so far.
	OnPoll func(n int)
	polls  int
}

type dService struct {
	name, arn, TaskDef string
	desired            int
	Tags               []any
	CBRollback         bool
	deployments        []*dDeployment // PRIMARY first
	events             []any          // newest first
	currentSD          string
	sds                []*dSD // newest first
	scripts            [][]Step
	Run                *dRun
}

type dDeployment struct {
	id, status, TaskDef, rollout, reason string
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
	Steps         []Step
	n             int
}

// step changes a running deployment; the Double's lock is held.
type Step func(d *Double, s *dService, r *dRun)

const (
	// KeyID is the access key the Double expects requests to be signed with, in Region.
	KeyID   = "AKIDSLIPWAYTEST"
	Account = "123456789012"
	Region  = "us-east-1"
	Cluster = "prod"
)

func New(t testing.TB) *Double {
	d := &Double{
		t: t, Calls: map[string]int{}, Throttle: map[string]int{}, Denied: map[string]bool{}, taskDefs: map[string]map[string]any{},
		tdTags: map[string][]any{}, revs: map[string]int{}, Services: map[string]*dService{},
	}
	d.srv = httptest.NewServer(http.HandlerFunc(d.serve))
	t.Cleanup(d.srv.Close)
	return d
}

// URL is where the Double serves, for a client built elsewhere (the server's, in e2e tests).
func (d *Double) URL() string { return d.srv.URL }

// TaskDefARN is the ARN the Double gives revision rev of family.
func TaskDefARN(family string, rev int) string {
	return fmt.Sprintf("arn:aws:ecs:%s:%s:task-definition/%s:%d", Region, Account, family, rev)
}

// TaskDef returns a registered task definition as DescribeTaskDefinition would.
func (d *Double) TaskDef(arn string) map[string]any {
	d.Mu.Lock()
	defer d.Mu.Unlock()
	return d.taskDefs[arn]
}

// Client is the real SDK client pointed at the Double: static credentials, the standard retryer
// with its delays shortened so that throttling costs the tests no time.
func (d *Double) Client() *awsecs.Client {
	return NewClient(d.srv.URL)
}

func NewClient(url string) *awsecs.Client {
	return awsecs.New(awsecs.Options{
		Region:       Region,
		BaseEndpoint: aws.String(url),
		Credentials:  credentials.NewStaticCredentialsProvider(KeyID, "secret", ""),
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return time.Millisecond, nil })
		}),
	})
}

// addTaskDef stores a task definition as ECS returns it (read-only fields included).
func (d *Double) AddTaskDef(td map[string]any, tags []any) string {
	d.Mu.Lock()
	defer d.Mu.Unlock()
	arn := td["taskDefinitionArn"].(string)
	d.taskDefs[arn] = td
	d.tdTags[arn] = tags
	fam := td["family"].(string)
	rev, _ := td["revision"].(float64)
	d.revs[fam] = max(d.revs[fam], int(rev))
	return arn
}

// addService creates a service running task definition td, steady, owned by owner ("" for none).
func (d *Double) AddService(name, td string, desired int, owner string, cbRollback bool) *dService {
	d.Mu.Lock()
	defer d.Mu.Unlock()
	s := &dService{
		name: name, arn: fmt.Sprintf("arn:aws:ecs:%s:%s:service/%s/%s", Region, Account, Cluster, name),
		TaskDef: td, desired: desired, CBRollback: cbRollback,
	}
	if owner != "" {
		s.Tags = []any{map[string]any{"key": "dev.slipway.repo", "value": owner}}
	}
	s.deployments = []*dDeployment{{
		id: d.nextID("ecs-svc/"), status: "PRIMARY", TaskDef: td, rollout: "COMPLETED", reason: "ECS deployment completed.",
		desired: desired, running: desired, created: time.Now().Add(-time.Hour),
	}}
	sd := &dSD{arn: d.sdARN(name), status: "SUCCESSFUL", created: time.Now().Add(-time.Hour)}
	s.sds, s.currentSD = []*dSD{sd}, sd.arn
	s.events = []any{event(d.nextID("ev-"), fmt.Sprintf("(service %s) has reached a steady state.", name))}
	d.Services[name] = s
	return s
}

// script queues the steps of the next deployments of the service, one list per UpdateService.
func (d *Double) Script(name string, scripts ...[]Step) {
	d.Mu.Lock()
	defer d.Mu.Unlock()
	s := d.Services[name]
	s.scripts = append(s.scripts, scripts...)
}

// calls returns the requests per operation since the last take and starts again from zero.
func (d *Double) Take() map[string]int {
	d.Mu.Lock()
	defer d.Mu.Unlock()
	c := maps.Clone(d.Calls)
	clear(d.Calls)
	return c
}

func (d *Double) Service(name string) dService {
	d.Mu.Lock()
	defer d.Mu.Unlock()
	return *d.Services[name]
}

func (d *Double) nextID(prefix string) string {
	d.seq++
	return fmt.Sprintf("%s%08d", prefix, d.seq)
}

func (d *Double) sdARN(name string) string {
	return fmt.Sprintf("arn:aws:ecs:%s:%s:service-deployment/%s/%s/%s", Region, Account, Cluster, name, d.nextID("sd"))
}

func (d *Double) serve(w http.ResponseWriter, req *http.Request) {
	target := req.Header.Get("X-Amz-Target")
	op, ok := strings.CutPrefix(target, "AmazonEC2ContainerServiceV20141113.")
	if req.Method != http.MethodPost || !ok || req.Header.Get("Content-Type") != "application/x-amz-json-1.1" {
		d.t.Errorf("Double: unexpected request %s %s (X-Amz-Target %q, Content-Type %q)", req.Method, req.URL, target, req.Header.Get("Content-Type"))
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	if auth := req.Header.Get("Authorization"); !strings.Contains(auth, "Credential="+KeyID+"/") ||
		!strings.Contains(auth, "/"+Region+"/ecs/aws4_request") {
		d.t.Errorf("Double: %s not signed with the static credentials in %s: %q", op, Region, auth)
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		d.t.Errorf("Double: reading %s: %v", op, err)
		return
	}
	var in map[string]any
	if err := json.Unmarshal(body, &in); err != nil {
		d.t.Errorf("Double: %s body %q: %v", op, body, err)
		return
	}

	d.Mu.Lock()
	d.Calls[op]++
	if d.Denied[op] {
		d.Mu.Unlock()
		fail(w, "AccessDeniedException", fmt.Sprintf("User: arn:aws:sts::%s:assumed-role/slipway/slipway is not authorized "+
			"to perform: ecs:%s on resource: * because no identity-based policy allows the ecs:%s action", Account, op, op))
		return
	}
	if d.Throttle[op] > 0 {
		d.Throttle[op]--
		d.Throttled++
		d.Mu.Unlock()
		fail(w, "ThrottlingException", "Rate exceeded")
		return
	}
	out, code, msg, poll := d.handle(op, in)
	hook, n := d.OnPoll, d.polls
	d.Mu.Unlock()

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
		d.t.Errorf("Double: answering %s: %v", op, err)
	}
}

func fail(w http.ResponseWriter, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", code)
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]any{"__type": code, "message": msg})
}

// handle answers one operation with d.Mu held: its output, or an error code and message. poll says
// the request read a service whose deployment runs.
func (d *Double) handle(op string, in map[string]any) (out any, code, msg string, poll bool) {
	str := func(k string) string { s, _ := in[k].(string); return s }
	switch op {
	case "DescribeServices":
		if c := str("cluster"); c != Cluster {
			return nil, "ClusterNotFoundException", "Cluster not found.", false
		}
		var found, failures []any
		for _, n := range in["services"].([]any) {
			s := d.Services[lastPart(n.(string))]
			if s == nil {
				failures = append(failures, map[string]any{"arn": fmt.Sprintf("arn:aws:ecs:%s:%s:service/%s/%s", Region, Account, Cluster, n), "reason": "MISSING"})
				continue
			}
			if r := s.Run; r != nil {
				if r.n < len(r.Steps) {
					r.Steps[r.n](d, s, r)
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
		d.Registered = append(d.Registered, in)
		fam := str("family")
		d.revs[fam]++
		arn := fmt.Sprintf("arn:aws:ecs:%s:%s:task-definition/%s:%d", Region, Account, fam, d.revs[fam])
		td := maps.Clone(in)
		delete(td, "tags")
		td["taskDefinitionArn"], td["revision"], td["status"] = arn, d.revs[fam], "ACTIVE"
		td["compatibilities"] = []any{"EC2", "FARGATE"}
		td["requiresAttributes"] = []any{map[string]any{"name": "com.amazonaws.ecs.capability.docker-remote-api.1.18"}}
		td["registeredAt"], td["registeredBy"] = epoch(time.Now()), "arn:aws:iam::"+Account+":role/slipway"
		tags, _ := in["tags"].([]any)
		d.taskDefs[arn], d.tdTags[arn] = td, tags
		return map[string]any{"taskDefinition": td, "tags": orEmpty(tags)}, "", "", false

	case "UpdateService":
		s := d.Services[lastPart(str("service"))]
		if s == nil {
			return nil, "ServiceNotFoundException", "Service not found.", false
		}
		td := d.resolve(str("taskDefinition"))
		if d.taskDefs[td] == nil {
			return nil, "ClientException", "TaskDefinition not found.", false
		}
		out := map[string]any{"service": nil}
		if td != s.TaskDef {
			d.Deploy(s, td)
		}
		j := s.json()
		if d.QuietUpdate {
			delete(j, "currentServiceDeployment")
		}
		out["service"] = j
		return out, "", "", false

	case "ListServiceDeployments":
		if d.NoSD {
			return nil, "AccessDeniedException", "User is not authorized to perform: ecs:ListServiceDeployments", false
		}
		s := d.Services[lastPart(str("service"))]
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
		if d.NoSD {
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
			d.t.Errorf("Double: ListTasks for desired status %q", str("desiredStatus"))
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
		for _, s := range d.Services {
			if s.arn == str("resourceArn") {
				return map[string]any{"tags": orEmpty(s.Tags)}, "", "", false
			}
		}
		return nil, "InvalidParameterException", "The specified resource is not valid.", false

	case "TagResource":
		for _, s := range d.Services {
			if s.arn == str("resourceArn") {
				s.Tags = append(s.Tags, in["tags"].([]any)...)
				return map[string]any{}, "", "", false
			}
		}
		return nil, "InvalidParameterException", "The specified resource is not valid.", false
	}
	d.t.Errorf("Double: unexpected operation %s", op)
	return nil, "UnknownOperationException", "unknown operation " + op, false
}

// deploy starts a deployment of td on s, as UpdateService does, under the next script (by
// default: complete at the first read).
func (d *Double) Deploy(s *dService, td string) {
	for _, o := range s.deployments {
		o.status = "ACTIVE"
	}
	dep := &dDeployment{
		id: d.nextID("ecs-svc/"), status: "PRIMARY", TaskDef: td, rollout: "IN_PROGRESS",
		desired: s.desired, pending: 0, created: time.Now(),
	}
	dep.reason = "ECS deployment " + dep.id + " in progress."
	s.deployments = append([]*dDeployment{dep}, s.deployments...)
	sd := &dSD{arn: d.sdARN(s.name), status: "IN_PROGRESS", created: dep.created}
	s.sds = append([]*dSD{sd}, s.sds...)
	s.currentSD = sd.arn
	steps := []Step{Complete()}
	if len(s.scripts) > 0 {
		steps, s.scripts = s.scripts[0], s.scripts[1:]
	}
	s.Run = &dRun{dep: dep, prev: s.TaskDef, sd: sd, Steps: steps}
	s.TaskDef = td
}

func (d *Double) resolve(ref string) string {
	if strings.HasPrefix(ref, "arn:") {
		return ref
	}
	if !strings.Contains(ref, ":") {
		ref = fmt.Sprintf("%s:%d", ref, d.revs[ref])
	}
	return fmt.Sprintf("arn:aws:ecs:%s:%s:task-definition/%s", Region, Account, ref)
}

func (d *Double) findSD(arn string) *dSD {
	for _, s := range d.Services {
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
			"id": dp.id, "status": dp.status, "taskDefinition": dp.TaskDef,
			"desiredCount": dp.desired, "runningCount": dp.running, "pendingCount": dp.pending, "failedTasks": dp.failed,
			"createdAt": epoch(dp.created), "updatedAt": epoch(dp.created), "launchType": "FARGATE",
			"rolloutState": dp.rollout, "rolloutStateReason": dp.reason,
		})
	}
	j := map[string]any{
		"serviceArn": s.arn, "serviceName": s.name, "clusterArn": fmt.Sprintf("arn:aws:ecs:%s:%s:Cluster/%s", Region, Account, Cluster),
		"status": "ACTIVE", "desiredCount": s.desired, "runningCount": running, "pendingCount": pending,
		"launchType": "FARGATE", "taskDefinition": s.TaskDef, "deployments": orEmpty(deps), "events": orEmpty(s.events),
		"deploymentController": map[string]any{"type": "ECS"},
		"deploymentConfiguration": map[string]any{
			"deploymentCircuitBreaker": map[string]any{"enable": true, "rollback": s.CBRollback},
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
func Progress(running, pending int) Step {
	return func(d *Double, s *dService, r *dRun) { r.dep.running, r.dep.pending = running, pending }
}

// say adds a service event.
func Say(msg string) Step {
	return func(d *Double, s *dService, r *dRun) {
		s.events = append([]any{event(d.nextID("ev-"), msg)}, s.events...)
	}
}

// idle changes nothing: the rollout is still under way.
func Idle() Step { return func(*Double, *dService, *dRun) {} }

// stopTask records a task of the running deployment that stopped, with ECS's reason and its
// container's exit code.
func StopTask(reason string, exit int, containerReason string) Step {
	return func(d *Double, s *dService, r *dRun) {
		id := d.nextID("")
		d.tasks = append(d.tasks, map[string]any{
			"taskArn":           fmt.Sprintf("arn:aws:ecs:%s:%s:task/%s/%s%s", Region, Account, Cluster, id, strings.Repeat("0", 24)),
			"taskDefinitionArn": r.dep.TaskDef, "startedBy": r.dep.id, "group": "service:" + s.name,
			"lastStatus": "STOPPED", "desiredStatus": "STOPPED", "stoppedReason": reason, "stopCode": "EssentialContainerExited",
			"stoppedAt": epoch(time.Now()), "createdAt": epoch(r.dep.created),
			"containers": []any{map[string]any{"name": "api", "lastStatus": "STOPPED", "exitCode": exit, "reason": containerReason}},
		})
		r.dep.failed++
		s.events = append([]any{event(d.nextID("ev-"), fmt.Sprintf("(service %s) has stopped 1 running tasks: (task %s).", s.name, id))}, s.events...)
	}
}

// When runs then at a poll where cond holds, and does nothing at the others: a change that ECS
// makes at a time of its own, whenever Slipway polls.
func When(cond func() bool, then Step) Step {
	return func(d *Double, s *dService, r *dRun) {
		if cond() {
			then(d, s, r)
		}
	}
}

// complete ends the deployment as ECS does when it succeeds.
func Complete() Step {
	return func(d *Double, s *dService, r *dRun) {
		r.dep.rollout, r.dep.reason = "COMPLETED", "ECS deployment "+r.dep.id+" completed."
		r.dep.running, r.dep.pending = r.dep.desired, 0
		s.deployments = []*dDeployment{r.dep}
		r.sd.status = "SUCCESSFUL"
		s.events = append([]any{event(d.nextID("ev-"), fmt.Sprintf("(service %s) has reached a steady state.", s.name))}, s.events...)
		s.Run = nil
	}
}

// circuitBreaker fails the deployment as ECS's circuit breaker does, and starts ECS's rollback to
// the task definition from before.
func CircuitBreaker(reason string) Step {
	return func(d *Double, s *dService, r *dRun) {
		r.dep.rollout, r.dep.reason, r.dep.status = "FAILED", reason, "ACTIVE"
		rb := &dDeployment{
			id: d.nextID("ecs-svc/"), status: "PRIMARY", TaskDef: r.prev, rollout: "IN_PROGRESS",
			desired: s.desired, created: time.Now(),
		}
		rb.reason = "ECS deployment " + rb.id + " in progress."
		s.deployments = append([]*dDeployment{rb}, s.deployments...)
		r.rollback = rb
		s.TaskDef = r.prev
		r.sd.status, r.sd.reason = "ROLLBACK_IN_PROGRESS", reason
	}
}

// rolledBack ends ECS's rollback: the task definition from before runs again.
func RolledBack(reason string) Step {
	return func(d *Double, s *dService, r *dRun) {
		rb := r.rollback
		rb.rollout, rb.reason, rb.running, rb.pending = "COMPLETED", "ECS deployment "+rb.id+" completed.", rb.desired, 0
		s.deployments = []*dDeployment{rb}
		r.sd.status, r.sd.reason, r.sd.rollbackReason = "ROLLBACK_SUCCESSFUL", reason, reason
		s.Run = nil
	}
}

// rollbackFailed ends ECS's rollback in failure.
func RollbackFailed(reason string) Step {
	return func(d *Double, s *dService, r *dRun) {
		r.rollback.rollout, r.rollback.reason = "FAILED", reason
		r.sd.status, r.sd.reason = "ROLLBACK_FAILED", reason
		s.Run = nil
	}
}

// throttleNext makes the next n requests of op fail with ThrottlingException.
func ThrottleNext(op string, n int) Step {
	return func(d *Double, s *dService, r *dRun) { d.Throttle[op] += n }
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

// Failed marks the deployment FAILED with reason, as ECS does when tasks keep failing and no
// circuit breaker rolls back.
func Failed(reason string) Step {
	return func(_ *Double, _ *dService, r *dRun) { r.dep.rollout, r.dep.reason = "FAILED", reason }
}
