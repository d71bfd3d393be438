"""`python -m civicgrid.reporting`: run the reporting service with settings from the environment."""

from civicgrid.reporting.app import build
from civicgrid.servicekit.service import run
from civicgrid.servicekit.settings import ServiceSettings


def main() -> None:
    run(build(ServiceSettings.from_env("reporting")))


if __name__ == "__main__":
    main()
