"""Rate-limit counters kept in the portal's database, shared by every worker and machine."""
