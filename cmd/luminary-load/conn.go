package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// wsURL turns a Gun peer URL (http(s)://host:port/gun) into a WebSocket URL.
func wsURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("luminary-load: bad url %q: %w", raw, err)
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	case "ws", "wss":
	default:
		return "", fmt.Errorf("luminary-load: bad url %q: scheme must be http, https, ws or wss", raw)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/gun"
	}
	return u.String(), nil
}

// peer is one WebSocket connection to a relay. Writes are serialized; reads
// happen on the goroutine that calls run.
type peer struct {
	c     *websocket.Conn
	pid   string
	hello bool
	cork  *corkConn // with dialOptions.cork

	wmu  sync.Mutex
	wbuf []byte
}

// corkConn gathers the frames a writer sends back to back into one write
// system call (a corked TCP socket, in user space): while corked is set a
// write is buffered; the next uncorked write, or flush, writes the buffer
// first. Each put is still its own WebSocket frame; only the syscalls are
// shared, which a client on a shared two-core machine pays for (a loopback
// write also runs the receiver's TCP input) and which say nothing about the
// relay measured.
type corkConn struct {
	net.Conn
	mu     sync.Mutex
	corked bool
	buf    []byte
}

func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.corked {
		c.buf = append(c.buf, p...)
		return len(p), nil
	}
	if err := c.flushLocked(); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

func (c *corkConn) flushLocked() error {
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.buf)
	c.buf = c.buf[:0]
	return err
}

// flush writes what is buffered.
func (c *corkConn) flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.flushLocked()
}

func (c *corkConn) setCorked(on bool) {
	c.mu.Lock()
	c.corked = on
	c.mu.Unlock()
}

// dialOptions bounds what a dial may do.
type dialOptions struct {
	url       string
	timeout   time.Duration
	readLimit int64
	hello     bool
	// cork lets sendCorked gather frames into one write (see corkConn).
	cork bool
}

func dialPeer(ctx context.Context, o dialOptions) (*peer, error) {
	u, err := wsURL(o.url)
	if err != nil {
		return nil, err
	}
	d := websocket.Dialer{
		HandshakeTimeout: o.timeout,
		ReadBufferSize:   64 << 10,
		WriteBufferSize:  64 << 10,
	}
	var cork *corkConn
	if o.cork {
		var nd net.Dialer
		d.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := nd.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			cork = &corkConn{Conn: c}
			return cork, nil
		}
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	c, resp, err := d.DialContext(ctx, u, nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("luminary-load: dial %s: %w", u, err)
	}
	if o.readLimit > 0 {
		c.SetReadLimit(o.readLimit)
	}
	return &peer{c: c, pid: newID(), hello: o.hello, cork: cork}, nil
}

// writeTimeout bounds one frame write, so a relay that stops reading turns
// into a reported error instead of a hung run.
const writeTimeout = 10 * time.Second

// sendBuilt builds a frame with build into the peer's reusable buffer and
// writes it, under the write lock.
func (p *peer) sendBuilt(build func([]byte) []byte) error {
	return p.send(build, false)
}

// send is sendBuilt; with corked (a peer dialled with cork) the frame may
// wait in the peer's buffer until flush or the next write not corked.
func (p *peer) send(build func([]byte) []byte, corked bool) error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	p.wbuf = build(p.wbuf[:0])
	_ = p.c.SetWriteDeadline(time.Now().Add(writeTimeout))
	if corked {
		p.cork.setCorked(true)
		defer p.cork.setCorked(false)
	}
	return p.c.WriteMessage(websocket.TextMessage, p.wbuf)
}

// sendCorked is sendBuilt whose frame may wait in the peer's buffer (a peer
// dialled with cork) until flush or the next write that is not corked.
func (p *peer) sendCorked(build func([]byte) []byte) error {
	return p.send(build, p.cork != nil)
}

// flush writes the frames sendCorked left in the buffer.
func (p *peer) flush() error {
	if p.cork == nil {
		return nil
	}
	p.wmu.Lock()
	defer p.wmu.Unlock()
	_ = p.c.SetWriteDeadline(time.Now().Add(writeTimeout))
	return p.cork.flush()
}

// close sends a normal close frame, best effort, and closes the connection.
// It does not take the write lock (gorilla allows WriteControl and Close
// concurrently with writes), so it also unblocks a writer stuck on a relay
// that stopped reading.
func (p *peer) close() {
	_ = p.c.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	_ = p.c.Close()
}

// frameHandler sees every non-keep-alive frame; raw is only valid during the
// call. It returns the messages it decoded (nil if it did not decode), so run
// can answer a dam handshake without decoding twice.
type frameHandler func(raw []byte) []message

// run reads frames until the connection fails or closes. It answers a
// relay's {"dam":"?"} greeting when hello is set and the handler decoded it.
func (p *peer) run(h frameHandler) error {
	var buf bytes.Buffer
	for {
		raw, err := p.next(&buf)
		if err != nil {
			if websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway) ||
				errors.Is(err, websocket.ErrCloseSent) || isClosedConn(err) {
				return nil
			}
			return err
		}
		if isKeepAlive(raw) {
			continue
		}
		ms := h(raw)
		if !p.hello {
			continue
		}
		for _, m := range ms {
			if m.Dam == "?" && m.At == "" && m.ID != "" {
				if err := p.sendBuilt(func(b []byte) []byte { return appendHello(b, p.pid, m.ID) }); err != nil {
					return err
				}
			}
		}
	}
}

// next reads one message into buf, reusing its memory across frames.
func (p *peer) next(buf *bytes.Buffer) ([]byte, error) {
	_, r, err := p.c.NextReader()
	if err != nil {
		return nil, err
	}
	buf.Reset()
	if _, err := buf.ReadFrom(r); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func isClosedConn(err error) bool {
	return errors.Is(err, net.ErrClosed)
}

// decodeAll decodes a frame, counting undecodable frames in bad.
func decodeAll(raw []byte, bad *atomic.Uint64) []message {
	ms, err := decodeFrame(raw)
	if err != nil {
		bad.Add(1)
		return nil
	}
	return ms
}
