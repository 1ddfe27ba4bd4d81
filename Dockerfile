# syntax=docker/dockerfile:1
#
# One image, four services: /usr/local/bin/issuer, /usr/local/bin/revoker,
# /usr/local/bin/example and /usr/local/bin/verifierd (the local authorizer
# for proxies), plus /usr/local/bin/healthcheck (the compose health probe:
# the runtime image has no shell or curl). Choose the service with the
# command:
#
#   docker build -t jwtrevoke .
#   docker run --rm jwtrevoke issuer -h
#   docker run --rm jwtrevoke revoker -h
#
# The default command is the example service. One image keeps the
# binaries on the same commit (they share the wire contract) and costs a
# few MB more than three images.

ARG GO_VERSION=1.26

# ---- build: static binaries, cross-compiled on the build platform --------
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src
# Modules first, so a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS TARGETARCH
# CGO_ENABLED=0: fully static, runs on distroless/static (no libc).
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w" -o /out/ \
        ./cmd/issuer ./cmd/revoker ./cmd/example ./cmd/verifierd ./deploy/healthcheck

# ---- runtime: no shell, no package manager, uid 65532 --------------------
# Pin by digest in your registry mirror (gcr.io/distroless/static-debian12:nonroot@sha256:...).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/issuer /out/revoker /out/example /out/verifierd /out/healthcheck /usr/local/bin/
USER 65532:65532
EXPOSE 8080 8081 8082 8083
CMD ["example"]
