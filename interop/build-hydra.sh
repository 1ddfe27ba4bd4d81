#!/usr/bin/env bash
# Builds Ory Hydra from its module source into interop/.bin/hydra, once.
#
# Hydra's go.mod has replace directives, so `go install ...@version` refuses
# it; we download the module source through the Go module proxy, copy it to a
# writable dir and build it as the main module, with cgo and the sqlite tags
# Hydra's own Makefile uses, so that DSN=memory works. A second run with the
# binary present (and reporting the wanted version) does nothing.
set -euo pipefail

HYDRA_VERSION="${HYDRA_VERSION:-v2.3.0}"
here="$(cd "$(dirname "$0")" && pwd)"
bin="$here/.bin/hydra"
src="$here/.build/hydra-$HYDRA_VERSION"
GO="${GO:-go}"

if [ -x "$bin" ] && "$bin" version 2>/dev/null | grep -q "$HYDRA_VERSION"; then
	echo "hydra $HYDRA_VERSION already built: $bin"
	exit 0
fi

start=$(date +%s)
echo "downloading github.com/ory/hydra/v2@$HYDRA_VERSION"
# Run outside any module so the download does not touch a go.mod.
dir="$(cd / && GOFLAGS=-mod=mod "$GO" mod download -json "github.com/ory/hydra/v2@$HYDRA_VERSION" |
	sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
if [ -z "$dir" ] || [ ! -f "$dir/go.mod" ]; then
	echo "module download gave no source dir" >&2
	exit 1
fi

rm -rf "$src"
mkdir -p "$src" "$here/.bin"
cp -R "$dir/." "$src/"
chmod -R u+w "$src"

# internal/httpclient is a nested module, so the module zip leaves it out and
# the replace pointing at it breaks the build. The published
# github.com/ory/hydra-client-go/v2 at the version go.mod requires is used
# instead; only Hydra's CLI subcommands import it, not the server.
if [ ! -d "$src/internal/httpclient" ]; then
	(cd "$src" && "$GO" mod edit -dropreplace github.com/ory/hydra-client-go/v2)
fi

echo "building hydra $HYDRA_VERSION in $src (cgo, -tags sqlite,sqlite_omit_load_extension)"
cd "$src"
CGO_ENABLED=1 GOFLAGS=-mod=mod GOWORK=off "$GO" build \
	-tags sqlite,sqlite_omit_load_extension \
	-ldflags "-X github.com/ory/hydra/v2/driver/config.Version=$HYDRA_VERSION -X github.com/ory/hydra/v2/driver/config.Commit=module-proxy" \
	-o "$bin.tmp" .
mv "$bin.tmp" "$bin"

end=$(date +%s)
echo "built $bin in $((end - start))s"
"$bin" version
