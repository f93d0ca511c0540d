"""ONNX export of registered models: export, validate against torch, optimise, quantise, record."""
