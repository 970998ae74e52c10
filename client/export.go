package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// ExportHistory writes a world's history to w as the relay exports it
// (GET /api/worlds/{world}/export): JSON lines, the format heartbeat's
// VerifyHistory and `luminary history verify` check. world is an instance
// id or the alias the relay knows it by; from and to bound the seqs (0:
// from the first, to the head). The request is signed with Config.Key, so
// a private world's owner, admins and members may export it; without a key
// only public worlds can be. A history cut short (the connection failing
// mid-stream) is an error; verify what was written before trusting it.
func (c *Client) ExportHistory(ctx context.Context, world string, from, to uint64, w io.Writer) error {
	q := url.Values{}
	if from > 0 {
		q.Set("from", strconv.FormatUint(from, 10))
	}
	if to > 0 {
		q.Set("to", strconv.FormatUint(to, 10))
	}
	target := "/api/worlds/" + url.PathEscape(world) + "/export"
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	resp, err := c.signedRequest(ctx, c.cfg.Key, http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		answer, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return fmt.Errorf("client: export %s: HTTP %d: %s", world, resp.StatusCode, strings.TrimSpace(string(answer)))
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("client: export %s: %w", world, err)
	}
	return nil
}
