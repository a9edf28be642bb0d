// Command fakeharbor runs the e2e fake Harbor standalone, with its own fake
// Docker Hub when a project is a proxy-cache, and prints each request it
// receives.
//
//	fakeharbor -listen 127.0.0.1:21500 -projects library:public,team:private,hub:proxy -users alice:secret
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/harbormirror/harbormirror/e2e/harbor"
	"github.com/harbormirror/harbormirror/e2e/images"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	projects := flag.String("projects", "library:public,team:private,hub:proxy",
		"comma-separated NAME:public|private|proxy; proxy projects are public proxy-caches of -hub")
	users := flag.String("users", "alice:secret", "comma-separated USER:PASSWORD, members of every private project")
	adminPassword := flag.String("admin-password", "Harbor12345", "password of the admin user")
	hubURL := flag.String("hub", "", "upstream of proxy projects; empty starts a fake Docker Hub")
	externalScheme := flag.String("external-scheme", "http", "scheme of Harbor's external URL, for the token realm")
	absoluteHTTP := flag.Bool("absolute-http-locations", false, "absolute http://<Host>/v2/... upload Locations, as Harbor behind a TLS proxy")
	seed := flag.String("seed", images.Hello+","+images.Single,
		"comma-separated standard images stored as <project>/<image>:latest in every project (library/<image> in the hub)")
	quiet := flag.Bool("quiet", false, "do not print each request")
	flag.Parse()

	if err := run(*listen, *projects, *users, *adminPassword, *hubURL, *externalScheme, *absoluteHTTP, *seed, *quiet); err != nil {
		log.Fatal("fakeharbor: ", err)
	}
}

func run(listen, projectList, userList, adminPassword, hubURL, externalScheme string, absoluteHTTP bool, seed string, quiet bool) error {
	ctx := context.Background()
	seedImages := splitList(seed)
	var trace io.Writer = os.Stdout
	if quiet {
		trace = nil
	}

	opts := harbor.Options{
		Addr:                        listen,
		Users:                       map[string]string{},
		AdminPassword:               adminPassword,
		ExternalScheme:              externalScheme,
		AbsoluteHTTPUploadLocations: absoluteHTTP,
		Trace:                       trace,
	}
	for _, user := range splitList(userList) {
		name, password, ok := strings.Cut(user, ":")
		if !ok {
			return fmt.Errorf("user %q: want USER:PASSWORD", user)
		}
		opts.Users[name] = password
	}
	for _, spec := range splitList(projectList) {
		name, kind, _ := strings.Cut(spec, ":")
		project := harbor.Project{Name: name}
		switch kind {
		case "public", "":
			project.Public = true
		case "private":
			for user := range opts.Users {
				project.Members = append(project.Members, user)
			}
		case "proxy":
			if hubURL == "" {
				hub, err := harbor.StartDockerHub()
				if err != nil {
					return err
				}
				defer hub.Close()
				if err := images.Seed(ctx, hub, "library", seedImages...); err != nil {
					return err
				}
				hubURL = hub.URL
				fmt.Printf("fakeharbor: fake Docker Hub on %s\n", hub.URL)
			}
			project.Public, project.ProxyCacheOf = true, hubURL
		default:
			return fmt.Errorf("project %q: want NAME:public|private|proxy", spec)
		}
		opts.Projects = append(opts.Projects, project)
	}

	srv, err := harbor.Start(opts)
	if err != nil {
		return err
	}
	defer srv.Close()
	for _, project := range opts.Projects {
		if project.ProxyCacheOf == "" {
			if err := images.Seed(ctx, srv, project.Name, seedImages...); err != nil {
				return err
			}
		}
	}
	srv.ResetLog()
	fmt.Printf("fakeharbor: listening on %s\n", srv.URL)

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	<-stop
	return nil
}

func splitList(s string) []string {
	var items []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			items = append(items, item)
		}
	}
	return items
}
