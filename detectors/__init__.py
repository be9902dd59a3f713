"""Rules and ML detectors behind one interface, and the trigger that turns scores into findings."""
