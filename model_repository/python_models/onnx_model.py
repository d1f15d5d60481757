"""Triton Python-backend model that runs the ``model.onnx`` beside it with onnxruntime.

Copied as ``<model>/<version>/model.py`` for each ONNX model of the embedded repository (the
pip-installed server has only the Python backend). The same ``model.onnx`` and tensor names are
served by the native onnxruntime backend in the official container.

Per ``execute`` call, requests whose inputs have equal shapes are concatenated into one
onnxruntime run; each request still gets its own response, and a bad request gets an
INVALID_ARG error without failing the others. Config parameters (all optional):
``intra_op_threads`` (onnxruntime threads, 0 = its default) and ``max_input_elements``
(per batch item; longer inputs are rejected).
"""

import json
import os

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils


def _param(config: dict, key: str, default: int) -> int:
    value = config.get("parameters", {}).get(key, {}).get("string_value", "")
    return int(value) if value else default


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        self.name = args["model_name"]
        (self.input,) = config["input"]
        self.outputs = [o["name"] for o in config["output"]]
        self.max_elements = _param(config, "max_input_elements", 0)
        options = ort.SessionOptions()
        options.intra_op_num_threads = _param(config, "intra_op_threads", 0)
        options.inter_op_num_threads = 1
        path = os.path.join(args["model_repository"], args["model_version"], "model.onnx")
        providers = ["CPUExecutionProvider"]
        if args.get("model_instance_kind") == "GPU" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": int(args["model_instance_device_id"])}))
        self.session = ort.InferenceSession(path, options, providers=providers)

    def _check(self, array: np.ndarray) -> str | None:
        name = self.input["name"]
        if array.size == 0 or array.shape[-1] == 0:
            return f"{self.name}: input {name} is empty (shape {list(array.shape)}); send at least one sample"
        if self.max_elements and array[0].size > self.max_elements:
            return (
                f"{self.name}: input {name} has {array[0].size} values per item, more than the "
                f"{self.max_elements} this model accepts; split long recordings into windows"
            )
        if not np.isfinite(array).all():
            return f"{self.name}: input {name} contains NaN or infinite values; clean the audio before sending"
        return None

    def execute(self, requests):
        responses = [None] * len(requests)
        groups = {}
        for i, request in enumerate(requests):
            array = pb_utils.get_input_tensor_by_name(request, self.input["name"]).as_numpy()
            error = self._check(array)
            if error is not None:
                responses[i] = pb_utils.InferenceResponse(
                    error=pb_utils.TritonError(error, pb_utils.TritonError.INVALID_ARG)
                )
            else:
                groups.setdefault(array.shape[1:], []).append((i, array))
        for members in groups.values():
            try:
                batch = np.concatenate([a for _, a in members]) if len(members) > 1 else members[0][1]
                results = self.session.run(self.outputs, {self.input["name"]: batch})
            except Exception as err:  # one failed run answers its own requests only
                for i, _ in members:
                    responses[i] = pb_utils.InferenceResponse(
                        error=pb_utils.TritonError(f"{self.name}: inference failed: {err}")
                    )
                continue
            offset = 0
            for i, array in members:
                n = array.shape[0]
                tensors = [
                    pb_utils.Tensor(name, np.ascontiguousarray(out[offset : offset + n]))
                    for name, out in zip(self.outputs, results)
                ]
                responses[i] = pb_utils.InferenceResponse(output_tensors=tensors)
                offset += n
        return responses
