# Serves the exported model repository with the official Triton container.
#   dvc repro export
#   docker build -t esc-triton .
#   docker run --rm -p 8000:8000 -p 8001:8001 -p 8002:8002 esc-triton          # CPU
#   docker run --rm --gpus all -p 8000:8000 -p 8001:8001 -p 8002:8002 esc-triton  # GPU
# 24.10 ships Triton 2.51.0, the same server as the nvidia-pytriton wheel used in development.
FROM nvcr.io/nvidia/tritonserver:24.10-py3

# The embedded repository runs ONNX through onnxruntime inside Python-backend models;
# numpy<2 because the Python backend of this release returns empty outputs under numpy 2.
RUN python3 -m pip install --no-cache-dir "numpy<2" "onnxruntime>=1.20,<2"

RUN useradd --create-home esc
COPY --chown=esc:esc artifacts/model_repository /models
USER esc

EXPOSE 8000 8001 8002
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8000/v2/health/ready || exit 1
ENTRYPOINT ["tritonserver", "--model-repository=/models", "--exit-on-error=true"]
