# syntax=docker/dockerfile:1
# xbt-tracker as a small static image: a CGO-free binary on Alpine (for the
# health check's wget; nothing else is added), running as an unprivileged user.
#   docker build -t xbt-tracker .
#   docker run --rm -e XBT_DSN='user:pass@tcp(db:3306)/xbt' -p 2710:2710 xbt-tracker
# docker-compose.yml runs it with MariaDB.

ARG GO_VERSION=1.26
ARG ALPINE_VERSION=3.22

FROM golang:${GO_VERSION}-alpine AS build
WORKDIR /src
# Modules first, so a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags='-s -w' -o /out/xbt-tracker ./cmd/xbt-tracker

FROM alpine:${ALPINE_VERSION}
RUN addgroup -S -g 10001 xbt && adduser -S -D -H -u 10001 -G xbt -s /sbin/nologin xbt \
    && mkdir -p /var/lib/xbt-tracker && chown 10001:10001 /var/lib/xbt-tracker
COPY --from=build /out/xbt-tracker /usr/local/bin/xbt-tracker
USER 10001:10001
# The working directory is the tracker's, writable by uid 10001: the state file
# (state_file, default xbt-tracker.state: the swarms saved at a clean stop for a warm
# restart) goes here. Mount a volume here to keep it when the container is replaced
# (docker-compose.yml does).
WORKDIR /var/lib/xbt-tracker
# HTTP announce/scrape/statistics/metrics and UDP (BEP 15) on listen_port.
EXPOSE 2710/tcp 2710/udp
# /statistics answers once the tracker has loaded the database and listens
# (it moves to admin_listen when that is set: override the check then).
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD wget -q -O /dev/null http://127.0.0.1:2710/statistics || exit 1
# SIGTERM drains: in-flight requests finish and statistics are flushed
# within shutdown_timeout (30 s): give `docker stop` longer (-t 45).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/xbt-tracker"]
CMD ["serve"]
