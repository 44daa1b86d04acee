"""The journal: the record of runs, steps, incidents and deliveries."""
