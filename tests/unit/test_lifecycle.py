from __future__ import annotations

import pytest

from meshforge.lifecycle import FINAL_STATES, IllegalTransition, JobStatus, check_transition


@pytest.mark.parametrize(
    "current,new",
    [
        (JobStatus.QUEUED, JobStatus.PROCESSING),
        (JobStatus.QUEUED, JobStatus.CANCELLED),
        (JobStatus.PROCESSING, JobStatus.COMPLETED),
        (JobStatus.PROCESSING, JobStatus.FAILED),
        (JobStatus.PROCESSING, JobStatus.CANCELLED),
        (JobStatus.PROCESSING, JobStatus.QUEUED),
    ],
)
def test_allowed(current: JobStatus, new: JobStatus) -> None:
    check_transition(current, new)


@pytest.mark.parametrize("final", sorted(FINAL_STATES))
def test_final_states_are_final(final: JobStatus) -> None:
    assert final.is_final
    for new in JobStatus:
        with pytest.raises(IllegalTransition) as err:
            check_transition(final, new)
        assert err.value.code == "API_ERROR" and err.value.status_code == 409


def test_queued_cannot_complete_without_running() -> None:
    with pytest.raises(IllegalTransition):
        check_transition(JobStatus.QUEUED, JobStatus.COMPLETED)
