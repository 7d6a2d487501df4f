package main

// checkTokenizer runs a tokenizer fixture (cases.jsonl).
func checkTokenizer(dir string, r *Report) {
	r.Fail("unsupported: tokenizer checks not built yet")
}
