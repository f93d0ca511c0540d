"""Studio: an offline generative studio for sprites, ad copy and music."""

__version__ = "0.1.0"
