"""End to end against a real Label Studio server started here: the query is imported as a
project's tasks, annotated through the API as an annotator would (the ground truth, painted
as brush masks), exported, and `alseg label` continues the run exactly as the simulated one.

Needs the `label-studio` server (its own environment: `python -m venv .venv-labelstudio &&
.venv-labelstudio/bin/pip install label-studio`); LABEL_STUDIO_BIN names its executable.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from test_human import RUN, comparable, tasks_of, truth_of

from alseg.errors import AlsegError
from alseg.experiment import Experiment, label_run
from alseg.labels.human import brush_results, pending_cycle, query_dir

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[1]
BINARY = os.environ.get("LABEL_STUDIO_BIN") or str(ROOT / ".venv-labelstudio" / "bin" / "label-studio")
TOKEN = "alsegtesttoken0123456789abcdef0123456789"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(BINARY).exists() and not shutil.which(BINARY), reason=f"no Label Studio at {BINARY}"
    ),
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LabelStudio:
    """A Label Studio server in a temporary data folder, driven through its HTTP API."""

    def __init__(self, data: Path) -> None:
        self.data, self.port = data, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.start()

    def start(self) -> None:
        """Start the server (again, on the same port and data) and wait until it answers."""
        env = {
            **os.environ,
            "LABEL_STUDIO_BASE_DATA_DIR": str(self.data),
            "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
        }
        command = [
            BINARY, "start", "--no-browser", "--port", str(self.port), "--host", "127.0.0.1",
            "--username", "annotator@example.com", "--password", "alseg-test-pass",
            "--user-token", TOKEN, "--enable-legacy-api-token",
        ]  # fmt: skip
        self.log = open(self.data / "server.log", "a")  # noqa: SIM115 (open while the server runs)
        self.process = subprocess.Popen(command, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 240
        while time.time() < deadline:
            try:
                self.call("GET", "/api/version")
                return
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"Label Studio exited: {(self.data / 'server.log').read_text()[-2000:]}"
                    ) from None
                time.sleep(2)
        raise RuntimeError("Label Studio did not start within 240 s")

    def call(self, method: str, path: str, body: object = None) -> object:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Authorization", f"Token {TOKEN}")
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=60) as response:
            text = response.read().decode()
        return json.loads(text) if text else None

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """One server for the module's tests (each run creates its own project)."""
    studio = LabelStudio(tmp_path_factory.mktemp("label-studio"))
    yield studio
    studio.stop()


def annotate_in_label_studio(studio: LabelStudio, experiment: Experiment, folder: Path) -> Path:
    """Import the query into a new project, annotate every task through the API with its
    ground truth, and export the project as Label Studio JSON."""
    config = (folder / "labeling_config.xml").read_text()
    project = studio.call("POST", "/api/projects", {"title": folder.name, "label_config": config})
    pid = project["id"]  # type: ignore[index]
    studio.call("POST", f"/api/projects/{pid}/import", json.loads((folder / "tasks.json").read_text()))
    listed = studio.call("GET", f"/api/tasks?project={pid}&page_size=1000")
    tasks = listed["tasks"] if isinstance(listed, dict) else listed
    query = tasks_of(json.loads((folder / "query.json").read_text()))
    assert len(tasks) == len(query)
    for task in tasks:
        painted = truth_of(experiment, *query[task["data"]["task"]])
        result = brush_results(painted, experiment.data.class_names)
        studio.call(
            "POST", f"/api/tasks/{task['id']}/annotations", {"result": result, "was_cancelled": False}
        )
    exported = studio.call("GET", f"/api/projects/{pid}/export?exportType=JSON")
    path = folder.parent / f"{folder.name}_label_studio.json"
    path.write_text(json.dumps(exported))
    return path


def test_a_labelling_session_with_a_real_label_studio_server(make_cfg, tmp_path, server) -> None:
    simulated = Experiment(make_cfg(*RUN), tmp_path / "simulated").run()
    root, cfg = tmp_path / "human", make_cfg(*RUN, "oracle=human")
    for cycle in (1, 2):
        Experiment(cfg, root).run()
        assert pending_cycle(root) == cycle
        export = annotate_in_label_studio(server, Experiment(cfg, root), query_dir(root, cycle))
        label_run(root, export)
    rows = Experiment(cfg, root).run()
    assert comparable(rows) == comparable(simulated)


def run_beside(annotate: Callable[[threading.Event], None], run: Callable[[], T]) -> T:
    """`run()` while an annotator thread works, stopped (and waited for) when it returns."""
    stop = threading.Event()
    annotator = threading.Thread(target=annotate, args=(stop,), daemon=True)
    annotator.start()
    try:
        return run()
    finally:
        stop.set()
        annotator.join(timeout=300)


def annotate_as_tasks_come(studio: LabelStudio, experiment: Experiment, stop: threading.Event) -> None:
    """A simulated annotator: labels every unlabelled task of every project with its ground
    truth, task by task with a pause, until told to stop."""
    names = experiment.data.class_names
    while not stop.is_set():
        listed = studio.call("GET", "/api/projects?page_size=100")
        projects = listed["results"] if isinstance(listed, dict) else listed
        for project in projects:
            found = studio.call("GET", f"/api/tasks?project={project['id']}&page_size=1000")
            for task in found["tasks"] if isinstance(found, dict) else found:
                if task.get("total_annotations") or stop.is_set():
                    continue
                painted = truth_of(experiment, task["data"]["pool_image"], task["data"]["regions"])
                result = brush_results(painted, names)
                body = {"result": result, "was_cancelled": False}
                studio.call("POST", f"/api/tasks/{task['id']}/annotations", body)
                time.sleep(0.05)
        stop.wait(0.5)


def test_oracle_label_studio_runs_the_whole_session_by_itself(
    make_cfg, tmp_path, server, monkeypatch
) -> None:
    simulated_run = Experiment(make_cfg(*RUN), tmp_path / "simulated")
    simulated = simulated_run.run()
    overrides = [*RUN, "oracle=label_studio", f"oracle.url={server.url}", "oracle.poll_seconds=0.5"]
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", TOKEN)
    root = tmp_path / "session"
    rows = run_beside(
        lambda stop: annotate_as_tasks_come(server, simulated_run, stop),
        lambda: Experiment(make_cfg(*overrides), root, overrides).run(),
    )
    assert comparable(rows) == comparable(simulated)  # the simulated oracle's curve, through people
    tasks = project_tasks(server, root)
    assert len(tasks) == sum(row["queried_units"] for row in rows)  # each unit imported once
    said = (root / "alseg.log").read_text()
    assert re.search(r"cycle 2: \d+ of \d+ tasks labelled", said)
    assert "labels from Label Studio are applied" in said
    assert_no_token(root)


def assert_no_token(root: Path) -> None:
    """No file of the run directory (config.yaml, overrides.yaml, alseg.log, ...) holds the token."""
    for path in root.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path


def test_a_token_given_in_the_config_never_reaches_the_run_directory(
    make_cfg, tmp_path, server, monkeypatch, capsys
) -> None:
    monkeypatch.delenv("LABEL_STUDIO_API_KEY", raising=False)
    overrides = [*RUN, "oracle=label_studio", f"oracle.url={server.url}", f"oracle.token={TOKEN}"]
    root = tmp_path / "run"
    Experiment(make_cfg(*overrides, "budget.cycles=0"), root, overrides).run()  # trains, asks nothing
    assert_no_token(root)
    assert TOKEN not in capsys.readouterr().err
    assert "oracle.token=<hidden>" in (root / "overrides.yaml").read_text()
    assert "<hidden>" in (root / "config.yaml").read_text()


def test_a_wrong_token_stops_in_one_line_before_anything_trains(
    make_cfg, tmp_path, server, monkeypatch
) -> None:
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "not-the-token")
    cfg = make_cfg(*RUN, "oracle=label_studio", f"oracle.url={server.url}")
    with pytest.raises(AlsegError, match="refused the API token") as error:
        Experiment(cfg, tmp_path / "run")
    assert "\n" not in str(error.value) and "not-the-token" not in str(error.value)
    assert not (tmp_path / "run" / "cycles.csv").exists()


def project_tasks(studio: LabelStudio, root: Path) -> list[dict]:
    record = root / "queries" / "label_studio.json"
    if not record.exists():
        return []
    project = json.loads(record.read_text())["project"]
    found = studio.call("GET", f"/api/tasks?project={project}&page_size=1000")
    return found["tasks"] if isinstance(found, dict) else found


def test_killed_while_waiting_and_a_server_restart_change_nothing(
    make_cfg, tmp_path, server, monkeypatch
) -> None:
    simulated_run = Experiment(make_cfg(*RUN), tmp_path / "simulated")
    simulated = simulated_run.run()
    root = tmp_path / "session"
    overrides = [*RUN, "oracle=label_studio", f"oracle.url={server.url}", "oracle.poll_seconds=0.5"]
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", TOKEN)
    command = [sys.executable, "-m", "alseg.cli", "run", *overrides, f"hydra.run.dir={root}"]
    waiting = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 600
        while time.time() < deadline and "tasks labelled" not in _read(root / "alseg.log"):
            assert waiting.poll() is None, _read(root / "alseg.log")[-2000:]
            time.sleep(1)
        imported = len(project_tasks(server, root))
        assert imported > 0
    finally:
        waiting.kill()  # killed while waiting for cycle 1's labels
        waiting.wait()
    server.stop()

    def restart_then_annotate(stop: threading.Event) -> None:
        time.sleep(3)  # the rerun finds the server down and retries
        server.start()
        annotate_as_tasks_come(server, simulated_run, stop)

    rows = run_beside(restart_then_annotate, lambda: Experiment(make_cfg(*overrides), root, overrides).run())
    assert comparable(rows) == comparable(simulated)
    tasks = project_tasks(server, root)
    names = [(task["data"]["alseg_cycle"], task["data"]["task"]) for task in tasks]
    assert len(names) == len(set(names)) == sum(row["queried_units"] for row in rows)  # none twice


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def test_a_bad_answer_in_the_server_stops_in_one_line_naming_the_task(
    make_cfg, tmp_path, server, monkeypatch
) -> None:
    checker = Experiment(make_cfg(*RUN), tmp_path / "truth")
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", TOKEN)
    root = tmp_path / "session"
    overrides = [*RUN, "oracle=label_studio", f"oracle.url={server.url}", "oracle.poll_seconds=0.5"]

    def answer_one_with_a_class_outside_the_config(stop: threading.Event) -> None:
        while not stop.is_set() and not project_tasks(server, root):
            stop.wait(0.5)
        tasks = project_tasks(server, root)
        names = checker.data.class_names
        for number, task in enumerate(tasks):
            painted = truth_of(checker, task["data"]["pool_image"], task["data"]["regions"])
            result = brush_results(painted, names)
            if number == 0:
                for part in result:
                    part["value"]["brushlabels"] = ["no such class"]
            server.call("POST", f"/api/tasks/{task['id']}/annotations", {"result": result})

    with pytest.raises(AlsegError, match=r"t0000 \(Label Studio task \d+\)") as error:
        run_beside(
            answer_one_with_a_class_outside_the_config,
            lambda: Experiment(make_cfg(*overrides), root, overrides).run(),
        )
    assert "\n" not in str(error.value) and "no such class" in str(error.value)
    assert pending_cycle(root) == 1 and not (query_dir(root, 1) / "applied.json").exists()  # nothing applied
