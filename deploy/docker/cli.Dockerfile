# The `civicgrid` command (src/civicgrid/cli): the image the provisioning Job runs
# (`civicgrid provision`), also handy for `civicgrid simulate` against a cluster.
# Build from the repository root:
#   docker build -f deploy/docker/cli.Dockerfile -t civicgrid/cli:dev .
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
# uv installs exactly what uv.lock pins, from PyPI, checking every hash; no cache in the image,
# bytecode compiled here so the read-only runtime never needs to write it.
ENV UV_NO_CACHE=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/civicgrid
WORKDIR /src
# The pinned uv, fetched and hash-checked with the standard library (no pip needed in the base).
# Behind a TLS-inspecting proxy, the build secret "ca-bundle" is the CA bundle to trust
# (deploy/docker/images.py passes $SSL_CERT_FILE); a secret never lands in a layer.
COPY tools/bootstrap_uv.py tools/bootstrap_uv.py
RUN --mount=type=secret,id=ca-bundle \
    if [ -s /run/secrets/ca-bundle ]; then export SSL_CERT_FILE=/run/secrets/ca-bundle; fi; \
    python tools/bootstrap_uv.py /opt/uv
COPY pyproject.toml pyproject.toml
COPY uv.lock uv.lock
# The root package depends on every library and service (the CLI runs them all for `up`).
COPY libs libs
COPY services services
COPY src src
# The whole workspace's locked runtime dependencies (no dev extras).
RUN --mount=type=secret,id=ca-bundle \
    if [ -s /run/secrets/ca-bundle ]; then export SSL_CERT_FILE=/run/secrets/ca-bundle; fi; \
    /opt/uv/uv sync --frozen --no-editable

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 civicgrid \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /tmp \
        --shell /usr/sbin/nologin civicgrid
COPY --from=build /opt/civicgrid /opt/civicgrid
COPY config/longgang /etc/civicgrid/city
ENV PATH=/opt/civicgrid/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    CIVICGRID_CONFIG=/etc/civicgrid/city
USER 10001:10001
ENTRYPOINT ["civicgrid"]
CMD ["--help"]
