"""zoomer: zoom videos into the fractal boundary of neural-network trainability.

    import zoomer
    exp = zoomer.Experiment(nonlinearity="tanh", steps=200)
    win = zoomer.Window.from_bounds(x=(-3.0, 6.0), y=(-3.0, 6.0))
    s = zoomer.landscape(exp, win, size=(256, 256))   # numpy float64 (H, W), row 0 = lowest y
"""
__version__ = "0.1.0"

from .engine import train_grid
from .landscape import landscape
from .experiment import Experiment, Problem
from .window import Window

__all__ = ["Experiment", "Problem", "Window", "landscape", "train_grid"]
