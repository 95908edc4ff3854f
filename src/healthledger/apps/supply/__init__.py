"""Supply traceability: EPCIS 2.0 events anchored by their CBV event hash (ARCHITECTURE.md §6)."""
