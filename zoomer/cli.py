"""The `zoomer` command (thin): compose the config, hand it to the pipeline, report errors."""
import hydra

from .config import HYDRA_VERSION_BASE, register_configs
from .errors import quiet_when_piped, run_reporting_errors
from .render import render

register_configs()


@quiet_when_piped
@hydra.main(version_base=HYDRA_VERSION_BASE, config_path="pkg://zoomer.conf", config_name="config")
def main(cfg) -> None:
    run_reporting_errors(render, cfg)


if __name__ == "__main__":
    main()
