"""Run a registered model's graph through torch or onnxruntime behind one interface."""
