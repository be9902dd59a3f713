-- A reduction project may name a meter's energy baseline (energy_baseline, ISO 50006): its savings for a period are
-- then the baseline's normalised savings there, converted with the period's grid factor (carbon.service).
ALTER TABLE carbon_project
    ADD COLUMN baseline_meter text CHECK (baseline_meter ~ '^[a-z0-9][a-z0-9_-]*$'),
    ADD COLUMN baseline_granularity text CHECK (baseline_granularity IN ('monthly', 'daily', 'hourly')),
    ADD CONSTRAINT carbon_project_baseline_pair CHECK ((baseline_meter IS NULL) = (baseline_granularity IS NULL));
