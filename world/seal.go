package world

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/krestianstvo/luminary/auth"
	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/keys"
)

// MessageNonceSize is the number of random bytes in the nonce of a sealed
// heartbeat message (written as 22 characters of base64url).
const MessageNonceSize = 16

// appendAAD appends the associated data of an envelope:
//
//	keys.Message("world.payload", [version, kind], instance, epoch (8 bytes BE),
//	             sender, id parts...)
//
// The id parts depend on the kind (see the package documentation); their
// number is fixed per kind, so the encoding is unambiguous.
func appendAAD(dst []byte, kind Kind, instance string, epoch uint64, sender string, id ...[]byte) []byte {
	return appendBound(dst, labelPayload, kind, instance, epoch, sender, id, nil, false)
}

// appendInner appends the bytes the sender signs inside the encryption:
//
//	keys.Message("world.inner", [version, kind], instance, epoch (8 bytes BE),
//	             sender, id parts..., plaintext)
func appendInner(dst []byte, kind Kind, instance string, epoch uint64, sender string, id [][]byte, plaintext []byte) []byte {
	return appendBound(dst, labelInner, kind, instance, epoch, sender, id, plaintext, true)
}

func appendBound(dst []byte, label string, kind Kind, instance string, epoch uint64, sender string, id [][]byte, tail []byte, withTail bool) []byte {
	var ep [8]byte
	putBE64(ep[:], epoch)
	parts := make([][]byte, 0, 6+len(id))
	parts = append(parts, []byte{Version, byte(kind)}, []byte(instance), ep[:], []byte(sender))
	parts = append(parts, id...)
	if withTail {
		parts = append(parts, tail)
	}
	return keys.AppendMessage(dst, label, parts...)
}

func putBE64(b []byte, v uint64) {
	_ = b[7]
	for i := 7; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
}

// sealSigned encrypts sig ‖ plaintext under the payload subkey of k, where
// sig is sender's signature over the inner bytes.
func (k *ContentKey) sealSigned(kind Kind, sender *keys.Private, id [][]byte, plaintext []byte) (*Envelope, error) {
	var nonce [NonceSize]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, fmt.Errorf("world: seal: %w", err)
	}
	return k.sealSignedNonce(kind, sender, id, plaintext, nonce)
}

// sealSignedNonce is sealSigned with a given nonce (for test vectors).
func (k *ContentKey) sealSignedNonce(kind Kind, sender *keys.Private, id [][]byte, plaintext []byte, nonce [NonceSize]byte) (*Envelope, error) {
	if sender == nil {
		return nil, errors.New("world: seal: nil sender")
	}
	if len(plaintext) > MaxCiphertext-TagSize-InnerSigSize {
		return nil, errors.New("world: seal: plaintext too large")
	}
	from := sender.Public().String()
	sig, err := sender.Sign(appendInner(nil, kind, k.instance, k.epoch, from, id, plaintext))
	if err != nil {
		return nil, fmt.Errorf("world: seal: %w", err)
	}
	e := &Envelope{Kind: kind, Epoch: k.epoch, Nonce: nonce}
	buf := make([]byte, 0, InnerSigSize+len(plaintext)+TagSize)
	buf = append(buf, sig...)
	buf = append(buf, plaintext...)
	ad := appendAAD(nil, kind, k.instance, k.epoch, from, id...)
	e.Ciphertext = k.payload.Seal(buf[:0], e.Nonce[:], buf, ad)
	return e, nil
}

// openSigned decrypts a message or data envelope and checks the sender's
// inner signature.
func (r *Keyring) openSigned(e *Envelope, kind Kind, sender string, id [][]byte) ([]byte, error) {
	if e.Kind != kind {
		return nil, envErr("want a " + kind.String() + " envelope")
	}
	k, ok := r.Key(e.Epoch)
	if !ok {
		return nil, fmt.Errorf("%w (epoch %d)", ErrUnknownEpoch, e.Epoch)
	}
	ad := appendAAD(nil, kind, k.instance, k.epoch, sender, id...)
	pt, err := k.payload.Open(nil, e.Nonce[:], e.Ciphertext, ad)
	if err != nil || len(pt) < InnerSigSize {
		return nil, ErrDecrypt
	}
	pub, err := r.parse(sender)
	if err != nil {
		return nil, ErrSender
	}
	sig, plaintext := pt[:InnerSigSize], pt[InnerSigSize:]
	if !pub.Verify(appendInner(nil, kind, k.instance, k.epoch, sender, id, plaintext), sig) {
		return nil, ErrSender
	}
	return plaintext, nil
}

// messageID returns the id parts of a message envelope: the message's ts
// (8 bytes big-endian, as a two's-complement int64) and its nonce.
func messageID(ts int64, nonce string) [][]byte {
	var b [8]byte
	putBE64(b[:], uint64(ts))
	return [][]byte{b[:], []byte(nonce)}
}

// SealMessage returns a heartbeat message from sender to k's instance,
// stamped ts, whose payload is the text envelope of plaintext under k. The
// message gets a fresh random nonce and is signed by sender (the outer
// signature, which the relay verifies). Inside the encryption, the
// plaintext is preceded by sender's signature over the instance, epoch,
// ts, nonce and plaintext.
//
// The envelope is bound to (instance, epoch, sender, ts, nonce): the same
// envelope under any other message fails to open, and resending the same
// message is a duplicate (same message id) that the log refuses.
func SealMessage(k *ContentKey, sender *keys.Private, ts time.Time, plaintext []byte) (heartbeat.Message, error) {
	var nb [MessageNonceSize]byte
	var en [NonceSize]byte
	if _, err := rand.Read(nb[:]); err != nil {
		return heartbeat.Message{}, fmt.Errorf("world: seal: %w", err)
	}
	if _, err := rand.Read(en[:]); err != nil {
		return heartbeat.Message{}, fmt.Errorf("world: seal: %w", err)
	}
	return sealMessage(k, sender, ts, b64.EncodeToString(nb[:]), en, plaintext)
}

// sealMessage is SealMessage with given nonces (for test vectors).
func sealMessage(k *ContentKey, sender *keys.Private, ts time.Time, msgNonce string, envNonce [NonceSize]byte, plaintext []byte) (heartbeat.Message, error) {
	m := heartbeat.Message{Instance: k.instance, TS: ts.UnixMilli(), Nonce: msgNonce}
	e, err := k.sealSignedNonce(KindMessage, sender, messageID(m.TS, m.Nonce), plaintext, envNonce)
	if err != nil {
		return heartbeat.Message{}, err
	}
	m.Payload = e.String()
	if err := m.Sign(heartbeat.KeySigner(sender)); err != nil {
		return heartbeat.Message{}, err
	}
	return m, nil
}

// OpenMessage decrypts the payload of a message of a private instance
// (also a log entry's, via [heartbeat.Entry.Message]) and checks the
// sender's signature inside it. It does not check the outer signature: the
// relay did before sequencing, and the inner one proves the same author to
// the member.
//
// Errors: [ErrEnvelope] (wrapped) for a payload that is not a message
// envelope, [ErrUnknownEpoch] for an epoch the keyring lacks, the opaque
// [ErrDecrypt] for anything that does not authenticate, [ErrSender] when
// the inner signature fails.
func (r *Keyring) OpenMessage(m *heartbeat.Message) ([]byte, error) {
	if m.Instance != r.instance {
		return nil, fmt.Errorf("world: message for %s, keyring for %s", m.Instance, r.instance)
	}
	e, err := CheckPayload(m.Payload)
	if err != nil {
		return nil, err
	}
	return r.openSigned(e, KindMessage, m.Author, messageID(m.TS, m.Nonce))
}

// OpenEntry is OpenMessage for a log entry of kind message.
func (r *Keyring) OpenEntry(e *heartbeat.Entry) ([]byte, error) {
	if e.Kind != heartbeat.KindMessage {
		return nil, fmt.Errorf("world: entry %d is a %s, not a message", e.Seq, e.Kind)
	}
	m := e.Message()
	return r.OpenMessage(&m)
}

// dataID returns the id parts of a data envelope: soul and field.
func dataID(soul, field string) [][]byte { return [][]byte{[]byte(soul), []byte(field)} }

// inInstance reports whether soul lies in the namespace of instance.
func inInstance(soul, instance string) bool {
	root := auth.InstancePrefix + instance
	return soul == root || strings.HasPrefix(soul, root+"/")
}

// SealField returns the text envelope of plaintext, sealed by writer under
// k for the field soul/field of k's instance, as the value to sign with
// [auth.SignField] (by the same writer) and put.
func SealField(k *ContentKey, writer *keys.Private, soul, field string, plaintext []byte) (graph.Value, error) {
	if !inInstance(soul, k.instance) {
		return graph.Value{}, fmt.Errorf("world: soul %q is not in instance %s", soul, k.instance)
	}
	e, err := k.sealSigned(KindData, writer, dataID(soul, field), plaintext)
	if err != nil {
		return graph.Value{}, err
	}
	return graph.String(e.String()), nil
}

// OpenField decrypts a private field as stored in the graph: the signed
// wrapper of package auth around a data envelope. It returns the plaintext
// and the writer (checked by the signature inside the envelope).
func (r *Keyring) OpenField(soul, field string, stored graph.Value) (plaintext []byte, writer string, err error) {
	if !inInstance(soul, r.instance) {
		return nil, "", fmt.Errorf("world: soul %q is not in instance %s", soul, r.instance)
	}
	w, err := parseWrapper(stored)
	if err != nil {
		return nil, "", err
	}
	writer = w.Writer
	if writer == "" {
		writer = r.instance
	}
	s, ok := w.Value.AsString()
	if !ok {
		return nil, "", envErr("field value is not a string")
	}
	e, err := ParseEnvelope(s)
	if err != nil {
		return nil, "", err
	}
	pt, err := r.openSigned(e, KindData, writer, dataID(soul, field))
	if err != nil {
		return nil, "", err
	}
	return pt, writer, nil
}

// snapshotNonce returns the synthetic nonce of a snapshot: the first 24
// bytes of HMAC-SHA256(snapshot-nonce subkey, keys.Message("world.snap-iv",
// aad) ‖ data).
func (k *ContentKey) snapshotNonce(ad, data []byte) [NonceSize]byte {
	h := hmac.New(sha256.New, k.snapNonce[:])
	h.Write(keys.Message(labelSnapIV, ad))
	h.Write(data)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	var n [NonceSize]byte
	copy(n[:], sum[:])
	return n
}

// SealSnapshot returns the binary envelope of snapshot data taken at log
// position seq, under k. Unlike messages it is deterministic: the nonce is
// synthetic (an HMAC of the associated data and the data, under its own
// subkey), so every honest member who holds the same state at seq produces
// the same bytes, and their snapshot votes (over the hash of these bytes)
// agree. It carries no sender signature; the signed votes name its hash.
// Equal snapshots therefore give equal ciphertexts, which the votes reveal
// anyway; nothing else about the data is revealed.
func SealSnapshot(k *ContentKey, seq uint64, data []byte) ([]byte, error) {
	if seq == 0 {
		return nil, errors.New("world: seal snapshot: seq 0")
	}
	if len(data) > MaxCiphertext-TagSize {
		return nil, errors.New("world: seal snapshot: data too large")
	}
	var s [8]byte
	putBE64(s[:], seq)
	ad := appendAAD(nil, KindSnapshot, k.instance, k.epoch, "", s[:])
	e := &Envelope{Kind: KindSnapshot, Epoch: k.epoch, Nonce: k.snapshotNonce(ad, data)}
	out := make([]byte, 0, HeaderSize+len(data)+TagSize)
	out = e.appendBinary(out)
	return k.snapshot.Seal(out, e.Nonce[:], data, ad), nil
}

// OpenSnapshot decrypts a snapshot blob for position seq and checks that it
// is exactly the deterministic encryption [SealSnapshot] makes (so a blob
// that some key holder encrypted differently does not pass).
func (r *Keyring) OpenSnapshot(seq uint64, blob []byte) ([]byte, error) {
	e, err := ParseEnvelopeBinary(blob)
	if err != nil {
		return nil, err
	}
	if e.Kind != KindSnapshot {
		return nil, envErr("want a snapshot envelope")
	}
	k, ok := r.Key(e.Epoch)
	if !ok {
		return nil, fmt.Errorf("%w (epoch %d)", ErrUnknownEpoch, e.Epoch)
	}
	var s [8]byte
	putBE64(s[:], seq)
	ad := appendAAD(nil, KindSnapshot, k.instance, k.epoch, "", s[:])
	data, err := k.snapshot.Open(nil, e.Nonce[:], e.Ciphertext, ad)
	if err != nil {
		return nil, ErrDecrypt
	}
	want := k.snapshotNonce(ad, data)
	if subtle.ConstantTimeCompare(want[:], e.Nonce[:]) != 1 {
		return nil, ErrDecrypt
	}
	return data, nil
}
