"""The upload page (client/web): rendering and errors with a stand-in client, then end to end in
headless Chromium against a real Triton (slow; skipped where Chromium or selenium is absent)."""

from __future__ import annotations

import base64
import io
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from client.audio import load_audio
from client.triton import EscClient, Prediction
from client.web import create_app
from client.web.images import DPI, LOGMEL_FIGSIZE, WAVEFORM_FIGSIZE
from tests.conftest import ESC10, env_with_venv, free_port, needs_esc10

CLIP = ESC10 / "audio" / "001 - Dog bark" / "5-203128-A.ogg"  # fold 5: held out by default
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")

pytestmark = needs_esc10


class StandInClient:
    """EscClient's interface without a server: fixed probabilities and log-mel."""

    labels = ["dog", "rain", "rooster"]
    sample_rate, clip_seconds = 22050, 5.0
    probabilities = np.array([0.2, 0.7, 0.1], np.float32)

    def load(self, path: str | Path) -> np.ndarray:
        return load_audio(path, self.sample_rate, self.clip_seconds)

    def classify_waveform(self, wave: np.ndarray, top_k: int = 5) -> Prediction:
        order = np.argsort(self.probabilities)[::-1][:top_k]
        logmel = np.random.default_rng(0).normal(-20, 10, (64, 216)).astype(np.float32)
        return Prediction([(self.labels[i], float(self.probabilities[i])) for i in order],
                          self.probabilities, logmel)

    def __enter__(self) -> StandInClient:
        return self

    def __exit__(self, *exc) -> None:
        pass


@pytest.fixture
def page():
    app = create_app(StandInClient, triton_url="stand-in:0", top_k=2, max_upload_mb=1)
    return app.test_client()


def upload(page, data: bytes, name: str, **form):
    return page.post("/", data={"audio": (io.BytesIO(data), name), **form},
                     content_type="multipart/form-data")


def shown_labels(html: str) -> list[str]:
    return re.findall(r'<td class="label">([^<]*)</td>', html)


def shown_error(html: str) -> str:
    found = re.search(r'<p id="error"[^>]*>([^<]*)</p>', html)
    return found.group(1) if found else ""


def image(html: str, element_id: str) -> np.ndarray:
    """The PNG data URI of <img id=element_id> as an (height, width, 3) array."""
    uri = re.search(rf'<img id="{element_id}" src="data:image/png;base64,([^"]+)"', html).group(1)
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri))).convert("RGB"))


def assert_not_blank(pixels: np.ndarray) -> None:
    assert pixels.std() > 10 and len(np.unique(pixels.reshape(-1, 3)[::7], axis=0)) > 20, "blank"


def test_the_page_shows_top_k_and_pictures(page) -> None:
    assert page.get("/").status_code == 200
    answer = upload(page, CLIP.read_bytes(), CLIP.name)
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200 and not shown_error(html)
    assert shown_labels(html) == ["rain", "dog"]  # top_k=2, highest first
    assert "70.0%" in html and "data:audio/ogg;base64," in html
    for element_id, (width, height) in (("waveform", WAVEFORM_FIGSIZE), ("logmel", LOGMEL_FIGSIZE)):
        pixels = image(html, element_id)
        assert pixels.shape[:2] == (round(height * DPI), round(width * DPI))
        assert_not_blank(pixels)


def test_bad_uploads_get_a_message_and_the_page_keeps_working(page) -> None:
    answer = upload(page, b"just some notes", "notes.txt")
    assert answer.status_code == 400
    message = shown_error(answer.get_data(as_text=True))
    assert message.startswith("notes.txt: not a readable audio file")
    assert "esc-upload-" not in message  # the temporary copy is not shown
    answer = page.post("/", data={}, content_type="multipart/form-data")
    assert answer.status_code == 400 and "Choose an audio file" in answer.get_data(as_text=True)
    for k, status in (("0", 400), ("1", 200), ("3", 200), ("4", 400), ("two", 400)):
        answer = upload(page, CLIP.read_bytes(), CLIP.name, top_k=k)
        assert answer.status_code == status, k
        if status == 400:
            message = shown_error(answer.get_data(as_text=True))
            assert "Top-K must be a whole number from 1 to 3" in message
    assert upload(page, b"\0" * (2**20 + 1), "big.wav").status_code == 413
    answer = upload(page, CLIP.read_bytes(), CLIP.name)
    assert answer.status_code == 200
    assert shown_labels(answer.get_data(as_text=True)) == ["rain", "dog"]


def test_an_unreachable_server_is_named_with_the_fix() -> None:
    url = f"127.0.0.1:{free_port()}"  # nothing listens there
    page = create_app(lambda: EscClient(url, "http", timeout=5), triton_url=url).test_client()
    answer = upload(page, CLIP.read_bytes(), CLIP.name)
    assert answer.status_code == 503
    message = shown_error(answer.get_data(as_text=True))
    assert re.search(rf"cannot reach Triton at {url}.*make serve", message), message
    assert page.get("/").status_code == 200


def test_create_app_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="need top_k >= 1"):
        create_app(StandInClient, triton_url="x", top_k=0)


# --- end to end: headless Chromium, the real command, a real Triton -----------------------------


def wait_for_page(url: str, process: subprocess.Popen, log_file: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"python -m client.web exited with {process.returncode}:\n"
                                 f"{log_file.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    raise AssertionError(f"the upload page did not answer on {url} within {timeout} s")


@pytest.fixture(scope="module")
def web_app(triton, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m client.web`` against the test server; yields the page's URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    log_file = tmp_path_factory.mktemp("web") / "client-web.log"
    command = [sys.executable, "-m", "client.web", "--triton-url", triton.http_url,
               "--port", str(port)]
    with log_file.open("w") as log:
        process = subprocess.Popen(command, cwd=Path(__file__).resolve().parents[1],
                                   env=env_with_venv(), stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_page(url, process, log_file)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
        pytest.skip("no Chromium: apt-get install -y chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1100,1500",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def submit(browser, path: Path) -> None:
    """Choose ``path`` in the form, submit, and wait for the answer page."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    # A flag on the old page's window tells it from the answer page. Waiting for the old <html>
    # to go stale raced with Chromium tearing the document down ("Node with given id does not
    # belong to the document"), so calls that land mid-navigation are retried.
    browser.execute_script("window.escOldPage = true")
    browser.find_element(By.ID, "audio").send_keys(str(path))
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(browser, 60, ignored_exceptions=(WebDriverException,)).until(
        lambda b: b.execute_script("return window.escOldPage === undefined && document.readyState === 'complete'"))
    WebDriverWait(browser, 60).until(
        lambda b: b.find_elements(By.ID, "results") or b.find_elements(By.ID, "error"))


@pytest.mark.slow
def test_upload_in_chromium_matches_the_client(browser, web_app: str, triton,
                                               tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    with EscClient(triton.http_url, "http") as client:
        expected = client.classify_file(CLIP, top_k=5).top
    browser.get(web_app)
    submit(browser, CLIP)
    labels = [cell.text for cell in browser.find_elements(By.CSS_SELECTOR, "#top-k td.label")]
    assert labels == [label for label, _ in expected]
    for element_id in ("waveform", "logmel"):  # decoded and drawn by the browser
        script = f"return document.getElementById('{element_id}').naturalWidth"
        assert browser.execute_script(script) > 0
    screenshot = tmp_path / "upload-page.png"
    assert browser.save_screenshot(str(screenshot))
    assert_not_blank(np.asarray(Image.open(screenshot).convert("RGB")))

    text = tmp_path / "notes.txt"
    text.write_text("not audio at all")
    submit(browser, text)
    error = browser.find_element(By.ID, "error").text
    assert error.startswith("notes.txt: not a readable audio file") and "WAV, FLAC or OGG" in error
    assert not browser.find_elements(By.ID, "results")

    submit(browser, CLIP)  # the page works after an error
    assert browser.find_element(By.CSS_SELECTOR, "#top-k td.label").text == expected[0][0]
