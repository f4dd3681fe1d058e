package zkconn

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/go-zookeeper/zk"
)

// reply builds a multiRead reply: the reply header, then one result per
// entry of data (nil: a missing node), then the closing header.
func reply(code int32, data ...[]byte) []byte {
	xid := int32(minOwnXid)
	b := binary.BigEndian.AppendUint32(nil, uint32(xid))
	b = binary.BigEndian.AppendUint64(b, 42)
	b = binary.BigEndian.AppendUint32(b, uint32(code))
	for _, d := range data {
		if d == nil {
			b = appendMultiHeader(b, opError, false, -101)
			noNode := int32(-101)
			b = binary.BigEndian.AppendUint32(b, uint32(noNode))
			continue
		}
		b = appendMultiHeader(b, opGetData, false, 0)
		b = binary.BigEndian.AppendUint32(b, uint32(len(d)))
		b = append(b, d...)
		stat := make([]byte, 68)
		binary.BigEndian.PutUint32(stat[32:36], 7) // version
		b = append(b, stat...)
	}
	return appendMultiHeader(b, -1, true, -1)
}

func TestDecodeMultiRead(t *testing.T) {
	out := make([]Got, 2)
	code, err := decodeMultiRead(reply(0, []byte("abc"), nil), out)
	if err != nil || code != 0 {
		t.Fatalf("a good reply: code %d, %v", code, err)
	}
	if string(out[0].Data) != "abc" || out[0].Stat.Version != 7 || out[0].Err != nil || !errors.Is(out[1].Err, zk.ErrNoNode) {
		t.Fatalf("decoded %+v / %+v", out[0], out[1])
	}
	if code, err := decodeMultiRead(reply(codeUnimplemented), out); err != nil || code != codeUnimplemented {
		t.Fatalf("a refused request: code %d, %v", code, err)
	}
	good := reply(0, []byte("abc"), nil)
	for name, b := range map[string][]byte{
		"cut short":     good[:len(good)-3],
		"one result":    reply(0, []byte("abc")),
		"three results": reply(0, []byte("abc"), nil, nil),
		"no header":     good[:10],
	} {
		if _, err := decodeMultiRead(b, make([]Got, 2)); err == nil {
			t.Errorf("%s: decoded without an error", name)
		}
	}
}
