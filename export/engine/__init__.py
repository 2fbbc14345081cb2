"""ONNX → TensorRT engine and its sidecar; needs TensorRT, never torch."""
