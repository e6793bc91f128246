// bench/run.sh's Go target: net/http/httputil.ReverseProxy (the proxy in Coder's and E2B's
// port forwarding) doing the benchmark's routing: X-Cmux-Port-Internal: P goes to
// 127.0.0.1:P. ReverseProxy adds X-Forwarded-For and passes WebSocket upgrades through
// (Go 1.12+); the transport keeps upstream connections alive (64 idle per port, for the
// benchmark's 50 client connections). Standard library only: Debian's golang-go builds it
// offline. Usage: go-proxy --listen HOST:PORT
package main

import (
	"flag"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"time"
)

const portHeader = "X-Cmux-Port-Internal"

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "address to listen on")
	flag.Parse()

	transport := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        0, // no global cap
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     600 * time.Second,
		ForceAttemptHTTP2:   false,
	}
	proxy := &httputil.ReverseProxy{
		Director: func(r *http.Request) {
			port := r.Header.Get(portHeader)
			r.Header.Del(portHeader)
			r.URL.Scheme = "http"
			r.URL.Host = "127.0.0.1:" + port
			// X-Forwarded-Proto and -Host as the other proxies set them; ReverseProxy
			// appends X-Forwarded-For itself.
			r.Header.Set("X-Forwarded-Proto", "http")
			r.Header.Set("X-Forwarded-Host", r.Host)
		},
		Transport: transport,
		ErrorLog:  log.New(log.Writer(), "go-proxy: ", 0),
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := strconv.Atoi(r.Header.Get(portHeader))
		if err != nil || p < 1 || p > 65535 {
			http.Error(w, "missing or bad "+portHeader, http.StatusBadRequest)
			return
		}
		proxy.ServeHTTP(w, r)
	})
	srv := &http.Server{Addr: *listen, Handler: handler, IdleTimeout: 600 * time.Second}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("listening %s", ln.Addr())
	log.Fatal(srv.Serve(ln))
}
