package service

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/krestianstvo/luminary/auth"
	"github.com/krestianstvo/luminary/keys"
)

// WorldsFile is the relay-local list of hosted worlds under the data
// directory (JSON, rewritten atomically).
const WorldsFile = "worlds.json"

// ownersDir holds the owner keys of worlds the relay created for itself
// (key files encrypted with the relay key's password).
const ownersDir = "owners"

// worldRec is what the relay remembers about a world it hosts. The world's
// metadata (start, rate, tps) is in the heartbeat log; these are the
// relay-local settings.
type worldRec struct {
	Instance string   `json:"instance"`
	Alias    string   `json:"alias,omitempty"`
	Name     string   `json:"name"`
	Rate     float64  `json:"rate"`
	TPS      int      `json:"tps"`
	Private  bool     `json:"private,omitempty"`
	Open     bool     `json:"open,omitempty"`
	Created  int64    `json:"created_ms"`
	Owner    string   `json:"owner_key,omitempty"` // "relay", or a file under owners/ holding a key the relay created
	Chain    []string `json:"tick_chain,omitempty"`
	Demo     bool     `json:"demo,omitempty"`
}

// worldStore holds the hosted worlds, persisted to worlds.json (or memory
// only when path is empty).
type worldStore struct {
	path string

	mu     sync.RWMutex
	byInst map[string]*worldRec
	alias  map[string]string // alias -> instance
	owners map[string]*keys.Private
	chains map[string][]*auth.Cert // instance -> the relay key's tick chain

	// The file's records in file order (created, instance), each with its
	// encoding cached: adding a world re-encodes one record, not all of
	// them (5,000 worlds created one by one spent most of their time
	// re-encoding the list).
	order []encodedRec
}

type encodedRec struct {
	r   *worldRec
	enc []byte // json.MarshalIndent(r, "  ", "  ")
}

// recBefore orders records as the file lists them.
func recBefore(a, b *worldRec) int {
	switch {
	case a.Created < b.Created:
		return -1
	case a.Created > b.Created:
		return 1
	case a.Instance < b.Instance:
		return -1
	case a.Instance > b.Instance:
		return 1
	}
	return 0
}

// insertLocked adds r to order, encoded. w.mu is held.
func (w *worldStore) insertLocked(r *worldRec) error {
	enc, err := json.MarshalIndent(r, "  ", "  ")
	if err != nil {
		return err
	}
	i, _ := slices.BinarySearchFunc(w.order, r, func(e encodedRec, t *worldRec) int { return recBefore(e.r, t) })
	w.order = slices.Insert(w.order, i, encodedRec{r, enc})
	return nil
}

// removeLocked drops r from order. w.mu is held.
func (w *worldStore) removeLocked(r *worldRec) {
	w.order = slices.DeleteFunc(w.order, func(e encodedRec) bool { return e.r == r })
}

func newWorldStore(path string) *worldStore {
	return &worldStore{path: path, byInst: map[string]*worldRec{}, alias: map[string]string{},
		owners: map[string]*keys.Private{}, chains: map[string][]*auth.Cert{}}
}

// load reads the file (a missing file is an empty list).
func (w *worldStore) load() error {
	if w.path == "" {
		return nil
	}
	data, err := os.ReadFile(w.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("service: %w", err)
	}
	var recs []*worldRec
	if err := json.Unmarshal(data, &recs); err != nil {
		return fmt.Errorf("service: %s: %w", w.path, err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, r := range recs {
		if _, err := keys.ParsePublic(r.Instance); err != nil {
			return fmt.Errorf("service: %s: world %q: %w", w.path, r.Instance, err)
		}
		w.byInst[r.Instance] = r
		if r.Alias != "" {
			w.alias[r.Alias] = r.Instance
		}
		if err := w.insertLocked(r); err != nil {
			return err
		}
		for _, c := range r.Chain {
			cert, err := auth.ParseCert([]byte(c))
			if err != nil {
				return fmt.Errorf("service: %s: world %s: %w", w.path, r.Instance, err)
			}
			w.chains[r.Instance] = append(w.chains[r.Instance], cert)
		}
	}
	return nil
}

// saveLocked rewrites the file atomically from the cached encodings, in
// the text json.MarshalIndent(records, "", "  ") gives. w.mu is held.
func (w *worldStore) saveLocked() error {
	if w.path == "" {
		return nil
	}
	n := 4
	for _, e := range w.order {
		n += len(e.enc) + 4
	}
	data := make([]byte, 0, n)
	if len(w.order) == 0 {
		data = append(data, "[]"...)
	} else {
		data = append(data, "[\n  "...)
		for i, e := range w.order {
			if i > 0 {
				data = append(data, ",\n  "...)
			}
			data = append(data, e.enc...)
		}
		data = append(data, "\n]"...)
	}
	return writeAtomic(w.path, append(data, '\n'))
}

// add records a new world (ErrConflict-style error when it exists).
func (w *worldStore) add(r *worldRec, chain []*auth.Cert, owner *keys.Private) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.byInst[r.Instance]; ok {
		return errExists
	}
	if r.Alias != "" {
		if _, ok := w.alias[r.Alias]; ok {
			return errAliasTaken
		}
	}
	for _, c := range chain {
		b, _ := c.MarshalJSON()
		r.Chain = append(r.Chain, string(b))
	}
	w.byInst[r.Instance] = r
	if r.Alias != "" {
		w.alias[r.Alias] = r.Instance
	}
	if len(chain) > 0 {
		w.chains[r.Instance] = chain
	}
	if owner != nil {
		w.owners[r.Instance] = owner
	}
	err := w.insertLocked(r)
	if err == nil {
		if err = w.saveLocked(); err != nil {
			w.removeLocked(r)
		}
	}
	if err != nil {
		delete(w.byInst, r.Instance)
		delete(w.alias, r.Alias)
		delete(w.chains, r.Instance)
		delete(w.owners, r.Instance)
		return err
	}
	return nil
}

var (
	errExists     = errors.New("service: world exists")
	errAliasTaken = errors.New("service: alias taken")
)

// get returns a copy of the record for an instance id or alias.
func (w *worldStore) get(ref string) (worldRec, bool) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if inst, ok := w.alias[ref]; ok {
		ref = inst
	}
	r, ok := w.byInst[ref]
	if !ok {
		return worldRec{}, false
	}
	return *r, true
}

func (w *worldStore) hosted(inst string) bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	_, ok := w.byInst[inst]
	return ok
}

func (w *worldStore) list() []worldRec {
	w.mu.RLock()
	defer w.mu.RUnlock()
	out := make([]worldRec, len(w.order))
	for i, e := range w.order {
		out[i] = *e.r // order is the file's: by creation, then instance
	}
	return out
}

func (w *worldStore) chain(inst string) []*auth.Cert {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.chains[inst]
}

func (w *worldStore) owner(inst string) *keys.Private {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.owners[inst]
}

func (w *worldStore) setOwner(inst string, k *keys.Private) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.owners[inst] = k
}

// writeAtomic replaces path with data: a temporary file in the same
// directory, fsynced, renamed over path, then the directory fsynced.
func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
