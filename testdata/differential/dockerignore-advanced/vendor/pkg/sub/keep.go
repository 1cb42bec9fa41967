vendor/pkg/sub/keep.go
