package inventory

import (
	"fmt"
	"testing"
)

// BenchmarkImport20k parses a 20,000-host Ansible JSON inventory (about
// 3.4 MB, three variables per host, 7 groups) and stores it in ZooKeeper,
// replacing the previous import: what `jobengine inventory import` does.
func BenchmarkImport20k(b *testing.B) {
	s := newTestStore(b, Config{})
	ctx := ctxT(b)
	file := generated(20000, 7)
	b.SetBytes(int64(len(file)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c, err := ParseAnsible(file)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := s.Import(ctx, "bench", c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScriptSlice20k reads a 20,000-host inventory from ZooKeeper and
// prints slice 3 of 10 with its host variables: what `jobengine inventory
// script NAME --slice 3/10 --hostvars` does.
func BenchmarkScriptSlice20k(b *testing.B) {
	s := newTestStore(b, Config{})
	ctx := ctxT(b)
	if _, _, err := s.Import(ctx, "bench", mustParse(b, generated(20000, 7))); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, c, err := s.Content(ctx, "bench")
		if err != nil {
			b.Fatal(err)
		}
		sub, hosts, err := c.SliceOf("", 3, 10)
		if err != nil || len(hosts) != 2000 {
			b.Fatal(err, len(hosts))
		}
		out, err := sub.Ansible(ExportOptions{Hostvars: true})
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(out)))
	}
}

// BenchmarkSliceFormula cuts 20,000 selected hosts into 10 slices, without
// ZooKeeper: the formula's own cost.
func BenchmarkSliceFormula(b *testing.B) {
	c := mustParse(b, generated(20000, 7))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sel := c.Select(nil)
		for k := 1; k <= 10; k++ {
			if len(SliceHosts(sel, k, 10)) != 2000 {
				b.Fatal(fmt.Sprint("slice ", k))
			}
		}
	}
}
