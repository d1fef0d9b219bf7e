"""Runbook parameters reach the playbook with the type the catalog declares, through the real
ansible-runner: a string that looks like a number, a boolean, null, a time or a date stays that text
(YAML 1.1 would read `007` as 7, `0x1F` as 31, `yes` as True, `12:30` as 750)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from integrations.ansible import ParamValue
from tests.support.playbooks import run, write_playbook

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def echo_playbook(tmp_path: Path, check: str) -> tuple[Path, Path]:
    """A playbook that asserts `check` inside Ansible, then writes `value` and its Ansible type as JSON."""
    out = tmp_path / "value.json"
    return write_playbook(
        tmp_path,
        [
            {"name": "Check the type inside Ansible", "ansible.builtin.assert": {"that": [check]}},
            {
                "name": "Write what arrived",
                "ansible.builtin.copy": {
                    "dest": str(out),
                    "content": "{{ {'value': value, 'type': value | type_debug} | to_json }}",
                },
            },
        ],
    ), out


@pytest.mark.parametrize("text", ["007", "0x1F", "null", "yes", "12:30", "2024-01-02", "~", "", "True"])
def test_string_params_arrive_as_the_same_text(tmp_path: Path, text: str) -> None:
    playbook, out = echo_playbook(tmp_path, "value is string")

    outcome, _ = run(tmp_path, playbook, {"value": text})

    assert outcome.ok, outcome.stdout
    assert json.loads(out.read_text()) == {"value": text, "type": "str"}


@pytest.mark.parametrize(
    ("value", "check", "ansible_type"),
    [
        (7, "value is integer", "int"),
        (-3, "value is integer", "int"),
        (1.5, "value is float", "float"),
        (True, "value is boolean", "bool"),
        (False, "value is boolean", "bool"),
    ],
)
def test_typed_params_arrive_as_their_type(
    tmp_path: Path, value: ParamValue, check: str, ansible_type: str
) -> None:
    playbook, out = echo_playbook(tmp_path, check)

    outcome, _ = run(tmp_path, playbook, {"value": value})

    assert outcome.ok, outcome.stdout
    assert json.loads(out.read_text()) == {"value": value, "type": ansible_type}
