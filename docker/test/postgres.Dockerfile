# Tests only (scripts/docker-test.sh): Debian 12's own PostgreSQL 15 in place
# of the postgres:15 image where no registry is reachable. Same contract as
# that image for what compose.yaml uses: POSTGRES_USER, POSTGRES_DB,
# POSTGRES_PASSWORD_FILE; plus PGPORT (host networking in the test).
ARG DEBIAN_IMAGE=debian:12-slim
FROM ${DEBIAN_IMAGE}
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      postgresql-15 postgresql-client-15 \
    && rm -rf /var/lib/apt/lists/*
COPY docker/test/postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint
USER postgres
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGPORT=5432
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint"]
