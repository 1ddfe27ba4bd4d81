// Package deploy holds no code: its tests validate the deployment files of
// the repository — the Dockerfile, docker-compose.yml and the kustomize
// manifests under deploy/k8s — since no Docker engine or cluster runs where
// the tests run. The tests build the three binaries and take the
// environment variables each one reads from its own -h output and its own
// "missing required settings" error, so a renamed flag fails here.
//
// The program deploy/healthcheck is the container health probe the image
// ships (see the Dockerfile).
package deploy
