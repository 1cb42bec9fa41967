vendor/pkg/sub/x.go
