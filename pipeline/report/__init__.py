"""Reports: report.json -> report.md / report.html; no TensorFlow here."""
