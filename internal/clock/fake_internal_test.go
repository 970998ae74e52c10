package clock

import (
	"testing"
	"time"
)

func TestFakeTieOrderIsArmingOrder(t *testing.T) {
	f := NewFake(time.Unix(0, 0))
	var ws []*waiter
	for i := 0; i < 5; i++ {
		ws = append(ws, (*waiter)(f.NewTimer(time.Second).(*fakeTimer)))
	}
	for i, w := range ws {
		if f.armed[0] != w {
			t.Fatalf("step %d: next waiter is not the %d-th armed", i, i)
		}
		if !f.fireNext(time.Second) {
			t.Fatalf("step %d: nothing fired", i)
		}
	}
	if f.fireNext(time.Second) {
		t.Fatal("fired more than armed")
	}
}
