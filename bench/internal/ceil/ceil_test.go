package ceil

import "testing"

func TestReadSum(t *testing.T) {
	for _, n := range []int{0, 5, 64, 200, 1000} {
		s := make([]float32, n)
		for i := range s {
			s[i] = float32(i % 7)
		}
		if got, want := ReadSum(s), readSumGo(s); got != want {
			t.Errorf("ReadSum(%d values) = %v, want %v", n, got, want)
		}
	}
}

func TestFMALoop(t *testing.T) {
	// Each accumulator grows by 0.5·1e-6 per iteration; the result adds lane
	// 0 of every accumulator.
	accs := map[string]float64{"avx512": 16, "avx2": 14, "go": 8}[FMAKind()]
	want := 200 * 5e-7 * accs
	if got := float64(FMALoop(200)); got < want*0.99 || got > want*1.01 {
		t.Fatalf("FMALoop(200) = %v, want about %v (kind %s)", got, want, FMAKind())
	}
}
