src/a/b/main.go
