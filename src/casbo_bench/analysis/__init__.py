"""Analysis of validated traces: tables, statistics, figures, rate checks, claims."""
