"""The web application through Flask's test client: the page, the JSON API, errors, uploads removed."""

import io
import re
import subprocess
import sys
import threading

import numpy as np
import pytest
from wavs import write_wav

pytest.importorskip("flask", reason="the web extra (Flask, waitress) is not installed")

from knn_genre.audio import AUDIO_SUFFIXES  # noqa: E402
from knn_genre.audio.synth import synthesize  # noqa: E402
from knn_genre.build_features import main as build_main  # noqa: E402
from knn_genre.classifiers.model import load_model  # noqa: E402
from knn_genre.pipeline.apply import predict_file  # noqa: E402
from knn_genre.pipeline.similar import similar_file  # noqa: E402
from knn_genre.train import main as train_main  # noqa: E402
from knn_genre.web import WebConfig, create_app  # noqa: E402
from knn_genre.web import predictor as predictor_module  # noqa: E402

HOSTILE = "<script>alert(1)</script>.wav"
NOT_AUDIO = f"not an audio file: the name does not end in {', '.join(AUDIO_SUFFIXES)}"


@pytest.fixture(scope="module")
def features(collection, tmp_path_factory):
    out = tmp_path_factory.mktemp("web-features") / "f.npz"
    assert build_main([str(collection), "-o", str(out), "--jobs", "1", "-q"]) == 0
    return out


@pytest.fixture(scope="module")
def model_path(features, tmp_path_factory):
    out = tmp_path_factory.mktemp("web-model") / "knn.npz"
    assert train_main(["--features", str(features), "--k", "3", "--evaluate", "--folds", "3", "-o", str(out), "-q"]) == 0
    return out


@pytest.fixture(scope="module")
def model(model_path):
    return load_model(model_path)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Generated clips that are not in the model's library, one per genre, and a long song of three genres."""
    folder = tmp_path_factory.mktemp("web-clips")
    out = {g: write_wav(folder / f"{g}.wav", synthesize(g, 40, seconds=1.5, bleed=0.0)) for g in ("bass", "drums", "organ")}
    song = np.concatenate([synthesize(g, 41, seconds=16.0, bleed=0.0) for g in ("drums", "organ", "bass")])
    out["long"] = write_wav(folder / "long.wav", song)
    return out


@pytest.fixture
def uploads(tmp_path):
    folder = tmp_path / "uploads"
    folder.mkdir()
    return folder


@pytest.fixture
def client(model, model_path, uploads):
    app = create_app(model, WebConfig(upload_folder=str(uploads), model_name=model_path.name, max_upload_mb=3, timeout=60))
    yield app.test_client()
    app.extensions["knn_genre"].predictor.close()
    assert list(uploads.iterdir()) == [], "every upload is removed with its request"


@pytest.fixture
def make_app(uploads):
    """Apps with a test's own settings; their predictors' threads end with the test (later tests fork)."""
    apps = []

    def make(model, **config):
        apps.append(create_app(model, WebConfig(upload_folder=str(uploads), **config)))
        return apps[-1]

    yield make
    for app in apps:
        app.extensions["knn_genre"].predictor.close()


def send(client, files, url="/api/predict", **kwargs):
    """POST files as multipart: each a (path or bytes, name)."""
    parts = [(io.BytesIO(data if isinstance(data, bytes) else data.read_bytes()), name) for data, name in files]
    return client.post(url, data={"file": parts}, content_type="multipart/form-data", **kwargs)


def test_the_api_gives_predicts_json_plus_the_similar_tracks(client, model, clips):
    r = send(client, [(clips["organ"], "organ.wav"), (clips["drums"], "drums.wav")])
    assert r.status_code == 200 and r.mimetype == "application/json"
    records = r.get_json()
    for record, key, name in zip(records, ("organ", "drums"), ("organ.wav", "drums.wav")):
        expected = predict_file(model, clips[key]).to_dict(3)
        expected["path"] = name
        expected["similar"] = [t.to_dict() for t in similar_file(model, clips[key], 5)]
        assert record == expected
        assert list(record) == ["path", "genre", "top", "windows", "similar"]
    assert [r["genre"] for r in records] == ["organ", "drums"]


def test_top_is_a_query_parameter(client, model, clips):
    r = send(client, [(clips["bass"], "b.wav")], url="/api/predict?top=1")
    assert r.status_code == 200 and len(r.get_json()[0]["top"]) == 1
    for bad in ("0", "abc", "99"):
        r = send(client, [(clips["bass"], "b.wav")], url=f"/api/predict?top={bad}")
        assert r.status_code == 400 and r.get_json() == {"error": "top must be an integer from 1 to 5", "file": None}


def test_a_long_song_gets_a_genre_for_each_window(client, model, clips):
    record = send(client, [(clips["long"], "long.wav")]).get_json()[0]
    assert [(w["start"], w["end"]) for w in record["windows"]] == [(0.0, 30.0), (15.0, 48.0)]
    assert record == {**predict_file(model, clips["long"]).to_dict(3), "path": "long.wav", "similar": record["similar"]}
    page = send(client, [(clips["long"], "long.wav")], url="/").get_data(as_text=True)
    strip = re.search(r'<figure class="strip">(.*?)</figure>', page, re.S).group(1)
    titles = re.findall(r"<title>(.*?)</title>", strip)
    assert titles == [f"{w['start']:.0f}–{w['end']:.0f} s: {w['top'][0]['genre']} ({100 * w['top'][0]['probability']:.0f}%)" for w in record["windows"]]


@pytest.mark.parametrize(
    "data, name, status, words",
    [
        (b"just some text\n", "notes.txt", 415, NOT_AUDIO),
        (b"just some text\n", "fake.wav", 415, "not readable as audio: not a wav file"),
        (b"", "empty.wav", 400, "the file is empty"),
        ("short", "short.wav", 400, "too short"),
        ("silent", "silent.wav", 400, "digital silence"),
    ],
)
def test_bad_files_get_a_status_and_a_reason_in_words(client, tmp_path, data, name, status, words):
    if data == "short":
        data = write_wav(tmp_path / "s.wav", synthesize("organ", 0, seconds=0.05)).read_bytes()
    elif data == "silent":
        data = write_wav(tmp_path / "z.wav", np.zeros(22050)).read_bytes()
    r = send(client, [(data, name)])
    body = r.get_json()
    assert r.status_code == status and words in body["error"] and body["file"] == name
    assert body["results"] == [{"path": name, "error": body["error"], "status": status}]
    assert "Traceback" not in r.get_data(as_text=True) and "upload-" not in body["error"]
    page = send(client, [(data, name)], url="/")
    assert page.status_code == status and words in page.get_data(as_text=True)


def test_upload_names_are_judged_by_their_suffix(client, clips):
    r = send(client, [(clips["organ"], ".WAV"), (b"\0" * 64, "phone memo.m4a")])
    named_wav, m4a = r.get_json()
    assert named_wav["path"] == ".WAV" and named_wav["genre"] == "organ"  # an upload is never a hidden file
    assert m4a == {"path": "phone memo.m4a", "status": 415,
                   "error": "MP4/M4A audio (AAC or Apple Lossless) cannot be decoded here; convert it to FLAC, WAV or MP3"}


def test_some_bad_files_do_not_spoil_the_good_ones(client, clips):
    r = send(client, [(b"text", "a.txt"), (clips["organ"], "organ.wav")])
    assert r.status_code == 200
    bad, good = r.get_json()
    assert bad == {"path": "a.txt", "error": NOT_AUDIO, "status": 415}
    assert good["genre"] == "organ"


@pytest.mark.parametrize(
    "body, content_type, status, words",
    [
        (b"--xx\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\r\nabc", "multipart/form-data; boundary=xx", 400, "malformed multipart body"),
        (b"whatever", "multipart/form-data", 400, "malformed multipart body: send multipart/form-data with its boundary"),
        (b"garbage", "multipart/form-data; boundary=xx", 400, "malformed multipart body: send multipart/form-data with its boundary"),
        (b"--xx\r\nContent-Disposition: form-data; name=\"file\"; filename=\"\xff.wav\"\r\n\r\nabc\r\n--xx--\r\n",
         "multipart/form-data; boundary=xx", 400, "with a UTF-8 file name"),
        (b"--xx--\r\n", "multipart/form-data; boundary=xx", 400, "no file: choose one or more audio files"),
        (b"RIFF....", "audio/wav", 415, "send the files as multipart/form-data"),
        (b"", None, 415, "send the files as multipart/form-data"),
    ],
)
def test_malformed_requests_get_400_or_415(client, body, content_type, status, words):
    r = client.post("/api/predict", data=body, content_type=content_type)
    error = r.get_json()["error"]
    assert r.status_code == status and words in error
    assert "codec" not in error and "State." not in error  # the parser's internals are not echoed


def test_a_form_submitted_without_a_file(client):
    r = client.post("/", data={"file": (io.BytesIO(b""), "")}, content_type="multipart/form-data")
    assert r.status_code == 400 and "no file: choose one or more audio files" in r.get_data(as_text=True)


def test_too_large_uploads_get_413_before_the_body_is_read(client, clips):
    big = b"x" * 3_000_001
    r = send(client, [(big, "big.wav")])
    assert r.status_code == 413
    assert r.get_json() == {"error": "the upload is larger than this server's limit of 3 MB per request", "file": None}
    # Refused from the declared length alone: a body that never comes is not waited for.
    environ = {"CONTENT_LENGTH": str(200_000_000), "CONTENT_TYPE": "multipart/form-data; boundary=xx", "wsgi.input": io.BytesIO(b"")}
    r = client.post("/api/predict", environ_overrides=environ)
    assert r.status_code == 413
    page = send(client, [(big, "big.wav")], url="/")
    assert page.status_code == 413 and "larger than this server&#39;s limit of 3 MB" in page.get_data(as_text=True)


def _one_file_body(size: int) -> bytes:
    head = b'--xx\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\nContent-Type: audio/wav\r\n\r\n'
    tail = b"\r\n--xx--\r\n"
    return head + b"\0" * (size - len(head) - len(tail)) + tail


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_the_limit_holds_to_the_byte_when_the_server_terminates_the_input(client, declared):
    # As waitress serves it: the server ends the input stream, and a chunked body declares no length.
    for size, status in ((3_000_000, 415), (3_000_001, 413)):  # 415: the body was read, and its zeros are no WAV
        environ = {"wsgi.input_terminated": True}
        if not declared:
            environ["HTTP_TRANSFER_ENCODING"] = "chunked"
        r = client.post("/api/predict", input_stream=io.BytesIO(_one_file_body(size)), content_length=size,
                        content_type="multipart/form-data; boundary=xx", environ_overrides=environ)
        assert r.status_code == status, (size, r.get_json())
        if status == 413:
            assert r.get_json()["error"] == "the upload is larger than this server's limit of 3 MB per request"


def test_too_many_files(model, uploads, clips, make_app):
    app = make_app(model, max_files=2)
    r = send(app.test_client(), [(clips["bass"], f"{i}.wav") for i in range(3)])
    assert r.status_code == 400 and r.get_json()["error"] == "3 files in one request; send at most 2"
    assert list(uploads.iterdir()) == []


def test_too_many_parts_are_refused_in_words(client):
    body = "".join(f'--xx\r\nContent-Disposition: form-data; name="f{i}"\r\n\r\nv\r\n' for i in range(60)) + "--xx--\r\n"
    r = client.post("/api/predict", data=body.encode(), content_type="multipart/form-data; boundary=xx")
    assert r.status_code == 413
    assert r.get_json()["error"] == "the multipart body has too many parts or too large form fields; send at most 20 files"


def test_names_are_escaped_and_never_used_as_paths(client, clips, uploads, monkeypatch):
    names = [HOSTILE, "../../../../etc/passwd.wav", "bell\x07.wav"]
    seen = []
    original = predictor_module.analyse_for_model

    def spy(model, path, **kwargs):
        seen.append(path)
        return original(model, path, **kwargs)

    monkeypatch.setattr(predictor_module, "analyse_for_model", spy)
    r = send(client, [(clips["organ"], n) for n in names])
    page = send(client, [(clips["organ"], HOSTILE)], url="/").get_data(as_text=True)
    assert [rec["path"] for rec in r.get_json()] == [HOSTILE, "../../../../etc/passwd.wav", "bell\\x07.wav"]
    assert all(re.fullmatch(re.escape(str(uploads)) + r"/upload-[^/]+\.wav", p) for p in seen), seen
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;.wav" in page
    assert page.count("<script") == 1  # only the page's own script


def test_the_page_works_without_javascript(client, model, clips, model_path):
    page = client.get("/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    form = re.search(r"<form[^>]*>", html).group(0)
    assert 'method="post"' in form and 'action="/"' in form and 'enctype="multipart/form-data"' in form
    assert re.search(r'<input[^>]*type="file"[^>]*name="file"[^>]*multiple', html)
    result = send(client, [(clips["drums"], "drums.wav")], url="/")
    text = result.get_data(as_text=True)
    expected = predict_file(model, clips["drums"])
    genre, p = expected.top(1)[0]
    assert result.status_code == 200
    assert re.search(rf'<span class="genre">{genre}</span>\s*<span class="probability">{100 * p:.0f}%</span>', text)
    rows = re.findall(r'<tr><td>\d+</td><td class="path">(.*?)</td><td>(.*?)</td>', text)
    assert rows == [(t.path, t.genre) for t in similar_file(model, clips["drums"], 5)]


def test_the_page_and_its_files_need_nothing_from_elsewhere(client):
    html = client.get("/").get_data(as_text=True)
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sorted(assets) == ["/", "/static/app.js", "/static/icon.svg", "/static/style.css"]
    for asset in assets[1:] if assets[0] == "/" else assets:
        if asset.startswith("/static/"):
            r = client.get(asset)
            data = r.data.replace(b'xmlns="http://www.w3.org/2000/svg"', b"")  # a name, not an address
            assert r.status_code == 200 and b"http://" not in data and b"https://" not in data and b"url(" not in data
    csp = client.get("/").headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp


def test_the_model_panel_and_api_describe_the_model(client, model, model_path):
    info = client.get("/api/model").get_json()
    assert info["model"] == "knn" and info["file"] == model_path.name
    assert info["genres"] == ["ambient", "bass", "drums", "organ", "plucked"]
    assert info["n_tracks"] == 30 and info["settings"] == {"n_neighbors": 3}
    assert info["features"]["numcep"] == 13 and info["windows"] == {"window_seconds": 30.0, "hop_seconds": 15.0}
    assert info["evaluation"] == model.data.evaluation and info["evaluation"]["folds"] == 3
    html = client.get("/").get_data(as_text=True)
    panel = re.search(r'<aside class="model">(.*?)</aside>', html, re.S).group(1)
    ev = model.data.evaluation
    assert f"{100 * ev['accuracy_mean']:.1f}% ± {100 * ev['accuracy_std']:.1f}" in panel
    assert "stratified 3-fold cross-validation, seed 0; 30 tracks, 5 genres" in panel
    assert "ambient, bass, drums, organ, plucked" in panel and "3-nearest neighbours" in panel
    assert str(model_path.parent) not in html  # the server's folders are not shown
    assert ev["copies_across_folds"] == [] and "copies straddled" not in panel


def test_the_model_panel_says_when_copies_inflated_the_recorded_accuracy(model, make_app):
    from dataclasses import replace

    from knn_genre.classifiers.model import GenreModel

    record = {**model.data.evaluation, "copies_across_folds": [["drums/a.wav", "organ/b.wav"]]}
    app = make_app(GenreModel(replace(model.data, evaluation=record), model.estimator))
    panel = re.search(r'<aside class="model">(.*?)</aside>', app.test_client().get("/").get_data(as_text=True), re.S).group(1)
    assert "1 pair(s) of copies straddled the folds, which inflates this accuracy" in panel


def test_health_and_unknown_routes_answer_json(client):
    assert client.get("/healthz").get_json() == {"status": "ok", "model": "knn", "genres": 5}
    r = client.get("/api/nothing")
    assert r.status_code == 404 and r.get_json()["error"].startswith("not found")
    r = client.get("/api/predict")
    assert r.status_code == 405 and r.get_json()["error"].startswith("method not allowed")
    assert set(r.headers["Allow"].split(", ")) == {"POST", "OPTIONS"}
    r = client.delete("/")
    assert r.status_code == 405 and {"GET", "POST"} <= set(r.headers["Allow"].split(", "))
    assert client.get("/nothing").status_code == 404


def test_a_fault_of_the_server_is_500_without_details_and_the_upload_is_removed(client, clips, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(predictor_module, "analyse_for_model", broken)
    r = send(client, [(clips["organ"], "organ.wav")])
    assert r.status_code == 500
    assert r.get_json()["error"] == "internal error while analysing the file"
    assert "secret" not in r.get_data(as_text=True)


def test_the_time_limit_answers_503_and_the_upload_is_removed_at_once(model, uploads, clips, monkeypatch, make_app):
    started, release, finished = threading.Event(), threading.Event(), threading.Event()
    original = predictor_module.analyse_for_model

    def blocked(*args, **kwargs):
        started.set()
        try:
            release.wait(10)  # long past the limit; bounded so that a server that waits still ends the test
            return original(*args, **kwargs)
        finally:
            finished.set()

    monkeypatch.setattr(predictor_module, "analyse_for_model", blocked)
    app = make_app(model, timeout=0.3)
    r = send(app.test_client(), [(clips["organ"], "organ.wav"), (clips["bass"], "bass.wav")])
    # The answer came while the first analysis was still held: the server did not wait for it.
    answered_while_blocked = started.is_set() and not finished.is_set()
    left_behind = list(uploads.iterdir())
    release.set()
    assert finished.wait(10)  # the abandoned analysis ends on its own, on a file already gone
    assert r.status_code == 503 and answered_while_blocked
    assert left_behind == []
    assert r.get_json()["error"] == "the analysis took longer than the server's limit of 0.3 s per request"
    assert [rec["status"] for rec in r.get_json()["results"]] == [503, 503]


def test_models_without_references_have_no_similar_tracks(features, uploads, clips, tmp_path, make_app):
    out = tmp_path / "dummy.npz"
    assert train_main(["--features", str(features), "--model", "dummy-most-frequent", "-o", str(out), "-q"]) == 0
    app = make_app(load_model(out))
    record = send(app.test_client(), [(clips["organ"], "o.wav")]).get_json()[0]
    assert "similar" not in record and record["genre"] == "ambient"  # the most frequent (first) genre
    assert app.test_client().get("/api/model").get_json()["similarity"] is None
    assert "Most similar tracks" not in send(app.test_client(), [(clips["organ"], "o.wav")], url="/").get_data(as_text=True)


def test_the_package_runs_without_the_web_extra(model_path):
    code = (
        "import sys; sys.modules['flask'] = None; sys.modules['waitress'] = None\n"
        "import knn_genre.__main__, knn_genre.predict, knn_genre.similar, knn_genre.train, knn_genre.evaluate, knn_genre.serve\n"
        f"raise SystemExit(knn_genre.serve.main(['--model', {str(model_path)!r}]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "the web server needs Flask and waitress" in done.stderr and "pip install 'knn_genre[web]'" in done.stderr


def test_the_templates_and_static_files_are_package_data():
    import configparser
    from pathlib import Path

    import knn_genre.web

    root = Path(knn_genre.web.__file__).parent
    cfg = configparser.ConfigParser()
    cfg.read(Path(__file__).resolve().parents[1] / "setup.cfg")
    patterns = [p.strip() for p in cfg["options.package_data"]["knn_genre.web"].split(",")]
    listed = {p for pattern in patterns for p in root.glob(pattern)}
    shipped = {p for folder in ("templates", "static") for p in (root / folder).rglob("*") if p.is_file()}
    assert shipped and listed == shipped
