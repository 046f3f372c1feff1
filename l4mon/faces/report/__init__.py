"""Reliability reports: drive logs and replay results → one HTML page, tables, PDF."""

from l4mon.faces.report.build import ReportOptions, build_report
from l4mon.faces.report.export import write_csv, write_parquet, zip_tables
from l4mon.faces.report.html import render
from l4mon.faces.report.inputs import ReportError
from l4mon.faces.report.model import Report
from l4mon.faces.report.pdf import print_pdf

__all__ = ["Report", "ReportError", "ReportOptions", "build_report", "print_pdf", "render",
           "write_csv", "write_parquet", "zip_tables"]
