package auth

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/store"
)

// Audit records an action (deploy, rollback, cancel, …) on object (deployment:42, say) in the
// audit log, as done by the principal of ctx from the client address Authenticate found. detail
// must hold no secret. Without a principal the actor is "system". The error is logged too.
func (s *Service) Audit(ctx context.Context, action, object string, detail map[string]any) error {
	p, ok := PrincipalFrom(ctx)
	if !ok {
		p = Principal{Name: "system"}
	}
	return s.audit(ctx, p, ClientAddrFrom(ctx), action, object, detail)
}

func (s *Service) audit(ctx context.Context, p Principal, client, action, object string, detail map[string]any) error {
	e := store.AuditEntry{Actor: p.Name, Via: p.Via, Action: action, Object: object, ClientAddr: client}
	if p.TokenID != 0 {
		detail = withKey(detail, "token_id", p.TokenID)
	}
	if len(detail) > 0 {
		b, err := json.Marshal(detail)
		if err != nil {
			return fmt.Errorf("encoding audit detail of %s: %w", action, err)
		}
		e.Detail = b
	}
	// An audit row outlives the request that asked for it: a client hanging up must not lose it.
	if _, err := s.st.AuditInsert(context.WithoutCancel(ctx), e); err != nil {
		s.log.ErrorContext(ctx, "writing audit log", "action", action, "actor", p.Name, "err", err)
		return fmt.Errorf("writing audit log: %w", err)
	}
	return nil
}

func withKey(m map[string]any, k string, v any) map[string]any {
	out := make(map[string]any, len(m)+1)
	for mk, mv := range m {
		out[mk] = mv
	}
	out[k] = v
	return out
}

// AuditList returns at most limit (1..500) entries of the audit log older than entry before (0:
// the newest), newest first: the admin page's keyset paging.
func (s *Service) AuditList(ctx context.Context, before int64, limit int) ([]store.AuditEntry, error) {
	limit = min(max(limit, 1), 500)
	return s.st.AuditList(ctx, before, limit)
}

func isNotFound(err error) bool { return deploy.ErrorCode(err) == deploy.ENOTFOUND }
