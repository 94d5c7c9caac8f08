// gonaming: etcd's own Go naming code, for tests/go_interop.rs. Built offline in GOPATH mode
// against Debian's golang-etcd-server-dev (go.etcd.io/etcd/clientv3/naming/...).
//
//	gonaming ENDPOINT add TARGET NAME ADDR   AddEndpoint(TARGET/NAME, {Addr: ADDR})
//	gonaming ENDPOINT resolve TARGET N       etcd's gRPC resolver for etcd:///TARGET; prints
//	                                         the addresses, sorted, once it has N (10 s bound)
package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"time"

	clientv3 "go.etcd.io/etcd/clientv3"
	"go.etcd.io/etcd/clientv3/naming/endpoints"
	etcdresolver "go.etcd.io/etcd/clientv3/naming/resolver"
	gresolver "google.golang.org/grpc/resolver"
	"google.golang.org/grpc/serviceconfig"
)

// conn stands in for a gRPC ClientConn: it receives the resolver's states.
type conn struct{ states chan gresolver.State }

func (c *conn) UpdateState(s gresolver.State)  { c.states <- s }
func (c *conn) ReportError(error)              {}
func (c *conn) NewAddress([]gresolver.Address) {}
func (c *conn) NewServiceConfig(string)        {}
func (c *conn) ParseServiceConfig(string) *serviceconfig.ParseResult {
	return &serviceconfig.ParseResult{}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "gonaming:", err)
	os.Exit(1)
}

func main() {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{os.Args[1]}, DialTimeout: 5 * time.Second})
	if err != nil {
		fail(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	target := os.Args[3]
	switch os.Args[2] {
	case "add":
		em, err := endpoints.NewManager(cli, target)
		if err != nil {
			fail(err)
		}
		err = em.AddEndpoint(ctx, target+"/"+os.Args[4], endpoints.Endpoint{Addr: os.Args[5]})
		if err != nil {
			fail(err)
		}
	case "resolve":
		want, _ := strconv.Atoi(os.Args[4])
		b, err := etcdresolver.NewBuilder(cli)
		if err != nil {
			fail(err)
		}
		c := &conn{states: make(chan gresolver.State, 16)}
		r, err := b.Build(gresolver.Target{Scheme: "etcd", Endpoint: target}, c, gresolver.BuildOptions{})
		if err != nil {
			fail(err)
		}
		defer r.Close()
		for {
			select {
			case s := <-c.states:
				if len(s.Addresses) != want {
					continue
				}
				var addrs []string
				for _, a := range s.Addresses {
					addrs = append(addrs, a.Addr)
				}
				sort.Strings(addrs)
				for _, a := range addrs {
					fmt.Println(a)
				}
				return
			case <-ctx.Done():
				fail(fmt.Errorf("resolver did not find %d addresses in 10 s", want))
			}
		}
	default:
		fail(fmt.Errorf("unknown command %q", os.Args[2]))
	}
}
