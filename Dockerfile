# warden as a container image: a static binary on distroless (no shell, no package manager, CA
# certificates included), run as the non-root user 65532. docs/deploy.md says what `warden run`'s
# sandbox needs in a container; `serve` needs nothing special.
#
#   docker build --build-arg VERSION="$(git describe --tags --always --dirty)" \
#     --build-arg COMMIT="$(git rev-parse --short=12 HEAD)" -t warden:local .
#   docker run -p 127.0.0.1:8787:8787 -v warden-data:/var/lib/warden warden:local
FROM golang:1.26 AS build
ARG VERSION=dev
ARG COMMIT=
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# Pure Go (the SQLite driver is modernc.org/sqlite), built with the flags of `make release`.
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X github.com/wardenhq/warden/internal/cli.Version=${VERSION} -X github.com/wardenhq/warden/internal/cli.Commit=${COMMIT}" -o /out/warden ./cmd/warden \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/warden /usr/local/bin/warden
# The data directory, owned by the non-root user, so that a named volume mounted on it is too.
COPY --from=build --chown=65532:65532 /out/data /var/lib/warden
ENV WARDEN_DATA=/var/lib/warden
VOLUME /var/lib/warden
EXPOSE 8787
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/warden"]
CMD ["serve", "--listen", "0.0.0.0:8787"]
