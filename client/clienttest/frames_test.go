package clienttest

import (
	"slices"
	"testing"
)

func TestPayloadTimes(t *testing.T) {
	frame := []byte(`{"put":{"lum/x/log/0":{"1":"{\\\"payload\\\":\\\"{\\\\\\\"t\\\\\\\":1}\\\"}","2":"{\\\"t\\\":42}","3":"{\\\"t\\\":7}"}}}`)
	seen := map[string]bool{"7": true}
	if got := PayloadTimes(frame, seen); !slices.Equal(got, []int64{42}) {
		t.Fatalf("PayloadTimes = %v, want [42]", got)
	}
	if got := PayloadTimes(frame, seen); len(got) != 0 {
		t.Fatalf("second pass = %v, want nothing new", got)
	}
	t.Setenv("CLIENTTEST_N", "12")
	if EnvInt("CLIENTTEST_N", 3) != 12 || EnvInt("CLIENTTEST_UNSET", 3) != 3 {
		t.Fatal("EnvInt")
	}
	t.Setenv("CLIENTTEST_N", "-1")
	if EnvInt("CLIENTTEST_N", 3) != 3 {
		t.Fatal("EnvInt takes a non-positive value")
	}
}
