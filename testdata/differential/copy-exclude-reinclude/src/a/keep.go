src/a/keep.go
