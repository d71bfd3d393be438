# The `civicgrid` command (src/civicgrid/cli): the image the provisioning Job runs
# (`civicgrid provision`), also handy for `civicgrid simulate` against a cluster.
# Build from the repository root:
#   docker build -f deploy/docker/cli.Dockerfile -t civicgrid/cli:dev .
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/civicgrid
WORKDIR /src
# The root package depends on every library and service (the CLI runs them all for `up`).
COPY libs libs
COPY services services
COPY pyproject.toml pyproject.toml
COPY src src
RUN /opt/civicgrid/bin/pip install \
        ./libs/events ./libs/city ./libs/servicekit \
        ./services/intake ./services/routing ./services/sla ./services/reporting \
        .

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
