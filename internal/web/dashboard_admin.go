package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/slipway-dev/slipway/internal/auth"
)

// The admin pages: the audit log and the configuration (secrets redacted by their type).

type auditRow struct {
	ID                                     int64
	At                                     when
	Actor, Via, Action, Object, Detail, IP string
}

type auditView struct {
	Base
	Missing bool
	Rows    []auditRow
	Older   string
	Newest  string
}

const auditPageSize = 100

func (d *Dashboard) auditPage(w http.ResponseWriter, r *http.Request) {
	if _, ok := d.allowed(w, r, auth.RoleAdmin); !ok {
		return
	}
	v := auditView{Base: d.base(r, "Audit log", "admin")}
	if d.audit == nil {
		v.Missing = true
		d.render(w, r, http.StatusOK, "audit.html", v)
		return
	}
	var before int64
	if s := r.URL.Query().Get("before"); s != "" {
		b, err := strconv.ParseInt(s, 10, 64)
		if err != nil || b <= 0 {
			d.fail(w, r, http.StatusBadRequest, "“before” must be a positive integer (an audit entry id).")
			return
		}
		before = b
		v.Newest = "/admin/audit"
	}
	entries, err := d.audit.AuditList(r.Context(), before, auditPageSize)
	if err != nil {
		d.failErr(w, r, err)
		return
	}
	for _, e := range entries {
		v.Rows = append(v.Rows, auditRow{ID: e.ID, At: d.when(e.At), Actor: e.Actor, Via: e.Via, Action: e.Action,
			Object: e.Object, Detail: string(e.Detail), IP: e.ClientAddr})
	}
	if len(entries) == auditPageSize {
		v.Older = fmt.Sprintf("/admin/audit?before=%d", entries[len(entries)-1].ID)
	}
	d.render(w, r, http.StatusOK, "audit.html", v)
}

type configView struct {
	Base
	Missing bool
	JSON    string
}

func (d *Dashboard) configPage(w http.ResponseWriter, r *http.Request) {
	if _, ok := d.allowed(w, r, auth.RoleAdmin); !ok {
		return
	}
	v := configView{Base: d.base(r, "Configuration", "admin")}
	if d.config == nil {
		v.Missing = true
	} else {
		// Not HTML-escaped here: the template escapes it, and the page shows it as written.
		var b strings.Builder
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(d.config()); err != nil {
			d.failErr(w, r, fmt.Errorf("showing the configuration: %w", err))
			return
		}
		v.JSON = b.String()
	}
	d.render(w, r, http.StatusOK, "config.html", v)
}
