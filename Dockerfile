# Slipway's container image: the slipway binary and the clients it runs (git; a docker CLI with the
# buildx plugin), and nothing of the Docker engine: Slipway drives the host's engine through its
# socket or DOCKER_HOST (see docker-compose.yml).
#
#   make image                       # docker build with VERSION, REVISION and CREATED filled in
#   docker build --build-arg VERSION=1.2.3 -t slipway:1.2.3 .
#
# The docker CLI and buildx are built from their Go modules at the versions below, checked against
# the Go checksum database: the CLI speaks Engine API 1.41 through the newest, so it works with
# engines from 20.10 on (Engine 29 refuses clients older than API 1.44, such as Debian's 20.10 CLI).
# GOPROXY (a --build-arg) points the Go stages at a module mirror. GO_IMAGE and BASE_IMAGE let a
# build use pinned digests or a private mirror of the two base images.
ARG GO_IMAGE=golang:1.26-bookworm
ARG BASE_IMAGE=debian:bookworm-slim

# --- the docker CLI and buildx: static binaries, rebuilt only when their versions change ---------
FROM ${GO_IMAGE} AS clients
ARG GOPROXY
ARG DOCKER_CLI_VERSION=29.9.2
ARG BUILDX_VERSION=0.38.2
# The golang images say GOTOOLCHAIN=local; auto fetches (and checksums) the Go that a go.mod asks
# for when the image's is older.
ENV CGO_ENABLED=0 GOTOOLCHAIN=auto
# docker/cli has no go.mod (it versions by calendar); its vendor.mod is one, with vendor.sum its
# go.sum. The module zip has no vendor/ tree, so modules are fetched (and checksummed) instead.
RUN set -eux; \
    cli=github.com/docker/cli@v${DOCKER_CLI_VERSION}+incompatible; \
    go mod download "$cli"; \
    cp -R "$(go env GOMODCACHE)/$cli" /tmp/cli; \
    chmod -R u+w /tmp/cli; \
    cd /tmp/cli; \
    rm -rf vendor; \
    cp vendor.mod go.mod; \
    cp vendor.sum go.sum; \
    go build -trimpath -mod=mod -tags 'grpcnotrace osusergo netgo' \
      -ldflags "-s -w -X github.com/docker/cli/cli/version.Version=${DOCKER_CLI_VERSION} -X github.com/docker/cli/cli/version.GitCommit=v${DOCKER_CLI_VERSION}" \
      -o /out/docker ./cmd/docker; \
    GOBIN=/out go install -trimpath \
      -ldflags "-s -w -X github.com/docker/buildx/version.Version=v${BUILDX_VERSION} -X github.com/docker/buildx/version.Package=github.com/docker/buildx" \
      "github.com/docker/buildx/cmd/buildx@v${BUILDX_VERSION}"; \
    /out/docker --version; \
    /out/buildx version; \
    cd /; \
    rm -rf /tmp/cli; \
    go clean -modcache -cache

# --- slipway ----------------------------------------------------------------------------------------
FROM ${GO_IMAGE} AS build
ARG GOPROXY
ENV GOTOOLCHAIN=auto
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/slipway ./cmd/slipway \
 && /out/slipway version

# --- the image --------------------------------------------------------------------------------------
FROM ${BASE_IMAGE}
ARG BASE_IMAGE
ARG VERSION=dev
ARG REVISION=
ARG CREATED=
LABEL org.opencontainers.image.title="slipway" \
      org.opencontainers.image.description="Self-hosted deployment server: GitHub pushes built, pushed and rolled out, with a deployment history" \
      org.opencontainers.image.source="https://github.com/slipway-dev/slipway" \
      org.opencontainers.image.documentation="https://github.com/slipway-dev/slipway#readme" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"
# git for the mirror cache; ca-certificates for HTTPS remotes and registries; tini as PID 1, so
# that SIGTERM reaches slipway and the processes it leaves behind (git, docker) are reaped.
# The user has a fixed uid/gid (10001) for volume ownership; it reaches the Docker socket through
# the socket's group, added at run time (group_add / --group-add), never by running as root.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends git ca-certificates tini \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log \
 && groupadd --system --gid 10001 slipway \
 && useradd --system --uid 10001 --gid slipway --home-dir /var/lib/slipway --create-home \
      --shell /usr/sbin/nologin slipway
COPY --from=clients /out/docker /usr/local/bin/docker
COPY --from=clients /out/buildx /usr/local/libexec/docker/cli-plugins/docker-buildx
COPY --from=build /out/slipway /usr/local/bin/slipway
USER 10001:10001
# SLIPWAY_LISTEN_ADDR wins over listen_addr in a config file: set the port here (-e), and the
# HEALTHCHECK, which reads it too, asks the right one. Secrets may come as files:
# SLIPWAY_..._FILE=/run/secrets/... (slipway reads them itself; see README.md).
ENV HOME=/var/lib/slipway \
    SLIPWAY_LISTEN_ADDR=:8080 \
    SLIPWAY_GIT_CACHE_DIR=/var/lib/slipway/git \
    DOCKER_CLI_HINTS=false
WORKDIR /var/lib/slipway
VOLUME /var/lib/slipway
EXPOSE 8080
# `slipway healthcheck` asks /readyz (database reachable and migrated) on the listen address; it
# reads no secret. Its own timeout (3s) is under Docker's.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 CMD ["/usr/local/bin/slipway", "healthcheck"]
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/slipway"]
CMD ["serve"]
