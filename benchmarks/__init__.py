"""Serving benchmarks: Triton (perf_analyzer) vs FastAPI + eager PyTorch vs in-process onnxruntime."""
