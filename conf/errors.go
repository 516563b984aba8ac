package conf

import (
	"strconv"
	"strings"
)

// Error is one problem in a configuration, formatted "<file>:<line>: <key path>: <problem>".
// Line is 0 when the problem has no line (a config built in code, a value changed since it was
// loaded, a missing section); File is then the file name, "config", or the flag the value came
// from ("-f", "-t").
type Error struct {
	File string
	Line int
	Path string // "source.servers[1]"; "" for a problem with the file as a whole
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found, in file order, one per line when printed.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.As find each *Error.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// asError returns nil for an empty list, so that a nil Errors never becomes a non-nil error.
func (es Errors) asError() error {
	if len(es) == 0 {
		return nil
	}
	return es
}
