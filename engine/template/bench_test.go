package template

import (
	"testing"
)

// BenchmarkLaunch10Slices launches a template with 10 slices over a
// 20,000-host inventory: the snapshot is read from ZooKeeper, the hosts
// selected and counted per slice, and the container and its 10 slices
// created with the pin, in one transaction.
func BenchmarkLaunch10Slices(b *testing.B) {
	e := newEnv(b, 0)
	ctx := ctxT(b)
	if _, _, err := e.l.Inventories.Import(ctx, "big", hosts(20000)); err != nil {
		b.Fatal(err)
	}
	if err := e.l.Templates.Create(ctx, &Template{Name: "ten", Action: "echo", Inventory: "big", SliceCount: 10, Priority: 100}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := e.l.Launch(ctx, Request{Template: "ten"})
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Slices) != 10 || res.Slices[9].Hosts != 2000 {
			b.Fatalf("%d slices", len(res.Slices))
		}
	}
}
