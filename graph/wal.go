package graph

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
)

// The write-ahead log of a BoltStore (BoltOptions.WAL) lives in the
// directory <path>-wal next to the bbolt file, as numbered segment files
// "<16 hex digits>.wal". A segment starts with the 8-byte magic walMagic,
// then holds records, then zeros: segments are created zero-filled to
// their full size (walSegmentBytes, by a helper goroutine, ahead of need),
// so that appending a record and fdatasync'ing it changes no file
// metadata (no journal commit, just the data). A record is:
//
//	length   uint32, little-endian: bytes of payload
//	checksum uint32, little-endian: CRC-32C (Castagnoli) of payload
//	payload  uvarint count, then count times:
//	           uvarint len, soul; uvarint len, field name;
//	           uvarint len, field (the bbolt value encoding, appendField)
//
// One record holds the fields accepted by one group commit (the last
// winner of each soul/field in that batch). Records are only appended and
// fdatasync'd; the writer moves to a new segment when the current one is
// full. A checkpoint deletes the segments before the current one once a
// synced bbolt transaction holds all of their fields. Replaying a record
// applies HAM against the file, so replaying one twice, or one already
// checkpointed, changes nothing.

// ErrWALCorrupt is returned by OpenBolt when a write-ahead log record
// before the tail of the log fails its length or checksum test: that is
// not a crash mid-write, and the store refuses to guess.
var ErrWALCorrupt = errors.New("graph: corrupt write-ahead log")

const (
	walMagic     = "LUMWAL1\n"
	walHeader    = 8       // length + checksum
	walMaxRecord = 1 << 30 // refuse larger payloads (a length this big is garbage)
	walSuffix    = ".wal"
	walSpare     = "spare.tmp" // the next segment, being zero-filled
)

// walSegmentBytes is the preallocated size of a segment; a var for tests.
var walSegmentBytes int64 = 16 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// walRecord is one decoded record: the fields of one group commit.
type walRecord []walEntry

type walEntry struct {
	soul, name string
	field      Field
}

// appendWALRecord appends the framed record holding the fields of g (soul
// -> name -> field) to dst.
func appendWALRecord(dst []byte, g map[string]map[string]Field) []byte {
	at := len(dst)
	dst = append(dst, make([]byte, walHeader)...)
	n := 0
	for _, fields := range g {
		n += len(fields)
	}
	dst = binary.AppendUvarint(dst, uint64(n))
	var enc []byte
	for soul, fields := range g {
		for name, f := range fields {
			dst = binary.AppendUvarint(dst, uint64(len(soul)))
			dst = append(dst, soul...)
			dst = binary.AppendUvarint(dst, uint64(len(name)))
			dst = append(dst, name...)
			enc = appendField(enc[:0], f)
			dst = binary.AppendUvarint(dst, uint64(len(enc)))
			dst = append(dst, enc...)
		}
	}
	payload := dst[at+walHeader:]
	binary.LittleEndian.PutUint32(dst[at:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(dst[at+4:], crc32.Checksum(payload, castagnoli))
	return dst
}

// decodeWALPayload decodes the payload of one record whose checksum
// matched.
func decodeWALPayload(p []byte) (walRecord, error) {
	n, k := binary.Uvarint(p)
	if k <= 0 || n > uint64(len(p)) { // every entry takes at least 3 bytes
		return nil, errCorrupt
	}
	p = p[k:]
	rec := make(walRecord, 0, n)
	next := func() ([]byte, bool) {
		l, k := binary.Uvarint(p)
		if k <= 0 || l > uint64(len(p)-k) {
			return nil, false
		}
		b := p[k : k+int(l)]
		p = p[k+int(l):]
		return b, true
	}
	for range n {
		soul, ok1 := next()
		name, ok2 := next()
		enc, ok3 := next()
		if !ok1 || !ok2 || !ok3 {
			return nil, errCorrupt
		}
		f, err := decodeField(enc, math.NaN())
		if err != nil {
			return nil, err
		}
		rec = append(rec, walEntry{soul: string(soul), name: string(name), field: f})
	}
	if len(p) != 0 {
		return nil, errCorrupt
	}
	return rec, nil
}

// parseWAL decodes the records of one segment; an all-zero header ends
// the records when only zeros follow (the preallocated rest). In the last
// segment (tail true) a bad record is a write torn by a crash when no
// valid record follows it (only one record is ever unsynced, the last
// one): it and everything after it are dropped, and valid is the length
// of the good prefix. Any other bad record is ErrWALCorrupt.
func parseWAL(data []byte, tail bool) (recs []walRecord, valid int, err error) {
	if len(data) < len(walMagic) || string(data[:len(walMagic)]) != walMagic {
		if tail && len(data) < len(walMagic) && walMagic[:len(data)] == string(data) {
			return nil, 0, nil // the segment's creation was torn
		}
		return nil, 0, fmt.Errorf("%w: bad segment header", ErrWALCorrupt)
	}
	off := len(walMagic)
	for off < len(data) {
		rec, end, ok := walRecordAt(data, off)
		if ok {
			recs = append(recs, rec)
			off = end
			continue
		}
		if allZero(data[off:]) {
			return recs, off, nil // the preallocated rest
		}
		if !tail {
			return nil, 0, fmt.Errorf("%w: bad record at offset %d", ErrWALCorrupt, off)
		}
		// Look for a valid record after the bad one, past the bad one's
		// own bytes when its length is plausible (a value inside it may
		// look like a record).
		from := off + 1
		if len(data)-off >= walHeader {
			if l := int64(binary.LittleEndian.Uint32(data[off:])); l > 0 && l <= int64(len(data)-off-walHeader) {
				from = off + walHeader + int(l)
			}
		}
		for o := from; o+walHeader <= len(data); o++ {
			if _, _, ok := walRecordAt(data, o); ok {
				return nil, 0, fmt.Errorf("%w: bad record at offset %d before a valid one at %d", ErrWALCorrupt, off, o)
			}
		}
		return recs, off, nil // torn
	}
	return recs, off, nil
}

// walRecordAt decodes the record at off, if there is a valid one.
func walRecordAt(data []byte, off int) (rec walRecord, end int, ok bool) {
	rest := data[off:]
	if len(rest) < walHeader {
		return nil, 0, false
	}
	l := binary.LittleEndian.Uint32(rest)
	if l == 0 || l > walMaxRecord || uint64(l) > uint64(len(rest)-walHeader) {
		return nil, 0, false
	}
	payload := rest[walHeader : walHeader+int(l)]
	if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(rest[4:]) {
		return nil, 0, false
	}
	rec, err := decodeWALPayload(payload)
	if err != nil {
		return nil, 0, false
	}
	return rec, off + walHeader + int(l), true
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// walDir returns the write-ahead log directory of the bbolt file at path.
func walDir(path string) string { return path + "-wal" }

func segmentName(seq uint64) string { return fmt.Sprintf("%016x%s", seq, walSuffix) }

// listSegments returns the sequence numbers of the segments in dir, in
// ascending order (none if dir does not exist).
func listSegments(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var seqs []uint64
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), walSuffix)
		if !ok || len(name) != 16 {
			continue
		}
		seq, err := strconv.ParseUint(name, 16, 64)
		if err != nil {
			continue
		}
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	return seqs, nil
}

// syncDir fsyncs a directory, making file creations and removals in it
// durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// walWriter appends records to the current segment. It is used by the
// writer goroutine only, except for the spare maker it starts.
type walWriter struct {
	dir  string
	seq  uint64 // current segment
	f    *os.File
	size int64 // end of the records in f
	buf  []byte
	// dirty: records written to f since its last fdatasync (Derived
	// merges); the next synced append, a rotation or close syncs them.
	dirty bool
	syncs atomic.Uint64 // fdatasyncs of segments, for BoltStats

	spare     chan *os.File // a zero-filled, synced walSpare, ready
	want      chan struct{} // asks the spare maker for one
	makerDone chan struct{}
	log       func(msg string, err error)
}

// startWAL creates segment seq (from a fresh spare: makeSpare truncates
// any leftover one) and starts the spare maker.
func startWAL(dir string, seq uint64, log func(string, error)) (*walWriter, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	w := &walWriter{dir: dir, spare: make(chan *os.File, 1), want: make(chan struct{}, 1), makerDone: make(chan struct{}), log: log}
	f, err := w.makeSpare()
	if err == nil {
		err = w.install(f, seq)
	}
	if err != nil {
		close(w.makerDone)
		return nil, err
	}
	w.want <- struct{}{}
	go w.maker()
	return w, nil
}

// maker prepares the next segment whenever asked, so that moving to it
// costs the writer a rename, not a file's worth of zeros.
func (w *walWriter) maker() {
	defer close(w.makerDone)
	for range w.want {
		f, err := w.makeSpare()
		if err != nil {
			w.log("graph: preparing a write-ahead log segment", err)
			f = nil // the writer tries itself
		}
		w.spare <- f // room: the writer asks only after taking the last
	}
}

// makeSpare creates walSpare: the magic, zeros up to walSegmentBytes,
// synced.
func (w *walWriter) makeSpare() (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(w.dir, walSpare), os.O_CREATE|os.O_TRUNC|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	zeros := make([]byte, 1<<20)
	copy(zeros, walMagic)
	for off := int64(0); off < walSegmentBytes && err == nil; off += int64(len(zeros)) {
		_, err = f.WriteAt(zeros[:min(int64(len(zeros)), walSegmentBytes-off)], off)
		clear(zeros[:len(walMagic)])
	}
	if err == nil {
		err = fdatasync(f)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// install makes the spare f segment seq (a rename, made durable) and the
// current segment.
func (w *walWriter) install(f *os.File, seq uint64) error {
	if err := os.Rename(filepath.Join(w.dir, walSpare), filepath.Join(w.dir, segmentName(seq))); err != nil {
		f.Close()
		return err
	}
	if err := syncDir(w.dir); err != nil {
		f.Close()
		return err
	}
	if w.f != nil {
		w.f.Close() // synced already (rotate); a close error changes nothing
	}
	w.f, w.seq, w.size, w.dirty = f, seq, int64(len(walMagic)), false
	return nil
}

// rotate moves to segment seq+1: the spare if it is ready, else one made
// now.
func (w *walWriter) rotate() error {
	// Recovery stops at the first torn record, so a later segment must
	// never hold synced records while an earlier one may lose some.
	if w.dirty {
		if err := w.sync(); err != nil {
			return err
		}
	}
	// If the maker is behind, wait for it rather than race it for
	// walSpare; if it failed, try once more here.
	f := <-w.spare
	if f == nil {
		var err error
		if f, err = w.makeSpare(); err != nil {
			return err
		}
	}
	if err := w.install(f, w.seq+1); err != nil {
		return err
	}
	select {
	case w.want <- struct{}{}:
	default:
	}
	return nil
}

// append writes one record, moving to a new segment first if the record
// does not fit in the current one's preallocated size, and syncs it (with
// every unsynced record before it) unless sync is false.
func (w *walWriter) append(g map[string]map[string]Field, sync bool) error {
	w.buf = appendWALRecord(w.buf[:0], g)
	if w.size > int64(len(walMagic)) && w.size+int64(len(w.buf)) > walSegmentBytes {
		if err := w.rotate(); err != nil {
			return err
		}
	}
	if _, err := w.f.WriteAt(w.buf, w.size); err != nil {
		return err
	}
	w.size += int64(len(w.buf))
	if cap(w.buf) > 16<<20 {
		w.buf = nil
	}
	if !sync {
		w.dirty = true
		return nil
	}
	return w.sync()
}

// sync fdatasyncs the current segment.
func (w *walWriter) sync() error {
	w.syncs.Add(1)
	if err := fdatasync(w.f); err != nil {
		return err
	}
	w.dirty = false
	return nil
}

// removeSegmentsThrough deletes the segments up to and including seq (their
// fields are in a synced bbolt transaction).
func removeSegmentsThrough(dir string, seq uint64) error {
	seqs, err := listSegments(dir)
	if err != nil {
		return err
	}
	removed := false
	for _, s := range seqs {
		if s > seq {
			break
		}
		if err := os.Remove(filepath.Join(dir, segmentName(s))); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		removed = true
	}
	if removed {
		return syncDir(dir)
	}
	return nil
}

// close stops the spare maker, removes the spare and closes the current
// segment.
func (w *walWriter) close() error {
	close(w.want)
	<-w.makerDone
	select {
	case f := <-w.spare:
		if f != nil {
			f.Close()
		}
	default:
	}
	_ = os.Remove(filepath.Join(w.dir, walSpare))
	if w.f == nil {
		return nil
	}
	var err error
	if w.dirty {
		err = w.sync()
	}
	err = errors.Join(err, w.f.Close())
	w.f = nil
	return err
}
