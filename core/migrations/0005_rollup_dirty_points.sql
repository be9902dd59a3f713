-- Late readings mark only their own points dirty: a device whose clock runs behind must not make the rollup
-- recompute every point of the plant.
ALTER TABLE rollup_dirty ADD COLUMN point_ids integer[];
