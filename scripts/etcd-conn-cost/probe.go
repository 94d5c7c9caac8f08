// probe: K gRPC connections of one shape to one etcd, held until SIGINT/SIGTERM, so that
// cost.py can read what each costs etcd (docs/performance.md, "Where etcd's memory per process
// goes"). A Go clientv3 client, because the server's cost of a connection or a stream does not
// depend on the client's language; only the HTTP/2 settings a client sends could change it, and
// -win/-cwin send the ones tonic/hyper send.
//
// Each connection: one unary Get; -watch N watches on one stream (clientv3 puts every watch of a
// context on one stream, as etcd-sd does since its watches are multiplexed), or, with -split, one
// stream per watch (etcd-sd before); -lease stream: a lease kept alive by a standing
// LeaseKeepAlive stream (as etcd-sd does), once: renewed every 3.3 s by a stream opened and
// closed per renewal (KeepAliveOnce), none: no lease.
//
// Build (Debian's etcd and grpc sources, no module download):
//
//	mkdir -p /tmp/probe/src/probe && cp probe.go /tmp/probe/src/probe/ &&
//	GO111MODULE=off GOPATH=/tmp/probe:/usr/share/gocode go build -o /tmp/probe/probe probe
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.etcd.io/etcd/clientv3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

func fail(err error) {
	fmt.Println("ERR", err)
	os.Exit(1)
}

func main() {
	ep := flag.String("ep", "127.0.0.1:2379", "etcd (or grpc-proxy) endpoint")
	k := flag.Int("k", 200, "connections")
	watch := flag.Int("watch", 7, "watches per connection")
	split := flag.Bool("split", false, "one watch stream per watch instead of one per connection")
	lease := flag.String("lease", "stream", "none | stream | once")
	win := flag.Int("win", 0, "HTTP/2 initial stream window the client announces (0: grpc-go's)")
	cwin := flag.Int("cwin", 0, "HTTP/2 initial connection window (0: grpc-go's)")
	flag.Parse()
	var opts []grpc.DialOption
	if *win > 0 {
		opts = append(opts, grpc.WithInitialWindowSize(int32(*win)))
	}
	if *cwin > 0 {
		opts = append(opts, grpc.WithInitialConnWindowSize(int32(*cwin)))
	}
	ctx := context.Background()
	for i := 0; i < *k; i++ {
		c, err := clientv3.New(clientv3.Config{
			Endpoints:   []string{*ep},
			DialTimeout: 5 * time.Second,
			DialOptions: opts,
		})
		if err != nil {
			fail(err)
		}
		if _, err := c.Get(ctx, "x"); err != nil {
			fail(err)
		}
		for j := 0; j < *watch; j++ {
			wctx := clientv3.WithRequireLeader(ctx)
			if *split {
				// clientv3 opens one stream per distinct outgoing metadata.
				wctx = metadata.AppendToOutgoingContext(wctx, "w", fmt.Sprint(j))
			}
			c.Watch(wctx, fmt.Sprintf("/probe/svc%d/", j), clientv3.WithPrefix(), clientv3.WithCreatedNotify())
		}
		if *lease == "none" {
			continue
		}
		g, err := c.Grant(ctx, 10)
		if err != nil {
			fail(err)
		}
		switch *lease {
		case "stream":
			ch, err := c.KeepAlive(ctx, g.ID)
			if err != nil {
				fail(err)
			}
			go func() {
				for range ch {
				}
			}()
		case "once":
			go func(c *clientv3.Client, id clientv3.LeaseID) {
				for {
					time.Sleep(3300 * time.Millisecond)
					c.KeepAliveOnce(ctx, id)
				}
			}(c, g.ID)
		default:
			fail(fmt.Errorf("-lease %q", *lease))
		}
	}
	fmt.Println("READY")
	s := make(chan os.Signal, 1)
	signal.Notify(s, os.Interrupt, syscall.SIGTERM)
	<-s
}
