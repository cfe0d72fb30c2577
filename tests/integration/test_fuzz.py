"""Schemathesis against the live OpenAPI documents, auth off and auth on: every generated
request (positive and negative data) must get an answer below 500, and every 4xx must be
the error envelope.

`MESHFORGE_FUZZ_SEED` (default: random, printed) and `MESHFORGE_FUZZ_EXAMPLES` (examples
per operation and generation mode) tune a run; each run asserts at least MIN_CASES cases.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests.integration.conftest import AuthService, Service

MIN_CASES = 1000
EXAMPLES = int(os.environ.get("MESHFORGE_FUZZ_EXAMPLES", "25"))
SEED = int(os.environ.get("MESHFORGE_FUZZ_SEED") or random.randrange(2**32))
NO_ENVELOPE = ("text/event-stream",)  # 4xx of these routes come before streaming anyway


@dataclass
class Report:
    cases: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


def _content_type(resp: Any) -> str:
    value = resp.headers.get("content-type") or resp.headers.get("Content-Type") or ""
    return str(value[0] if isinstance(value, list) and value else value)


def _check(case: Any, resp: Any, report: Report, secrets: tuple[str, ...]) -> None:
    report.cases += 1
    report.statuses[resp.status_code] += 1
    where = f"{case.method} {case.formatted_path} ({case.as_curl_command()[:300]})"
    # A marker the request itself carried (e.g. a generated job id "sqlalchemy.url") is an
    # echo of the caller's input, not a leak.
    sent = repr((case.path_parameters, case.query, case.body, case.headers))
    if resp.status_code >= 400 and any(s in resp.text and s not in sent for s in secrets):
        report.failures.append(f"internals leaked on {where}: {resp.text[:300]}")
    if resp.status_code >= 500:
        report.failures.append(f"{resp.status_code} on {where}: {resp.text[:300]}")
    elif resp.status_code >= 400 and not _content_type(resp).startswith(NO_ENVELOPE):
        try:
            body = resp.json()
        except ValueError:
            report.failures.append(f"non-JSON {resp.status_code} on {where}: {resp.text[:200]}")
            return
        if not (isinstance(body, dict) and set(body) == {"error", "message", "detail"}):
            report.failures.append(f"not the envelope on {where}: {resp.text[:200]}")


def fuzz(svc: Service, headers: dict[str, str]) -> Report:
    """Run every operation of `svc`'s OpenAPI document through both generation modes."""
    schema = schemathesis.openapi.from_url(f"{svc.url}/openapi.json")
    report = Report()
    leaks = ("Traceback", "site-packages", str(svc.settings.data_dir), "sqlalchemy", "psycopg")
    session = requests.Session()
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @seed(SEED)
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case: Any) -> None:
                resp = case.call(base_url=svc.url, session=session, headers=headers, timeout=60)
                _check(case, resp, report, leaks)

            try:
                run()
            except Unsatisfiable:
                pass  # e.g. no way to make invalid data for an operation without inputs
    return report


def _assert_clean(report: Report, label: str, started: float) -> None:
    took = time.monotonic() - started
    print(
        f"\nfuzz {label}: seed={SEED} cases={report.cases} in {took:.0f}s {dict(report.statuses)}"
    )
    assert not report.failures, f"seed {SEED}:\n" + "\n".join(report.failures[:20])
    assert report.cases >= MIN_CASES, f"only {report.cases} cases (seed {SEED})"


@pytest.mark.timeout(900)
def test_fuzz_auth_off(service: Service) -> None:
    started = time.monotonic()
    _assert_clean(fuzz(service, {}), "auth off", started)


@pytest.mark.timeout(900)
def test_fuzz_auth_on(auth_service: AuthService) -> None:
    user, _ = auth_service.new_user()
    started = time.monotonic()
    _assert_clean(fuzz(auth_service, user.headers), "auth on", started)
