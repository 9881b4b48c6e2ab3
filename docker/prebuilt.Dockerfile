# Tests only (scripts/docker-test.sh): the shipped image's `runtime` stage with
# the binary that `scripts/build.sh release` built on this Debian 12 host, so a
# test does not compile brickwork a second time inside Docker.
#   docker build -f docker/Dockerfile --target runtime -t brickwork:runtime .
#   docker build -f docker/prebuilt.Dockerfile -t brickwork:local .
ARG RUNTIME_IMAGE=brickwork:runtime
FROM ${RUNTIME_IMAGE}
COPY build/release/brickwork /usr/bin/brickwork
