"""The research toolkit's training wing (never imported by the runtime): distillation of quality students and
their INT8 quantisation."""
