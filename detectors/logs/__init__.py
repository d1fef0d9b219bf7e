"""Log detectors: template mining (what kind of line is this?) and log signals (new templates, rate
spikes, error bursts). Lines in, templates and anomalies out; nothing here knows about incidents."""
