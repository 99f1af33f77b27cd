"""``cogvx demo`` end to end: the real server process, a real headless Chromium, a load test.

One server (the shipped shapes model, ``--queue-size 1``) is started for the module on a free
loopback port, with its working folder, ``TMPDIR`` and ``HOME`` pointed at empty folders; the
browser types a prompt, clicks Generate and waits for the video element; the served mp4 is
fetched and decoded to the requested frame count; a corrupt upload shows its error on the page and
the next request still works; eight concurrent requests from the loopback address each get a
video or a "busy" answer, every video is on disk, and the server is still up; nothing was written
outside the output folder.

The browser is Debian's ``chromium`` + ``chromium-driver`` (``.ci/run`` installs them): when
either is missing the tests fail, they do not skip.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from cogvx.videoio import read_video

pytestmark = pytest.mark.integration

START_TIMEOUT_S = float(os.environ.get("COGVX_DEMO_START_TIMEOUT", "600"))
RUN_TIMEOUT_S = float(os.environ.get("COGVX_DEMO_RUN_TIMEOUT", "600"))
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def _browser() -> tuple[str, str]:
    """Chromium and its driver: ``COGVX_CHROMIUM`` / ``COGVX_CHROMEDRIVER`` or the PATH."""
    browser = os.environ.get("COGVX_CHROMIUM") or next(
        (p for p in map(shutil.which, BROWSERS) if p), None
    )
    driver = os.environ.get("COGVX_CHROMEDRIVER") or shutil.which("chromedriver")
    hosted = Path(os.environ.get("CHROMEWEBDRIVER", "/nonexistent")) / "chromedriver"
    driver = driver or (str(hosted) if hosted.is_file() else None)  # GitHub's runner images
    if not browser or not driver:
        pytest.fail(
            f"the browser tests need Chromium and chromedriver (found browser={browser}, "
            f"driver={driver}): apt-get install -y chromium chromium-driver (.ci/run does this)"
        )
    return browser, driver


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.out = root / "out"
        self.cwd, self.tmp, self.home = (root / n for n in ("cwd", "tmp", "home"))
        for d in (self.cwd, self.tmp, self.home):
            d.mkdir()
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = root / "server.log"
        env = {**os.environ, "TMPDIR": str(self.tmp), "HOME": str(self.home)}
        env.setdefault("OMP_NUM_THREADS", "1")
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "cogvx.demo", "--port", str(self.port)),
                *("--output-dir", str(self.out), "--queue-size", "1", "--max-upload-mb", "5"),
            ],
            cwd=self.cwd,
            env=env,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"cogvx demo exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                with urllib.request.urlopen(self.url, timeout=5) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        pytest.fail(f"cogvx demo did not serve {self.url} in {START_TIMEOUT_S} s:\n{self.tail()}")

    def runs(self) -> list[Path]:
        return sorted(p for p in self.out.iterdir() if p.is_dir() and not p.name.startswith("."))

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    browser = _browser()  # fail before starting anything when the browser is missing
    s = Server(tmp_path_factory.mktemp("demo"))
    s.browser = browser
    try:
        s.wait_ready()
        yield s
    finally:
        code = s.stop()
        print(f"cogvx demo exited with {code}; log:\n{s.tail()}")


@pytest.fixture(scope="module")
def driver(server):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, chromedriver = server.browser
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in (
        "--headless=new",
        "--no-sandbox",  # CI containers run as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,1400",
        f"--user-data-dir={server.root / 'browser-profile'}",
    ):
        options.add_argument(arg)
    d = webdriver.Chrome(service=Service(chromedriver), options=options)
    d.set_page_load_timeout(120)
    try:
        d.get(server.url)
        yield d
    finally:
        d.quit()


def _wait(what: str, condition, timeout: float = RUN_TIMEOUT_S, server: Server | None = None):
    deadline = time.monotonic() + timeout
    from selenium.common.exceptions import StaleElementReferenceException

    while time.monotonic() < deadline:
        try:
            value = condition()
        except StaleElementReferenceException:  # the page re-rendered under us: look again
            value = None
        if value:
            return value
        if server is not None and server.proc.poll() is not None:
            pytest.fail(f"the server died while waiting for {what}:\n{server.tail()}")
        time.sleep(0.25)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def _find(driver, css: str):
    from selenium.webdriver.common.by import By

    found = driver.find_elements(By.CSS_SELECTOR, css)
    return found[0] if found else None


def _element(driver, css: str, timeout: float = 180):
    """The element, once the page has rendered it (Gradio renders a tab when it is shown)."""
    return _wait(css, lambda: _find(driver, css), timeout)


def _tab(driver, title: str):
    from selenium.webdriver.common.by import By

    def find():
        tabs = driver.find_elements(By.CSS_SELECTOR, "button[role='tab']")
        return next((b for b in tabs if b.text.strip() == title), None)

    return _wait(f"the {title} tab", find, 180)


def _video_src(driver, task: str) -> str | None:
    video = _find(driver, f"#{task}-video video")
    return video.get_attribute("src") if video is not None else None


def _generate_in_page(driver, server: Server, prompt: str, frames: str) -> tuple[str, dict]:
    """Type ``prompt``, pick ``frames``, click Generate; the new video's URL and the record."""
    old = _video_src(driver, "t2v")
    button = _element(driver, "#t2v-generate")  # rendered last: the tab is ready
    box = _element(driver, "#t2v-prompt textarea")
    box.clear()
    box.send_keys(prompt)
    radio = _element(driver, f"#t2v-frames input[value='{frames}']")
    driver.execute_script("arguments[0].click()", radio)
    button.click()
    src = _wait(
        "the video element",
        lambda: (s := _video_src(driver, "t2v")) and s != old and s,
        server=server,
    )
    record = _wait(
        "generation.json on the page",
        lambda: _record_text(driver),
        60,
    )
    return src, record


def _record_text(driver) -> dict | None:
    el = _find(driver, "#t2v-record .cm-content")
    if el is None:
        return None
    text = driver.execute_script("return arguments[0].innerText", el)
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None


def _fetch_frames(url: str, dest: Path) -> int:
    with urllib.request.urlopen(url, timeout=60) as r:
        dest.write_bytes(r.read())
    return read_video(dest).num_frames


def test_generate_in_the_browser(server, driver, tmp_path) -> None:
    t0 = time.monotonic()
    src, record = _generate_in_page(driver, server, "a red circle moves to the right", "17")
    elapsed = time.monotonic() - t0
    assert src.startswith(server.url) and src.endswith(".mp4"), src
    assert _fetch_frames(src, tmp_path / "served.mp4") == 17
    assert record["num_frames"] == 17 and record["prompt"] == "a red circle moves to the right"
    assert record["steps"] == 25 and record["guidance_scale"] == 6.0  # the shapes defaults
    seed_box = _find(driver, "#t2v-seed input")
    assert int(float(seed_box.get_attribute("value"))) == record["seed"]  # shown, reusable
    downloads = "".join(_find(driver, "#t2v-files").text.split())  # names wrap at the suffix
    for name in ("video.mp4", "video.gif", "generation.json"):
        assert name in downloads, downloads
    [run] = server.runs()
    assert sorted(p.name for p in run.iterdir()) == [
        "generation.json", "video.gif", "video.mp4", "video.png",
    ]  # fmt: skip
    shot = tmp_path / "demo.png"
    driver.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    if os.environ.get("COGVX_DEMO_SCREENSHOT"):
        shutil.copy(shot, os.environ["COGVX_DEMO_SCREENSHOT"])
    print(f"browser generation: {elapsed:.1f} s; screenshot {shot}")


def test_a_corrupt_upload_is_refused_on_the_page_and_the_next_request_works(
    server, driver, tmp_path
) -> None:
    from selenium.webdriver.common.by import By

    before = len(server.runs())
    _tab(driver, "video-to-video").click()
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(20_000))
    button = _element(driver, "#v2v-generate")
    _element(driver, "#v2v-video input[type='file']").send_keys(str(bad))
    # Gradio renders the file name as separate stem and extension spans ("broken" ".mp4")
    _wait(
        "the upload",
        lambda: "broken.mp4" in "".join((_find(driver, "#v2v-video").text or "").split()),
        60,
    )
    _element(driver, "#v2v-prompt textarea").send_keys("a blue square sinks")
    button.click()
    message = "'broken.mp4' could not be decoded"
    _wait(
        "the error on the page",
        lambda: message in driver.find_element(By.TAG_NAME, "body").text,
        server=server,
    )
    assert str(server.out) not in driver.find_element(By.TAG_NAME, "body").text  # no paths
    assert len(server.runs()) == before  # nothing written for a refused request
    driver.save_screenshot(str(tmp_path / "corrupt-upload.png"))

    _tab(driver, "text-to-video").click()
    src, record = _generate_in_page(driver, server, "a blue square sinks", "9")
    assert _fetch_frames(src, tmp_path / "after.mp4") == 9
    assert record["prompt"] == "a blue square sinks"
    assert len(server.runs()) == before + 1


def test_eight_concurrent_requests_get_a_video_or_busy(server, tmp_path) -> None:
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    before = {p.name for p in server.runs()}
    client = Client(server.url, verbose=False, download_files=False)
    barrier = threading.Barrier(8)
    outcomes: list[tuple[str, object]] = [("missing", None)] * 8

    def one(i: int) -> None:
        barrier.wait(60)
        try:
            # (prompt, negative, seed, randomize, frames, size, steps, guidance, dynamic, upsample)
            out = client.predict(
                "a green circle rises", "", i, False, "9", "64x64", 25, 6.0, False, False,
                api_name="/generate_t2v",
            )  # fmt: skip
            outcomes[i] = ("video", out)
        except AppError as e:
            outcomes[i] = ("busy" if "busy, try again" in str(e) else "error", str(e))
        except Exception as e:  # anything else is a failure of the demo, reported below
            outcomes[i] = ("error", repr(e))

    t0 = time.monotonic()
    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(RUN_TIMEOUT_S)
    elapsed = time.monotonic() - t0
    assert not any(t.is_alive() for t in threads), "a request never finished"
    kinds = [k for k, _ in outcomes]
    assert set(kinds) <= {"video", "busy"}, outcomes
    videos = [(i, out) for i, (k, out) in enumerate(outcomes) if k == "video"]
    assert kinds.count("busy") >= 1, outcomes  # 8 at once against 1 running + 1 waiting
    assert len(videos) >= 1, outcomes
    assert server.proc.poll() is None, server.tail()

    # no lost output: one complete run folder per video answered, with that request's seed
    new = [p for p in server.runs() if p.name not in before]
    assert len(new) == len(videos)
    seeds_on_disk = set()
    for run in new:
        assert sorted(p.name for p in run.iterdir()) == [
            "generation.json", "video.gif", "video.mp4", "video.png",
        ]  # fmt: skip
        [entry] = json.loads((run / "generation.json").read_text()).values()
        seeds_on_disk.add(entry["seed"])
        assert read_video(run / "video.mp4").num_frames == 9
    assert seeds_on_disk == {i for i, _ in videos}
    for i, out in videos:
        assert out[0] == i and json.loads(out[3])["seed"] == i
    print(f"load test: {len(videos)} videos, {kinds.count('busy')} busy in {elapsed:.1f} s")

    # the server still serves, and nothing was written outside its output folder
    with urllib.request.urlopen(server.url, timeout=30) as r:
        assert r.status == 200
    for folder in (server.cwd, server.tmp, server.home):
        assert not any(folder.iterdir()), f"{folder}: {sorted(p.name for p in folder.iterdir())}"
