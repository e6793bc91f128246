module cmux-bench-go-proxy

go 1.19
