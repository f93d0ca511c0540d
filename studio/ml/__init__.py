"""Torch and onnxruntime code: models, sampling, data, training, export and runtimes. Never imports Qt."""
