"""Reliability reports: drive logs and replay results → one HTML page, tables, PDF."""

from faces.report.build import ReportOptions, build_report
from faces.report.export import write_csv, write_parquet, zip_tables
from faces.report.html import render
from faces.report.inputs import ReportError
from faces.report.model import Report
from faces.report.pdf import print_pdf

__all__ = ["Report", "ReportError", "ReportOptions", "build_report", "print_pdf", "render",
           "write_csv", "write_parquet", "zip_tables"]
