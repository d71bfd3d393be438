"""`python -m civicgrid.sla`: run the sla service with settings from the environment."""

from civicgrid.servicekit.service import run
from civicgrid.servicekit.settings import ServiceSettings
from civicgrid.sla.app import build


def main() -> None:
    run(build(ServiceSettings.from_env("sla")))


if __name__ == "__main__":
    main()
