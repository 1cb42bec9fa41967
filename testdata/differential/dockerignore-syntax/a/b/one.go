a/b/one.go
