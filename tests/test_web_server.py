"""End to end: the real waitress server in its own process, raw HTTP clients, and the page in headless Chromium."""

import base64
import re
import signal
import socket
import threading

import numpy as np
import pytest
from wavs import write_wav

pytest.importorskip("flask", reason="the web extra (Flask, waitress) is not installed")
pytest.importorskip("waitress", reason="the web extra (Flask, waitress) is not installed")

from webtools import Server, browser_missing, chromium, fresh_profile, wait_until  # noqa: E402

from knn_genre.audio import AUDIO_SUFFIXES  # noqa: E402
from knn_genre.audio.synth import synthesize  # noqa: E402
from knn_genre.build_features import main as build_main  # noqa: E402
from knn_genre.classifiers.model import load_model  # noqa: E402
from knn_genre.pipeline.apply import predict_file  # noqa: E402
from knn_genre.pipeline.similar import similar_file  # noqa: E402
from knn_genre.train import main as train_main  # noqa: E402

HOSTILE = "<script>alert(1)</script>.wav"
LIMIT_MB = 8
NOT_AUDIO = f"not an audio file: the name does not end in {', '.join(AUDIO_SUFFIXES)}"


@pytest.fixture(scope="module")
def model_path(collection, tmp_path_factory):
    folder = tmp_path_factory.mktemp("server-model")
    assert build_main([str(collection), "-o", str(folder / "f.npz"), "--jobs", "1", "-q"]) == 0
    assert train_main(["--features", str(folder / "f.npz"), "--k", "3", "--evaluate", "--folds", "3", "-o", str(folder / "knn.npz"), "-q"]) == 0
    return folder / "knn.npz"


@pytest.fixture(scope="module")
def model(model_path):
    return load_model(model_path)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("server-clips")
    out = {g: write_wav(folder / f"{g}.wav", synthesize(g, 60, seconds=2.0, bleed=0.0)) for g in ("ambient", "bass", "drums", "organ", "plucked")}
    # About 100 s (4.4 MB) each: bodies that add up to far more than the server may hold.
    for g in ("bass", "organ"):
        out[f"long-{g}"] = write_wav(folder / f"long-{g}.wav", np.tile(synthesize(g, 61, seconds=10.0, bleed=0.0), 10))
    song = np.concatenate([synthesize(g, 62, seconds=16.0, bleed=0.0) for g in ("drums", "organ", "bass")])
    out["song"] = write_wav(folder / "song.wav", song)
    out["big"] = write_wav(folder / "big.wav", np.tile(synthesize("bass", 63, seconds=10.0), 21))  # 9.3 MB
    (folder / "notes.txt").write_text("not audio\n")
    out["text"] = folder / "notes.txt"
    return out


@pytest.fixture(scope="module")
def server(model_path, tmp_path_factory):
    with Server(model_path, tmp_path_factory.mktemp("server-tmp"), "--threads", "4", "--max-upload-mb", str(LIMIT_MB)) as running:
        yield running


def test_the_start_up_line_names_the_url_on_localhost(server, model_path):
    assert re.fullmatch(rf"serving {re.escape(str(model_path))} \(knn, 5 genres\) on http://127\.0\.0\.1:\d+/  \(Ctrl-C stops\)\n", server.banner)
    status, headers, body = server.request("GET", "/healthz")
    assert status == 200 and body == b'{"status":"ok","model":"knn","genres":5}\n' and headers["Server"] == "knn-genre"


def test_the_api_over_the_real_server_gives_predicts_genres(server, model, clips):
    names = ["ambient", "drums", "plucked"]
    status, records = server.upload([(f"{g}.wav", clips[g].read_bytes()) for g in names])
    assert status == 200
    assert [r["genre"] for r in records] == [predict_file(model, clips[g]).genre for g in names] == names
    assert records[0]["similar"] == [t.to_dict() for t in similar_file(model, clips["ambient"], 5)]


def test_bad_input_gets_400_and_415_in_words(server, clips):
    status, body = server.upload([("notes.txt", clips["text"].read_bytes())])
    assert status == 415 and body["error"] == NOT_AUDIO and body["file"] == "notes.txt"
    status, _, data = server.request("POST", "/api/predict", b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.wav\"\r\n\r\nxx", {"Content-Type": "multipart/form-data; boundary=b"})
    assert status == 400 and b"malformed multipart body" in data
    assert server.leftovers() == []


def test_a_200_mb_upload_is_refused_before_its_body_is_read(server):
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            b"Content-Length: 200000000\r\n\r\n" + b"x" * 1024
        )
        reply = sock.recv(4096)  # answered after 1 kB of the 200 MB: the rest is never asked for
    assert reply.startswith(b"HTTP/1.1 413 ")
    assert server.request("GET", "/healthz")[0] == 200


def at_once(server, n, bodies):
    """``n`` uploads started together, alternating between ``bodies``; [(genre, status, body)]."""
    barrier = threading.Barrier(n)
    answers = [None] * n
    names = sorted(bodies)

    def client(i):
        genre = names[i % len(names)]
        barrier.wait()
        answers[i] = (genre, *server.upload([(f"{i}-{genre}.wav", bodies[genre])], timeout=300))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    return answers


def test_twenty_simultaneous_uploads_are_all_answered_with_bounded_memory(model_path, model, clips, tmp_path):
    # One worker thread: its working peak is one analysis, reached by a single upload, so a
    # loaded machine cannot stagger a warm-up burst and understate it.
    expected = {g: predict_file(model, clips[f"long-{g}"]).genre for g in ("bass", "organ")}
    bodies = {g: clips[f"long-{g}"].read_bytes() for g in expected}
    with Server(model_path, tmp_path, "--threads", "1", "--max-upload-mb", str(LIMIT_MB)) as single:
        at_once(single, 2, bodies)  # the working peak of each body
        before = single.memory_kb()
        answers = at_once(single, 20, bodies)
        after = single.memory_kb()
        assert all(a is not None for a in answers), "every upload is answered"
        assert [(status, body[0]["genre"]) for _, status, body in answers] == [(200, expected[genre]) for genre, _, _ in answers]
        # The 19 uploads beyond the thread wait in waitress's temporary files, not in memory.
        waiting_mb = 19 * len(bodies["bass"]) / 1e6
        grown_mb = (after["VmHWM"] - before["VmHWM"]) / 1000
        assert grown_mb < waiting_mb / 4, f"peak memory grew by {grown_mb:.0f} MB with {waiting_mb:.0f} MB of uploads waiting"
        assert single.leftovers() == []
        assert single.request("GET", "/healthz")[0] == 200


def test_clients_that_go_away_leave_nothing_behind(server, clips):
    body = clips["long-organ"].read_bytes()
    head = (
        "POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
        f"Content-Length: {len(body) + 200}\r\n\r\n"
    ).encode()
    part = b'--b\r\nContent-Disposition: form-data; name="file"; filename="o.wav"\r\n\r\n' + body + b"\r\n--b--\r\n"
    with socket.create_connection((server.host, server.port)) as sock:  # gone in the middle of the body
        sock.sendall(head + part[: len(part) // 2])
    head = head.replace(str(len(body) + 200).encode(), str(len(part)).encode())
    with socket.create_connection((server.host, server.port)) as sock:  # gone while the file is analysed
        sock.sendall(head + part)
    assert wait_until(lambda: server.leftovers() == [], timeout=30)
    assert server.request("GET", "/healthz")[0] == 200
    status, records = server.upload([("o.wav", body)])
    assert status == 200 and records[0]["genre"] == "organ"


def test_ctrl_c_stops_the_server_cleanly(model_path, clips, tmp_path):
    running = Server(model_path, tmp_path / "tmp")
    assert running.upload([("a.wav", clips["drums"].read_bytes())])[0] == 200
    status, err = running.stop(signal.SIGINT)
    assert status == 130 and "Traceback" not in err and err.strip().endswith("stopped")
    assert list((tmp_path / "tmp").iterdir()) == []  # the upload folder is gone too


def test_a_port_in_use_is_a_usage_error(model_path, tmp_path):
    import subprocess
    import sys

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "knn_genre.serve", "--model", str(model_path), "--port", str(port)],
            capture_output=True, text=True, timeout=60,
        )
    assert done.returncode == 2 and f"cannot listen on 127.0.0.1 port {port}" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("host", ["256.1.1.1", "no-such-host.invalid", "a..b"])
def test_a_host_that_is_no_address_is_a_usage_error(model_path, host):
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "knn_genre.serve", "--model", str(model_path), "--host", host, "--port", "0"],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"cannot listen on {host} port 0: {host!r} is not an IP address or a host name that resolves" in done.stderr


# -- the page in headless Chromium ---------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    reason = browser_missing()
    if reason:
        pytest.skip(f"no headless Chromium: {reason}")
    driver = chromium(fresh_profile())
    yield driver
    driver.quit()


def submit(browser, server, *paths):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server.url)
    browser.find_element(By.ID, "file").send_keys("\n".join(str(p) for p in paths))
    browser.find_element(By.CSS_SELECTOR, "form#upload button").click()
    WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "article.result"))
    return browser.find_elements(By.CSS_SELECTOR, "article.result")


def test_the_page_shows_the_genre_predict_gives(browser, server, model, clips):
    from selenium.webdriver.common.by import By

    (result,) = submit(browser, server, clips["plucked"])
    expected = predict_file(model, clips["plucked"])
    genre, p = expected.top(1)[0]
    assert result.find_element(By.CSS_SELECTOR, "h2.file").text == "plucked.wav"
    assert result.find_element(By.CSS_SELECTOR, ".verdict .genre").text == expected.genre == genre == "plucked"
    assert result.find_element(By.CSS_SELECTOR, ".verdict .probability").text == f"{100 * p:.0f}%"
    bars = [row.text.split() for row in result.find_elements(By.CSS_SELECTOR, "table.bars tr")]
    assert bars[0] == [genre, f"{100 * p:.0f}%"]
    rows = [[td.text for td in tr.find_elements(By.TAG_NAME, "td")][1:3] for tr in result.find_elements(By.CSS_SELECTOR, "table.similar tbody tr")]
    assert rows == [[t.path, t.genre] for t in similar_file(model, clips["plucked"], 5)]
    panel = browser.find_element(By.CSS_SELECTOR, "aside.model").text
    assert "ambient, bass, drums, organ, plucked" in panel and "stratified 3-fold cross-validation" in panel


def test_a_long_song_and_a_bad_file_together(browser, server, model, clips):
    from selenium.webdriver.common.by import By

    song, text = submit(browser, server, clips["song"], clips["text"])
    windows = predict_file(model, clips["song"]).to_dict(1)["windows"]
    cells = song.find_elements(By.CSS_SELECTOR, "figure.strip svg rect")
    assert len(cells) == len(windows) == 2
    titles = [c.find_element(By.TAG_NAME, "title").get_attribute("textContent") for c in cells]
    assert [t.split(": ")[1].split(" (")[0] for t in titles] == [w["top"][0]["genre"] for w in windows]
    assert text.find_element(By.CSS_SELECTOR, ".error").text == NOT_AUDIO
    assert "Traceback" not in browser.page_source


def test_hostile_file_names_are_shown_as_text(browser, server, clips, tmp_path):
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    on_disk = tmp_path / "<img src=x onerror=alert(1)>.wav"
    on_disk.write_bytes(clips["organ"].read_bytes())
    (result,) = submit(browser, server, on_disk)
    assert result.find_element(By.CSS_SELECTOR, "h2.file").text == on_disk.name
    # A name no file system allows (a slash), sent by the browser itself.
    browser.get(server.url)
    browser.execute_script(
        "const bytes = Uint8Array.from(atob(arguments[1]), c => c.charCodeAt(0));"
        "const files = new DataTransfer(); files.items.add(new File([bytes], arguments[0], {type: 'audio/wav'}));"
        "document.getElementById('file').files = files.files;",
        HOSTILE, base64.b64encode(clips["organ"].read_bytes()).decode(),
    )
    browser.find_element(By.CSS_SELECTOR, "form#upload button").click()
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "article.result"))
    assert browser.find_element(By.CSS_SELECTOR, "article.result h2.file").text == HOSTILE
    assert browser.find_element(By.CSS_SELECTOR, ".verdict .genre").text == "organ"
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text
    assert browser.execute_script("return document.scripts.length") == 1
    assert browser.find_elements(By.CSS_SELECTOR, "article.result img") == []


def test_the_script_refuses_a_too_large_choice_before_sending(browser, server, clips):
    from selenium.webdriver.common.by import By

    browser.get(server.url)
    browser.find_element(By.ID, "file").send_keys(str(clips["big"]))
    chosen = browser.find_element(By.ID, "chosen").text
    assert f"this server takes at most {LIMIT_MB:.1f} MB at once" in chosen
    browser.find_element(By.CSS_SELECTOR, "form#upload button").click()
    assert browser.find_elements(By.CSS_SELECTOR, "article.result") == []  # nothing was sent
    assert browser.current_url == server.url


def test_a_screenshot_of_the_result_page(browser, server, clips, tmp_path):
    submit(browser, server, clips["song"])
    shot = tmp_path / "page.png"
    assert browser.save_screenshot(str(shot))
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == tuple(browser.execute_script("return [window.innerWidth * devicePixelRatio, window.innerHeight * devicePixelRatio]"))


def test_the_page_has_no_external_requests(browser, server):
    browser.get(server.url)
    resources = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert resources and all(r.startswith(server.url) for r in resources), resources


def test_files_dropped_on_the_form_are_chosen_and_sent(browser, server, model, clips):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server.url)
    browser.execute_script(
        "const bytes = Uint8Array.from(atob(arguments[0]), c => c.charCodeAt(0));"
        "const files = new DataTransfer(); files.items.add(new File([bytes], 'dropped.wav', {type: 'audio/wav'}));"
        "document.querySelector('.drop').dispatchEvent(new DragEvent('drop', {dataTransfer: files, bubbles: true, cancelable: true}));",
        base64.b64encode(clips["bass"].read_bytes()).decode(),
    )
    size_mb = clips["bass"].stat().st_size / 1e6
    assert browser.find_element(By.ID, "chosen").text == f"dropped.wav ({size_mb:.1f} MB)"
    browser.find_element(By.CSS_SELECTOR, "form#upload button").click()
    WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "article.result"))
    assert browser.find_element(By.CSS_SELECTOR, "article.result h2.file").text == "dropped.wav"
    assert browser.find_element(By.CSS_SELECTOR, ".verdict .genre").text == predict_file(model, clips["bass"]).genre == "bass"
