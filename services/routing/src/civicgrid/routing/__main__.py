"""`python -m civicgrid.routing`: run the routing service with settings from the environment."""

from civicgrid.routing.app import build
from civicgrid.servicekit.service import run
from civicgrid.servicekit.settings import ServiceSettings


def main() -> None:
    run(build(ServiceSettings.from_env("routing")))


if __name__ == "__main__":
    main()
