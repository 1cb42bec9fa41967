src/a/b/test_x.go
