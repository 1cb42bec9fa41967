src/c/test_y.go
