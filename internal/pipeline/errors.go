package pipeline

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Error is one problem in a pipeline file. Line and Column are 1-based and zero when unknown (for
// example for a File that did not come from Parse); Path is the key path, like
// "services.api.environments.production".
type Error struct {
	File   string `json:"file,omitempty"`
	Line   int    `json:"line,omitempty"`
	Column int    `json:"column,omitempty"`
	Path   string `json:"path,omitempty"`
	Msg    string `json:"msg"`

	// subject is the key path the problem is about when Path is its parent ("services.api: image
	// is required" is about services.api.image). Parse uses it to drop problems that follow from
	// one already reported.
	subject string
}

// Error formats the problem the way compilers do, so editors and people can jump to it:
// ".slipway.yml:7:5: services.api.environments.production: exactly one target ... is required".
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
			if e.Column > 0 {
				fmt.Fprintf(&b, ":%d", e.Column)
			}
		}
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ErrorList is every problem found in one file, in file order. Parse returns all of them (up to
// maxErrors) rather than the first, so one failed deployment shows the user everything to fix.
type ErrorList []*Error

// Error joins the problems one per line.
func (l ErrorList) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Unwrap lets errors.As find the first *Error.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// err returns the list as an error, or nil when it is empty: a nil ErrorList stored in an error
// interface would not compare equal to nil.
func (l ErrorList) err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

// sortByPosition orders problems by where they are in the file, errors without a position last.
func (l ErrorList) sortByPosition() {
	slices.SortStableFunc(l, func(a, b *Error) int {
		la, lb := a.Line, b.Line
		if la == 0 {
			la = int(^uint(0) >> 1)
		}
		if lb == 0 {
			lb = int(^uint(0) >> 1)
		}
		return cmp.Or(cmp.Compare(la, lb), cmp.Compare(a.Column, b.Column))
	})
}

// truncate keeps the list readable in a deployment record when a file is garbage.
func (l ErrorList) truncate(file string) ErrorList {
	if len(l) <= maxErrors {
		return l
	}
	out := l[:maxErrors:maxErrors]
	return append(out, &Error{File: file, Msg: fmt.Sprintf("too many problems (%d more not shown)", len(l)-maxErrors)})
}
