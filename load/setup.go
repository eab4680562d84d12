package load

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

// postJSON is for setup calls, off the hot path.
func (c *client) postJSON(ctx context.Context, n *node, path string, body any, out any) (int, []byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var buf []byte
	st, err := c.request(ctx, n, http.MethodPost, path, "", io.NopCloser(bytes.NewReader(b)), int64(len(b)), &buf, 1<<20)
	if err != nil {
		return st, buf, err
	}
	if out != nil && st == 200 {
		if err := json.Unmarshal(buf, out); err != nil {
			return st, buf, fmt.Errorf("POST %s on %s: %w", path, n.addr, err)
		}
	}
	return st, buf, nil
}

// checkHealth fails with one clear line when a node the load will use is
// unreachable, sealed or uninitialised.
func (c *client) checkHealth(ctx context.Context, n *node) error {
	st, body, err := c.getJSON(ctx, n, "/v1/sys/health", nil)
	_ = body
	if err != nil {
		return fmt.Errorf("%s", describeErr(n.addr, err))
	}
	// sys/health answers 200 active, 429 standby, 472/473 DR/perf standby,
	// 501 uninitialised, 503 sealed.
	switch st {
	case 200, 429, 472, 473:
		return nil
	case 501:
		return fmt.Errorf("Vault at %s is not initialized", n.addr)
	case 503:
		return fmt.Errorf("Vault at %s is sealed", n.addr)
	}
	return fmt.Errorf("Vault at %s: sys/health answered HTTP %d", n.addr, st)
}

// preflight checks everything a run needs before the first timed request,
// so that bad input fails in one line rather than as a run full of errors.
func (c *client) preflight(ctx context.Context, o Options) error {
	nodes := c.nodes
	if c.mode == "node" {
		nodes = []*node{c.fixed}
	}
	var firstErr error
	healthy := 0
	for _, n := range nodes {
		if err := c.checkHealth(ctx, n); err != nil {
			if c.mode != "active" {
				return err
			}
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		healthy++
	}
	if healthy == 0 {
		return firstErr
	}
	if c.mode == "active" {
		n, route, err := c.findLeader(ctx)
		if err != nil {
			return err
		}
		c.setActive(n, route)
	}
	if err := c.checkToken(ctx, o); err != nil {
		return err
	}
	return c.ensureMount(ctx, o.Mount)
}

// checkToken asks Vault what the token may do on the load's paths, so a
// token without permission is one clear line instead of a run of 403s.
func (c *client) checkToken(ctx context.Context, o Options) error {
	n := c.pick()
	data := o.Mount + "/data/" + o.KeyPrefix + "k"
	meta := o.Mount + "/metadata/" + o.KeyPrefix
	var caps map[string]any
	st, body, err := c.postJSON(ctx, n, "/v1/sys/capabilities-self", map[string]any{"paths": []string{data, meta}}, &caps)
	if err != nil {
		return fmt.Errorf("%s", describeErr(n.addr, err))
	}
	if st == 403 {
		return fmt.Errorf("Vault at %s rejected the token (permission denied): check VAULT_TOKEN", n.addr)
	}
	if st != 200 {
		return fmt.Errorf("check token capabilities on %s: %s", n.addr, vaultErr(st, body))
	}
	capsOf := func(p string) []string {
		var out []string
		if v, ok := caps[p].([]any); ok {
			for _, x := range v {
				if s, ok := x.(string); ok {
					out = append(out, s)
				}
			}
		}
		return out
	}
	has := func(p string, want ...string) bool {
		got := capsOf(p)
		if slices.Contains(got, "root") {
			return true
		}
		for _, w := range want {
			if !slices.Contains(got, w) {
				return false
			}
		}
		return true
	}
	var missing []string
	// Reading back is needed by verify whatever the mix.
	need := []string{"read"}
	if o.Mix.Has(OpWrite) || !o.NoPrefill {
		need = append(need, "create", "update")
	}
	if o.Mix.Has(OpDelete) {
		need = append(need, "delete")
	}
	for _, w := range need {
		if !has(data, w) {
			missing = append(missing, w+" on "+data)
		}
	}
	if o.Mix.Has(OpList) && !has(meta, "list") {
		missing = append(missing, "list on "+meta)
	}
	if len(missing) > 0 {
		return fmt.Errorf("the token lacks permission: %s", strings.Join(missing, ", "))
	}
	return nil
}

// ensureMount creates the KV v2 mount when it is missing and refuses a KV
// version 1 mount (it has no versions to check writes against).
func (c *client) ensureMount(ctx context.Context, mount string) error {
	n := c.pick()
	var m struct {
		Type    string            `json:"type"`
		Options map[string]string `json:"options"`
	}
	st, body, err := c.getJSON(ctx, n, "/v1/sys/mounts/"+mount, &m)
	if err != nil {
		return fmt.Errorf("%s", describeErr(n.addr, err))
	}
	switch {
	case st == 200:
		if m.Type != "kv" || m.Options["version"] != "2" {
			return fmt.Errorf("mount %q is %s version %q, not a KV version 2 engine: choose another --mount", mount, m.Type, m.Options["version"])
		}
		return nil
	case st == 403:
		// A token may write KV without reading sys/mounts: trust the
		// capability check and let the first write tell.
		return nil
	case st != 400 && st != 404:
		return fmt.Errorf("read mount %q on %s: %s", mount, n.addr, vaultErr(st, body))
	}
	st, body, err = c.postJSON(ctx, n, "/v1/sys/mounts/"+mount, map[string]any{"type": "kv", "options": map[string]string{"version": "2"}}, nil)
	if err != nil {
		return fmt.Errorf("%s", describeErr(n.addr, err))
	}
	if st == 400 && strings.Contains(string(body), "path is already in use") {
		// Another generator (a shard of the same run, started at the same
		// moment) created it between our read and our create: check that
		// what is there is KV v2, then wait for it to be ready like ours.
		var m2 struct {
			Type    string            `json:"type"`
			Options map[string]string `json:"options"`
		}
		if st2, _, err := c.getJSON(ctx, n, "/v1/sys/mounts/"+mount, &m2); err == nil && st2 == 200 && (m2.Type != "kv" || m2.Options["version"] != "2") {
			return fmt.Errorf("mount %q is %s version %q, not a KV version 2 engine: choose another --mount", mount, m2.Type, m2.Options["version"])
		}
	} else if st != 200 && st != 204 {
		return fmt.Errorf("create KV v2 mount %q on %s: %s", mount, n.addr, vaultErr(st, body))
	}
	// A new KV v2 mount answers writes only once its backend finished
	// setting up; wait for its config to be readable.
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, body, err = c.getJSON(ctx, c.pick(), "/v1/"+mount+"/config", nil)
		if err == nil && st == 200 {
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("new mount %q never became ready: %w", mount, err)
			}
			return fmt.Errorf("new mount %q never became ready: %s", mount, vaultErr(st, body))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
