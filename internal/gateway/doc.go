// Package gateway holds the tests of jwtrevoke behind real proxies: a real
// nginx (from Debian's packages; `make deps` installs it) running
// deploy/nginx/jwtrevoke.conf, the configuration docs/gateways.md gives,
// in front of verifierd and an upstream. [RunNginx] starts one for a test.
package gateway
