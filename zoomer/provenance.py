"""How a result was made: the device and the package versions, written beside every output."""
import platform
from importlib import metadata

import torch

PACKAGES = ("zoomer", "torch", "numpy", "hydra-core", "imageio-ffmpeg", "pillow")


def provenance(device: torch.device) -> dict:
    """The device (with its model) and versions: enough to tell whether two results compare."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    name = str(device)
    if device.type == "cuda":
        name += f" ({torch.cuda.get_device_name(device)})"
    else:
        name += f" ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    return {"device": name, "versions": versions}
