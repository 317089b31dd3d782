package config_test

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"testing"
)

// amqp.addresses: the other nodes of a RabbitMQ cluster, from a file or
// BEDS_AMQP_ADDRESSES (which replaces the file's list).
func TestAMQPAddresses(t *testing.T) {
	file := "[amqp]\nurl = \"amqp://u:p@mq1:5672/vh\"\naddresses = [\"mq2:5672\", \"10.0.0.3:5673\"]\n"
	for _, tc := range []struct {
		name  string
		toml  string
		env   map[string]string
		want  []string
		error []string // substrings of the load's error; nil: it loads
	}{
		{name: "none", toml: "", want: nil},
		{name: "from the file", toml: file, want: []string{"mq2:5672", "10.0.0.3:5673"}},
		{name: "the variable replaces the file's", toml: file,
			env:  map[string]string{"BEDS_AMQP_ADDRESSES": "mq4:5672, [::1]:5674 ,"},
			want: []string{"mq4:5672", "[::1]:5674"}},
		{name: "an empty variable is unset", toml: file, env: map[string]string{"BEDS_AMQP_ADDRESSES": ""},
			want: []string{"mq2:5672", "10.0.0.3:5673"}},
		{name: "no port", toml: "[amqp]\naddresses = [\"mq2\"]\n",
			error: []string{"config amqp.addresses[0]", "not host:port"}},
		{name: "a URL with a password", env: map[string]string{"BEDS_AMQP_ADDRESSES": "mq2:5672,amqp://u:s3cret@mq3:5672"},
			error: []string{"config amqp.addresses[1]", "credentials, virtual host and parameters come from the URL"}},
		{name: "port out of range", toml: "[amqp]\naddresses = [\"mq2:99999\"]\n",
			error: []string{"config amqp.addresses[0]", "port"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := load(t, dir(t, map[string]string{"beds.toml": tc.toml}), tc.env)
			if tc.error != nil {
				if err == nil {
					t.Fatalf("loaded with addresses %q, want an error", c.AMQP.Addresses)
				}
				for _, w := range tc.error {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Errorf("error %q shows the password", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(c.AMQP.Addresses, tc.want) {
				t.Fatalf("addresses %q, want %q", c.AMQP.Addresses, tc.want)
			}
		})
	}
}

// The logged config shows the addresses (they hold no secret).
func TestAMQPAddressesLogged(t *testing.T) {
	c := mustLoad(t, dir(t, map[string]string{"beds.toml": "[amqp]\nurl = \"amqp://u:s3cret@mq1:5672/\"\naddresses = [\"mq2:5672\"]\n"}), nil)
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("config", "config", c)
	if out := buf.String(); !strings.Contains(out, "mq2:5672") || strings.Contains(out, "s3cret") {
		t.Fatalf("logged config %s: want the address, not the password", out)
	}
}

func TestAMQPQuorumSize(t *testing.T) {
	c := mustLoad(t, dir(t, map[string]string{"beds.toml": "[amqp]\nqueue_type = \"quorum\"\nquorum_size = 3\n"}), nil)
	if c.AMQP.QuorumSize != 3 {
		t.Fatalf("quorum_size %d, want 3", c.AMQP.QuorumSize)
	}
	if c := mustLoad(t, dir(t, map[string]string{"beds.toml": ""}), nil); c.AMQP.QuorumSize != 0 {
		t.Fatalf("default quorum_size %d, want 0 (RabbitMQ's default)", c.AMQP.QuorumSize)
	}
	_, err := load(t, dir(t, map[string]string{"beds.toml": "[amqp]\nquorum_size = -1\n"}), nil)
	if err == nil || !strings.Contains(err.Error(), "amqp.quorum_size") {
		t.Fatalf("quorum_size -1: %v, want an error naming it", err)
	}
}
