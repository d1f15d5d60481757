"""The upload page: one server-rendered Flask page in front of the `esc` ensemble.

GET ``/`` shows the form; POST ``/`` takes the uploaded file (field ``audio``, optional
``top_k``), prepares it as the CLI does (``EscClient.load``: decode, mono, model rate, clip
length), classifies it over Triton and renders the top-K with confidence, the waveform sent, the
served log-mel (the ensemble's LOGMEL output) and a player for the upload. A bad file, a bad
top-K, a file over the size limit or an unreachable server is answered with the same page and
a message saying what to do (400, 400, 413, 503/502), so the next upload works as usual.

A fresh ``EscClient`` is made per request (``connect``), so the page recovers by itself when the
server comes back. Does not cover: authentication, HTTPS or a production WSGI server (the
command serves with Werkzeug's threaded server on 127.0.0.1 for local use).
"""

from __future__ import annotations

import logging
import mimetypes
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, render_template, request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.utils import secure_filename

from client.audio import AudioError
from client.triton import ClientError, EscClient
from client.web.images import data_uri, logmel_png, waveform_png

log = logging.getLogger(__name__)

AUDIO_PLAYER_MAX_BYTES = 8 * 2**20  # larger uploads are classified but not embedded for playback


@dataclass(frozen=True)
class Result:
    name: str  # the uploaded file's name
    top: list[tuple[str, float]]  # [(label, probability)], highest first
    waveform_png: str  # data: URI
    logmel_png: str  # data: URI
    audio: str | None  # data: URI of the upload, None when too large to embed
    sample_rate: int
    clip_seconds: float


def classify_upload(client: EscClient, name: str, data: bytes, mimetype: str, top_k: int) -> Result:
    """Classify the bytes of one uploaded file; AudioError names the file as uploaded."""
    with tempfile.TemporaryDirectory(prefix="esc-upload-") as tmp:
        path = Path(tmp) / (secure_filename(name) or "upload")
        path.write_bytes(data)
        try:
            wave = client.load(path)  # (samples,) at the model's rate and clip length
        except AudioError as err:
            raise AudioError(str(err).replace(str(path), name)) from None
    pred = client.classify_waveform(wave, top_k)
    audio_type = mimetypes.guess_type(name)[0] or mimetype
    return Result(
        name=name,
        top=pred.top,
        waveform_png=data_uri(waveform_png(wave, client.sample_rate)),
        logmel_png=data_uri(logmel_png(pred.logmel, client.clip_seconds)),
        audio=data_uri(data, audio_type) if len(data) <= AUDIO_PLAYER_MAX_BYTES else None,
        sample_rate=client.sample_rate,
        clip_seconds=client.clip_seconds,
    )


def create_app(connect: Callable[[], EscClient], *, triton_url: str, model: str = "esc",
               top_k: int = 5, max_upload_mb: float = 32.0) -> Flask:
    """The page's Flask app; ``connect()`` returns a ready client (or raises ClientError)."""
    if top_k < 1 or max_upload_mb <= 0:
        raise ValueError(f"need top_k >= 1 and max_upload_mb > 0, got {top_k}, {max_upload_mb}")
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = int(max_upload_mb * 2**20)

    def page(status: int = 200, **context):
        context.setdefault("top_k", top_k)
        return render_template("index.html", triton_url=triton_url, model=model, **context), status

    @app.get("/")
    def index():
        return page()

    @app.post("/")
    def classify():
        upload = request.files.get("audio")
        if upload is None or not upload.filename:
            return page(400, error="Choose an audio file (WAV, FLAC or OGG) first.")
        name = Path(upload.filename).name
        k_text = request.form.get("top_k") or str(top_k)
        try:
            client = connect()
        except ClientError as err:
            log.warning("upload of %s: %s", name, err)
            return page(503, error=f"The model server cannot be used: {err}", top_k=k_text)
        with client:
            n = len(client.labels)
            if not k_text.isdigit() or not 1 <= int(k_text) <= n:
                return page(400, top_k=k_text,
                            error=f"Top-K must be a whole number from 1 to {n}, got {k_text!r}.")
            try:
                result = classify_upload(client, name, upload.read(), upload.mimetype, int(k_text))
            except AudioError as err:
                return page(400, error=str(err), top_k=k_text)
            except ClientError as err:
                log.warning("upload of %s: %s", name, err)
                return page(502, error=f"The model server failed on this file: {err}", top_k=k_text)
        log.info("%s -> %s (%.3f)", name, *result.top[0])
        return page(result=result, top_k=k_text)

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(_err):
        return page(413,
                    error=f"The file is larger than {max_upload_mb:g} MB; upload a shorter clip.")

    return app
