package access

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"
)

// Passwords are hashed with argon2id (RFC 9106), a memory-hard function,
// and stored in the PHC string format
// "$argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>", so the
// parameters can be raised later without invalidating stored hashes.

// The parameters of new hashes: OWASP's minimum for argon2id (19 MiB, 2
// passes, 1 lane), a few tens of milliseconds on one core.
const (
	argonMemory  = 19 * 1024
	argonPasses  = 2
	argonLanes   = 1
	argonKeyLen  = 32
	argonSaltLen = 16
)

// Bounds on the parameters of a stored hash: a hash read from ZooKeeper is
// input, and one asking for gigabytes must not take the controller down.
const (
	maxArgonMemory = 256 * 1024
	maxArgonPasses = 10
	maxArgonLanes  = 16
)

// ValidPassword checks a new password's length.
func ValidPassword(pw string) error {
	switch {
	case len(pw) < MinPassword:
		return fmt.Errorf("%w: the password is shorter than %d characters", ErrInvalid, MinPassword)
	case len(pw) > MaxPassword:
		return fmt.Errorf("%w: the password is longer than %d bytes", ErrInvalid, MaxPassword)
	}
	return nil
}

// HashPassword returns the argon2id hash of pw in PHC format.
func HashPassword(pw string) (string, error) {
	if err := ValidPassword(pw); err != nil {
		return "", err
	}
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(pw), salt, argonPasses, argonMemory, argonLanes, argonKeyLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonPasses, argonLanes,
		enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

// phc is a parsed argon2id hash.
type phc struct {
	memory    uint32
	passes    uint32
	lanes     uint8
	salt, key []byte
}

// parseHash parses and bounds a stored hash.
func parseHash(h string) (*phc, error) {
	parts := strings.Split(h, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return nil, fmt.Errorf("%w: password hash is not argon2id v=%d in PHC format", ErrInvalid, argon2.Version)
	}
	var m, t, p uint64
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, ok := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if !ok || err != nil {
			return nil, fmt.Errorf("%w: password hash parameters %q", ErrInvalid, parts[3])
		}
		switch k {
		case "m":
			m = n
		case "t":
			t = n
		case "p":
			p = n
		default:
			return nil, fmt.Errorf("%w: password hash parameter %q", ErrInvalid, k)
		}
	}
	if m < 8 || m > maxArgonMemory || t < 1 || t > maxArgonPasses || p < 1 || p > maxArgonLanes {
		return nil, fmt.Errorf("%w: password hash parameters %q are out of bounds", ErrInvalid, parts[3])
	}
	enc := base64.RawStdEncoding
	salt, err1 := enc.DecodeString(parts[4])
	key, err2 := enc.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(salt) > 64 || len(key) < 16 || len(key) > 64 {
		return nil, fmt.Errorf("%w: password hash salt or key", ErrInvalid)
	}
	return &phc{memory: uint32(m), passes: uint32(t), lanes: uint8(p), salt: salt, key: key}, nil
}

// ValidHash checks that h is a password hash this package can verify.
func ValidHash(h string) error {
	_, err := parseHash(h)
	return err
}

// CheckPassword reports whether pw matches the stored hash h.
func CheckPassword(h, pw string) bool {
	p, err := parseHash(h)
	if err != nil || len(pw) > MaxPassword {
		return false
	}
	key := argon2.IDKey([]byte(pw), p.salt, p.passes, p.memory, p.lanes, uint32(len(p.key)))
	return subtle.ConstantTimeCompare(key, p.key) == 1
}

// dummyHash is checked against when a user does not exist, so that an
// unknown user takes as long to refuse as a wrong password.
var dummyHash = func() string {
	h, err := HashPassword("not a password of anyone")
	if err != nil {
		panic(err)
	}
	return h
}()

// verifyCache remembers recent successful password checks for a short
// while, so that HTTP basic authentication (a password on every request)
// does not pay for argon2id on every request. A key covers the user, the
// stored hash and the password: a changed password or hash misses.
type verifyCache struct {
	mu   sync.Mutex
	ttl  time.Duration
	max  int
	seen map[[32]byte]time.Time
}

func newVerifyCache(ttl time.Duration, max int) *verifyCache {
	return &verifyCache{ttl: ttl, max: max, seen: map[[32]byte]time.Time{}}
}

func cacheKey(user, hash, pw string) [32]byte {
	return sha256.Sum256([]byte(user + "\x00" + hash + "\x00" + pw))
}

func (c *verifyCache) check(user, hash, pw string, now time.Time) bool {
	k := cacheKey(user, hash, pw)
	c.mu.Lock()
	exp, ok := c.seen[k]
	c.mu.Unlock()
	if ok && now.Before(exp) {
		return true
	}
	if !CheckPassword(hash, pw) {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.seen) >= c.max {
		for key, e := range c.seen {
			if !now.Before(e) || len(c.seen) >= c.max {
				delete(c.seen, key)
			}
		}
	}
	c.seen[k] = now.Add(c.ttl)
	return true
}
