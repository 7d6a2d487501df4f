module github.com/embrace-go/embrace

go 1.26.0

require (
	github.com/rivo/uniseg v0.4.7
	golang.org/x/sys v0.50.0
	golang.org/x/text v0.32.0
	gonum.org/v1/gonum v0.17.0
)
