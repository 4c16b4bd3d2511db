"""Data shipped with serflow_env: generated traces (data/traces) and the script making them."""
