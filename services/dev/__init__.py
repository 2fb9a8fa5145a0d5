"""Running the whole system on one machine: `circles dev up` (the README run command)."""
