package configstore

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

type obj struct {
	Name  string `json:"name"`
	Value int    `json:"value"`
}

func (o *obj) ObjectName() string { return o.Name }

func (o *obj) Validate() error {
	if err := ValidName("thing", o.Name); err != nil {
		return err
	}
	if o.Value < 0 {
		return fmt.Errorf("%w: negative value", Invalid("thing"))
	}
	return nil
}

func TestDecodeRefusesBadObjects(t *testing.T) {
	var o obj
	if err := Decode([]byte(`{"name": "a", "value": 1}`), "/config/things/a", "a", &o); err != nil || o.Value != 1 {
		t.Fatalf("a good object: %v", err)
	}
	for name, data := range map[string]string{
		"not json":      `{"name": `,
		"unknown field": `{"name": "a", "value": 1, "extra": true}`,
		"trailing data": `{"name": "a"} {}`,
		"invalid":       `{"name": "a", "value": -1}`,
		"other name":    `{"name": "b"}`,
		"too big":       `{"name": "a", "pad": "` + strings.Repeat("x", MaxObjectBytes) + `"}`,
	} {
		err := Decode([]byte(data), "/config/things/a", "a", &obj{})
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "/config/things/a") {
			t.Errorf("%s: %v, want ErrCorrupt naming the path", name, err)
		}
	}
}

func TestNames(t *testing.T) {
	for _, good := range []string{"a", "web-1", "A.b_c", strings.Repeat("x", MaxNameBytes)} {
		if err := ValidName("thing", good); err != nil {
			t.Errorf("%q: %v", good, err)
		}
	}
	for _, bad := range []string{"", "-a", ".a", "a b", "a/b", "é", strings.Repeat("x", MaxNameBytes+1)} {
		if err := ValidName("thing", bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: %v, want ErrInvalid", bad, err)
		}
	}
	// Invalid sentinels of different kinds all match ErrInvalid.
	if !errors.Is(fmt.Errorf("x: %w", Invalid("template")), ErrInvalid) || errors.Is(ErrNotFound, ErrInvalid) {
		t.Fatal("Invalid does not match ErrInvalid")
	}
	if _, err := Encode(&obj{Name: "a", Value: -1}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Encode of an invalid object: %v", err)
	}
}
