package main

// checkEncoder runs a BERT-family model fixture.
func checkEncoder(dir string, r *Report) {
	r.Fail("unsupported: encoder runner not built yet")
}
