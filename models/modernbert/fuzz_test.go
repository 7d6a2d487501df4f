package modernbert

import (
	"os"
	"testing"

	"github.com/embrace-go/embrace/hfdir"
)

// Any config.json parses or fails with an error, never a panic, and a
// config that parses has sizes a forward pass can use.
func FuzzParseConfig(f *testing.F) {
	seed, err := os.ReadFile("testdata/modernbert-mlm/config.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(`{"model_type":"modernbert","num_hidden_layers":2,"layer_types":["full_attention"]}`))
	f.Add([]byte(`{"model_type":"modernbert","rope_parameters":{"full_attention":{"rope_theta":-1}},"global_attn_every_n_layers":0}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		hc, err := hfdir.ParseConfig(data, "config.json")
		if err != nil {
			return
		}
		c, err := ParseConfig(hc)
		if err != nil {
			return
		}
		if c.HeadDim()*c.NumAttentionHeads != c.HiddenSize || c.HeadDim()%2 != 0 || len(c.Global) != c.NumHiddenLayers ||
			!(c.GlobalRopeTheta > 0) || !(c.LocalRopeTheta > 0) || c.Window() < 0 {
			t.Fatalf("accepted %+v", c)
		}
	})
}
