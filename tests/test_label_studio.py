"""End to end against a real Label Studio server started here: the query is imported as a
project's tasks, annotated through the API as an annotator would (the ground truth, painted
as brush masks), exported, and `alseg label` continues the run exactly as the simulated one.

Needs the `label-studio` server (its own environment: `python -m venv .venv-labelstudio &&
.venv-labelstudio/bin/pip install label-studio`); LABEL_STUDIO_BIN names its executable.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from test_human import RUN, comparable, truth_of

from alseg.experiment import Experiment, label_run
from alseg.labels.human import brush_results, pending_cycle, query_dir

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
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "LABEL_STUDIO_BASE_DATA_DIR": str(data),
            "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
        }
        command = [
            BINARY, "start", "--no-browser", "--port", str(self.port), "--host", "127.0.0.1",
            "--username", "annotator@example.com", "--password", "alseg-test-pass",
            "--user-token", TOKEN, "--enable-legacy-api-token",
        ]  # fmt: skip
        self.log = open(data / "server.log", "w")  # noqa: SIM115 (open while the server runs)
        self.process = subprocess.Popen(command, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 240
        while time.time() < deadline:
            try:
                self.call("GET", "/api/version")
                return
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"Label Studio exited: {(data / 'server.log').read_text()[-2000:]}"
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


@pytest.fixture
def server(tmp_path: Path):
    (tmp_path / "label-studio").mkdir()
    studio = LabelStudio(tmp_path / "label-studio")
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
    query = {unit["task"]: unit for unit in json.loads((folder / "query.json").read_text())["units"]}
    assert len(tasks) == len(query)
    for task in tasks:
        unit = query[task["data"]["task"]]
        result = brush_results(truth_of(experiment, unit), experiment.data.class_names)
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
