"""`python -m civicgrid.intake`: run the intake service with settings from the environment."""

from civicgrid.intake.app import build
from civicgrid.servicekit.service import run
from civicgrid.servicekit.settings import ServiceSettings


def main() -> None:
    run(build(ServiceSettings.from_env("intake")))


if __name__ == "__main__":
    main()
