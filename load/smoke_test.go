package load

import (
	"context"
	"testing"
	"time"
)

func TestSmoke(t *testing.T) {
	s := newStub(t)
	dir := t.TempDir()
	sum, err := Run(context.Background(), s.target, Options{Schedule: Constant(200, 2*time.Second), Logf: t.Logf}, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", sum)
	v, err := Verify(context.Background(), s.target, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", v)
}
