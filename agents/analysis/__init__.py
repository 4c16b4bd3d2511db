"""Analysis policies that are not deployable controllers (e.g. ones that read the trace ahead)."""
