"""integrations.ansible with the real ansible-runner and ansible-core, on localhost.

The injection tests are a product requirement: label values come from monitored systems and are
untrusted, so neither the shell nor Jinja may ever execute them. Each hostile payload is paired with a
control run that shows the same payload DOES execute when the defence is removed, so these tests would
catch a regression instead of passing vacuously.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import yaml

import integrations.ansible
from demo.processes import wait_until
from integrations.ansible import ParamValue, RunEvent
from tests.support.playbooks import processes_running, run, unique_duration, write_playbook

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
COLLECT_DIAGNOSTICS = ROOT / "runbooks" / "collect_diagnostics.yml"


def diagnostics_params(tmp_path: Path, service: str, instance: str, summary: str) -> dict[str, ParamValue]:
    return {
        "incident_id": 7,
        "service": service,
        "instance": instance,
        "summary": summary,
        "out_dir": str(tmp_path / "diagnostics"),
    }


def diagnostics_text(tmp_path: Path) -> str:
    return (tmp_path / "diagnostics" / "incident-7.txt").read_bytes().decode("utf-8")  # keep \r as written


def hang_playbook(tmp_path: Path) -> tuple[Path, str]:
    """A playbook whose only task sleeps a minute; the odd duration lets us find the process later."""
    duration = unique_duration(60)
    return write_playbook(
        tmp_path, [{"name": "Sleep for a long time", "ansible.builtin.command": f"sleep {duration}"}]
    ), duration


# ------------------------------------------------------------------ ordinary runs


def test_collect_diagnostics_succeeds_and_streams_events(tmp_path: Path) -> None:
    params = diagnostics_params(tmp_path, "demo-web", "127.0.0.1:8000", "target down: demo")

    outcome, seen = run(tmp_path, COLLECT_DIAGNOSTICS, params)

    assert outcome.status == "successful", outcome.stdout
    assert outcome.rc == 0 and outcome.ok
    assert outcome.failed_tasks == []
    assert seen.kinds() == [
        ("playbook_on_play_start", ""),
        ("playbook_on_task_start", "Ensure the diagnostics directory exists"),
        ("runner_on_ok", "Ensure the diagnostics directory exists"),
        ("playbook_on_task_start", "Record incident context and host state"),
        ("runner_on_ok", "Record incident context and host state"),
        ("playbook_on_stats", ""),
    ]
    assert [e.seq for e in seen.events] == list(range(1, len(seen.events) + 1))
    assert all(e.host == "localhost" for e in seen.events if e.kind == "runner_on_ok")
    assert seen.events[-2].changed  # changed_when: true
    times = [e.at for e in seen.events]
    assert times == sorted(times)
    assert outcome.started <= times[0] and times[-1] <= outcome.finished
    assert all(seen.during_run), "events must be delivered while the run is in progress, not replayed after"
    assert "PLAY RECAP" in outcome.stdout
    assert diagnostics_text(tmp_path).startswith(
        "incident=7\nservice=demo-web\ninstance=127.0.0.1:8000\nsummary=target down: demo\nuptime="
    )


def test_private_data_dir_is_private_and_removed(tmp_path: Path) -> None:
    params = diagnostics_params(tmp_path, "demo-web", "i-1", "s")

    outcome, seen = run(tmp_path, COLLECT_DIAGNOSTICS, params)

    assert outcome.ok, outcome.stdout
    assert seen.modes == {0o700}, "the private data dir is 0700 while running"
    assert list(seen.work_root.iterdir()) == [], "no run directory (and no parameter) may outlive the run"


def test_secret_params_are_redacted_from_stdout_and_events(tmp_path: Path) -> None:
    secret = "s3cr3t-api-token-Zq9"
    playbook = write_playbook(
        tmp_path,
        [
            {
                "name": "Show {{ token }}",
                "ansible.builtin.debug": {"msg": "visible={{ visible }} token={{ token }}"},
            },
            {"name": "Fail with {{ token }}", "ansible.builtin.command": "false {{ token }}"},
        ],
    )

    outcome, seen = run(
        tmp_path, playbook, {"visible": "plain-value", "token": secret}, secret=frozenset({"token"})
    )

    assert outcome.status == "failed"
    assert "visible=plain-value token=***" in outcome.stdout, "the params really reached the output"
    assert secret not in outcome.stdout
    for e in seen.events:
        assert secret not in e.stdout and secret not in e.task, f"secret leaked through {e.kind}"
    assert outcome.failed_tasks == ["Fail with ***"]


def test_failing_task_reports_failed_with_its_name(tmp_path: Path) -> None:
    playbook = write_playbook(
        tmp_path,
        [
            {"name": "Fine first step", "ansible.builtin.command": "true"},
            {"name": "Fail on purpose", "ansible.builtin.command": "/bin/false"},
            {"name": "Never reached", "ansible.builtin.command": "true"},
        ],
    )

    outcome, seen = run(tmp_path, playbook, {})

    assert outcome.status == "failed"
    assert outcome.rc != 0 and not outcome.ok
    assert outcome.failed_tasks == ["Fail on purpose"]
    failed = [e for e in seen.events if e.failed]
    assert [(e.kind, e.task, e.host) for e in failed] == [
        ("runner_on_failed", "Fail on purpose", "localhost")
    ]
    assert "Never reached" not in {e.task for e in seen.events}
    assert list(seen.work_root.iterdir()) == []


def test_hanging_playbook_times_out(tmp_path: Path) -> None:
    playbook, duration = hang_playbook(tmp_path)
    t0 = time.monotonic()

    outcome, seen = run(tmp_path, playbook, {}, timeout=3)

    elapsed = time.monotonic() - t0
    assert outcome.status == "timeout"
    assert not outcome.ok
    assert 3 <= elapsed < 20, f"took {elapsed:.1f}s"
    assert ("playbook_on_task_start", "Sleep for a long time") in seen.kinds()
    wait_until(lambda: not processes_running(duration), 10, "the timed-out task's process to end")
    assert list(seen.work_root.iterdir()) == []


def test_cancel_callback_stops_a_running_playbook(tmp_path: Path) -> None:
    playbook, duration = hang_playbook(tmp_path)
    sleeping = threading.Event()

    def note(event: RunEvent) -> None:
        if event.kind == "playbook_on_task_start" and event.task == "Sleep for a long time":
            sleeping.set()

    t0 = time.monotonic()
    outcome, _ = run(tmp_path, playbook, {}, timeout=120, cancel=sleeping.is_set, on_event=note)

    elapsed = time.monotonic() - t0
    assert sleeping.is_set()
    assert outcome.status == "canceled"
    assert not outcome.ok
    assert elapsed < 30, f"cancel took {elapsed:.1f}s"
    wait_until(lambda: not processes_running(duration), 10, "the cancelled task's process to end")


# ------------------------------------------------------------------ hostile parameters

MARK = "@MARK@"  # replaced by the absolute path of a marker file, one per parameter

HOSTILE = {
    "shell-substitution": (
        f"$(touch {MARK})",
        f"`touch {MARK}`",
        f"x; touch {MARK}; echo y && touch {MARK} | touch {MARK} & touch {MARK}",
    ),
    "quotes-and-newlines": (
        f"'; touch {MARK}; echo '",
        f'"; touch {MARK}; echo "',
        f"first line\ntouch {MARK}\n'$(touch {MARK})'\\n\r\n",
    ),
    "jinja": (
        "{{ lookup('pipe', 'touch " + MARK + "') }}",
        "{% raw %}",
        "{{ out_dir }}{% endraw %}{{ lookup('pipe', 'touch " + MARK + "') }}{# c #}",
    ),
}
JINJA_PAYLOAD = HOSTILE["jinja"][0]
SHELL_PAYLOAD = HOSTILE["shell-substitution"][0]


def arm(payloads: tuple[str, str, str], markers: Path) -> tuple[str, str, str]:
    service, instance, summary = (
        p.replace(MARK, str(markers / name))
        for p, name in zip(payloads, ("service", "instance", "summary"), strict=True)
    )
    return service, instance, summary


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_label_values_arrive_verbatim_and_execute_nothing(tmp_path: Path, case: str) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    service, instance, summary = arm(HOSTILE[case], markers)

    outcome, _ = run(tmp_path, COLLECT_DIAGNOSTICS, diagnostics_params(tmp_path, service, instance, summary))

    assert outcome.ok, outcome.stdout
    assert list(markers.iterdir()) == [], "a hostile parameter was executed"
    assert diagnostics_text(tmp_path).startswith(
        f"incident=7\nservice={service}\ninstance={instance}\nsummary={summary}\nuptime="
    )


def test_control_jinja_payload_executes_without_unsafe_tagging(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Proves the Jinja payload is live: written as plain extra vars, Ansible runs the lookup."""
    monkeypatch.setattr(integrations.ansible, "render_extravars", lambda p: yaml.safe_dump(dict(p)))
    markers = tmp_path / "markers"
    markers.mkdir()
    service = JINJA_PAYLOAD.replace(MARK, str(markers / "service"))

    outcome, _ = run(tmp_path, COLLECT_DIAGNOSTICS, diagnostics_params(tmp_path, service, "i", "s"))

    assert outcome.ok, outcome.stdout
    assert (markers / "service").exists(), "control failed: the payload did not execute even without !unsafe"


def test_control_shell_payload_executes_without_quote(tmp_path: Path) -> None:
    """Proves the shell payload is live: the shipped playbook minus its `| quote` filters runs it."""
    unquoted = tmp_path / "collect_diagnostics_unquoted.yml"
    text = COLLECT_DIAGNOSTICS.read_text()
    assert text.count(" | quote") >= 4
    unquoted.write_text(text.replace(" | quote", ""))
    markers = tmp_path / "markers"
    markers.mkdir()
    service = SHELL_PAYLOAD.replace(MARK, str(markers / "service"))

    outcome, _ = run(tmp_path, unquoted, diagnostics_params(tmp_path, service, "i", "s"))

    assert outcome.ok, outcome.stdout
    assert (markers / "service").exists(), "control failed: the payload did not execute even unquoted"
