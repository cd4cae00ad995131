"""dx-talent's benchmarks, in one place: `python -m dx_bench e2e|training|reporting|nomination|auth`.

None of this runs in production; the service packages hold only what does."""
