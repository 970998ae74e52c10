package client

import (
	"context"
	"fmt"

	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/internal/jsjson"
)

// memberFrame is {"#":id,"<member>":<body>}.
func memberFrame(id, member string, body []byte) []byte {
	b := make([]byte, 0, len(body)+32)
	b = append(b, `{"#":`...)
	b = jsjson.AppendString(b, id)
	b = append(b, ',')
	b = jsjson.AppendString(b, member)
	b = append(b, ':')
	b = append(b, body...)
	return append(b, '}')
}

// joinBundle asks the relay for instance's join bundle (its latest accepted
// snapshot, the data and the first page of entries after it). Nothing of
// it is trusted until heartbeat.NewJoiner has verified it.
func (c *Client) joinBundle(ctx context.Context, instance string) (heartbeat.JoinBundle, error) {
	req := &jsjson.Object{}
	req.Set("instance", instance)
	body := jsjson.Append(nil, req)
	var b heartbeat.JoinBundle
	rctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	err := c.roundTrip(rctx, true, func(id string) []byte { return memberFrame(id, heartbeat.JoinMember, body) }, func(m *msg) (bool, error) {
		if m.Err != "" {
			return true, &RelayError{m.Err}
		}
		v, ok := m.member(heartbeat.JoinMember)
		if !ok {
			return false, nil
		}
		var err error
		b, err = heartbeat.JoinBundleFromValue(v, int(c.cfg.ReadLimit))
		return true, err
	})
	if err != nil {
		return heartbeat.JoinBundle{}, fmt.Errorf("client: join bundle of %s: %w", instance, err)
	}
	if b.Meta.Instance != instance {
		return heartbeat.JoinBundle{}, fmt.Errorf("client: join bundle names instance %q, not %q", b.Meta.Instance, instance)
	}
	return b, nil
}
