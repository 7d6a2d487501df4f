package hub

import (
	"fmt"
	"io"
	"os"
	"time"
)

// progressWriter is where progress bars go: Client.Progress, or standard
// error when it is a terminal.
func (c *Client) progressWriter() io.Writer {
	if c.Progress != nil {
		return c.Progress
	}
	if st, err := os.Stderr.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
		return os.Stderr
	}
	return nil
}

// progress draws a one-line bar, redrawn at most every 100 ms.
type progress struct {
	w          io.Writer
	name       string
	total, cur int64
	last       time.Time
}

func newProgress(w io.Writer, name string, total, start int64) *progress {
	return &progress{w: w, name: name, total: total, cur: start}
}

func (p *progress) Write(b []byte) (int, error) {
	p.cur += int64(len(b))
	if p.w != nil && time.Since(p.last) >= 100*time.Millisecond {
		p.last = time.Now()
		p.draw()
	}
	return len(b), nil
}

func (p *progress) draw() {
	if p.total > 0 {
		pct := p.cur * 100 / p.total
		width := 30
		fill := int(pct) * width / 100
		bar := make([]byte, width)
		for i := range bar {
			bar[i] = ' '
			if i < fill {
				bar[i] = '='
			}
		}
		fmt.Fprintf(p.w, "\r%s [%s] %3d%% %s/%s", p.name, bar, pct, humanBytes(p.cur), humanBytes(p.total))
		return
	}
	fmt.Fprintf(p.w, "\r%s %s", p.name, humanBytes(p.cur))
}

func (p *progress) done(ok bool) {
	if p.w == nil {
		return
	}
	p.draw()
	if !ok {
		fmt.Fprint(p.w, " (interrupted)")
	}
	fmt.Fprintln(p.w)
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
