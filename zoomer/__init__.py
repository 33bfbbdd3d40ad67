"""zoomer: zoom videos into the fractal boundary of neural-network trainability."""
