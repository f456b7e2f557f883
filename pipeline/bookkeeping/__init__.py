"""Run bookkeeping: stage records, the folder lock, atomic files, provenance, interrupts, progress."""
