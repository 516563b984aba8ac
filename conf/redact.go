package conf

import (
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// RedactedMark replaces a secret in Redacted and String.
const RedactedMark = "******"

// Redacted returns a deep copy with every password replaced by RedactedMark: redis_auth (an ACL
// user name stays visible), requirepass. TLS keys are files and the config holds only their
// paths, which stay.
func (c Config) Redacted() Config {
	out := c
	out.Source = c.Source.redacted()
	out.Target = c.Target.redacted()
	out.Common = c.Common.redacted()
	out.Warnings = slices.Clone(c.Warnings)
	return out
}

func (p Pool) redacted() Pool {
	p.Servers = slices.Clone(p.Servers)
	if p.RedisAuth != "" {
		if user, _ := p.Auth(); user != "" {
			p.RedisAuth = user + ":" + RedactedMark
		} else {
			p.RedisAuth = RedactedMark
		}
	}
	return p
}

func (c Common) redacted() Common {
	if c.RequirePass != "" {
		c.RequirePass = RedactedMark
	}
	return c
}

// String renders the config as one line of YAML (flow style), passwords redacted: safe to log.
func (c Config) String() string { return render(c.Redacted()) }

// GoString keeps %#v from printing passwords too.
func (c Config) GoString() string { return c.String() }

// String renders the pool as YAML, redis_auth redacted.
func (p Pool) String() string { return render(p.redacted()) }

// GoString keeps %#v from printing the password.
func (p Pool) GoString() string { return p.String() }

// String renders the common section as YAML, requirepass redacted.
func (c Common) String() string { return render(c.redacted()) }

// GoString keeps %#v from printing the password.
func (c Common) GoString() string { return c.String() }

func render(v any) string {
	var n yaml.Node
	if err := n.Encode(v); err != nil {
		return "<conf: " + err.Error() + ">"
	}
	n.Style = yaml.FlowStyle
	b, err := yaml.Marshal(&n)
	if err != nil {
		return "<conf: " + err.Error() + ">"
	}
	return strings.TrimSpace(string(b))
}
