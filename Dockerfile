# syntax=docker/dockerfile:1
#
# Every BEDS role's image; the build argument ROLE (a folder of services/)
# picks the role. The build context is the repository root:
#
#   docker build --build-arg ROLE=appserver -t beds/appserver .
#
# ROLE has no default: a build without it fails at the first COPY
# ("/services/go.mod": not found) instead of building some other role under
# the tag given. An ARG is scoped to its stage, so each stage declares ROLE.
#
# Stage "build" compiles only this role's module and the shared module, with
# GOWORK=off: go.work is not in the context (.dockerignore), so the role's
# go.mod and go.sum alone pin every dependency, and its
# "replace .../shared => ../../shared" resolves because /src keeps the
# repository's layout (/src/shared, /src/services/$ROLE). go.mod and go.sum
# are copied first so the dependency download is a cached layer that only a
# dependency change invalidates.
#
# The final image is distroless static (CA certificates, tzdata, user
# nonroot 65532, no shell): the static, stripped binary /beds, the templates
# at /etc/beds/templates and the base config at /etc/beds/config/beds.toml.
# Override either by mounting over those folders (an env_prod.toml mounted
# into /etc/beds/config layers over beds.toml) or with BEDS_* variables.
#
# deploy/check (go test) builds every role exactly as below, with
# --build-arg ROLE=<role>, and runs the binary with this file's ENV,
# HEALTHCHECK and ENTRYPOINT.

FROM --platform=$BUILDPLATFORM golang:1.26-bookworm AS build
ARG ROLE
ARG TARGETOS TARGETARCH
ENV GOWORK=off CGO_ENABLED=0
WORKDIR /src/services/${ROLE}
COPY shared/go.mod shared/go.sum /src/shared/
COPY services/${ROLE}/go.mod services/${ROLE}/go.sum ./
RUN go mod download
COPY shared/ /src/shared/
COPY services/${ROLE}/ ./
RUN GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -ldflags="-s -w" -o /out/beds .

FROM gcr.io/distroless/static-debian12:nonroot
ARG ROLE
LABEL org.opencontainers.image.title="beds-${ROLE}" \
      org.opencontainers.image.description="BEDS ${ROLE} node"
COPY --from=build /out/beds /beds
COPY templates/ /etc/beds/templates/
COPY deploy/config/beds.toml /etc/beds/config/beds.toml
ENV BEDS_CONFIG_DIR=/etc/beds/config \
    BEDS_TEMPLATE_DIR=/etc/beds/templates \
    BEDS_HTTP_ADDR=0.0.0.0:8080 \
    BEDS_ENV=prod
USER nonroot:nonroot
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["/beds", "healthcheck"]
ENTRYPOINT ["/beds"]
