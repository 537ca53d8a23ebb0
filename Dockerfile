# Slipway's container image: the static binary plus the tools it drives (git, the docker CLI).
# Build: docker build -t slipway .   Run it next to the Docker engine it deploys with, e.g. with the
# engine's socket mounted (see docker-compose.yml).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/slipway ./cmd/slipway

FROM debian:bookworm-slim
# git for the mirror cache; docker.io for its CLI (the engine is the host's, reached through
# DOCKER_HOST or a mounted socket); ca-certificates for HTTPS remotes and registries.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends git docker.io ca-certificates tini \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home /var/lib/slipway --create-home slipway
COPY --from=build /out/slipway /usr/local/bin/slipway
USER slipway
ENV SLIPWAY_GIT_CACHE_DIR=/var/lib/slipway/git \
    SLIPWAY_LISTEN_ADDR=:8080
VOLUME /var/lib/slipway
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s CMD ["/usr/bin/env", "bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080"]
ENTRYPOINT ["/usr/bin/tini", "--", "slipway"]
CMD ["serve"]
