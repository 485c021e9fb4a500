"""Model optimization: ONNX export helpers, TensorRT engine builds (cluster Job or in-process),
the parity gate, and Triton model repositories."""
