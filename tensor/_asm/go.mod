module github.com/embrace-go/embrace/tensor/_asm

go 1.26.0
