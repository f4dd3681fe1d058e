package credential

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
)

// KeySize is the size of a credential key: AES-256.
const KeySize = 32

// Key encrypts and decrypts credentials' secrets (AES-256-GCM).
type Key struct {
	aead cipher.AEAD
	id   string
}

// ID identifies the key without revealing it (the first 8 bytes of its
// SHA-256, in hex); each credential records the id of the key that sealed
// it, so a wrong key is named as such.
func (k *Key) ID() string { return k.id }

// NewKey makes a Key of 32 bytes.
func NewKey(raw []byte) (*Key, error) {
	if len(raw) != KeySize {
		return nil, fmt.Errorf("%w: a key is %d bytes, not %d", ErrKey, KeySize, len(raw))
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKey, err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKey, err)
	}
	sum := sha256.Sum256(raw)
	return &Key{aead: aead, id: hex.EncodeToString(sum[:8])}, nil
}

// LoadKeyFile reads a key file: 32 random bytes, raw or in base64 (what
// GenerateKeyFile writes). A file that others may read or write is refused.
func LoadKeyFile(path string) (*Key, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: no key file given (--credential-key-file or JOBENGINE_CREDENTIAL_KEY_FILE; make one with `jobengine credential keygen FILE`)", ErrKey)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%w: key file: %v", ErrKey, err)
	}
	if fi.Mode().Perm()&0o007 != 0 {
		return nil, fmt.Errorf("%w: key file %s is open to every user (mode %04o); run chmod o-rwx %s", ErrKey, path, fi.Mode().Perm(), path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: key file: %v", ErrKey, err)
	}
	raw := data
	if len(data) != KeySize {
		raw, err = base64.StdEncoding.DecodeString(strings.TrimSpace(string(data)))
		if err != nil || len(raw) != KeySize {
			return nil, fmt.Errorf("%w: key file %s does not hold a key (32 bytes, raw or base64); make one with `jobengine credential keygen FILE`", ErrKey, path)
		}
	}
	return NewKey(raw)
}

// GenerateKeyFile writes a new random key, in base64, to a file that must
// not exist yet (mode 0600).
func GenerateKeyFile(path string) (*Key, error) {
	raw := make([]byte, KeySize)
	if _, err := io.ReadFull(rand.Reader, raw); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKey, err)
	}
	if _, err := f.WriteString(base64.StdEncoding.EncodeToString(raw) + "\n"); err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return NewKey(raw)
}

// sealed is a credential's encrypted secrets as stored.
type sealed struct {
	Alg   string `json:"alg"`
	KeyID string `json:"key-id"`
	Nonce []byte `json:"nonce"`
	Data  []byte `json:"data"`
}

const algorithm = "AES-256-GCM"

// aad binds a ciphertext to its credential: secrets copied onto another
// credential's node do not decrypt.
func aad(name string, kind Kind) []byte {
	return []byte("jobengine-credential\x00" + name + "\x00" + string(kind))
}

func (k *Key) seal(plain []byte, name string, kind Kind) (sealed, error) {
	nonce := make([]byte, k.aead.NonceSize())
	if _, err := io.ReadFull(rand.Reader, nonce); err != nil {
		return sealed{}, err
	}
	return sealed{Alg: algorithm, KeyID: k.id, Nonce: nonce, Data: k.aead.Seal(nil, nonce, plain, aad(name, kind))}, nil
}

func (k *Key) open(s sealed, name string, kind Kind) ([]byte, error) {
	if s.Alg != algorithm {
		return nil, fmt.Errorf("%w: credential %s is sealed with %q, not %s", ErrKey, name, s.Alg, algorithm)
	}
	if s.KeyID != k.id {
		return nil, fmt.Errorf("%w: credential %s was sealed with key %s; this key is %s (wrong key file?)", ErrKey, name, s.KeyID, k.id)
	}
	if len(s.Nonce) != k.aead.NonceSize() {
		return nil, fmt.Errorf("%w: credential %s: bad nonce", ErrKey, name)
	}
	plain, err := k.aead.Open(nil, s.Nonce, s.Data, aad(name, kind))
	if err != nil {
		return nil, fmt.Errorf("%w: credential %s does not decrypt: altered, or moved from another credential", ErrKey, name)
	}
	return bytes.Clone(plain), nil
}
