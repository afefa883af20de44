"""fxaccel: a torch.fx graph-rewriting compiler for vanilla PyTorch video models."""
__version__ = "0.1.0"
