"""Fitting parameters to KPIs: calibration and sensitivity analysis."""
