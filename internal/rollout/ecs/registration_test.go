package ecs

import (
	"errors"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// readOnlyFields are the fields of a described task definition that registering one does not take.
var readOnlyFields = map[string]bool{
	"TaskDefinitionArn": true, "Revision": true, "Status": true, "RequiresAttributes": true, "Compatibilities": true,
	"RegisteredAt": true, "RegisteredBy": true, "DeregisteredAt": true, "DeleteRequestedAt": true,
}

// TestRegistrationCopiesEveryField fails when the SDK grows a task definition field that
// registration does not carry over: every field of a described task definition, set, must come
// out set in the registration, or be one of the read-only ones.
func TestRegistrationCopiesEveryField(t *testing.T) {
	var td ecstypes.TaskDefinition
	fill(reflect.ValueOf(&td).Elem())
	td.ContainerDefinitions = []ecstypes.ContainerDefinition{{Name: aws.String("api"), Image: aws.String("old")}}
	tags := []ecstypes.Tag{{Key: aws.String("team"), Value: aws.String("core")}}

	in, err := registration(&td, tags, "api", "new")
	if err != nil {
		t.Fatal(err)
	}
	iv := reflect.ValueOf(in).Elem()
	for i := range iv.NumField() {
		if f := iv.Type().Field(i); f.IsExported() && iv.Field(i).IsZero() {
			t.Errorf("the registration leaves %s unset", f.Name)
		}
	}
	tv := reflect.ValueOf(td)
	for i := range tv.NumField() {
		f := tv.Type().Field(i)
		if !f.IsExported() || readOnlyFields[f.Name] {
			continue
		}
		if _, ok := iv.Type().FieldByName(f.Name); !ok {
			t.Errorf("task definition field %s has no place in RegisterTaskDefinitionInput: read-only?", f.Name)
		}
	}
	if got := aws.ToString(in.ContainerDefinitions[0].Image); got != "new" {
		t.Errorf("registered image %q, want new", got)
	}
	if got := aws.ToString(td.ContainerDefinitions[0].Image); got != "old" {
		t.Errorf("registration changed the live task definition's image to %q", got)
	}
}

func TestRegistrationDropsReservedTags(t *testing.T) {
	td := &ecstypes.TaskDefinition{ContainerDefinitions: []ecstypes.ContainerDefinition{{Name: aws.String("api")}}}
	in, err := registration(td, []ecstypes.Tag{
		{Key: aws.String("aws:cloudformation:stack-name"), Value: aws.String("x")},
		{Key: aws.String("team"), Value: aws.String("core")},
	}, "api", "new")
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Tags) != 1 || aws.ToString(in.Tags[0].Key) != "team" {
		t.Errorf("tags %v, want team only", in.Tags)
	}
}

// fill sets every exported field of the struct v to a non-zero value, one level deep into
// pointers to structs.
func fill(v reflect.Value) {
	for i := range v.NumField() {
		if !v.Type().Field(i).IsExported() {
			continue
		}
		f := v.Field(i)
		switch f.Kind() {
		case reflect.Pointer:
			p := reflect.New(f.Type().Elem())
			if e := p.Elem(); e.Type() == reflect.TypeFor[time.Time]() {
				e.Set(reflect.ValueOf(time.Now()))
			} else if e.Kind() == reflect.Struct {
				fill(e)
			} else {
				scalar(e)
			}
			f.Set(p)
		case reflect.Slice:
			f.Set(reflect.MakeSlice(f.Type(), 1, 1))
		default:
			scalar(f)
		}
	}
}

func scalar(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("x")
	case reflect.Int32, reflect.Int64, reflect.Int:
		v.SetInt(1)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Float64:
		v.SetFloat(1)
	}
}

func TestRevisionsRegisterOnce(t *testing.T) {
	c := newRevisions()
	key := revisionKey{family: "api", revision: 5, container: "api", image: "img"}
	var registered atomic.Int32
	release := make(chan struct{})
	var wg sync.WaitGroup
	var shared atomic.Int32
	for range 8 {
		wg.Go(func() {
			arn, sh, err := c.get(t.Context(), key, func() (string, error) {
				registered.Add(1)
				<-release
				return "arn:api:6", nil
			})
			if err != nil || arn != "arn:api:6" {
				t.Errorf("get: %q, %v", arn, err)
			}
			if sh {
				shared.Add(1)
			}
		})
	}
	close(release)
	wg.Wait()
	if registered.Load() != 1 || shared.Load() != 7 {
		t.Errorf("%d registrations, %d shared; want 1 and 7", registered.Load(), shared.Load())
	}
}

func TestRevisionsForgetFailures(t *testing.T) {
	c := newRevisions()
	key := revisionKey{family: "api", revision: 5, container: "api", image: "img"}
	boom := errors.New("boom")
	if _, _, err := c.get(t.Context(), key, func() (string, error) { return "", boom }); !errors.Is(err, boom) {
		t.Fatalf("get: %v, want boom", err)
	}
	arn, shared, err := c.get(t.Context(), key, func() (string, error) { return "arn:api:6", nil })
	if err != nil || arn != "arn:api:6" || shared {
		t.Errorf("get after a failure: %q, %v, %v; want a registration of its own", arn, shared, err)
	}
}
