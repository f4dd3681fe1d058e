package election

import (
	"reflect"
	"strings"
	"testing"
)

func TestSortContendersLikeKazooLock(t *testing.T) {
	tests := []struct {
		name     string
		children []string
		want     []string
	}{
		{
			name:     "sorted by sequence, not by the random prefix",
			children: []string{"ffff__lock__0000000002", "0000__lock__0000000003", "aaaa__lock__0000000001"},
			want:     []string{"aaaa__lock__0000000001", "ffff__lock__0000000002", "0000__lock__0000000003"},
		},
		{
			name: "read-lock, foreign and malformed nodes are no contenders of a plain Lock",
			children: []string{
				"bbbb__rlock__0000000001", // kazoo ReadLock: only its WriteLock waits for it
				"cccc__lock__0000000005",
				"lock-0000000002",         // another recipe
				"dddd__lock__000000004",   // 9 digits
				"eeee__lock__0000000006x", // trailing text
				"ffff__lock__00000000007", // 11 digits: the last 10 follow no marker
				"gggg__lock__0000000003",
			},
			want: []string{"gggg__lock__0000000003", "cccc__lock__0000000005"},
		},
		{
			name:     "a wrapped (negative) sequence sorts first, as in kazoo's string sort",
			children: []string{"aaaa__lock__2147483647", "bbbb__lock__-2147483648"},
			want:     []string{"bbbb__lock__-2147483648", "aaaa__lock__2147483647"},
		},
		{
			name:     "empty",
			children: nil,
			want:     []string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := sortContenders(tt.children)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("sortContenders(%q) = %q, want %q", tt.children, got, tt.want)
			}
		})
	}
}

func TestPrefixIsKazooShaped(t *testing.T) {
	p := newPrefix()
	hex, ok := strings.CutSuffix(p, "__lock__")
	if !ok || len(hex) != 32 || strings.Trim(hex, "0123456789abcdef") != "" {
		t.Fatalf("prefix %q: want 32 lower-case hex digits then __lock__", p)
	}
	if newPrefix() == p {
		t.Fatal("two prefixes are equal")
	}
}
