"""`oracle=label_studio`: people answer in a Label Studio server that the run drives itself.

After each acquisition the query (written as for `oracle=human`) is imported into the run's
project, one task per queried unit; the run waits, saying how many tasks are labelled whenever
that changes, fetches the annotations once every task has one, checks and applies them as
`alseg label` does, and trains the next cycle. The project id and each cycle's task ids are
recorded in the run directory (`queries/label_studio.json`,
`queries/cycle_NNN/tasks_in_label_studio.json`); before importing, the project is listed, so a
run killed while importing or waiting imports nothing twice when rerun, and a task deleted in
the server is imported again.

The API token comes from LABEL_STUDIO_API_KEY (or `oracle.token`); it is never written to the
run directory, logged or shown in an error.
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from alseg.atomic import atomic_write_text
from alseg.data.base import SegmentationDataset
from alseg.errors import AlsegError
from alseg.labels.human import QUERIES, HumanOracle, labeling_config, query_dir
from alseg.labels.ledger import CostLedger
from alseg.labels.state import LabelState

log = logging.getLogger("alseg")

TOKEN_VARIABLE = "LABEL_STUDIO_API_KEY"
PROJECT_FILE = "label_studio.json"
TASKS_FILE = "tasks_in_label_studio.json"
EXPORT_FILE = "label_studio_export.json"
RETRY_SECONDS = (1, 2, 4, 8, 16, 32, 60)
"""Waits between tries of a request the server did not answer (a restart takes seconds)."""


class LabelStudioClient:
    """The few calls of Label Studio's HTTP API a session needs, with retries and backoff."""

    def __init__(self, url: str, token: str) -> None:
        self.url, self._token = url.rstrip("/"), token

    def call(self, method: str, path: str, body: object = None) -> Any:
        """The JSON answer of one request, retried while the server is down or restarting."""
        data = None if body is None else json.dumps(body).encode()
        last = ""
        for wait in (*RETRY_SECONDS, None):
            request = urllib.request.Request(self.url + path, data=data, method=method)
            request.add_header("Authorization", f"Token {self._token}")
            request.add_header("Content-Type", "application/json")
            try:
                with urllib.request.urlopen(request, timeout=120) as response:
                    text = response.read().decode()
                return json.loads(text) if text else None
            except urllib.error.HTTPError as error:
                if error.code in (401, 403):
                    raise AlsegError(
                        f"Label Studio at {self.url} refused the API token (HTTP {error.code}): set "
                        f"{TOKEN_VARIABLE} to the token of your account there (Account & Settings)"
                    ) from None
                if error.code < 500:
                    raise AlsegError(
                        f"Label Studio at {self.url} refused {method} {path} (HTTP {error.code}): "
                        f"{error.read().decode(errors='replace')[:300]}"
                    ) from None
                last = f"HTTP {error.code}"
            except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
                last = str(getattr(error, "reason", error))
            if wait is not None:
                if wait == RETRY_SECONDS[0]:
                    log.warning(
                        "Label Studio at %s does not answer (%s); retrying for up to %d s",
                        self.url, last, sum(RETRY_SECONDS),
                    )  # fmt: skip
                time.sleep(wait)
        raise AlsegError(
            f"Label Studio at {self.url} did not answer for {sum(RETRY_SECONDS)} s ({last}): start it, or "
            "set oracle.url, then rerun the same command; the run resumes where it waited"
        )

    def tasks(self, project: int) -> list[dict[str, Any]]:
        """Every task of the project (with its annotation counts)."""
        found, page = [], 1
        while True:
            listed = self.call("GET", f"/api/tasks?project={project}&page={page}&page_size=500")
            tasks = listed["tasks"] if isinstance(listed, dict) else listed
            found += tasks
            total = listed.get("total", len(found)) if isinstance(listed, dict) else len(found)
            if not tasks or len(found) >= total:
                return found
            page += 1


class LabelStudioOracle(HumanOracle):
    """A human oracle whose people label in a Label Studio server the run talks to."""

    def __init__(
        self,
        pool: SegmentationDataset,
        state: LabelState,
        ledger: CostLedger,
        root: Path,
        url: str,
        token: str | None,
        project: str,
        poll_seconds: float = 5.0,
        timeout: float | None = None,
    ) -> None:
        super().__init__(pool, state, ledger, root)
        token = token or os.environ.get(TOKEN_VARIABLE)
        if not token:
            raise AlsegError(
                f"oracle=label_studio needs the API token of your Label Studio account: export "
                f"{TOKEN_VARIABLE}=... (Account & Settings in Label Studio)"
            )
        self.client = LabelStudioClient(url, token)
        self.title, self.poll_seconds, self.timeout = project, poll_seconds, timeout
        self.client.call("GET", "/api/projects?page_size=1")  # a wrong URL or token: one line, now

    def project(self) -> int:
        """The run's project id, created (with the labelling config) on first use."""
        record = self.root / QUERIES / PROJECT_FILE
        if record.exists():
            return int(json.loads(record.read_text())["project"])
        config = labeling_config(self._pool.class_names)
        created = self.client.call("POST", "/api/projects", {"title": self.title, "label_config": config})
        atomic_write_text(record, json.dumps({"project": created["id"], "url": self.client.url}) + "\n")
        log.info("Label Studio project %r (id %s) at %s", self.title, created["id"], self.client.url)
        return int(created["id"])

    def submit(self, cycle: int) -> dict[str, int]:
        """Import the cycle's tasks not in the project yet; every task's id, by alseg's task name."""
        folder, project = query_dir(self.root, cycle), self.project()
        tasks = json.loads((folder / "tasks.json").read_text())
        for task in tasks:
            task["data"]["alseg_cycle"] = cycle
        present = self._cycle_tasks(project, cycle)
        missing = [task for task in tasks if task["data"]["task"] not in present]
        if missing:
            self.client.call("POST", f"/api/projects/{project}/import", missing)
            present = self._cycle_tasks(project, cycle)
            log.info(
                "cycle %d: %d tasks in Label Studio project %s at %s",
                cycle,
                len(present),
                project,
                self.client.url,
            )
        ids = {name: int(task["id"]) for name, task in present.items()}
        atomic_write_text(folder / TASKS_FILE, json.dumps(ids, indent=1) + "\n")
        return ids

    def _cycle_tasks(self, project: int, cycle: int) -> dict[str, dict[str, Any]]:
        return {
            task["data"]["task"]: task
            for task in self.client.tasks(project)
            if task.get("data", {}).get("alseg_cycle") == cycle
        }

    def wait(self, cycle: int, ids: dict[str, int]) -> None:
        """Poll until every task of the cycle has an annotation; a line whenever the count changes."""
        project, start, shown = self.project(), time.monotonic(), -1
        while True:
            tasks = {int(task["id"]): task for task in self.client.tasks(project)}
            for name, task_id in ids.items():
                if task_id not in tasks:
                    raise AlsegError(
                        f"task {name} of cycle {cycle} (Label Studio task {task_id}) was deleted in Label "
                        "Studio; rerun the same command to import it again"
                    )
                task = tasks[task_id]
                if not task.get("total_annotations") and task.get("cancelled_annotations"):
                    raise AlsegError(
                        f"task {name} of cycle {cycle} (Label Studio task {task_id}) was skipped; label it "
                        "in Label Studio (every queried unit needs an answer), then rerun the same command"
                    )
            done = sum(bool(tasks[task_id].get("total_annotations")) for task_id in ids.values())
            if done != shown:
                log.info("cycle %d: %d of %d tasks labelled", cycle, done, len(ids))
                shown = done
            if done == len(ids):
                return
            if self.timeout is not None and time.monotonic() - start > self.timeout:
                raise AlsegError(
                    f"cycle {cycle}: {done} of {len(ids)} tasks labelled after oracle.timeout="
                    f"{self.timeout} s; rerun the same command to keep waiting"
                )
            time.sleep(self.poll_seconds)

    def fetch(self, cycle: int, ids: dict[str, int]) -> Path:
        """The cycle's tasks with their annotations, as a Label Studio JSON export file."""
        wanted = set(ids.values())
        exported = self.client.call("GET", f"/api/projects/{self.project()}/export?exportType=JSON")
        mine = [task for task in exported if int(task["id"]) in wanted]
        path = query_dir(self.root, cycle) / EXPORT_FILE
        atomic_write_text(path, json.dumps(mine))
        return path
