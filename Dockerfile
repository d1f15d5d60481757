# Serves the native model repository with the official Triton container.
#
# artifacts/model_repository_native is written by the export stage (`dvc repro export`): the same
# ONNX files as the embedded repository, on Triton's onnxruntime backend. Each model's default
# config runs on the GPU with the TensorRT execution accelerator (classifier FP16, log-mel FP32),
# engines cached under /cache/tensorrt and warmed up on a real clip; configs/cpu.pbtxt is the CPU
# variant of each model, picked with --model-config-name=cpu.
#
#   dvc repro export
#   docker build -t esc-triton:0.1.0 .
#
#   # GPU: mount a volume on the engine cache so that only the first start builds TensorRT engines
#   docker run --rm --gpus all -p 8000:8000 -p 8001:8001 -p 8002:8002 \
#       -v esc-trt-cache:/cache/tensorrt esc-triton:0.1.0
#
#   # CPU: onnxruntime on the CPU, no TensorRT
#   docker run --rm -p 8000:8000 -p 8001:8001 -p 8002:8002 esc-triton:0.1.0 \
#       tritonserver --model-repository=/models --model-config-name=cpu --exit-on-error=true
#
#   curl -fsS http://127.0.0.1:8000/v2/health/ready && esc-classify clip.ogg --url 127.0.0.1:8001
#
# 24.10 ships Triton 2.51.0, the server of the nvidia-pytriton wheel used in development and tests.
FROM nvcr.io/nvidia/tritonserver:24.10-py3

# A fixed numeric UID, so that Kubernetes' runAsNonRoot can verify it.
RUN useradd --no-log-init --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin esc \
    && mkdir -p /cache/tensorrt \
    && chown esc:esc /cache/tensorrt

COPY artifacts/model_repository_native /models

USER 10001:10001
EXPOSE 8000 8001 8002

# python3 is part of every -py3 image; urlopen fails on any status but 2xx (400 while loading).
HEALTHCHECK --interval=10s --timeout=3s --start-period=300s --retries=3 \
    CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/v2/health/ready', timeout=2)"]

# The image's entrypoint (/opt/nvidia/nvidia_entrypoint.sh) runs this command.
CMD ["tritonserver", "--model-repository=/models", "--exit-on-error=true", "--strict-readiness=true"]
