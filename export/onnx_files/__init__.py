"""ONNX files without torch: card I/O, atomic load and save, and the TensorRT lint."""
