package mpnet

import (
	"os"
	"testing"

	"github.com/embrace-go/embrace/hfdir"
)

// Any config.json parses or fails with an error, never a panic, and a
// config that parses has sizes a forward pass can use.
func FuzzParseConfig(f *testing.F) {
	seed, err := os.ReadFile("testdata/mpnet-cls/config.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(`{"model_type":"mpnet","hidden_size":7,"num_attention_heads":0}`))
	f.Add([]byte(`{"model_type":"mpnet","architectures":["MPNetForPreTraining"],"max_position_embeddings":2}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		hc, err := hfdir.ParseConfig(data, "config.json")
		if err != nil {
			return
		}
		c, err := ParseConfig(hc)
		if err != nil {
			return
		}
		if c.HeadDim()*c.NumAttentionHeads != c.HiddenSize || c.MaxPositions() <= 0 || len(c.Labels) == 0 {
			t.Fatalf("accepted %+v", c)
		}
	})
}
