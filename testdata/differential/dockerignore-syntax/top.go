top.go
