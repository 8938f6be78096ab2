"""Figure makers for notebooks and reports: one module per kind of figure."""
