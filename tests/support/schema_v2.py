"""The schema an agent of schema version 2 created (the release before the store became the source of
truth), per dialect, as that release's SQLModel tables compiled it, for migration tests."""

from __future__ import annotations

from sqlalchemy import Engine, text

DDL: dict[str, list[str]] = {
    "sqlite": [
        "CREATE TABLE audit_log ( id INTEGER NOT NULL, at DATETIME NOT NULL, actor VARCHAR NOT NULL, action VARCHAR NOT NULL, target VARCHAR NOT NULL, details JSON NOT NULL, PRIMARY KEY (id) )",
        "CREATE INDEX ix_audit_log_at ON audit_log (at)",
        "CREATE TABLE incidents ( id INTEGER NOT NULL, service VARCHAR NOT NULL, signature VARCHAR NOT NULL, title VARCHAR NOT NULL, status VARCHAR NOT NULL, priority VARCHAR NOT NULL, impact VARCHAR NOT NULL, urgency VARCHAR NOT NULL, started_at DATETIME NOT NULL, opened_at DATETIME NOT NULL, updated_at DATETIME NOT NULL, acknowledged_at DATETIME, remediation_started_at DATETIME, resolved_at DATETIME, ack_due_at DATETIME NOT NULL, resolve_due_at DATETIME NOT NULL, ack_breached BOOLEAN NOT NULL, resolve_breached BOOLEAN NOT NULL, escalated BOOLEAN NOT NULL, parent_id INTEGER, problem_id INTEGER, resolution VARCHAR NOT NULL, resolved_by VARCHAR NOT NULL, PRIMARY KEY (id) )",
        "CREATE INDEX ix_incidents_opened_at ON incidents (opened_at)",
        "CREATE INDEX ix_incidents_problem_id ON incidents (problem_id)",
        "CREATE INDEX ix_incidents_service ON incidents (service)",
        "CREATE INDEX ix_incidents_signature ON incidents (signature)",
        "CREATE INDEX ix_incidents_status ON incidents (status)",
        "CREATE TABLE known_errors ( id INTEGER NOT NULL, signature VARCHAR NOT NULL, title VARCHAR NOT NULL, root_cause TEXT NOT NULL, workaround TEXT NOT NULL, workaround_runbook VARCHAR NOT NULL, created_at DATETIME NOT NULL, PRIMARY KEY (id) )",
        "CREATE INDEX ix_known_errors_signature ON known_errors (signature)",
        "CREATE TABLE problems ( id INTEGER NOT NULL, signature VARCHAR NOT NULL, kind VARCHAR NOT NULL, service VARCHAR NOT NULL, title VARCHAR NOT NULL, status VARCHAR NOT NULL, occurrences INTEGER NOT NULL, first_seen DATETIME NOT NULL, last_seen DATETIME NOT NULL, created_at DATETIME NOT NULL, updated_at DATETIME NOT NULL, root_cause TEXT NOT NULL, workaround TEXT NOT NULL, known_error_id INTEGER, PRIMARY KEY (id) )",
        "CREATE INDEX ix_problems_service ON problems (service)",
        "CREATE UNIQUE INDEX ix_problems_signature ON problems (signature)",
        "CREATE INDEX ix_problems_status ON problems (status)",
        "CREATE TABLE schema_version ( version INTEGER NOT NULL, applied_at DATETIME NOT NULL, PRIMARY KEY (version) )",
        "CREATE TABLE changes ( id INTEGER NOT NULL, incident_id INTEGER NOT NULL, rule VARCHAR NOT NULL, service VARCHAR NOT NULL, runbook VARCHAR NOT NULL, playbook VARCHAR NOT NULL, change_type VARCHAR NOT NULL, risk VARCHAR NOT NULL, status VARCHAR NOT NULL, attempt INTEGER NOT NULL, params JSON NOT NULL, reason TEXT NOT NULL, created_at DATETIME NOT NULL, decided_at DATETIME, decided_by VARCHAR NOT NULL, started_at DATETIME, finished_at DATETIME, verify_promql TEXT NOT NULL, verify_deadline_s FLOAT NOT NULL, verified_at DATETIME, verification TEXT NOT NULL, outcome TEXT NOT NULL, rollback_playbook VARCHAR NOT NULL, PRIMARY KEY (id), FOREIGN KEY(incident_id) REFERENCES incidents (id) )",
        "CREATE INDEX ix_changes_created_at ON changes (created_at)",
        "CREATE INDEX ix_changes_incident_id ON changes (incident_id)",
        "CREATE INDEX ix_changes_rule ON changes (rule)",
        "CREATE INDEX ix_changes_service ON changes (service)",
        "CREATE INDEX ix_changes_status ON changes (status)",
        "CREATE TABLE incident_events ( id INTEGER NOT NULL, incident_id INTEGER NOT NULL, at DATETIME NOT NULL, kind VARCHAR NOT NULL, actor VARCHAR NOT NULL, reason TEXT NOT NULL, data JSON NOT NULL, PRIMARY KEY (id), FOREIGN KEY(incident_id) REFERENCES incidents (id) )",
        "CREATE INDEX ix_incident_events_incident_id ON incident_events (incident_id)",
        "CREATE TABLE problem_incidents ( problem_id INTEGER NOT NULL, incident_id INTEGER NOT NULL, PRIMARY KEY (problem_id, incident_id), FOREIGN KEY(problem_id) REFERENCES problems (id), FOREIGN KEY(incident_id) REFERENCES incidents (id) )",
        "CREATE TABLE signals ( id INTEGER NOT NULL, incident_id INTEGER NOT NULL, fingerprint VARCHAR NOT NULL, name VARCHAR NOT NULL, service VARCHAR NOT NULL, source VARCHAR NOT NULL, detector VARCHAR NOT NULL, severity VARCHAR NOT NULL, labels JSON NOT NULL, first_at DATETIME NOT NULL, last_at DATETIME NOT NULL, count INTEGER NOT NULL, peak_score FLOAT NOT NULL, last_value FLOAT NOT NULL, last_expected FLOAT, last_score FLOAT NOT NULL, cleared_at DATETIME, evidence JSON, PRIMARY KEY (id), UNIQUE (incident_id, fingerprint), FOREIGN KEY(incident_id) REFERENCES incidents (id) )",
        "CREATE INDEX ix_signals_fingerprint ON signals (fingerprint)",
        "CREATE INDEX ix_signals_incident_id ON signals (incident_id)",
        "CREATE TABLE runbook_runs ( id INTEGER NOT NULL, change_id INTEGER NOT NULL, kind VARCHAR NOT NULL, playbook VARCHAR NOT NULL, status VARCHAR NOT NULL, rc INTEGER, started_at DATETIME NOT NULL, finished_at DATETIME, duration_s FLOAT, stdout TEXT NOT NULL, failed_tasks JSON NOT NULL, PRIMARY KEY (id), FOREIGN KEY(change_id) REFERENCES changes (id) )",
        "CREATE INDEX ix_runbook_runs_change_id ON runbook_runs (change_id)",
        "CREATE INDEX ix_runbook_runs_status ON runbook_runs (status)",
        "CREATE TABLE runbook_events ( id INTEGER NOT NULL, run_id INTEGER NOT NULL, seq INTEGER NOT NULL, kind VARCHAR NOT NULL, task VARCHAR NOT NULL, host VARCHAR NOT NULL, failed BOOLEAN NOT NULL, changed BOOLEAN NOT NULL, stdout TEXT NOT NULL, at DATETIME NOT NULL, PRIMARY KEY (id), FOREIGN KEY(run_id) REFERENCES runbook_runs (id) )",
        "CREATE INDEX ix_runbook_events_run_id ON runbook_events (run_id)",
    ],
    "postgresql": [
        "CREATE TABLE audit_log ( id SERIAL NOT NULL, at TIMESTAMP WITH TIME ZONE NOT NULL, actor VARCHAR NOT NULL, action VARCHAR NOT NULL, target VARCHAR NOT NULL, details JSON NOT NULL, PRIMARY KEY (id) )",
        "CREATE INDEX ix_audit_log_at ON audit_log (at)",
        "CREATE TABLE incidents ( id SERIAL NOT NULL, service VARCHAR NOT NULL, signature VARCHAR NOT NULL, title VARCHAR NOT NULL, status VARCHAR NOT NULL, priority VARCHAR NOT NULL, impact VARCHAR NOT NULL, urgency VARCHAR NOT NULL, started_at TIMESTAMP WITH TIME ZONE NOT NULL, opened_at TIMESTAMP WITH TIME ZONE NOT NULL, updated_at TIMESTAMP WITH TIME ZONE NOT NULL, acknowledged_at TIMESTAMP WITH TIME ZONE, remediation_started_at TIMESTAMP WITH TIME ZONE, resolved_at TIMESTAMP WITH TIME ZONE, ack_due_at TIMESTAMP WITH TIME ZONE NOT NULL, resolve_due_at TIMESTAMP WITH TIME ZONE NOT NULL, ack_breached BOOLEAN NOT NULL, resolve_breached BOOLEAN NOT NULL, escalated BOOLEAN NOT NULL, parent_id INTEGER, problem_id INTEGER, resolution VARCHAR NOT NULL, resolved_by VARCHAR NOT NULL, PRIMARY KEY (id) )",
        "CREATE INDEX ix_incidents_opened_at ON incidents (opened_at)",
        "CREATE INDEX ix_incidents_problem_id ON incidents (problem_id)",
        "CREATE INDEX ix_incidents_service ON incidents (service)",
        "CREATE INDEX ix_incidents_signature ON incidents (signature)",
        "CREATE INDEX ix_incidents_status ON incidents (status)",
        "CREATE TABLE known_errors ( id SERIAL NOT NULL, signature VARCHAR NOT NULL, title VARCHAR NOT NULL, root_cause TEXT NOT NULL, workaround TEXT NOT NULL, workaround_runbook VARCHAR NOT NULL, created_at TIMESTAMP WITH TIME ZONE NOT NULL, PRIMARY KEY (id) )",
        "CREATE INDEX ix_known_errors_signature ON known_errors (signature)",
        "CREATE TABLE problems ( id SERIAL NOT NULL, signature VARCHAR NOT NULL, kind VARCHAR NOT NULL, service VARCHAR NOT NULL, title VARCHAR NOT NULL, status VARCHAR NOT NULL, occurrences INTEGER NOT NULL, first_seen TIMESTAMP WITH TIME ZONE NOT NULL, last_seen TIMESTAMP WITH TIME ZONE NOT NULL, created_at TIMESTAMP WITH TIME ZONE NOT NULL, updated_at TIMESTAMP WITH TIME ZONE NOT NULL, root_cause TEXT NOT NULL, workaround TEXT NOT NULL, known_error_id INTEGER, PRIMARY KEY (id) )",
        "CREATE INDEX ix_problems_service ON problems (service)",
        "CREATE UNIQUE INDEX ix_problems_signature ON problems (signature)",
        "CREATE INDEX ix_problems_status ON problems (status)",
        "CREATE TABLE schema_version ( version SERIAL NOT NULL, applied_at TIMESTAMP WITH TIME ZONE NOT NULL, PRIMARY KEY (version) )",
        "CREATE TABLE changes ( id SERIAL NOT NULL, incident_id INTEGER NOT NULL, rule VARCHAR NOT NULL, service VARCHAR NOT NULL, runbook VARCHAR NOT NULL, playbook VARCHAR NOT NULL, change_type VARCHAR NOT NULL, risk VARCHAR NOT NULL, status VARCHAR NOT NULL, attempt INTEGER NOT NULL, params JSON NOT NULL, reason TEXT NOT NULL, created_at TIMESTAMP WITH TIME ZONE NOT NULL, decided_at TIMESTAMP WITH TIME ZONE, decided_by VARCHAR NOT NULL, started_at TIMESTAMP WITH TIME ZONE, finished_at TIMESTAMP WITH TIME ZONE, verify_promql TEXT NOT NULL, verify_deadline_s FLOAT NOT NULL, verified_at TIMESTAMP WITH TIME ZONE, verification TEXT NOT NULL, outcome TEXT NOT NULL, rollback_playbook VARCHAR NOT NULL, PRIMARY KEY (id), FOREIGN KEY(incident_id) REFERENCES incidents (id) )",
        "CREATE INDEX ix_changes_created_at ON changes (created_at)",
        "CREATE INDEX ix_changes_incident_id ON changes (incident_id)",
        "CREATE INDEX ix_changes_rule ON changes (rule)",
        "CREATE INDEX ix_changes_service ON changes (service)",
        "CREATE INDEX ix_changes_status ON changes (status)",
        "CREATE TABLE incident_events ( id SERIAL NOT NULL, incident_id INTEGER NOT NULL, at TIMESTAMP WITH TIME ZONE NOT NULL, kind VARCHAR NOT NULL, actor VARCHAR NOT NULL, reason TEXT NOT NULL, data JSON NOT NULL, PRIMARY KEY (id), FOREIGN KEY(incident_id) REFERENCES incidents (id) )",
        "CREATE INDEX ix_incident_events_incident_id ON incident_events (incident_id)",
        "CREATE TABLE problem_incidents ( problem_id INTEGER NOT NULL, incident_id INTEGER NOT NULL, PRIMARY KEY (problem_id, incident_id), FOREIGN KEY(problem_id) REFERENCES problems (id), FOREIGN KEY(incident_id) REFERENCES incidents (id) )",
        "CREATE TABLE signals ( id SERIAL NOT NULL, incident_id INTEGER NOT NULL, fingerprint VARCHAR NOT NULL, name VARCHAR NOT NULL, service VARCHAR NOT NULL, source VARCHAR NOT NULL, detector VARCHAR NOT NULL, severity VARCHAR NOT NULL, labels JSON NOT NULL, first_at TIMESTAMP WITH TIME ZONE NOT NULL, last_at TIMESTAMP WITH TIME ZONE NOT NULL, count INTEGER NOT NULL, peak_score FLOAT NOT NULL, last_value FLOAT NOT NULL, last_expected FLOAT, last_score FLOAT NOT NULL, cleared_at TIMESTAMP WITH TIME ZONE, evidence JSON, PRIMARY KEY (id), UNIQUE (incident_id, fingerprint), FOREIGN KEY(incident_id) REFERENCES incidents (id) )",
        "CREATE INDEX ix_signals_fingerprint ON signals (fingerprint)",
        "CREATE INDEX ix_signals_incident_id ON signals (incident_id)",
        "CREATE TABLE runbook_runs ( id SERIAL NOT NULL, change_id INTEGER NOT NULL, kind VARCHAR NOT NULL, playbook VARCHAR NOT NULL, status VARCHAR NOT NULL, rc INTEGER, started_at TIMESTAMP WITH TIME ZONE NOT NULL, finished_at TIMESTAMP WITH TIME ZONE, duration_s FLOAT, stdout TEXT NOT NULL, failed_tasks JSON NOT NULL, PRIMARY KEY (id), FOREIGN KEY(change_id) REFERENCES changes (id) )",
        "CREATE INDEX ix_runbook_runs_change_id ON runbook_runs (change_id)",
        "CREATE INDEX ix_runbook_runs_status ON runbook_runs (status)",
        "CREATE TABLE runbook_events ( id SERIAL NOT NULL, run_id INTEGER NOT NULL, seq INTEGER NOT NULL, kind VARCHAR NOT NULL, task VARCHAR NOT NULL, host VARCHAR NOT NULL, failed BOOLEAN NOT NULL, changed BOOLEAN NOT NULL, stdout TEXT NOT NULL, at TIMESTAMP WITH TIME ZONE NOT NULL, PRIMARY KEY (id), FOREIGN KEY(run_id) REFERENCES runbook_runs (id) )",
        "CREATE INDEX ix_runbook_events_run_id ON runbook_events (run_id)",
    ],
}


def create_v2_store(engine: Engine) -> None:
    """An empty store exactly as a version-2 agent left it."""
    with engine.begin() as conn:
        for statement in DDL[engine.dialect.name]:
            conn.execute(text(statement))
        conn.execute(text("INSERT INTO schema_version (version, applied_at) VALUES (2, CURRENT_TIMESTAMP)"))
