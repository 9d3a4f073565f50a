"""The outbox payload of an SMS: what is sealed opens as the same job, whatever the text."""

from __future__ import annotations

import json

import pytest

from services.common.keys import KeyRing
from services.common.vault import Vault
from services.warning.adapters.sms_jobs import SmsJob
from services.warning.domain.texts import FLASH_TEXT

JOBS = [
    SmsJob("d-1", "w-1", "+8613800138000", "【国家反诈中心预警】请勿转账。", False),
    SmsJob("d-2", None, "+8613000130000", FLASH_TEXT, True),
    SmsJob("d-3", "w-3", "+8613300133000", 'quotes " and \\ and\nnew line \u2028', False),
]


@pytest.mark.parametrize("job", JOBS, ids=["sms", "flash-no-warning", "escapes"])
def test_a_job_opens_as_it_was_sealed(job: SmsJob) -> None:
    vault = Vault(KeyRing.generate())
    assert SmsJob.decode(vault, job.encode(vault)) == job


@pytest.mark.parametrize("job", JOBS, ids=["sms", "flash-no-warning", "escapes"])
def test_a_job_is_the_json_object_of_its_fields(job: SmsJob) -> None:
    """Written by parts, read by any JSON reader as the object of the fields."""
    fields = {
        "d": job.delivery_id,
        "w": job.warning_id,
        "p": job.phone_number,
        "t": job.text,
        "f": job.flash,
    }
    assert json.loads(job._json()) == fields


def test_a_job_queued_in_clear_by_an_older_version_still_opens() -> None:
    vault = Vault(KeyRing.generate())
    clear = json.dumps({"d": "d-9", "w": "w-9", "p": "+8613800138009", "t": "文本", "f": False})
    assert SmsJob.decode(vault, clear.encode()) == SmsJob(
        "d-9", "w-9", "+8613800138009", "文本", False
    )
