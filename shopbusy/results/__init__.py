"""Reading what runs did, and showing it: ML Metadata (metadata.py, runs.py), TFMA
(evaluation.py), and the HTML slice report (report.py, templates/)."""
